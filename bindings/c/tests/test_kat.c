/*
 * Known-answer test (SPEC v2 section 10) through the C ABI.
 *
 * Reads the same vector file as every other runner,
 * tests/vectors/tinymls_kat.json, turned into kat_vectors.h by
 * tools/gen_kat.py. Checks first that the header and the library are both
 * ABI 2. Joins one shared context with the file's group secret and group id
 * (defaults, ratchet_period_ms = 0: SPEC 7.3, epochs adopted from peers),
 * runs decrypt_sequence in order and checks every step's plaintext or
 * status, and, where the step has one, that tinymls_context_epoch reports
 * its current_epoch afterwards. After every step the context's epoch must
 * also be the highest epoch of a message accepted so far: the forged
 * far-future header (and every other rejected step) must not move it. The
 * other sections of the file (expand_label, tree, epoch_secrets, frontier,
 * sender_keys) are internal values the C ABI does not expose, and the
 * clock_sequence needs an injected clock; the Rust runner checks them.
 *
 * This file is also compiled as C++ (make test) to prove the header is
 * C++-clean.
 */
#include <stdio.h>
#include <string.h>

#include "kat_vectors.h"
#include "testutil.h"
#include "tinymls.h"

/* The number of steps SPEC v2 section 10's file has today, and how many of
 * them carry a current_epoch. */
#define KAT_EXPECTED_STEPS 24
#define KAT_EXPECTED_EPOCH_CHECKS 4

static size_t epoch_checks_run;

static int run_step(tinymls_context *ctx, const struct kat_step *st, uint64_t *accepted_epoch)
{
    uint8_t out[KAT_MAX_PLAINTEXT_LEN + 16];
    size_t out_len = SIZE_MAX;
    int ok;

    memset(out, 0xA5, sizeof out);
    tinymls_status s =
        tinymls_decrypt(ctx, st->ct, st->ct_len, st->aad, st->aad_len, out, sizeof out, &out_len);
    ok = CHECK_STATUS(s, st->status);
    /* The library spells its statuses as the vector file does. */
    ok &= CHECK(strcmp(tinymls_status_name((uint32_t)st->status), st->status_name) == 0);
    if (st->status == TINYMLS_OK) {
        ok &= CHECK(out_len == st->pt_len);
        ok &= CHECK(st->pt_len == 0 || memcmp(out, st->pt, st->pt_len) == 0);
        if (s == TINYMLS_OK && tu_ct_epoch(st->ct) > *accepted_epoch) {
            *accepted_epoch = tu_ct_epoch(st->ct);
        }
        /* Read once: the same ciphertext again is a replay. */
        ok &= CHECK_STATUS(tinymls_decrypt(ctx, st->ct, st->ct_len, st->aad, st->aad_len, out, sizeof out, &out_len),
                           TINYMLS_ERR_REPLAY);
    } else {
        /* A failed decrypt zeroes the whole output buffer. */
        ok &= CHECK(tu_all_bytes(out, sizeof out, 0));
    }
    const uint64_t epoch = tu_epoch(ctx);
    ok &= CHECK(epoch == *accepted_epoch);
    if (st->has_current_epoch) {
        ok &= CHECK(epoch == st->current_epoch);
        epoch_checks_run++;
        if (epoch != st->current_epoch) {
            fprintf(stderr, "  current epoch %llu, expected %llu\n", (unsigned long long)epoch,
                    (unsigned long long)st->current_epoch);
        }
    }
    printf("%-4s %-50s expected %-13s got %s\n", ok ? "ok" : "FAIL", st->name, st->status_name,
           tinymls_status_name((uint32_t)s));
    return ok;
}

int main(void)
{
    tinymls_config cfg;
    tinymls_context *ctx = NULL;
    uint64_t accepted_epoch = 0;
    size_t ran = 0;

    /* The header and the library speak ABI 2 (SPEC v2 section 9). */
    REQUIRE(TINYMLS_ABI_VERSION == 2);
    REQUIRE(tinymls_abi_version() == 2);
    REQUIRE(tinymls_abi_version() == TINYMLS_ABI_VERSION);

    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 0;
    CHECK_STATUS(tinymls_context_join(kat_group_secret, sizeof kat_group_secret, kat_group_id,
                                      sizeof kat_group_id, &cfg, &ctx),
                 TINYMLS_OK);
    REQUIRE(ctx != NULL);
    CHECK(tu_epoch(ctx) == 0);

    for (size_t i = 0; i < KAT_STEP_COUNT; i++) {
        run_step(ctx, &kat_steps[i], &accepted_epoch);
        ran++;
    }

    /* Ran every step of the file, and the file has the steps it should. */
    CHECK(ran == (size_t)KAT_STEP_COUNT);
    CHECK(ran == (size_t)KAT_EXPECTED_STEPS);
    CHECK(KAT_STEP_COUNT == KAT_EXPECTED_STEPS);
    CHECK(epoch_checks_run == (size_t)KAT_EPOCH_CHECK_COUNT);
    CHECK(epoch_checks_run == (size_t)KAT_EXPECTED_EPOCH_CHECKS);
    /* The sequence follows a peer forward: it ends past max_future_epochs. */
    CHECK(accepted_epoch > 1024);

    CHECK_STATUS(tinymls_context_close(ctx), TINYMLS_OK);
    tinymls_context_free(ctx);
    printf("test_kat: %zu of %d decrypt_sequence steps run, %zu current_epoch checks\n", ran,
           KAT_EXPECTED_STEPS, epoch_checks_run);
    return tu_finish();
}
