/*
 * Small test harness shared by the C tests: pass/fail counters, status
 * checks with readable messages, and helpers for the calls every test makes.
 * It uses the public header only. Every test ends with tu_finish(), which
 * prints "N passed, M failed" and returns the process exit code.
 *
 * testutil.c is C11; this header is also C++-clean (test_kat.c is compiled
 * once more as C++ and linked with the C object).
 */
#ifndef TINYMLS_TESTUTIL_H
#define TINYMLS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "tinymls.h"

/* Record one check: a message names the expression and the line if it fails. */
#define CHECK(cond) tu_check((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
/* Record one check that `expr` returned the status `want`. */
#define CHECK_STATUS(expr, want) tu_check_status((expr), (want), #expr, __FILE__, __LINE__)
/* As CHECK, but stop the test (with its counts) if it fails: later checks
 * would only repeat the same failure or use a NULL handle. */
#define REQUIRE(cond) tu_require((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

#ifdef __cplusplus
extern "C" {
#endif

int tu_check(int ok, const char *what, const char *file, int line);
int tu_check_status(tinymls_status got, tinymls_status want, const char *what, const char *file,
                    int line);
void tu_require(int ok, const char *what, const char *file, int line);
/* Prints "N passed, M failed"; returns 0 if nothing failed, else 1. */
int tu_finish(void);
unsigned tu_failures(void);

/* Defaults with periodic rotation off: tests must not depend on time. */
tinymls_config tu_config(void);
/* A shared context joined to the test group; stops the test if it fails. */
tinymls_context *tu_join(const tinymls_config *cfg);
/* A local context; stops the test if it fails. */
tinymls_context *tu_local(const tinymls_config *cfg);
/* The context's current epoch (checked; UINT64_MAX if the call failed). */
uint64_t tu_epoch(tinymls_context *ctx);
/* The context's health (checked; all zero if the call failed). */
tinymls_health tu_health(tinymls_context *ctx);

/* Encrypts pt/aad into out (checked OK); returns the ciphertext length (0 on failure). */
size_t tu_seal(tinymls_context *ctx, const void *pt, size_t pt_len, const void *aad,
               size_t aad_len, uint8_t *out, size_t out_cap);
/* Decrypts and checks OK and that the plaintext is `want`; returns 1 if so. */
int tu_open_expect(tinymls_context *ctx, const uint8_t *ct, size_t ct_len, const void *aad,
                   size_t aad_len, const void *want, size_t want_len, const char *file, int line);
#define OPEN_EXPECT(ctx, ct, ct_len, aad, aad_len, want, want_len) \
    tu_open_expect((ctx), (ct), (ct_len), (aad), (aad_len), (want), (want_len), __FILE__, __LINE__)
/* Decrypts into a sentinel-filled buffer; checks the status is `want` and
 * that the library zeroed the whole buffer (SPEC: a failed decrypt zeroes
 * out). Returns 1 if both held. */
int tu_open_fails(tinymls_context *ctx, const uint8_t *ct, size_t ct_len, const void *aad,
                  size_t aad_len, tinymls_status want, const char *file, int line);
#define OPEN_FAILS(ctx, ct, ct_len, aad, aad_len, want) \
    tu_open_fails((ctx), (ct), (ct_len), (aad), (aad_len), (want), __FILE__, __LINE__)

/* Public header fields of a ciphertext (SPEC section 4, big-endian; the
 * epoch is the u48 at bytes 2..8). */
uint64_t tu_ct_epoch(const uint8_t *ct);
uint64_t tu_ct_sender(const uint8_t *ct);
uint64_t tu_ct_seq(const uint8_t *ct);
/* Writes a ciphertext's header epoch (u48 at bytes 2..8). */
void tu_set_ct_epoch(uint8_t *ct, uint64_t epoch);

/* Whether all n bytes of p equal b. */
int tu_all_bytes(const uint8_t *p, size_t n, uint8_t b);

#ifdef __cplusplus
}
#endif

#endif /* TINYMLS_TESTUTIL_H */
