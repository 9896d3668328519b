/*
 * The C consumer of the TinyMLS demo (make demo), started by the Go service:
 *
 *   consumer SOCKET NAME       (the hex group secret on standard input)
 *
 * Listens on the Unix socket SOCKET, accepts the two replicas, and decrypts
 * every frame they send (one thread per connection, one shared context,
 * keys rotating every 100 ms on their own: every member's epoch is the wall
 * clock divided by the period, SPEC v2 7.2). Genuine messages must decrypt
 * and arrive in order ("replica-N #K ..."); the frames labelled as
 * deliberately tampered or replayed must be rejected with AUTH and REPLAY.
 * Prints READY, then a STAT line every 250 ms, a FINAL line, and finally the
 * library's Prometheus metrics between "METRICS BEGIN" and "METRICS END".
 * Exits 1 if anything was lost, misread or wrongly accepted or rejected.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tinymls.h"

#define REPLICAS 2
#define MAX_FRAME (1u << 20)
#define MAX_EPOCHS 65536
#define AAD "orders-v1"

static tinymls_context *ctx;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long recv_total, recv_by[REPLICAS + 1], ended[REPLICAS + 1];
static unsigned long rejected, tampered_rejected, replay_rejected, errors;
static tinymls_status tampered_status, replay_status;
/* Distinct epochs, counted from the first one seen (a clock epoch is about
 * 1.76e10 today). */
static unsigned char seen_epoch[MAX_EPOCHS];
static unsigned long epochs_seen;
static uint64_t epoch_min = UINT64_MAX, epoch_max, epoch_base;
static int have_base;
static int done_threads;

static void complain(const char *name, const char *what)
{
    printf("ERROR %s: %s\n", name, what);
    fflush(stdout);
}

static int read_exact(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

static const char *name;

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t *ct = malloc(MAX_FRAME), *pt = malloc(MAX_FRAME);
    unsigned long expect[REPLICAS + 1] = {0};
    uint8_t hdr[5];
    while (ct && pt && read_exact(fd, hdr, 5)) {
        uint32_t len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
        if (len > MAX_FRAME || !read_exact(fd, ct, len)) {
            complain(name, "truncated or oversized frame");
            pthread_mutex_lock(&mu);
            errors++;
            pthread_mutex_unlock(&mu);
            break;
        }
        /* Every message binds the AAD "orders-v1" (the application's
         * message type); the sender's name is in the plaintext. */
        size_t pt_len = 0;
        tinymls_status st = tinymls_decrypt(ctx, ct, len, (const uint8_t *)AAD, strlen(AAD), pt, MAX_FRAME, &pt_len);
        uint64_t epoch = 0; /* the header's u48 at bytes 2..8 (SPEC v2 section 4) */
        for (size_t i = 2; i < 8 && len >= 8; i++)
            epoch = epoch << 8 | ct[i];
        pthread_mutex_lock(&mu);
        if (hdr[0] == 'T' || hdr[0] == 'R') {
            /* Deliberate attacks, labelled as such by the sender: they must fail. */
            tinymls_status want = hdr[0] == 'T' ? TINYMLS_ERR_AUTH : TINYMLS_ERR_REPLAY;
            if (st != want) {
                errors++;
                printf("ERROR %s: deliberate %s was not rejected as expected: %s\n", name,
                       hdr[0] == 'T' ? "tampered message" : "replay", tinymls_status_str(st));
            } else if (hdr[0] == 'T') {
                tampered_rejected++;
                tampered_status = st;
            } else {
                replay_rejected++;
                replay_status = st;
            }
            printf("NOTE rejected the deliberate %s: %s\n", hdr[0] == 'T' ? "tampered message" : "replay",
                   tinymls_status_str(st));
        } else if (st != TINYMLS_OK) {
            rejected++;
            printf("ERROR %s: a genuine message was rejected: %s\n", name, tinymls_status_str(st));
        } else if (hdr[0] == 'E') {
            char buf[64];
            unsigned long sent = 0;
            int r = 0;
            snprintf(buf, sizeof buf, "%.*s", (int)(pt_len < 63 ? pt_len : 63), (const char *)pt);
            if (sscanf(buf, "END replica-%d sent=%lu", &r, &sent) != 2 || r < 1 || r > REPLICAS || sent != expect[r]) {
                errors++;
                printf("ERROR %s: unexpected end message: %s\n", name, buf);
            } else {
                ended[r] = 1;
            }
        } else {
            char buf[64];
            unsigned long k = 0;
            int r = 0;
            snprintf(buf, sizeof buf, "%.*s", (int)(pt_len < 63 ? pt_len : 63), (const char *)pt);
            if (sscanf(buf, "replica-%d #%lu", &r, &k) != 2 || r < 1 || r > REPLICAS || k <= expect[r]) {
                errors++;
                printf("ERROR %s: out of order or misread: \"%s\"\n", name, buf);
            } else {
                if (k != expect[r] + 1) {
                    errors += k - expect[r] - 1;
                    printf("ERROR %s: %lu messages of replica-%d lost\n", name, k - expect[r] - 1, r);
                }
                expect[r] = k;
                recv_by[r]++;
                recv_total++;
                if (!have_base) {
                    have_base = 1;
                    epoch_base = epoch;
                }
                if (epoch >= epoch_base && epoch - epoch_base < MAX_EPOCHS && !seen_epoch[epoch - epoch_base]) {
                    seen_epoch[epoch - epoch_base] = 1;
                    epochs_seen++;
                }
                if (epoch < epoch_min)
                    epoch_min = epoch;
                if (epoch > epoch_max)
                    epoch_max = epoch;
            }
        }
        fflush(stdout);
        pthread_mutex_unlock(&mu);
    }
    free(ct);
    free(pt);
    close(fd);
    pthread_mutex_lock(&mu);
    done_threads++;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void stat_line(const char *kind)
{
    pthread_mutex_lock(&mu);
    printf("%s recv=%lu r1=%lu r2=%lu epochs=%lu epoch_min=%llu epoch_max=%llu rejected=%lu misread=%lu "
           "tampered_rejected=%lu tampered_status=%s replay_rejected=%lu replay_status=%s\n",
           kind, recv_total, recv_by[1], recv_by[2], epochs_seen, recv_total ? (unsigned long long)epoch_min : 0,
           (unsigned long long)epoch_max, rejected, errors, tampered_rejected,
           tampered_rejected ? "TINYMLS_ERR_AUTH" : "-", replay_rejected,
           replay_rejected ? "TINYMLS_ERR_REPLAY" : "-");
    fflush(stdout);
    pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET NAME  (hex group secret on stdin)\n", argv[0]);
        return 2;
    }
    name = argv[2];
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION) {
        printf("ERROR %s: libtinymls has ABI %u, this consumer needs %d\n", name,
               (unsigned)tinymls_abi_version(), TINYMLS_ABI_VERSION);
        return 1;
    }
    char line[2 * TINYMLS_MAX_GROUP_SECRET_LEN + 2];
    uint8_t secret[TINYMLS_MAX_GROUP_SECRET_LEN];
    size_t secret_len = 0;
    if (!fgets(line, sizeof line, stdin)) {
        complain(name, "no group secret on stdin");
        return 1;
    }
    for (char *p = line; p[0] && p[1] && p[0] != '\n' && secret_len < sizeof secret; p += 2) {
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1)
            break;
        secret[secret_len++] = (uint8_t)v;
    }
    memset(line, 0, sizeof line);

    tinymls_config cfg;
    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 100; /* keys rotate every 100 ms on their own */
    const char *group = "demo/orders";
    tinymls_status st = tinymls_context_join(secret, secret_len, (const uint8_t *)group, strlen(group), &cfg, &ctx);
    memset(secret, 0, sizeof secret);
    if (st != TINYMLS_OK) {
        printf("ERROR %s: join: %s\n", name, tinymls_status_str(st));
        return 1;
    }

    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, REPLICAS) != 0) {
        complain(name, "cannot listen on the socket");
        return 1;
    }
    printf("READY\n");
    fflush(stdout);

    pthread_t threads[REPLICAS];
    for (int i = 0; i < REPLICAS; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0 || pthread_create(&threads[i], NULL, serve, (void *)(intptr_t)fd) != 0) {
            complain(name, "accept failed");
            return 1;
        }
    }
    close(lfd);
    for (;;) {
        pthread_mutex_lock(&mu);
        int done = done_threads == REPLICAS;
        pthread_mutex_unlock(&mu);
        if (done)
            break;
        stat_line("STAT");
        struct timespec ts = {0, 250 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < REPLICAS; i++)
        pthread_join(threads[i], NULL);
    int ok = errors == 0 && rejected == 0 && ended[1] && ended[2] && tampered_rejected == 1 && replay_rejected == 1;
    if (!ended[1] || !ended[2])
        complain(name, "a replica's connection ended without its END message");
    stat_line("FINAL");

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
        ok = 0;
    }
    free(text);
    tinymls_context_free(ctx);
    return ok ? 0 : 1;
}
