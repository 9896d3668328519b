/*
 * TinyMLS end to end, in C (make demo-c at the top of the repository).
 *
 * 1. A local context encrypts, rotates, and decrypts its earlier message;
 *    another local context cannot read it.
 * 2. Two shared contexts, "replica A" and "replica B", exchange messages in
 *    both directions for 2.5 seconds while their keys rotate every 100 ms:
 *    both number their epochs by the wall clock (unix ms / 100, SPEC v2
 *    7.2), so they agree on the current epoch without talking; the log shows
 *    messages sent/received, the epochs seen in message headers and the
 *    rotations observed through tinymls_context_epoch.
 * 3. A tampered message (AUTH) and a replayed one (REPLAY) are rejected on
 *    purpose.
 * 4. The process's metrics, as a Prometheus scrape of it would read them
 *    (tinymls_metrics_prometheus), and two security events it raised
 *    (tinymls_set_event_callback): the first rotation and the first
 *    rejected message.
 *
 * Exits 0 only if every genuine message arrived intact, nothing genuine was
 * rejected, both replicas rotated, and both attacks were refused with the
 * right status. No key or group secret is ever printed.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <pthread.h>

#include "tinymls.h"

#define RUN_MS 2500
#define TICK_MS 20
#define LOG_EVERY_MS 500
#define MAX_MSG 96
#define MAX_TRACKED_EPOCHS 4096

static int problems; /* anything that did not behave */

static void failure(const char *what)
{
    problems++;
    printf("  !! %s\n", what);
}

static void problem(const char *what, tinymls_status s)
{
    problems++;
    printf("  !! %s: status %u (%s)\n", what, (unsigned)s, tinymls_status_str(s));
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The epoch in a ciphertext's public header: u48 at bytes 2..8 (SPEC v2 4). */
static uint64_t header_epoch(const uint8_t *ct)
{
    uint64_t e = 0;
    for (int i = 2; i < 8; i++) {
        e = (e << 8) | ct[i];
    }
    return e;
}

static uint64_t epoch_of(tinymls_context *ctx)
{
    uint64_t e = 0;
    tinymls_status s = tinymls_context_epoch(ctx, &e);
    if (s != TINYMLS_OK) {
        problem("tinymls_context_epoch", s);
    }
    return e;
}

/* ---- 1. local context ------------------------------------------------ */

static void local_demo(void)
{
    static const char note[] = "invoice 1182: paid";
    uint8_t ct[sizeof note + TINYMLS_OVERHEAD];
    uint8_t pt[sizeof note];
    size_t ct_len = 0, pt_len = 0;
    tinymls_context *ctx = NULL, *other = NULL;
    tinymls_status s;

    printf("== 1. A local context: only it can read what it encrypts\n");
    s = tinymls_context_new(NULL, &ctx);
    if (s == TINYMLS_OK) {
        s = tinymls_context_new(NULL, &other);
    }
    if (s != TINYMLS_OK) {
        problem("tinymls_context_new", s);
        goto done;
    }
    s = tinymls_encrypt(ctx, (const uint8_t *)note, sizeof note - 1, NULL, 0, ct, sizeof ct,
                        &ct_len);
    if (s != TINYMLS_OK) {
        problem("tinymls_encrypt", s);
        goto done;
    }
    printf("  encrypted %zu bytes -> %zu-byte ciphertext in epoch %llu\n", sizeof note - 1, ct_len,
           (unsigned long long)header_epoch(ct));
    s = tinymls_rotate(ctx);
    if (s != TINYMLS_OK) {
        problem("tinymls_rotate", s);
        goto done;
    }
    printf("  rotated: now epoch %llu\n", (unsigned long long)epoch_of(ctx));
    s = tinymls_decrypt(ctx, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    if (s != TINYMLS_OK || pt_len != sizeof note - 1 || memcmp(pt, note, pt_len) != 0) {
        problem("decrypting the earlier message", s);
        goto done;
    }
    printf("  decrypted the epoch-%llu message after the rotation: \"%.*s\"\n",
           (unsigned long long)header_epoch(ct), (int)pt_len, (const char *)pt);
    s = tinymls_decrypt(other, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    printf("  another local context tries it: %s\n", tinymls_status_str(s));
    if (s != TINYMLS_ERR_AUTH) {
        problem("another local context read the message", s);
    }
    s = tinymls_context_close(ctx);
    if (s != TINYMLS_OK) {
        problem("tinymls_context_close", s);
    }
    s = tinymls_encrypt(ctx, (const uint8_t *)note, sizeof note - 1, NULL, 0, ct, sizeof ct,
                        &ct_len);
    printf("  closed (keys zeroized); encrypting now gives: %s\n", tinymls_status_str(s));
    if (s != TINYMLS_ERR_CLOSED) {
        problem("encrypt after close", s);
    }
done:
    tinymls_context_free(ctx);
    tinymls_context_free(other);
}

/* ---- 2. two replicas ------------------------------------------------- */

struct replica {
    const char *name;
    tinymls_context *ctx;
    unsigned sent, received, rejected;
    uint64_t last_epoch;
    unsigned rotations; /* epoch advances seen through tinymls_context_epoch */
};

/* Epochs seen in headers, counted from the first one (a clock epoch is
 * about 1.76e10 today). */
static unsigned char seen_epoch[MAX_TRACKED_EPOCHS];
static unsigned epochs_seen;
static int have_epoch;
static uint64_t min_epoch_seen, max_epoch_seen;

static void note_epoch(uint64_t e)
{
    if (!have_epoch) {
        have_epoch = 1;
        min_epoch_seen = max_epoch_seen = e;
    }
    if (e >= min_epoch_seen && e - min_epoch_seen < MAX_TRACKED_EPOCHS &&
        !seen_epoch[e - min_epoch_seen]) {
        seen_epoch[e - min_epoch_seen] = 1;
        epochs_seen++;
    }
    if (e > max_epoch_seen) {
        max_epoch_seen = e;
    }
}

static void observe_rotation(struct replica *r)
{
    uint64_t e = epoch_of(r->ctx);
    if (e > r->last_epoch) {
        r->rotations += (unsigned)(e - r->last_epoch);
        r->last_epoch = e;
    }
}

/* One message from -> to: returns 1 if it arrived intact. */
static int exchange(struct replica *from, struct replica *to, unsigned n)
{
    char text[MAX_MSG];
    uint8_t ct[MAX_MSG + TINYMLS_OVERHEAD];
    uint8_t pt[MAX_MSG];
    size_t ct_len = 0, pt_len = 0;
    int len = snprintf(text, sizeof text, "%s -> %s: update #%u", from->name, to->name, n);
    tinymls_status s = tinymls_encrypt(from->ctx, (const uint8_t *)text, (size_t)len, NULL, 0,
                                       ct, sizeof ct, &ct_len);
    if (s != TINYMLS_OK) {
        problem("tinymls_encrypt", s);
        return 0;
    }
    from->sent++;
    note_epoch(header_epoch(ct));
    s = tinymls_decrypt(to->ctx, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    if (s != TINYMLS_OK || pt_len != (size_t)len || memcmp(pt, text, pt_len) != 0) {
        to->rejected++;
        problem("a genuine message was not accepted", s);
        return 0;
    }
    to->received++;
    observe_rotation(from);
    observe_rotation(to);
    return 1;
}

static void log_line(uint64_t t, const struct replica *a, const struct replica *b)
{
    printf("  t=%4.1fs  A: sent %3u recv %3u epoch %llu | B: sent %3u recv %3u epoch %llu\n",
           (double)t / 1000.0, a->sent, a->received, (unsigned long long)a->last_epoch, b->sent,
           b->received, (unsigned long long)b->last_epoch);
}

/* Section 3: A sends B one message; an attacker flips one bit of it on the
 * way (AUTH), then B gets the genuine message (OK), then the attacker plays
 * it again (REPLAY). */
static void attacks(struct replica *a, struct replica *b)
{
    static const char text[] = "A -> B: transfer 100 to account 7";
    uint8_t ct[MAX_MSG + TINYMLS_OVERHEAD];
    uint8_t pt[MAX_MSG];
    size_t ct_len = 0, pt_len = 0;
    tinymls_status s;

    printf("== 3. Attacks are rejected\n");
    s = tinymls_encrypt(a->ctx, (const uint8_t *)text, sizeof text - 1, NULL, 0, ct, sizeof ct,
                        &ct_len);
    if (s != TINYMLS_OK) {
        problem("tinymls_encrypt", s);
        return;
    }
    a->sent++;
    ct[TINYMLS_HEADER_LEN] ^= 0x01; /* flip one bit of the encrypted body */
    s = tinymls_decrypt(b->ctx, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    printf("  tampered message (one bit flipped): %s\n", tinymls_status_str(s));
    if (s != TINYMLS_ERR_AUTH) {
        problem("the tampered message was not refused with AUTH", s);
    }
    ct[TINYMLS_HEADER_LEN] ^= 0x01; /* the genuine message */
    s = tinymls_decrypt(b->ctx, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    if (s != TINYMLS_OK || pt_len != sizeof text - 1 || memcmp(pt, text, pt_len) != 0) {
        problem("the genuine message was not accepted", s);
        return;
    }
    b->received++;
    printf("  genuine message: accepted (\"%.*s\")\n", (int)pt_len, (const char *)pt);
    s = tinymls_decrypt(b->ctx, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    printf("  the same message replayed: %s\n", tinymls_status_str(s));
    if (s != TINYMLS_ERR_REPLAY) {
        problem("the replayed message was not refused with REPLAY", s);
    }
}

static void replicas_demo(void)
{
    static const uint8_t group_id[] = "tinymls-demo";
    uint8_t secret[32];
    tinymls_config cfg;
    struct replica a = {"A", NULL, 0, 0, 0, 0, 0};
    struct replica b = {"B", NULL, 0, 0, 0, 0, 0};
    tinymls_status s;

    printf("== 2. Two replicas of one service, keys rotating every 100 ms (epoch = unix ms / 100)\n");
    if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
        failure("getrandom failed");
        return;
    }
    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 100;
    s = tinymls_context_join(secret, sizeof secret, group_id, sizeof group_id - 1, &cfg, &a.ctx);
    if (s == TINYMLS_OK) {
        s = tinymls_context_join(secret, sizeof secret, group_id, sizeof group_id - 1, &cfg,
                                 &b.ctx);
    }
    memset(secret, 0, sizeof secret); /* the contexts hold their own copies */
    if (s != TINYMLS_OK) {
        problem("tinymls_context_join", s);
        goto done;
    }
    /* Joined at the clock's epoch: rotations count from there. */
    a.last_epoch = epoch_of(a.ctx);
    b.last_epoch = epoch_of(b.ctx);
    printf("  joined: A at epoch %llu, B at epoch %llu (equal, or one apart at a boundary)\n",
           (unsigned long long)a.last_epoch, (unsigned long long)b.last_epoch);
    if ((a.last_epoch > b.last_epoch ? a.last_epoch - b.last_epoch
                                     : b.last_epoch - a.last_epoch) > 1) {
        failure("the replicas disagree on the current epoch");
    }

    uint64_t start = now_ms(), next_log = LOG_EVERY_MS;
    for (unsigned n = 1;; n++) {
        uint64_t t = now_ms() - start;
        if (t >= RUN_MS) {
            log_line(t, &a, &b);
            break;
        }
        if (t >= next_log) {
            log_line(t, &a, &b);
            next_log += LOG_EVERY_MS;
        }
        /* A and B take turns being first (neither leads: both follow the clock). */
        struct replica *first = n % 2 ? &a : &b, *second = n % 2 ? &b : &a;
        if (!exchange(first, second, n) || !exchange(second, first, n)) {
            break;
        }
        sleep_ms(TICK_MS);
    }
    printf("  replica A: sent %u, received %u, rejected %u, rotations observed %u\n", a.sent,
           a.received, a.rejected, a.rotations);
    printf("  replica B: sent %u, received %u, rejected %u, rotations observed %u\n", b.sent,
           b.received, b.rejected, b.rotations);
    printf("  epochs seen in message headers: %u (%llu to %llu)\n", epochs_seen,
           (unsigned long long)min_epoch_seen, (unsigned long long)max_epoch_seen);
    if (a.rejected + b.rejected != 0 || a.sent != b.received || b.sent != a.received ||
        a.sent == 0 || b.sent == 0) {
        failure("message counts do not add up");
    }
    /* 2.5 s at a 100 ms period is about 25 rotations; 2 is a generous floor. */
    if (a.rotations < 2 || b.rotations < 2 || epochs_seen < 3) {
        failure("the keys did not rotate");
    }
    attacks(&a, &b);
done:
    tinymls_context_free(a.ctx);
    tinymls_context_free(b.ctx);
}

/* Security events: keep the first rotation and the first rejection to print
 * at the end (events come from any thread, the maintenance thread included). */
static char first_rotation[512], first_rejection[512];
static int have_rotation, have_rejection;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_event(uint32_t level, const char *json, size_t len, void *user_data)
{
    (void)level;
    (void)user_data;
    pthread_mutex_lock(&events_lock);
    if (!have_rotation && strstr(json, "\"event\":\"rotation\"") && len < sizeof first_rotation) {
        memcpy(first_rotation, json, len + 1);
        have_rotation = 1;
    }
    if (!have_rejection && strstr(json, "\"event\":\"decrypt_rejected\"") && len < sizeof first_rejection) {
        memcpy(first_rejection, json, len + 1);
        have_rejection = 1;
    }
    pthread_mutex_unlock(&events_lock);
}

/* What GET /metrics would serve: size query, then fill (with room to grow). */
static void print_metrics(void)
{
    size_t need = 0;
    tinymls_status s = tinymls_metrics_prometheus(NULL, 0, &need);
    char *text = NULL;
    while (s == TINYMLS_ERR_BUFFER_TOO_SMALL) {
        free(text);
        size_t cap = need + 1024;
        text = malloc(cap);
        if (text == NULL) {
            failure("out of memory");
            return;
        }
        s = tinymls_metrics_prometheus((uint8_t *)text, cap, &need);
    }
    if (s != TINYMLS_OK) {
        problem("tinymls_metrics_prometheus", s);
    } else {
        printf("\n== metrics of this process (Prometheus text format) ==\n%.*s", (int)need, text);
    }
    free(text);
}

int main(void)
{
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION) {
        printf("libtinymls ABI %u, this demo needs %d\n", (unsigned)tinymls_abi_version(),
               TINYMLS_ABI_VERSION);
        return 1;
    }
    printf("TinyMLS %s (AEAD: %s) C demo\n", tinymls_version(), tinymls_aead_backend());
    if (tinymls_set_event_callback(on_event, NULL, TINYMLS_LOG_INFO) != TINYMLS_OK) {
        failure("tinymls_set_event_callback");
    }
    local_demo();
    replicas_demo();
    tinymls_set_event_callback(NULL, NULL, TINYMLS_LOG_ERROR);
    pthread_mutex_lock(&events_lock);
    printf("\n== security events (JSON; two of them) ==\n");
    if (have_rotation) {
        printf("%s\n", first_rotation);
    }
    if (have_rejection) {
        printf("%s\n", first_rejection);
    }
    pthread_mutex_unlock(&events_lock);
    if (!have_rotation || !have_rejection) {
        failure("expected a rotation and a decrypt_rejected event");
    }
    print_metrics();
    if (problems != 0) {
        printf("demo: %d problem(s)\n", problems);
        return 1;
    }
    printf("demo: everything behaved\n");
    return 0;
}
