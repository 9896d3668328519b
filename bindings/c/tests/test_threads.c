/*
 * Threads (SPEC section 9: every function may be called from any thread at
 * once, tinymls_context_free excepted).
 *
 * Part 1: 4 threads encrypt on one shared context while a fifth rotates it;
 * each encryptor hands every ciphertext at once to a peer context (so the
 * peer decrypts from 4 threads while following the rotations). Afterwards:
 * no (epoch, sender, seq) header repeats, each epoch's sequence numbers are
 * exactly 0..n-1, and a second peer with replay protection reads them all
 * in order and refuses a replay.
 *
 * Part 2: 4 threads keep calling every function on one context while two
 * others race to close it: exactly one close returns OK, every call returns
 * OK or CLOSED, and every call begun after a close returned is CLOSED. The
 * context is freed after all threads are joined.
 *
 * Part 3: tinymls_last_error_message is per thread: a new thread starts with
 * an empty detail, and its failures and this thread's do not mix.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "tinymls.h"

#define ENCRYPTORS 4
#define MIN_PER_THREAD 500    /* each encryptor sends at least this many */
#define MAX_PER_THREAD 20000  /* and at most this many */
#define ROTATIONS 50          /* the rotator's manual rotations */
#define PT_LEN 16
#define CT_LEN (PT_LEN + TINYMLS_OVERHEAD)

/* ---- part 1 ---------------------------------------------------------- */

struct record {
    uint8_t ct[CT_LEN];
    int thread;
    int index;
};

struct encryptor {
    int id;
    tinymls_context *ctx;  /* shared, encrypting */
    tinymls_context *peer; /* shared, decrypting (replay window off) */
    struct record *records;
    int count;
    int errors;       /* calls that did not return OK */
    int wrong_order;  /* own headers not increasing */
};

static pthread_barrier_t start_line;
/* Pacing, so that the rotations really interleave with the encryptions
 * whatever the scheduler does: the rotator publishes how many messages had
 * been sent when it last rotated (`pace_base`) and waits for 20 more before
 * rotating again; encryptors pause while they are 40 ahead of that base.
 * Neither waits for something the other cannot give (20 < 40), and at most
 * 4 of those 20 were encrypted before the rotation (one per encryptor), so
 * every epoch up to ROTATIONS - 1 carries at least 16 messages. */
static atomic_int total_sent;
static atomic_int pace_base;
static atomic_int rotator_done;
static atomic_int encryptors_left;

static void plaintext_of(int thread, int index, uint8_t pt[PT_LEN])
{
    char text[32];
    memset(text, 0, sizeof text);
    snprintf(text, sizeof text, "t%d-msg-%08d", thread % 10, index % 100000000);
    memcpy(pt, text, PT_LEN);
}

static void short_pause(void)
{
    struct timespec ts = {0, 20000}; /* 20 us */
    nanosleep(&ts, NULL);
}

static void *encrypt_worker(void *arg)
{
    struct encryptor *w = (struct encryptor *)arg;
    uint64_t last_epoch = 0;
    uint64_t last_seq = 0;
    int have_last = 0;

    pthread_barrier_wait(&start_line);
    for (int i = 0; i < MAX_PER_THREAD && (i < MIN_PER_THREAD || !atomic_load(&rotator_done));) {
        uint8_t pt[PT_LEN], back[PT_LEN];
        struct record *r = &w->records[w->count];
        size_t n = 0, m = 0;
        if (!atomic_load(&rotator_done) &&
            atomic_load(&total_sent) >= atomic_load(&pace_base) + 40) {
            short_pause();
            continue;
        }
        plaintext_of(w->id, i, pt);
        if (tinymls_encrypt(w->ctx, pt, PT_LEN, NULL, 0, r->ct, CT_LEN, &n) != TINYMLS_OK ||
            n != CT_LEN) {
            w->errors++;
            i++;
            continue;
        }
        r->thread = w->id;
        r->index = i++;
        w->count++;
        atomic_fetch_add(&total_sent, 1);
        /* This thread's own messages: epoch never goes back, and within an
         * epoch the sequence number grows. */
        uint64_t e = tu_ct_epoch(r->ct);
        uint64_t s = tu_ct_seq(r->ct);
        if (have_last && (e < last_epoch || (e == last_epoch && s <= last_seq))) {
            w->wrong_order++;
        }
        last_epoch = e;
        last_seq = s;
        have_last = 1;
        /* The peer decrypts at once, concurrently with the other threads. */
        if (tinymls_decrypt(w->peer, r->ct, CT_LEN, NULL, 0, back, sizeof back, &m) !=
                TINYMLS_OK ||
            m != PT_LEN || memcmp(back, pt, PT_LEN) != 0) {
            w->errors++;
        }
    }
    atomic_fetch_sub(&encryptors_left, 1);
    return NULL;
}

struct rotator {
    tinymls_context *ctx;
    int done;
    int errors;
};

static void *rotate_worker(void *arg)
{
    struct rotator *r = (struct rotator *)arg;
    pthread_barrier_wait(&start_line);
    for (int i = 1; i <= ROTATIONS; i++) {
        /* (encryptors_left: never wait for threads that have stopped) */
        while (atomic_load(&total_sent) < atomic_load(&pace_base) + 20 &&
               atomic_load(&encryptors_left) > 0) {
            short_pause();
        }
        if (tinymls_rotate(r->ctx) == TINYMLS_OK) {
            r->done++;
        } else {
            r->errors++;
        }
        atomic_store(&pace_base, atomic_load(&total_sent));
    }
    atomic_store(&rotator_done, 1);
    return NULL;
}

static int compare_headers(const void *a, const void *b)
{
    const uint8_t *x = ((const struct record *)a)->ct;
    const uint8_t *y = ((const struct record *)b)->ct;
    return memcmp(x + 2, y + 2, 22); /* epoch (u48), sender, seq: big-endian */
}

static void check_headers(struct record *all, int n, uint64_t sender)
{
    int repeats = 0, gaps = 0, foreign = 0, epochs = 1;
    qsort(all, (size_t)n, sizeof all[0], compare_headers);
    for (int i = 0; i < n; i++) {
        uint64_t expected_seq = 0;
        if (i > 0 && tu_ct_epoch(all[i].ct) == tu_ct_epoch(all[i - 1].ct)) {
            expected_seq = tu_ct_seq(all[i - 1].ct) + 1;
        } else if (i > 0) {
            epochs++;
        }
        if (i > 0 && compare_headers(&all[i], &all[i - 1]) == 0) {
            repeats++;
        } else if (tu_ct_seq(all[i].ct) != expected_seq) {
            gaps++;
        }
        if (tu_ct_sender(all[i].ct) != sender) {
            foreign++;
        }
    }
    printf("part 1: %d messages in %d epochs; %d repeated headers, %d seq gaps\n", n, epochs,
           repeats, gaps);
    CHECK(repeats == 0);
    CHECK(gaps == 0);
    CHECK(foreign == 0);
    CHECK(epochs >= ROTATIONS); /* the rotations happened during the encryption */
}

static void part1(void)
{
    tinymls_config cfg = tu_config();
    cfg.max_epochs = 4096;
    tinymls_context *ctx = tu_join(&cfg);
    cfg.replay_window = 0; /* 4 threads deliver in no particular order */
    tinymls_context *peer = tu_join(&cfg);
    struct encryptor w[ENCRYPTORS];
    struct rotator rot = {ctx, 0, 0};
    pthread_t tid[ENCRYPTORS + 1];
    uint64_t sender = 0;

    CHECK_STATUS(tinymls_context_sender_id(ctx, &sender), TINYMLS_OK);
    REQUIRE(pthread_barrier_init(&start_line, NULL, ENCRYPTORS + 1) == 0);
    atomic_store(&encryptors_left, ENCRYPTORS);
    for (int i = 0; i < ENCRYPTORS; i++) {
        w[i].id = i;
        w[i].ctx = ctx;
        w[i].peer = peer;
        w[i].records = (struct record *)calloc(MAX_PER_THREAD, sizeof(struct record));
        w[i].count = w[i].errors = w[i].wrong_order = 0;
        REQUIRE(w[i].records != NULL);
        REQUIRE(pthread_create(&tid[i], NULL, encrypt_worker, &w[i]) == 0);
    }
    REQUIRE(pthread_create(&tid[ENCRYPTORS], NULL, rotate_worker, &rot) == 0);
    for (int i = 0; i <= ENCRYPTORS; i++) {
        REQUIRE(pthread_join(tid[i], NULL) == 0);
    }
    pthread_barrier_destroy(&start_line);

    int total = 0;
    for (int i = 0; i < ENCRYPTORS; i++) {
        CHECK(w[i].errors == 0);
        CHECK(w[i].wrong_order == 0);
        CHECK(w[i].count >= MIN_PER_THREAD);
        total += w[i].count;
    }
    CHECK(rot.errors == 0 && rot.done == ROTATIONS);
    CHECK(tu_epoch(ctx) == ROTATIONS);
    CHECK(tu_epoch(peer) <= ROTATIONS);

    /* All the records, sorted by header. */
    struct record *all = (struct record *)malloc((size_t)total * sizeof(struct record));
    REQUIRE(all != NULL);
    for (int i = 0, k = 0; i < ENCRYPTORS; i++) {
        memcpy(all + k, w[i].records, (size_t)w[i].count * sizeof(struct record));
        k += w[i].count;
        free(w[i].records);
    }
    check_headers(all, total, sender);

    /* A peer with replay protection reads everything in order, once. Its
     * epochs are numbered by the group too (period 0, SPEC v2 7.3): it
     * follows the sender's rotations as it reads. */
    cfg = tu_config();
    tinymls_context *reader = tu_join(&cfg);
    int bad = 0;
    for (int i = 0; i < total; i++) {
        uint8_t pt[PT_LEN], back[PT_LEN];
        size_t m = 0;
        plaintext_of(all[i].thread, all[i].index, pt);
        if (tinymls_decrypt(reader, all[i].ct, CT_LEN, NULL, 0, back, sizeof back, &m) !=
                TINYMLS_OK ||
            m != PT_LEN || memcmp(back, pt, PT_LEN) != 0) {
            bad++;
        }
    }
    CHECK(bad == 0);
    CHECK(tu_epoch(reader) == tu_ct_epoch(all[total - 1].ct));
    OPEN_FAILS(reader, all[total - 1].ct, CT_LEN, NULL, 0, TINYMLS_ERR_REPLAY);

    free(all);
    tinymls_context_free(reader);
    tinymls_context_free(peer);
    tinymls_context_free(ctx);
}

/* ---- part 2 ---------------------------------------------------------- */

#define CALLERS 4
#define CLOSERS 2
#define WARMUP 100       /* iterations each caller makes before the close */
#define AFTER_CLOSE 50   /* iterations each caller makes after it */
#define ROTATE_EVERY 8
#define ROTATE_UNTIL 256 /* stop rotating then: <= 4 * 32 rotations in all */

static tinymls_context *victim;
static atomic_int warmed_up;    /* callers past WARMUP */
static atomic_int close_done;   /* some close() has returned */
static atomic_int close_ok;     /* closes that returned OK */
static atomic_int close_closed; /* closes that returned CLOSED */

struct caller {
    int bad;          /* a status other than OK or CLOSED */
    int late_ok;      /* OK from a call begun after a close returned */
    int ok, closed;   /* counts */
};

/* Judge one call: `after` says whether a close had returned before it began. */
static void judge(struct caller *c, int after, tinymls_status s)
{
    if (s == TINYMLS_OK) {
        c->ok++;
        if (after) {
            c->late_ok++;
        }
    } else if (s == TINYMLS_ERR_CLOSED) {
        c->closed++;
    } else {
        c->bad++;
        fprintf(stderr, "unexpected status %s during close\n", tinymls_status_name((uint32_t)s));
    }
}

static void *caller_worker(void *arg)
{
    struct caller *c = (struct caller *)arg;
    uint8_t ct[CT_LEN], back[PT_LEN];
    int have_ct = 0;
    int after_count = 0;

    for (int i = 0; after_count < AFTER_CLOSE; i++) {
        uint8_t pt[PT_LEN];
        size_t n = 0;
        uint64_t epoch;
        uint64_t sender;
        int after = atomic_load(&close_done);
        plaintext_of(9, i, pt);

        tinymls_status s = tinymls_encrypt(victim, pt, PT_LEN, NULL, 0, ct, CT_LEN, &n);
        judge(c, after, s);
        have_ct |= s == TINYMLS_OK;
        if (have_ct) {
            /* Its own ciphertexts: the replay check is off (replay_window
             * 0: a shared context checks its own sender id too, and four
             * threads' sequence numbers interleave), so OK until closed. */
            judge(c, after, tinymls_decrypt(victim, ct, CT_LEN, NULL, 0, back, sizeof back, &n));
        }
        judge(c, after, tinymls_context_epoch(victim, &epoch));
        judge(c, after, tinymls_context_sender_id(victim, &sender));
        if (i % ROTATE_EVERY == 0 && i < ROTATE_UNTIL) {
            judge(c, after, tinymls_rotate(victim));
        }
        if (i + 1 == WARMUP) {
            atomic_fetch_add(&warmed_up, 1);
        }
        if (after) {
            after_count++;
        }
    }
    return NULL;
}

static void *close_worker(void *arg)
{
    (void)arg;
    while (atomic_load(&warmed_up) < CALLERS) {
        sched_yield();
    }
    tinymls_status s = tinymls_context_close(victim);
    if (s == TINYMLS_OK) {
        atomic_fetch_add(&close_ok, 1);
    } else if (s == TINYMLS_ERR_CLOSED) {
        atomic_fetch_add(&close_closed, 1);
    }
    atomic_store(&close_done, 1);
    return NULL;
}

static void part2(void)
{
    tinymls_config cfg = tu_config();
    cfg.max_epochs = 4096; /* own ciphertexts stay readable however rotations interleave */
    cfg.replay_window = 0;
    victim = tu_join(&cfg);
    struct caller callers[CALLERS];
    pthread_t tid[CALLERS + CLOSERS];
    memset(callers, 0, sizeof callers);

    for (int i = 0; i < CALLERS; i++) {
        REQUIRE(pthread_create(&tid[i], NULL, caller_worker, &callers[i]) == 0);
    }
    for (int i = 0; i < CLOSERS; i++) {
        REQUIRE(pthread_create(&tid[CALLERS + i], NULL, close_worker, NULL) == 0);
    }
    for (int i = 0; i < CALLERS + CLOSERS; i++) {
        REQUIRE(pthread_join(tid[i], NULL) == 0);
    }

    int ok = 0, closed = 0;
    for (int i = 0; i < CALLERS; i++) {
        CHECK(callers[i].bad == 0);
        CHECK(callers[i].late_ok == 0);
        CHECK(callers[i].closed >= AFTER_CLOSE * 3); /* encrypt, epoch, sender_id at least */
        ok += callers[i].ok;
        closed += callers[i].closed;
    }
    printf("part 2: %d calls OK, %d CLOSED; closes: %d OK, %d CLOSED\n", ok, closed,
           atomic_load(&close_ok), atomic_load(&close_closed));
    CHECK(ok > 0);
    CHECK(atomic_load(&close_ok) == 1);
    CHECK(atomic_load(&close_closed) == CLOSERS - 1);
    CHECK_STATUS(tinymls_context_close(victim), TINYMLS_ERR_CLOSED);
    tinymls_context_free(victim); /* after every thread has returned */
    victim = NULL;
}

static void *detail_worker(void *arg)
{
    char *seen = arg;
    /* What this thread sees before any call of its own fails. */
    tinymls_last_error_message(seen, TINYMLS_ERROR_MESSAGE_MAX_LEN + 1);
    CHECK_STATUS(tinymls_config_validate(NULL), TINYMLS_ERR_NULL_POINTER);
    char mine[TINYMLS_ERROR_MESSAGE_MAX_LEN + 1];
    tinymls_last_error_message(mine, sizeof mine);
    CHECK(strcmp(mine, "cfg is NULL") == 0);
    return NULL;
}

static void part3(void)
{
    CHECK_STATUS(tinymls_rotate(NULL), TINYMLS_ERR_NULL_POINTER);
    char seen[TINYMLS_ERROR_MESSAGE_MAX_LEN + 1];
    memset(seen, 'x', sizeof seen);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, detail_worker, seen) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    CHECK(seen[0] == '\0');
    char mine[TINYMLS_ERROR_MESSAGE_MAX_LEN + 1];
    CHECK(tinymls_last_error_message(mine, sizeof mine) == strlen("ctx is NULL"));
    CHECK(strcmp(mine, "ctx is NULL") == 0);
}

int main(void)
{
    part1();
    part2();
    part3();
    return tu_finish();
}
