/*
 * The C consumer of the TinyMLS demo (make demo), started by the Go service:
 *
 *   consumer SOCKET NAME       (the hex group secret on standard input)
 *
 * It joins the group from the group secret with the default configuration
 * (NULL config: epochs follow the clock, unix_ms / 100, the same at every
 * member, SPEC v2 section 7.2), listens on the Unix socket SOCKET, and reads
 * every replica that connects, one thread per connection, all sharing one
 * context (every tinymls_* call may be made from any thread at once).
 *
 * Each frame is a kind byte, a big-endian u32 length and a ciphertext; the
 * plaintext of a data message is
 *
 *   "<sender> <incarnation> <seq> <body length> <crc32 of body, 8 hex>\n" body
 *
 * (examples/demo/service/protocol.go). The consumer checks each message on
 * its own: a gap in a replica process's sequence numbers is a loss, a number
 * seen again a duplicate, a line it cannot parse or a body of the wrong
 * length or checksum a misread; a genuine message the library refuses is
 * counted by the status's name (tinymls_status_name). Frames labelled as
 * deliberate attacks must be refused with TINYMLS_ERR_AUTH (tampered) and
 * TINYMLS_ERR_REPLAY (replayed).
 *
 * It reports to the orchestrator, one line each: READY epoch=E, a STAT line
 * every 250 ms, ERROR lines (the first few problems), and, after "STOP n" on
 * standard input, once its n connections have ended, a STREAM line per
 * replica process and a FINAL line (the lines of the Go consumer,
 * examples/demo/service/consumer.go), then the library's Prometheus metrics
 * between "METRICS BEGIN" and "METRICS END". Exits 1 if anything went wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tinymls.h"

#define GROUP_ID "demo/orders"
#define AAD "orders-v1"
#define MAX_FRAME (1u << 20)
#define MAX_CONNS 16        /* replica processes that may connect */
#define MAX_STREAMS 16      /* distinct replica processes whose messages we read */
#define EPOCH_SPAN 65536    /* epochs tracked from the join window's start (6553 s) */
#define MAX_COMPLAINTS 5    /* ERROR lines printed; every problem is still counted */
#define STATUS_COUNT 32

/* What this consumer saw of one replica process. */
struct stream {
    char sender[32];
    int incarnation;
    unsigned long long first, last, count;
    unsigned long long gaps; /* messages missing between two received ones */
    unsigned long long dups; /* messages received again, or out of order */
    unsigned long cut;       /* a frame the stream ended inside (its writer was killed) */
};

static const char *name;
static tinymls_context *ctx;
static uint64_t join_epoch, epoch_base;

/* Everything below is guarded by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct stream streams[MAX_STREAMS];
static int nstreams;
static unsigned long recv_total, misread, before_join, attacks, refused, complaints;
static unsigned long rejected[STATUS_COUNT]; /* genuine messages refused, by status */
static unsigned char seen_epoch[EPOCH_SPAN];
static unsigned long epochs_seen;
static uint64_t epoch_min = UINT64_MAX, epoch_max;
static pthread_t conn_threads[MAX_CONNS];
static int nconns;
static long stop_n = -2; /* -2: no STOP yet; -1: a bad STOP line */

/* Prints a problem (the first few; with mu held). */
__attribute__((format(printf, 1, 2))) static void complain(const char *fmt, ...)
{
    if (++complaints <= MAX_COMPLAINTS) {
        va_list ap;
        va_start(ap, fmt);
        printf("ERROR %s: ", name);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    } else if (complaints == MAX_COMPLAINTS + 1) {
        printf("ERROR %s: more problems: counted, not printed\n", name);
    }
    fflush(stdout);
}

/* CRC-32 (IEEE 802.3, as zlib.crc32 and Go's crc32.ChecksumIEEE). */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* 1: n bytes read; 0: a clean end before the first byte; -1: the stream ended
 * inside (or a read error). */
static int read_exact(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0)
            return got == 0 && r == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

/* Checks one genuine, decrypted message (with mu held); returns its stream. */
static struct stream *take_message(const uint8_t *pt, size_t pt_len, uint64_t epoch)
{
    const uint8_t *nl = memchr(pt, '\n', pt_len);
    char line[128], sender[32];
    int inc = 0, used = 0;
    unsigned long long seq = 0, len = 0;
    unsigned crc = 0;
    if (!nl || (size_t)(nl - pt) >= sizeof line) {
        misread++;
        complain("misread: no header line");
        return NULL;
    }
    memcpy(line, pt, (size_t)(nl - pt));
    line[nl - pt] = '\0';
    if (sscanf(line, "%31s %d %llu %llu %8x%n", sender, &inc, &seq, &len, &crc, &used) != 5 || line[used] != '\0') {
        misread++;
        complain("misread: unreadable header line \"%s\"", line);
        return NULL;
    }
    const uint8_t *body = nl + 1;
    size_t body_len = pt_len - (size_t)(body - pt);
    if (body_len != len || crc32_ieee(body, body_len) != crc) {
        misread++;
        complain("misread: %s#%d seq %llu: wrong body length or checksum", sender, inc, seq);
        return NULL;
    }

    struct stream *s = NULL;
    for (int i = 0; i < nstreams; i++)
        if (streams[i].incarnation == inc && strcmp(streams[i].sender, sender) == 0)
            s = &streams[i];
    if (!s) {
        if (nstreams == MAX_STREAMS) {
            misread++;
            complain("too many senders (%s)", sender);
            return NULL;
        }
        s = &streams[nstreams++];
        snprintf(s->sender, sizeof s->sender, "%s", sender);
        s->incarnation = inc;
        s->first = seq;
        s->last = seq - 1;
    }
    if (seq <= s->last) {
        s->dups++;
        complain("%s#%d seq %llu again (or out of order) after %llu", sender, inc, seq, s->last);
        return s;
    }
    if (seq > s->last + 1) {
        s->gaps += seq - s->last - 1;
        complain("%s#%d: %llu messages missing before seq %llu", sender, inc, seq - s->last - 1, seq);
    }
    s->last = seq;
    s->count++;
    recv_total++;
    if (epoch >= epoch_base && epoch - epoch_base < EPOCH_SPAN && !seen_epoch[epoch - epoch_base]) {
        seen_epoch[epoch - epoch_base] = 1;
        epochs_seen++;
    }
    if (epoch < epoch_min)
        epoch_min = epoch;
    if (epoch > epoch_max)
        epoch_max = epoch;
    if (epoch < join_epoch)
        before_join++; /* read from the window this consumer joined with */
    return s;
}

/* Reads one replica's connection to its end. */
static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t *ct = malloc(MAX_FRAME), *pt = malloc(MAX_FRAME);
    struct stream *current = NULL; /* the stream this connection carries */
    uint8_t hdr[5];
    int r;
    while (ct && pt && (r = read_exact(fd, hdr, 5)) != 0) {
        uint32_t len = r < 0 ? 0 : (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
        if (len > MAX_FRAME) {
            pthread_mutex_lock(&mu);
            misread++;
            complain("a frame of %lu bytes", (unsigned long)len);
            pthread_mutex_unlock(&mu);
            break;
        }
        if (r < 0 || read_exact(fd, ct, len) != 1) {
            /* The stream ended inside a frame: its writer died writing it. */
            pthread_mutex_lock(&mu);
            if (current) {
                current->cut++; /* accepted only from the killed replica */
            } else {
                misread++;
                complain("a connection ended inside its first frame");
            }
            pthread_mutex_unlock(&mu);
            break;
        }
        size_t pt_len = 0;
        tinymls_status st = tinymls_decrypt(ctx, ct, len, (const uint8_t *)AAD, strlen(AAD), pt, MAX_FRAME, &pt_len);
        uint64_t epoch = 0; /* the header's u48 at bytes 2..8 (SPEC v2 section 4) */
        for (size_t i = 2; i < 8 && len >= 8; i++)
            epoch = epoch << 8 | ct[i];

        pthread_mutex_lock(&mu);
        if (hdr[0] == 'T' || hdr[0] == 'R') {
            /* Deliberate attacks, labelled by the sender: they must be refused. */
            tinymls_status want = hdr[0] == 'T' ? TINYMLS_ERR_AUTH : TINYMLS_ERR_REPLAY;
            const char *what = hdr[0] == 'T' ? "tampered message" : "replay";
            attacks++;
            if (st == want) {
                refused++;
                printf("NOTE refused the deliberate %s: %s\n", what, tinymls_status_name(st));
            } else {
                complain("the deliberate %s was not refused with %s: %s", what, tinymls_status_name(want), tinymls_status_name(st));
            }
        } else if (hdr[0] != 'D') {
            misread++;
            complain("a frame of unknown kind %u", (unsigned)hdr[0]);
        } else if (st != TINYMLS_OK) {
            /* A genuine message the library refused: the demo fails on any. */
            rejected[st < STATUS_COUNT ? st : 0]++;
            complain("a genuine message (epoch %llu) was refused: %s", (unsigned long long)epoch, tinymls_status_name(st));
        } else {
            struct stream *s = take_message(pt, pt_len, epoch);
            if (s)
                current = s;
        }
        fflush(stdout);
        pthread_mutex_unlock(&mu);
    }
    free(ct);
    free(pt);
    close(fd);
    return NULL;
}

/* Accepts replicas until the process ends; one thread reads each. */
static void *accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&mu);
        if (nconns == MAX_CONNS || pthread_create(&conn_threads[nconns], NULL, serve, (void *)(intptr_t)fd) != 0) {
            misread++;
            complain("cannot serve one more connection");
            close(fd);
        } else {
            nconns++;
        }
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* Waits for "STOP n" on standard input: every replica is gone, and n
 * connections were made to this consumer. */
static void *wait_stop(void *arg)
{
    (void)arg;
    char line[64];
    long n = -1;
    if (!fgets(line, sizeof line, stdin) || sscanf(line, "STOP %ld", &n) != 1 || n < 0)
        n = -1;
    pthread_mutex_lock(&mu);
    stop_n = n;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET NAME  (hex group secret on stdin)\n", argv[0]);
        return 2;
    }
    name = argv[2];
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION) {
        printf("ERROR %s: libtinymls has ABI %u, this consumer needs %d\n", name, (unsigned)tinymls_abi_version(),
               TINYMLS_ABI_VERSION);
        return 1;
    }

    /* The group secret, hex, on the first line of standard input. */
    char line[2 * TINYMLS_MAX_GROUP_SECRET_LEN + 2];
    uint8_t secret[TINYMLS_MAX_GROUP_SECRET_LEN];
    size_t secret_len = 0;
    if (!fgets(line, sizeof line, stdin)) {
        printf("ERROR %s: no group secret on stdin\n", name);
        return 1;
    }
    for (char *p = line; p[0] && p[1] && p[0] != '\n' && secret_len < sizeof secret; p += 2) {
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1)
            break;
        secret[secret_len++] = (uint8_t)v;
    }
    memset(line, 0, sizeof line);
    /* NULL config: the defaults, as every member of the group uses. */
    tinymls_status st = tinymls_context_join(secret, secret_len, (const uint8_t *)GROUP_ID, strlen(GROUP_ID), NULL, &ctx);
    memset(secret, 0, sizeof secret);
    if (st == TINYMLS_OK)
        st = tinymls_context_epoch(ctx, &join_epoch);
    if (st != TINYMLS_OK) {
        printf("ERROR %s: joining the group: %s\n", name, tinymls_status_str(st));
        return 1;
    }
    /* The oldest epoch this context can read is in its join window (64 epochs). */
    epoch_base = join_epoch > 64 ? join_epoch - 64 : 0;

    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
    pthread_t acceptor, stopper;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, MAX_CONNS) != 0 ||
        pthread_create(&acceptor, NULL, accept_loop, (void *)(intptr_t)lfd) != 0 ||
        pthread_create(&stopper, NULL, wait_stop, NULL) != 0) {
        printf("ERROR %s: cannot listen on the socket\n", name);
        return 1;
    }
    printf("READY epoch=%llu\n", (unsigned long long)join_epoch);
    fflush(stdout);

    /* A STAT line every 250 ms until STOP; then wait (10 s at most) for the
     * last connections to be accepted. */
    long want;
    int have, waited = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        want = stop_n;
        have = nconns;
        unsigned long nrejected = 0;
        for (int i = 0; i < STATUS_COUNT; i++)
            nrejected += rejected[i];
        if (want == -2)
            printf("STAT recv=%lu rejected=%lu\n", recv_total, nrejected);
        fflush(stdout);
        pthread_mutex_unlock(&mu);
        if (want == -1) {
            printf("ERROR %s: expected \"STOP <n>\" on standard input\n", name);
            return 1;
        }
        if (want >= 0 && have >= want)
            break;
        if (want >= 0 && ++waited > 1000) {
            printf("ERROR %s: %d connections of %ld after 10 s\n", name, have, want);
            return 1;
        }
        sleep_ms(want == -2 ? 250 : 10);
    }
    for (int i = 0; i < have; i++)
        pthread_join(conn_threads[i], NULL);

    pthread_mutex_lock(&mu);
    unsigned long long problems = misread + attacks - refused;
    for (int i = 0; i < nstreams; i++) {
        const struct stream *s = &streams[i];
        printf("STREAM sender=%s inc=%d count=%llu first=%llu last=%llu gaps=%llu dups=%llu cut=%lu\n", s->sender,
               s->incarnation, s->count, s->first, s->last, s->gaps, s->dups, s->cut);
        problems += s->gaps + s->dups;
    }
    char rej[512] = "none";
    size_t off = 0;
    for (int i = 0; i < STATUS_COUNT; i++) {
        if (rejected[i]) {
            off += (size_t)snprintf(rej + off, sizeof rej - off, "%s%s:%lu", off ? "," : "",
                                    tinymls_status_name((uint32_t)i), rejected[i]);
            problems += rejected[i];
        }
    }
    printf("FINAL conns=%d recv=%lu rejected=%s misread=%lu epochs=%lu epoch_min=%llu epoch_max=%llu before_join=%lu "
           "attacks=%lu refused=%lu\n",
           have, recv_total, rej, misread, epochs_seen, recv_total ? (unsigned long long)epoch_min : 0,
           (unsigned long long)epoch_max, before_join, attacks, refused);
    pthread_mutex_unlock(&mu);

    /* The process's metrics, as a Prometheus scrape would see them. */
    size_t need = 0;
    tinymls_metrics_prometheus(NULL, 0, &need);
    size_t cap = need + 4096, len = 0;
    uint8_t *text = malloc(cap);
    st = text ? tinymls_metrics_prometheus(text, cap, &len) : TINYMLS_ERR_BUFFER_TOO_SMALL;
    if (st == TINYMLS_OK) {
        printf("METRICS BEGIN\n%.*s%sMETRICS END\n", (int)len, (const char *)text,
               len && text[len - 1] == '\n' ? "" : "\n");
    } else {
        printf("ERROR %s: tinymls_metrics_prometheus: %s\n", name, tinymls_status_str(st));
        problems++;
    }
    free(text);
    fflush(stdout);
    tinymls_context_free(ctx);
    return problems ? 1 : 0;
}
