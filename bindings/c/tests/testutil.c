/* Test harness of the C tests: see testutil.h. */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Atomic: test_threads.c checks from several threads at once. */
static atomic_uint passed;
static atomic_uint failed;

/* Group used by the tests (test data, never printed). */
static const uint8_t test_secret[32] = {
    0x54, 0x69, 0x6e, 0x79, 0x4d, 0x4c, 0x53, 0x20, 0x43, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x67,
    0x72, 0x6f, 0x75, 0x70, 0x20, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x20, 0x30, 0x30, 0x30, 0x31,
};
static const uint8_t test_group_id[] = {'c', '-', 't', 'e', 's', 't', 's'};

/* Largest message the open helpers handle (tests use small messages). */
#define TU_MAX_PT 4096

int tu_check(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        atomic_fetch_add(&passed, 1u);
    } else {
        atomic_fetch_add(&failed, 1u);
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    }
    return ok;
}

int tu_check_status(tinymls_status got, tinymls_status want, const char *what, const char *file,
                    int line)
{
    if (got == want) {
        return tu_check(1, what, file, line);
    }
    atomic_fetch_add(&failed, 1u);
    fprintf(stderr, "FAIL %s:%d: %s returned %s (%s), expected %s\n", file, line, what,
            tinymls_status_name((uint32_t)got), tinymls_status_str(got),
            tinymls_status_name((uint32_t)want));
    return 0;
}

void tu_require(int ok, const char *what, const char *file, int line)
{
    if (!tu_check(ok, what, file, line)) {
        fprintf(stderr, "stopping: a required check failed\n");
        (void)tu_finish();
        exit(1);
    }
}

unsigned tu_failures(void)
{
    return atomic_load(&failed);
}

int tu_finish(void)
{
    unsigned p = atomic_load(&passed);
    unsigned f = atomic_load(&failed);
    printf("%u passed, %u failed\n", p, f);
    fflush(stdout);
    return f == 0 && p > 0 ? 0 : 1;
}

tinymls_config tu_config(void)
{
    tinymls_config cfg;
    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 0;
    return cfg;
}

tinymls_context *tu_join(const tinymls_config *cfg)
{
    tinymls_context *ctx = NULL;
    CHECK_STATUS(tinymls_context_join(test_secret, sizeof test_secret, test_group_id,
                                      sizeof test_group_id, cfg, &ctx),
                 TINYMLS_OK);
    REQUIRE(ctx != NULL);
    return ctx;
}

tinymls_context *tu_local(const tinymls_config *cfg)
{
    tinymls_context *ctx = NULL;
    CHECK_STATUS(tinymls_context_new(cfg, &ctx), TINYMLS_OK);
    REQUIRE(ctx != NULL);
    return ctx;
}

uint64_t tu_epoch(tinymls_context *ctx)
{
    uint64_t e = UINT64_MAX;
    if (!CHECK_STATUS(tinymls_context_epoch(ctx, &e), TINYMLS_OK)) {
        return UINT64_MAX;
    }
    return e;
}

tinymls_health tu_health(tinymls_context *ctx)
{
    tinymls_health h;
    memset(&h, 0, sizeof h);
    if (!CHECK_STATUS(tinymls_context_health(ctx, &h), TINYMLS_OK)) {
        memset(&h, 0, sizeof h);
    }
    return h;
}

size_t tu_seal(tinymls_context *ctx, const void *pt, size_t pt_len, const void *aad,
               size_t aad_len, uint8_t *out, size_t out_cap)
{
    size_t n = 0;
    if (!CHECK_STATUS(tinymls_encrypt(ctx, (const uint8_t *)pt, pt_len, (const uint8_t *)aad,
                                      aad_len, out, out_cap, &n),
                      TINYMLS_OK)) {
        return 0;
    }
    CHECK(n == pt_len + TINYMLS_OVERHEAD);
    return n;
}

int tu_open_expect(tinymls_context *ctx, const uint8_t *ct, size_t ct_len, const void *aad,
                   size_t aad_len, const void *want, size_t want_len, const char *file, int line)
{
    static _Thread_local uint8_t out[TU_MAX_PT];
    size_t n = SIZE_MAX;
    if (want_len > sizeof out) {
        return tu_check(0, "tu_open_expect: message too long for the helper", file, line);
    }
    memset(out, 0xA5, sizeof out);
    if (!tu_check_status(tinymls_decrypt(ctx, ct, ct_len, (const uint8_t *)aad, aad_len, out,
                                         sizeof out, &n),
                         TINYMLS_OK, "tinymls_decrypt", file, line)) {
        return 0;
    }
    return tu_check(n == want_len && (want_len == 0 || memcmp(out, want, want_len) == 0),
                    "decrypted plaintext equals the original", file, line);
}

int tu_open_fails(tinymls_context *ctx, const uint8_t *ct, size_t ct_len, const void *aad,
                  size_t aad_len, tinymls_status want, const char *file, int line)
{
    static _Thread_local uint8_t out[TU_MAX_PT];
    size_t n = 12345;
    memset(out, 0xA5, sizeof out);
    int ok = tu_check_status(tinymls_decrypt(ctx, ct, ct_len, (const uint8_t *)aad, aad_len, out,
                                             sizeof out, &n),
                             want, "tinymls_decrypt", file, line);
    return tu_check(tu_all_bytes(out, sizeof out, 0), "a failed decrypt zeroes the output",
                    file, line) &&
           ok;
}

uint64_t tu_ct_epoch(const uint8_t *ct)
{
    uint64_t v = 0;
    for (int i = 2; i < 8; i++) {
        v = (v << 8) | ct[i];
    }
    return v;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint64_t tu_ct_sender(const uint8_t *ct)
{
    return be64(ct + 8);
}

uint64_t tu_ct_seq(const uint8_t *ct)
{
    return be64(ct + 16);
}

void tu_set_ct_epoch(uint8_t *ct, uint64_t epoch)
{
    for (int i = 7; i >= 2; i--) {
        ct[i] = (uint8_t)epoch;
        epoch >>= 8;
    }
}

int tu_all_bytes(const uint8_t *p, size_t n, uint8_t b)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != b) {
            return 0;
        }
    }
    return 1;
}
