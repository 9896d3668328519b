/*
 * replicas.c: two replicas of one service exchanging encrypted messages.
 *
 * Every replica joins the same group (group secret + group id) as a *shared*
 * context: they all derive the same epoch keys and read each other's
 * messages. Keys rotate every 100 ms, and the replicas agree on the current
 * epoch without talking to each other: it is the wall clock divided by the
 * period, floor(unix_ms / 100) (SPEC v2 7.2), so keep the hosts' clocks in
 * sync (NTP). Here both replicas live in one process for the example; in
 * production each process calls tinymls_context_join with the secret from
 * your secret store, and can join or restart at any time.
 *
 * Build:  cc -std=c11 replicas.c -I<include dir> -L<lib dir> -ltinymls -Wl,-rpath,<lib dir>
 *         (the rpath lets it find libtinymls.so at run time; after make install:
 *         cc replicas.c $(pkg-config --cflags --libs tinymls), see the README)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <stdio.h>
#include <string.h>
#include <sys/random.h> /* getrandom (Linux) */
#include <time.h>

#include "tinymls.h"

#define ROUNDS 50        /* 50 rounds, 20 ms apart: about one second */
#define MAX_MSG 64

/* Wipe a secret so that the compiler cannot skip it. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) {
        *v++ = 0;
    }
}

static int report(const char *what, tinymls_status s)
{
    fprintf(stderr, "%s failed: %s\n", what, tinymls_status_str(s));
    return 0;
}

/* `from` encrypts `text`, `to` decrypts it: returns 1 if it arrived intact. */
static int send_message(tinymls_context *from, tinymls_context *to, const char *text)
{
    uint8_t ct[MAX_MSG + TINYMLS_OVERHEAD];
    uint8_t pt[MAX_MSG];
    size_t ct_len = 0, pt_len = 0;
    size_t len = strlen(text);
    tinymls_status s;

    if (len > MAX_MSG) {
        return 0;
    }
    s = tinymls_encrypt(from, (const uint8_t *)text, len, NULL, 0, ct, sizeof ct, &ct_len);
    if (s != TINYMLS_OK) {
        return report("tinymls_encrypt", s);
    }
    /* ...ct travels over the network... */
    s = tinymls_decrypt(to, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    if (s != TINYMLS_OK) {
        return report("tinymls_decrypt", s);
    }
    return pt_len == len && memcmp(pt, text, len) == 0;
}

int main(void)
{
    static const uint8_t group_id[] = "orders-service";
    uint8_t secret[32];
    tinymls_config cfg;
    tinymls_context *a = NULL, *b = NULL;
    tinymls_status s;
    uint64_t epoch_a = 0, epoch_b = 0;
    int ok = 1;

    /* The group secret: 32 random bytes (never log it). */
    if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
        fprintf(stderr, "getrandom failed\n");
        return 1;
    }
    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 100; /* the default, spelled out */

    s = tinymls_context_join(secret, sizeof secret, group_id, sizeof group_id - 1, &cfg, &a);
    if (s == TINYMLS_OK) {
        s = tinymls_context_join(secret, sizeof secret, group_id, sizeof group_id - 1, &cfg, &b);
    }
    wipe(secret, sizeof secret); /* the contexts keep no copy: they derived their keys */
    if (s != TINYMLS_OK) {
        ok = report("tinymls_context_join", s);
    }

    for (int round = 0; ok && round < ROUNDS; round++) {
        char text[MAX_MSG];
        struct timespec pause = {0, 20 * 1000 * 1000};
        snprintf(text, sizeof text, "A->B request %d", round);
        ok = send_message(a, b, text);
        snprintf(text, sizeof text, "B->A reply %d", round);
        ok = ok && send_message(b, a, text);
        nanosleep(&pause, NULL);
    }

    if (ok) {
        s = tinymls_context_epoch(a, &epoch_a);
        if (s == TINYMLS_OK) {
            s = tinymls_context_epoch(b, &epoch_b);
        }
        if (s != TINYMLS_OK) {
            ok = report("tinymls_context_epoch", s);
        } else {
            /* Both follow the same clock: equal, or one apart at a boundary. */
            printf("%d messages each way; epoch now A=%llu B=%llu (unix ms / 100)\n", ROUNDS,
                   (unsigned long long)epoch_a, (unsigned long long)epoch_b);
        }
    }
    tinymls_context_free(a); /* closes, zeroizes, releases; NULL is fine */
    tinymls_context_free(b);
    return ok ? 0 : 1;
}
