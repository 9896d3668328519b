/*
 * The C ABI as a new user sees it (include/tinymls.h only): every status of
 * SPEC.md section 9 where the spec says it comes, the NULL and length rules,
 * the output-buffer rules, the config ranges of section 7, the receive rules
 * of section 6, the clock-following epochs of a shared group (section 7.2),
 * the health struct, and the test-only panic hook.
 *
 * TINYMLS_ERR_EXHAUSTED is not tested: it needs a context at epoch 2^48 - 1
 * (SPEC section 3), which no public call reaches in reasonable time (a clock
 * epoch is about 2^41 even with a 1 ms period). The Rust core tests it with
 * an internal hook that jumps the epoch counter. TINYMLS_ERR_RNG (the OS RNG
 * failing) cannot be provoked from C either; test_state.c covers
 * TINYMLS_ERR_STATE.
 *
 * Built with -DTINYMLS_TEST_HOOKS against the test-hooks library.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "testutil.h"
#include "tinymls.h"

#ifndef TINYMLS_TEST_HOOKS
#error "test_api.c needs the test-only export: build with -DTINYMLS_TEST_HOOKS"
#endif

/* The library version, from Cargo.toml (the Makefile passes it). */
#ifndef EXPECTED_VERSION
#error "build with -DEXPECTED_VERSION=\"x.y.z\" (the Makefile reads Cargo.toml)"
#endif

#define MSG_MAX 256
#define CT_MAX (MSG_MAX + TINYMLS_OVERHEAD)

static const uint8_t msg[] = "attack at dawn";
#define MSG_LEN (sizeof msg - 1)
static const uint8_t aad[] = {'h', 'd', 'r'};

/* A plausible non-NULL value, to see that a failed constructor clears *out. */
static tinymls_context *not_null_handle(void)
{
    static max_align_t slot;
    return (tinymls_context *)(void *)&slot;
}

/* ---- metadata -------------------------------------------------------- */

/* "MAJOR.MINOR.PATCH": three dot-separated runs of digits, nothing else. */
static int is_semver(const char *v)
{
    for (int part = 0; part < 3; part++) {
        if (*v < '0' || *v > '9') {
            return 0;
        }
        while (*v >= '0' && *v <= '9') {
            v++;
        }
        if (part < 2 && *v++ != '.') {
            return 0;
        }
    }
    return *v == '\0';
}

static void test_metadata(void)
{
    const char *v = tinymls_version();
    REQUIRE(v != NULL);
    CHECK(is_semver(v));
    CHECK(strcmp(v, EXPECTED_VERSION) == 0);
    CHECK(!is_semver("1.2") && !is_semver("1.2.3.4") && !is_semver("1.x.3") && is_semver("10.0.7"));

    /* The header's version macros (compile time) against Cargo.toml and the
     * library (run time): string, parts and number agree. */
    CHECK(strcmp(TINYMLS_VERSION_STRING, EXPECTED_VERSION) == 0);
    CHECK(strcmp(TINYMLS_VERSION_STRING, v) == 0);
    char parts[32];
    snprintf(parts, sizeof parts, "%d.%d.%d", TINYMLS_VERSION_MAJOR, TINYMLS_VERSION_MINOR,
             TINYMLS_VERSION_PATCH);
    CHECK(strcmp(parts, v) == 0);
    CHECK(TINYMLS_VERSION_NUMBER ==
          TINYMLS_VERSION_MAJOR * 10000 + TINYMLS_VERSION_MINOR * 100 + TINYMLS_VERSION_PATCH);
    CHECK(tinymls_version_number() == TINYMLS_VERSION_NUMBER);
#if TINYMLS_VERSION_NUMBER < 100 /* usable in #if: 0.1.0 is 100 */
#error "TINYMLS_VERSION_NUMBER is not a preprocessor number"
#endif

    /* ABI 2 (SPEC v2 section 9): the header and the library agree. */
    CHECK(TINYMLS_ABI_VERSION == 2);
    CHECK(tinymls_abi_version() == 2);
    CHECK(tinymls_abi_version() == TINYMLS_ABI_VERSION);
    CHECK(tinymls_config_size() == sizeof(tinymls_config));

    /* The health struct of ABI 2: 96 bytes, 64-bit epochs, clock_skew_ms last. */
    CHECK(sizeof(tinymls_health) == 96);
    CHECK(offsetof(tinymls_health, state) == 0 && offsetof(tinymls_health, last_error) == 4 &&
          offsetof(tinymls_health, retained_epochs) == 8 && offsetof(tinymls_health, flags) == 12);
    CHECK(offsetof(tinymls_health, current_epoch) == 16 &&
          offsetof(tinymls_health, oldest_epoch) == 24 && offsetof(tinymls_health, uptime_ms) == 32 &&
          offsetof(tinymls_health, key_age_ms) == 40 && offsetof(tinymls_health, encrypt_count) == 48 &&
          offsetof(tinymls_health, decrypt_count) == 56 && offsetof(tinymls_health, error_count) == 64 &&
          offsetof(tinymls_health, rotation_count) == 72 && offsetof(tinymls_health, sender_id) == 80 &&
          offsetof(tinymls_health, clock_skew_ms) == 88);
    CHECK(sizeof(((tinymls_health *)0)->current_epoch) == 8 &&
          sizeof(((tinymls_health *)0)->oldest_epoch) == 8 &&
          sizeof(((tinymls_health *)0)->clock_skew_ms) == 8);
    tinymls_health signed_probe;
    memset(&signed_probe, 0, sizeof signed_probe);
    signed_probe.clock_skew_ms = -1; /* signed: positive means the sender is ahead */
    CHECK(signed_probe.clock_skew_ms < 0);

    const char *backend = tinymls_aead_backend();
    CHECK(backend != NULL &&
          (strcmp(backend, "aws-lc-rs") == 0 || strcmp(backend, "rust-crypto") == 0));
    /* Health's key-memory flags say what the backend does with the expanded
     * AES keys (the tests run as root: the OS grants locked memory). */
    {
        tinymls_context *k = tu_join(NULL);
        uint32_t want = TINYMLS_HEALTH_KEYS_LOCKED | TINYMLS_HEALTH_KEYS_NOT_DUMPED;
        if (backend != NULL && strcmp(backend, "aws-lc-rs") == 0)
            want |= TINYMLS_HEALTH_KEYS_ON_HEAP | TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP;
        CHECK(TINYMLS_HEALTH_KEYS_AEAD_ON_HEAP == 8);
        /* Not a key-memory bit: Linux 4.14 on wipes the fork-marker page in
         * a child. */
        want |= TINYMLS_HEALTH_FORK_MARKER;
        CHECK(TINYMLS_HEALTH_FORK_MARKER == 32);
        if (!CHECK(tu_health(k).flags == want))
            fprintf(stderr, "  flags 0x%x, want 0x%x (%s)\n", (unsigned)tu_health(k).flags, (unsigned)want,
                    backend);
        tinymls_context_free(k);
    }

    CHECK(tinymls_ciphertext_len(0) == 40);
    CHECK(tinymls_ciphertext_len(1) == 41);
    CHECK(tinymls_ciphertext_len(MSG_LEN) == MSG_LEN + 40);
    CHECK(tinymls_ciphertext_len(1000000) == 1000040);
    CHECK(TINYMLS_OVERHEAD == 40 && TINYMLS_HEADER_LEN == 24);
    /* Longer than one AES-GCM message may be (2^36 - 32 bytes): 0. */
    CHECK(tinymls_ciphertext_len(SIZE_MAX) == 0);
    if (sizeof(size_t) >= 8) {
        uint64_t max_pt = ((uint64_t)1 << 36) - 32;
        CHECK(tinymls_ciphertext_len((size_t)max_pt) == (size_t)max_pt + 40);
        CHECK(tinymls_ciphertext_len((size_t)max_pt + 1) == 0);
    }

    /* Status strings: non-NULL, non-empty, all distinct; unknown numbers too. */
    const char *strs[17];
    for (uint32_t s = 0; s <= 16; s++) {
        strs[s] = tinymls_status_str(s);
        CHECK(strs[s] != NULL && strs[s][0] != '\0');
    }
    int distinct = 1;
    for (int i = 0; i <= 16; i++) {
        for (int j = i + 1; j <= 16; j++) {
            if (strs[i] && strs[j] && strcmp(strs[i], strs[j]) == 0) {
                distinct = 0;
            }
        }
    }
    CHECK(distinct);
    const uint32_t unknown[] = {17, 1000, UINT32_MAX};
    for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
        const char *s = tinymls_status_str(unknown[u]);
        int differs = s != NULL;
        for (int i = 0; differs && i <= 16; i++) {
            differs = strs[i] == NULL || strcmp(s, strs[i]) != 0;
        }
        CHECK(differs);
    }
    /* The enumerators have the stable numbers of SPEC section 9. */
    CHECK(TINYMLS_OK == 0 && TINYMLS_ERR_NULL_POINTER == 1 && TINYMLS_ERR_MALFORMED == 5 &&
          TINYMLS_ERR_AUTH == 6 && TINYMLS_ERR_CLOSED == 13 && TINYMLS_ERR_INTERNAL == 16);
}

/* ---- status names ------------------------------------------------------ */

/* Every enumerator of the header, with its spelling. */
#define HEADER_STATUS(e) {e, #e}
static const struct {
    tinymls_status code;
    const char *spelled;
} header_statuses[] = {
    HEADER_STATUS(TINYMLS_OK),
    HEADER_STATUS(TINYMLS_ERR_NULL_POINTER),
    HEADER_STATUS(TINYMLS_ERR_INVALID_ARGUMENT),
    HEADER_STATUS(TINYMLS_ERR_INVALID_CONFIG),
    HEADER_STATUS(TINYMLS_ERR_BUFFER_TOO_SMALL),
    HEADER_STATUS(TINYMLS_ERR_MALFORMED),
    HEADER_STATUS(TINYMLS_ERR_AUTH),
    HEADER_STATUS(TINYMLS_ERR_REPLAY),
    HEADER_STATUS(TINYMLS_ERR_EPOCH_EXPIRED),
    HEADER_STATUS(TINYMLS_ERR_EPOCH_UNKNOWN),
    HEADER_STATUS(TINYMLS_ERR_SENDER_LIMIT),
    HEADER_STATUS(TINYMLS_ERR_EXHAUSTED),
    HEADER_STATUS(TINYMLS_ERR_RATE_LIMITED),
    HEADER_STATUS(TINYMLS_ERR_CLOSED),
    HEADER_STATUS(TINYMLS_ERR_RNG),
    HEADER_STATUS(TINYMLS_ERR_STATE),
    HEADER_STATUS(TINYMLS_ERR_INTERNAL),
};

/* tinymls_status_name() names each enumerator as the header spells it,
 * without "TINYMLS_ERR_" ("OK" for TINYMLS_OK), and every other number
 * "UNKNOWN": so the C tests (and the bindings) need no table of their own. */
static void test_status_names(void)
{
    static const char prefix[] = "TINYMLS_ERR_";
    const size_t n = sizeof header_statuses / sizeof header_statuses[0];
    uint32_t highest = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t code = (uint32_t)header_statuses[i].code;
        const char *spelled = header_statuses[i].spelled;
        const char *want = spelled + strlen(prefix);
        if (code == (uint32_t)TINYMLS_OK) {
            want = "OK";
        } else {
            CHECK(strncmp(spelled, prefix, strlen(prefix)) == 0);
        }
        const char *got = tinymls_status_name(code);
        if (!CHECK(got != NULL && strcmp(got, want) == 0)) {
            fprintf(stderr, "  %s (%u): tinymls_status_name gives %s, expected %s\n", spelled,
                    (unsigned)code, got ? got : "NULL", want);
        }
        /* Static: the same pointer every time. */
        CHECK(tinymls_status_name(code) == got);
        highest = code > highest ? code : highest;
    }
    /* The list is the whole enum: dense numbers 0..TINYMLS_ERR_INTERNAL, and
     * the library names no status beyond the last one listed. */
    CHECK(n == (size_t)TINYMLS_ERR_INTERNAL + 1 && highest == (uint32_t)TINYMLS_ERR_INTERNAL);
    const uint32_t unknown[] = {highest + 1, 1000, UINT32_MAX};
    for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
        const char *got = tinymls_status_name(unknown[u]);
        if (!CHECK(got != NULL && strcmp(got, "UNKNOWN") == 0)) {
            fprintf(stderr, "  %u: tinymls_status_name gives %s, expected UNKNOWN\n",
                    (unsigned)unknown[u], got ? got : "NULL");
        }
    }
}

/* ---- configuration --------------------------------------------------- */

static void test_config_defaults(void)
{
    tinymls_config c;
    memset(&c, 0xFF, sizeof c);
    tinymls_config_default(&c);
    CHECK(c.key_size == 32);
    CHECK(c.nonce_size == 12);
    CHECK(c.ratchet_period_ms == 100);
    CHECK(c.rotation_jitter_pct == 10);
    CHECK(c.max_operations == (uint64_t)1 << 23);
    CHECK(c.max_key_age_ms == 86400000u);
    CHECK(c.min_rotation_interval_ms == 0);
    CHECK(c.state_lifetime_ms == 86400000u);
    CHECK(c.max_epochs == 64);
    CHECK(c.gc_interval_ms == 1000);
    CHECK(c.replay_window == 128);
    CHECK(c.max_future_epochs == 1024);
    CHECK(c.max_senders == 1024);
    CHECK_STATUS(tinymls_config_validate(&c), TINYMLS_OK);
    tinymls_config_default(NULL); /* documented no-op */
    CHECK_STATUS(tinymls_config_validate(NULL), TINYMLS_ERR_NULL_POINTER);
}

/* One config field, by offset and width, so that one loop covers them all. */
struct field_value {
    const char *name;
    size_t offset;
    size_t width; /* 4 or 8 */
    uint64_t value;
};

#define FIELD(f, v) {#f " = " #v, offsetof(tinymls_config, f), sizeof(((tinymls_config *)0)->f), (v)}

static tinymls_config config_with(const struct field_value *fv)
{
    tinymls_config c = tu_config();
    if (fv->width == 4) {
        uint32_t v = (uint32_t)fv->value;
        memcpy((unsigned char *)&c + fv->offset, &v, sizeof v);
    } else {
        memcpy((unsigned char *)&c + fv->offset, &fv->value, sizeof fv->value);
    }
    return c;
}

static void test_config_invalid(void)
{
    static const struct field_value bad[] = {
        FIELD(key_size, 16),
        FIELD(key_size, 0),
        FIELD(nonce_size, 16),
        FIELD(rotation_jitter_pct, 51),
        FIELD(max_epochs, 0),
        FIELD(max_epochs, 4097),
        FIELD(max_operations, 0),
        FIELD(max_operations, ((uint64_t)1 << 23) + 1), /* 2^23 units of 16 KiB (SPEC v2 5) */
        FIELD(max_operations, ((uint64_t)1 << 32) + 1),
        FIELD(max_key_age_ms, 0),
        FIELD(state_lifetime_ms, 0),
        FIELD(gc_interval_ms, 0),
        FIELD(replay_window, 100),
        FIELD(replay_window, 4160),
        FIELD(max_future_epochs, (1u << 20) + 1),
        FIELD(max_senders, 0),
    };
    static const uint8_t secret[32] = {1};
    static const uint8_t id[] = {'g'};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tinymls_config c = config_with(&bad[i]);
        tinymls_context *ctx = not_null_handle();
        int ok = CHECK_STATUS(tinymls_config_validate(&c), TINYMLS_ERR_INVALID_CONFIG);
        ok &= CHECK_STATUS(tinymls_context_new(&c, &ctx), TINYMLS_ERR_INVALID_CONFIG);
        ok &= CHECK(ctx == NULL);
        ctx = not_null_handle();
        ok &= CHECK_STATUS(tinymls_context_join(secret, sizeof secret, id, sizeof id, &c, &ctx),
                           TINYMLS_ERR_INVALID_CONFIG);
        ok &= CHECK(ctx == NULL);
        if (!ok) {
            fprintf(stderr, "  ... with %s\n", bad[i].name);
        }
    }

    /* The edges of every range are accepted, by validate and by join. */
    static const struct field_value good[] = {
        FIELD(ratchet_period_ms, 0),
        FIELD(ratchet_period_ms, 1),
        FIELD(rotation_jitter_pct, 0),
        FIELD(rotation_jitter_pct, 50),
        FIELD(max_epochs, 1),
        FIELD(max_epochs, 4096),
        FIELD(max_operations, 1),
        FIELD(max_operations, (uint64_t)1 << 23),
        FIELD(max_key_age_ms, 1),
        FIELD(min_rotation_interval_ms, UINT64_MAX),
        FIELD(state_lifetime_ms, 1),
        FIELD(gc_interval_ms, 1),
        FIELD(replay_window, 0),
        FIELD(replay_window, 64),
        FIELD(replay_window, 4096),
        FIELD(max_future_epochs, 0),
        FIELD(max_future_epochs, 1u << 20),
        FIELD(max_senders, 1),
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tinymls_config c = config_with(&good[i]);
        tinymls_context *ctx = NULL;
        int ok = CHECK_STATUS(tinymls_config_validate(&c), TINYMLS_OK);
        ok &= CHECK_STATUS(tinymls_context_join(secret, sizeof secret, id, sizeof id, &c, &ctx),
                           TINYMLS_OK);
        ok &= CHECK(ctx != NULL);
        tinymls_context_free(ctx);
        if (!ok) {
            fprintf(stderr, "  ... with %s\n", good[i].name);
        }
    }

    /* A shared group whose epochs follow the clock (ratchet_period_ms > 0)
     * needs state_lifetime_ms > ratchet_period_ms, max_epochs >= 2 and
     * max_future_epochs >= 1 (SPEC v2 7.2): join refuses the rest, while
     * validate and a local context (where the rules do not apply) accept them. */
    static const struct field_value clock_bad[] = {
        FIELD(state_lifetime_ms, 100), /* == ratchet_period_ms */
        FIELD(state_lifetime_ms, 1),
        FIELD(max_epochs, 1),
        FIELD(max_future_epochs, 0),
    };
    static const struct field_value clock_edge[] = {
        FIELD(state_lifetime_ms, 101),
        FIELD(max_epochs, 2),
        FIELD(max_future_epochs, 1),
    };
    for (size_t i = 0; i < sizeof clock_bad / sizeof clock_bad[0]; i++) {
        tinymls_config c = config_with(&clock_bad[i]);
        c.ratchet_period_ms = 100;
        tinymls_context *ctx = not_null_handle();
        int ok = CHECK_STATUS(tinymls_config_validate(&c), TINYMLS_OK);
        ok &= CHECK_STATUS(tinymls_context_join(secret, sizeof secret, id, sizeof id, &c, &ctx),
                           TINYMLS_ERR_INVALID_CONFIG);
        ok &= CHECK(ctx == NULL);
        ctx = NULL;
        ok &= CHECK_STATUS(tinymls_context_new(&c, &ctx), TINYMLS_OK);
        tinymls_context_free(ctx);
        /* The same values are fine for a shared group numbering its own epochs. */
        c.ratchet_period_ms = 0;
        ctx = NULL;
        ok &= CHECK_STATUS(tinymls_context_join(secret, sizeof secret, id, sizeof id, &c, &ctx),
                           TINYMLS_OK);
        tinymls_context_free(ctx);
        if (!ok) {
            fprintf(stderr, "  ... with %s, ratchet_period_ms = 100\n", clock_bad[i].name);
        }
    }
    for (size_t i = 0; i < sizeof clock_edge / sizeof clock_edge[0]; i++) {
        tinymls_config c = config_with(&clock_edge[i]);
        c.ratchet_period_ms = 100;
        tinymls_context *ctx = NULL;
        int ok = CHECK_STATUS(tinymls_context_join(secret, sizeof secret, id, sizeof id, &c, &ctx),
                              TINYMLS_OK);
        ok &= CHECK(ctx != NULL);
        tinymls_context_free(ctx);
        if (!ok) {
            fprintf(stderr, "  ... with %s, ratchet_period_ms = 100\n", clock_edge[i].name);
        }
    }
}

/* ---- constructors ---------------------------------------------------- */

/* Join with the given lengths; expects `want`, and *out NULL unless OK. */
static void join_expect(const uint8_t *secret, size_t secret_len, const uint8_t *id,
                        size_t id_len, tinymls_status want, int line)
{
    tinymls_context *ctx = not_null_handle();
    int ok = CHECK_STATUS(tinymls_context_join(secret, secret_len, id, id_len, NULL, &ctx), want);
    ok &= want == TINYMLS_OK ? CHECK(ctx != NULL) : CHECK(ctx == NULL);
    if (want == TINYMLS_OK && ctx != NULL) {
        tinymls_context_free(ctx);
    }
    if (!ok) {
        fprintf(stderr, "  ... join_expect at line %d (secret %zu, id %zu bytes)\n", line,
                secret_len, id_len);
    }
}

static void test_constructors(void)
{
    static uint8_t big[1025];
    memset(big, 0x42, sizeof big);
    const uint8_t *id = big; /* ids are bytes; any value will do */

    join_expect(big, 32, id, 1, TINYMLS_OK, __LINE__);
    join_expect(big, 1024, id, 255, TINYMLS_OK, __LINE__);
    join_expect(big, 31, id, 8, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    join_expect(big, 1025, id, 8, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    join_expect(big, 32, id, 0, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    join_expect(big, 32, id, 256, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    join_expect(big, SIZE_MAX, id, 8, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    join_expect(big, 32, id, SIZE_MAX, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    /* NULL is allowed with length 0 (then the length is out of range)... */
    join_expect(NULL, 0, id, 8, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    join_expect(big, 32, NULL, 0, TINYMLS_ERR_INVALID_ARGUMENT, __LINE__);
    /* ...but not with a length. */
    join_expect(NULL, 32, id, 8, TINYMLS_ERR_NULL_POINTER, __LINE__);
    join_expect(big, 32, NULL, 8, TINYMLS_ERR_NULL_POINTER, __LINE__);

    CHECK_STATUS(tinymls_context_join(big, 32, id, 8, NULL, NULL), TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_new(NULL, NULL), TINYMLS_ERR_NULL_POINTER);

    /* cfg NULL means the defaults. */
    tinymls_context *ctx = NULL;
    CHECK_STATUS(tinymls_context_new(NULL, &ctx), TINYMLS_OK);
    CHECK(ctx != NULL);
    tinymls_context_free(ctx);

    tinymls_context_free(NULL); /* documented no-op (a crash fails the test) */
}

/* ---- NULL pointers, empty messages, huge lengths ------------------------- */

static void test_null_pointers(void)
{
    /* Epochs numbered by the group (period 0), so that the epoch can only
     * move if a call moved it. */
    tinymls_config cfg = tu_config();
    tinymls_context *ctx = tu_join(&cfg);
    uint8_t ct[CT_MAX];
    uint8_t pt[MSG_MAX];
    size_t n = 0;
    size_t ct_len = tu_seal(ctx, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    uint64_t e;
    uint64_t sender;

    CHECK_STATUS(tinymls_encrypt(NULL, msg, MSG_LEN, NULL, 0, ct, sizeof ct, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_encrypt(ctx, NULL, MSG_LEN, NULL, 0, ct, sizeof ct, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_encrypt(ctx, msg, MSG_LEN, NULL, 3, ct, sizeof ct, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_encrypt(ctx, msg, MSG_LEN, NULL, 0, NULL, sizeof ct, &n),
                 TINYMLS_ERR_NULL_POINTER);
    /* NULL out with a capacity too small for the ciphertext: NULL_POINTER
     * and nothing written, not a size in *out_len (as tinymls_decrypt, the
     * batches, export and metrics). */
    n = 777;
    CHECK_STATUS(tinymls_encrypt(ctx, msg, MSG_LEN, NULL, 0, NULL, 1, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK(n == 777);
    CHECK_STATUS(tinymls_encrypt(ctx, msg, MSG_LEN, NULL, 0, ct, sizeof ct, NULL),
                 TINYMLS_ERR_NULL_POINTER);

    CHECK_STATUS(tinymls_decrypt(NULL, ct, ct_len, NULL, 0, pt, sizeof pt, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_decrypt(ctx, NULL, ct_len, NULL, 0, pt, sizeof pt, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_decrypt(ctx, ct, ct_len, NULL, 3, pt, sizeof pt, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_decrypt(ctx, ct, ct_len, NULL, 0, NULL, sizeof pt, &n),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_decrypt(ctx, ct, ct_len, NULL, 0, pt, sizeof pt, NULL),
                 TINYMLS_ERR_NULL_POINTER);

    CHECK_STATUS(tinymls_rotate(NULL), TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_epoch(NULL, &e), TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_epoch(ctx, NULL), TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_sender_id(NULL, &sender), TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_sender_id(ctx, NULL), TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_close(NULL), TINYMLS_ERR_NULL_POINTER);

    /* None of it touched the context: the message still decrypts, once. */
    CHECK(tu_epoch(ctx) == 0);
    OPEN_EXPECT(ctx, ct, ct_len, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(ctx);
}

static void test_empty_messages(void)
{
    tinymls_context *a = tu_join(NULL);
    tinymls_context *b = tu_join(NULL);
    uint8_t ct[CT_MAX];
    size_t n = 0;

    /* Size query: no output buffer at all. */
    CHECK_STATUS(tinymls_encrypt(a, NULL, 0, NULL, 0, NULL, 0, &n), TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == TINYMLS_OVERHEAD);
    CHECK_STATUS(tinymls_encrypt(a, msg, MSG_LEN, NULL, 0, NULL, 0, &n),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == tinymls_ciphertext_len(MSG_LEN));

    /* Empty plaintext, NULL pt and NULL aad. */
    n = 0;
    CHECK_STATUS(tinymls_encrypt(a, NULL, 0, NULL, 0, ct, sizeof ct, &n), TINYMLS_OK);
    CHECK(n == TINYMLS_OVERHEAD);
    /* ...decrypted into no buffer at all (NULL out, capacity 0). */
    size_t m = 999;
    CHECK_STATUS(tinymls_decrypt(b, ct, n, NULL, 0, NULL, 0, &m), TINYMLS_OK);
    CHECK(m == 0);

    /* Empty plaintext with AAD; non-empty plaintext with NULL aad. */
    n = tu_seal(a, NULL, 0, aad, sizeof aad, ct, sizeof ct);
    OPEN_EXPECT(b, ct, n, aad, sizeof aad, NULL, 0);
    n = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(b, ct, n, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(a);
    tinymls_context_free(b);
}

static void test_huge_lengths(void)
{
    tinymls_context *ctx = tu_join(NULL);
    uint8_t ct[CT_MAX];
    uint8_t out[CT_MAX];
    size_t n = 0;
    size_t ct_len = tu_seal(ctx, msg, MSG_LEN, NULL, 0, ct, sizeof ct);

    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_encrypt(ctx, msg, SIZE_MAX, NULL, 0, out, sizeof out, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_encrypt(ctx, msg, MSG_LEN, aad, SIZE_MAX, out, sizeof out, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    /* A capacity larger than any object is refused before anything is written. */
    CHECK_STATUS(tinymls_encrypt(ctx, msg, MSG_LEN, NULL, 0, out, SIZE_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK(tu_all_bytes(out, sizeof out, 0xA5));

    CHECK_STATUS(tinymls_decrypt(ctx, ct, SIZE_MAX, NULL, 0, out, sizeof out, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_decrypt(ctx, ct, ct_len, aad, SIZE_MAX, out, sizeof out, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_decrypt(ctx, ct, ct_len, NULL, 0, out, SIZE_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK(tu_all_bytes(out, sizeof out, 0xA5));
    OPEN_EXPECT(ctx, ct, ct_len, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(ctx);
}

/* A plaintext one byte longer than a message may hold (SPEC section 5:
 * 2^36 - 32 bytes), in a real (reserved, never touched) mapping: on an open
 * context it is INVALID_ARGUMENT, counted in health as the Rust API counts
 * it; on a closed one it is CLOSED, as every later call is (SPEC section 9),
 * for tinymls_encrypt, its size query and tinymls_encrypt_batch alike. */
static void test_too_long_plaintext(void)
{
    const size_t too_long = ((size_t)1 << 36) - 32 + 1;
    uint8_t *big = mmap(NULL, too_long, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (big == MAP_FAILED) {
        /* valgrind, or a 32-bit or tightly limited address space. */
        printf("(too-long plaintext: no 64 GiB mapping here, skipped)\n");
        return;
    }
    tinymls_context *ctx = tu_join(NULL);
    uint8_t out[CT_MAX];
    size_t n = 777;
    size_t lens[2] = {MSG_LEN, too_long};
    size_t out_lens[2];
    tinymls_status statuses[2];

    CHECK(tinymls_ciphertext_len(too_long) == 0);
    tinymls_health before = tu_health(ctx);
    CHECK_STATUS(tinymls_encrypt(ctx, big, too_long, NULL, 0, out, sizeof out, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    tinymls_health after = tu_health(ctx);
    CHECK(after.error_count == before.error_count + 1);
    CHECK(after.last_error == TINYMLS_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(tinymls_context_close(ctx), TINYMLS_OK);
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_encrypt(ctx, big, too_long, NULL, 0, out, sizeof out, &n),
                 TINYMLS_ERR_CLOSED);
    CHECK_STATUS(tinymls_encrypt(ctx, big, too_long, NULL, 0, NULL, 0, &n), TINYMLS_ERR_CLOSED);
    CHECK(n == 777);
    CHECK_STATUS(tinymls_encrypt_batch(ctx, 2, big, lens, NULL, NULL, out, sizeof out, out_lens,
                                       statuses, &n),
                 TINYMLS_ERR_CLOSED);
    CHECK(n == 777);
    CHECK(tu_all_bytes(out, sizeof out, 0xA5));
    tinymls_context_free(ctx);
    munmap(big, too_long);
}

/* ---- output buffers -------------------------------------------------- */

static void test_buffer_too_small(void)
{
    tinymls_context *a = tu_join(NULL);
    tinymls_context *b = tu_join(NULL);
    uint8_t ct[CT_MAX];
    uint8_t out[CT_MAX];
    size_t need = tinymls_ciphertext_len(MSG_LEN);
    size_t n = 0;

    /* Encrypt: one byte short writes only *out_len. */
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_encrypt(a, msg, MSG_LEN, NULL, 0, out, need - 1, &n),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == need);
    CHECK(tu_all_bytes(out, sizeof out, 0xA5));
    /* ...and used no sequence number: the first real message is seq 0. */
    size_t ct_len = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, need);
    CHECK(ct_len == need);
    CHECK(tu_ct_seq(ct) == 0);

    /* Decrypt: one byte short writes only *out_len... */
    n = 0;
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_decrypt(b, ct, ct_len, NULL, 0, out, MSG_LEN - 1, &n),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == MSG_LEN);
    CHECK(tu_all_bytes(out, sizeof out, 0xA5));
    CHECK_STATUS(tinymls_decrypt(b, ct, ct_len, NULL, 0, NULL, 0, &n),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == MSG_LEN);
    /* ...and records nothing: the message is not a replay afterwards, and
     * an exactly sized buffer is enough. */
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_decrypt(b, ct, ct_len, NULL, 0, out, MSG_LEN, &n), TINYMLS_OK);
    CHECK(n == MSG_LEN && memcmp(out, msg, MSG_LEN) == 0);
    CHECK(tu_all_bytes(out + MSG_LEN, sizeof out - MSG_LEN, 0xA5));
    tinymls_context_free(a);
    tinymls_context_free(b);
}

/* The detail of the calling thread's last failed call. */
static const char *last_detail(void)
{
    static char buf[TINYMLS_ERROR_MESSAGE_MAX_LEN + 1];
    size_t n = tinymls_last_error_message(buf, sizeof buf);
    CHECK(n < sizeof buf && strlen(buf) == n);
    return buf;
}

/* `st` is `want` and the detail names what was wrong, word for word. */
#define CHECK_DETAIL(expr, want, text)                                              \
    do {                                                                            \
        CHECK_STATUS((expr), (want));                                               \
        if (!CHECK(strcmp(last_detail(), (text)) == 0))                             \
            fprintf(stderr, "  detail: \"%s\"\n  wanted: \"%s\"\n", last_detail(), \
                    (text));                                                        \
    } while (0)

static void test_error_details(void)
{
    tinymls_context *ctx = NULL;
    /* A recognisable 16-byte secret: the detail gives its length only. */
    static const uint8_t short_secret[16] = "SECRET-bytes-16!";
    static const uint8_t group[] = "detail group";
    CHECK_DETAIL(tinymls_context_join(short_secret, sizeof short_secret, group, sizeof group - 1,
                                      NULL, &ctx),
                 TINYMLS_ERR_INVALID_ARGUMENT, "group_secret must be 32..=1024 bytes, got 16");
    CHECK(ctx == NULL);
    CHECK(strstr(last_detail(), "SECRET") == NULL && strstr(last_detail(), "5345") == NULL);

    /* A configuration field out of range: named, with its rule and value. */
    tinymls_config cfg = tu_config();
    cfg.replay_window = 100;
    const char *window = "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100";
    CHECK_DETAIL(tinymls_config_validate(&cfg), TINYMLS_ERR_INVALID_CONFIG, window);
    CHECK_DETAIL(tinymls_context_new(&cfg, &ctx), TINYMLS_ERR_INVALID_CONFIG, window);
    CHECK(ctx == NULL);

    /* BUFFER_TOO_SMALL gives the size needed, as *out_len does. */
    tinymls_context *a = tu_local(NULL);
    uint8_t out[CT_MAX];
    size_t n = 0;
    CHECK_DETAIL(tinymls_encrypt(a, msg, MSG_LEN, NULL, 0, out, 20, &n),
                 TINYMLS_ERR_BUFFER_TOO_SMALL,
                 "out_cap is 20 bytes; 54 are needed for the ciphertext (written to *out_len)");
    CHECK(n == MSG_LEN + TINYMLS_OVERHEAD);

    /* A success leaves the detail; a failure with no more to say has the
     * status's description, and every AUTH the same one. */
    size_t ct_len = tu_seal(a, msg, MSG_LEN, aad, sizeof aad, out, sizeof out);
    CHECK(strcmp(last_detail(), "out_cap is 20 bytes; 54 are needed for the ciphertext "
                                "(written to *out_len)") == 0);
    uint8_t pt[CT_MAX];
    CHECK_DETAIL(tinymls_decrypt(a, out, ct_len, NULL, 0, pt, sizeof pt, &n), TINYMLS_ERR_AUTH,
                 "authentication failed");
    out[ct_len - 1] ^= 1;
    CHECK_DETAIL(tinymls_decrypt(a, out, ct_len, aad, sizeof aad, pt, sizeof pt, &n),
                 TINYMLS_ERR_AUTH, "authentication failed");
    CHECK_DETAIL(tinymls_rotate(NULL), TINYMLS_ERR_NULL_POINTER, "ctx is NULL");

    /* The copy-out contract: a size query, then a cut at buf_len - 1 bytes
     * with a NUL (this detail is ASCII), never a byte past buf_len. */
    size_t full = tinymls_last_error_message(NULL, 0);
    CHECK(full == strlen("ctx is NULL"));
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(tinymls_last_error_message(small, 5) == full);
    CHECK(memcmp(small, "ctx ", 4) == 0 && small[4] == '\0' && small[5] == 'x');
    CHECK(tinymls_last_error_message(small, 1) == full && small[0] == '\0');
    tinymls_context_free(a);
}

static void test_overlap(void)
{
    tinymls_context *a = tu_join(NULL);
    tinymls_context *b = tu_join(NULL);
    uint8_t buf[2 * CT_MAX];
    uint8_t ct[CT_MAX];
    size_t n = 0;

    /* Encrypt in place, out inside pt, out overlapping aad: refused. */
    memcpy(buf, msg, MSG_LEN);
    CHECK_STATUS(tinymls_encrypt(a, buf, MSG_LEN, NULL, 0, buf, sizeof buf, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_encrypt(a, buf + 10, MSG_LEN, NULL, 0, buf, CT_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_encrypt(a, buf, MSG_LEN, NULL, 0, buf + MSG_LEN - 1, CT_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_encrypt(a, msg, MSG_LEN, buf + 5, 3, buf, CT_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK(memcmp(buf, msg, MSG_LEN) == 0); /* the input was not touched */
    /* *out_len inside the plaintext or the AAD: refused, nothing written. */
    {
        _Alignas(8) uint8_t in[32];
        uint8_t saved[32];
        memset(in, 0x5A, sizeof in);
        memcpy(saved, in, sizeof in);
        CHECK_STATUS(tinymls_encrypt(a, in, sizeof in, NULL, 0, ct, sizeof ct, (size_t *)(void *)(in + 8)),
                     TINYMLS_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(tinymls_encrypt(a, msg, MSG_LEN, in, sizeof in, ct, sizeof ct, (size_t *)(void *)in),
                     TINYMLS_ERR_INVALID_ARGUMENT);
        /* ...even with no room for the ciphertext: the size needed is not
         * written into the plaintext either. */
        CHECK_STATUS(tinymls_encrypt(a, in, sizeof in, NULL, 0, ct, 0, (size_t *)(void *)(in + 8)),
                     TINYMLS_ERR_INVALID_ARGUMENT);
        CHECK(memcmp(in, saved, sizeof in) == 0);
        /* *out_len inside an out too small for the ciphertext: an argument
         * refused like any other overlap, not counted as a failed
         * encryption (let alone as BUFFER_TOO_SMALL, which it did not
         * return). */
        tinymls_health before = tu_health(a);
        CHECK_STATUS(tinymls_encrypt(a, msg, MSG_LEN, NULL, 0, in, sizeof in, (size_t *)(void *)(in + 8)),
                     TINYMLS_ERR_INVALID_ARGUMENT);
        tinymls_health after = tu_health(a);
        CHECK(after.error_count == before.error_count);
        CHECK(after.last_error == before.last_error);
        CHECK(memcmp(in, saved, sizeof in) == 0);
    }
    /* Adjacent is not overlapping. */
    size_t len = tu_seal(a, buf, MSG_LEN, NULL, 0, buf + MSG_LEN, CT_MAX);
    CHECK(tu_ct_seq(buf + MSG_LEN) == 0); /* the refused calls used no seq */

    /* Decrypt in place, and with out overlapping aad: refused, ct intact. */
    memcpy(ct, buf + MSG_LEN, len);
    CHECK_STATUS(tinymls_decrypt(b, buf + MSG_LEN, len, NULL, 0, buf + MSG_LEN, len, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_decrypt(b, buf + MSG_LEN, len, NULL, 0, buf + MSG_LEN + 24, MSG_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_decrypt(b, ct, len, buf, 4, buf + 2, MSG_MAX, &n),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK(memcmp(ct, buf + MSG_LEN, len) == 0);
    OPEN_EXPECT(b, buf + MSG_LEN, len, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(a);
    tinymls_context_free(b);
}

/* Batch calls: no output array (the slots, out_lens, statuses, *out_total)
 * may overlap an input (the messages, the AADs, in_lens, aad_lens) or
 * another output; such a call is refused before it writes anything. Every
 * argument lives in one arena; each case moves one output onto something. */
enum { B_INPUT, B_AAD, B_IN_LENS, B_AAD_LENS, B_OUT, B_OUT_LENS, B_STATUSES, B_OUT_TOTAL, B_NARGS };
#define B_ARENA 640
#define B_OUT_CAP 256

static void batch_arena(uint8_t *arena, const size_t *off)
{
    const size_t in_lens[2] = {50, 60}, aad_lens[2] = {3, 5};
    for (size_t i = 0; i < B_ARENA; i++)
        arena[i] = (uint8_t)(0xA0 ^ i);
    memcpy(arena + off[B_IN_LENS], in_lens, sizeof in_lens);
    memcpy(arena + off[B_AAD_LENS], aad_lens, sizeof aad_lens);
}

static tinymls_status batch_call(int encrypt, tinymls_context *ctx, uint8_t *arena, const size_t *off)
{
    void *p[B_NARGS];
    for (int i = 0; i < B_NARGS; i++)
        p[i] = arena + off[i];
    return (encrypt ? tinymls_encrypt_batch : tinymls_decrypt_batch)(
        ctx, 2, p[B_INPUT], p[B_IN_LENS], p[B_AAD], p[B_AAD_LENS], p[B_OUT], B_OUT_CAP,
        p[B_OUT_LENS], p[B_STATUSES], p[B_OUT_TOTAL]);
}

static void test_batch_overlap(void)
{
    /* Period 0: the sequence-number check at the end must not see the
     * clock epoch turn (it does under valgrind, with the 100 ms default). */
    tinymls_config cfg = tu_config();
    tinymls_context *ctx = tu_join(&cfg);
    /* 8-aligned offsets, all arguments apart: messages of 50 and 60 bytes,
     * AADs of 3 and 5, 256 bytes of slots. */
    static const size_t apart[B_NARGS] = {0, 128, 144, 160, 256, 512, 528, 544};
    static const struct {
        const char *what;
        int arg;
        size_t at;
    } cases[] = {
        {"out_lens = in_lens", B_OUT_LENS, 144},     {"out_lens = aad_lens", B_OUT_LENS, 160},
        {"out_lens in the messages", B_OUT_LENS, 16}, {"out_lens in the AADs", B_OUT_LENS, 128},
        {"statuses on in_lens[1]", B_STATUSES, 152}, {"statuses = aad_lens", B_STATUSES, 160},
        {"statuses in the messages", B_STATUSES, 40}, {"statuses in the AADs", B_STATUSES, 132},
        {"out_total on in_lens[0]", B_OUT_TOTAL, 144}, {"out_total on aad_lens[1]", B_OUT_TOTAL, 168},
        {"out over in_lens", B_OUT, 136},            {"out over aad_lens", B_OUT, 168},
        {"out_lens in out", B_OUT_LENS, 272},        {"statuses over out_lens[1]", B_STATUSES, 520},
        {"out_total = statuses", B_OUT_TOTAL, 528},
    };
    _Alignas(8) uint8_t arena[B_ARENA], before[B_ARENA];

    for (int encrypt = 1; encrypt >= 0; encrypt--) {
        /* The disjoint layout goes through: the refusals are about aliasing. */
        batch_arena(arena, apart);
        memcpy(before, arena, B_ARENA);
        CHECK_STATUS(batch_call(encrypt, ctx, arena, apart), TINYMLS_OK);
        CHECK(memcmp(arena, before, B_ARENA) != 0);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            size_t off[B_NARGS];
            memcpy(off, apart, sizeof off);
            off[cases[c].arg] = cases[c].at;
            batch_arena(arena, off);
            memcpy(before, arena, B_ARENA);
            if (!CHECK_STATUS(batch_call(encrypt, ctx, arena, off), TINYMLS_ERR_INVALID_ARGUMENT))
                fprintf(stderr, "  %s batch: %s\n", encrypt ? "encrypt" : "decrypt", cases[c].what);
            if (!CHECK(memcmp(arena, before, B_ARENA) == 0))
                fprintf(stderr, "  %s batch: %s: the refused call wrote\n", encrypt ? "encrypt" : "decrypt",
                        cases[c].what);
        }
    }
    /* The refused batches used no sequence number: only the two accepted. */
    uint8_t ct[CT_MAX];
    tu_seal(ctx, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_seq(ct) == 2);
    tinymls_context_free(ctx);
}

/* ---- tampering ------------------------------------------------------- */

static void test_tampering(void)
{
    tinymls_config cfg = tu_config();
    cfg.max_future_epochs = 4; /* a flipped epoch bit >= 3 is then unknown */
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    uint8_t ct[CT_MAX];
    uint8_t bad[CT_MAX + 1];
    /* b reads one message of a first: until then a joiner with period 0
     * accepts an epoch any distance ahead (SPEC v2 6), and a flipped epoch
     * bit would be AUTH instead of EPOCH_UNKNOWN. */
    size_t len = tu_seal(a, "hello", 5, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(b, ct, len, NULL, 0, "hello", 5);
    len = tu_seal(a, msg, MSG_LEN, aad, sizeof aad, ct, sizeof ct);
    REQUIRE(len == MSG_LEN + TINYMLS_OVERHEAD);

    /* Truncated: shorter than 40 bytes is MALFORMED, else AUTH. */
    for (size_t cut = 0; cut < len; cut++) {
        tinymls_status want = cut < TINYMLS_OVERHEAD ? TINYMLS_ERR_MALFORMED : TINYMLS_ERR_AUTH;
        if (!OPEN_FAILS(b, ct, cut, aad, sizeof aad, want)) {
            fprintf(stderr, "  ... truncated to %zu bytes\n", cut);
        }
    }
    /* Extended by one byte. */
    memcpy(bad, ct, len);
    bad[len] = 0;
    OPEN_FAILS(b, bad, len + 1, aad, sizeof aad, TINYMLS_ERR_AUTH);

    /* Every single bit flipped. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            tinymls_status want = TINYMLS_ERR_AUTH;
            memcpy(bad, ct, len);
            bad[i] ^= (uint8_t)(1u << bit);
            if (i < 2) {
                want = TINYMLS_ERR_MALFORMED; /* version, suite */
            } else if (i < 8 && tu_ct_epoch(bad) > cfg.max_future_epochs) {
                want = TINYMLS_ERR_EPOCH_UNKNOWN;
            } else if (i >= 16 && i < 24 && tu_ct_seq(bad) == 0) {
                want = TINYMLS_ERR_REPLAY; /* "hello" was seq 0 (checked before the AEAD) */
            }
            if (!OPEN_FAILS(b, bad, len, aad, sizeof aad, want)) {
                fprintf(stderr, "  ... bit %d of byte %zu flipped\n", bit, i);
            }
        }
    }
    /* Wrong and missing AAD. */
    OPEN_FAILS(b, ct, len, "hdR", 3, TINYMLS_ERR_AUTH);
    OPEN_FAILS(b, ct, len, NULL, 0, TINYMLS_ERR_AUTH);

    /* Wrong version (v1 included: never released, SPEC v2 4) and suite values. */
    CHECK(ct[0] == 0x02 && ct[1] == 0x01);
    static const struct {
        size_t at;
        uint8_t value;
    } header_edits[] = {{0, 0x00}, {0, 0x01}, {0, 0x03}, {0, 0xFF},
                        {1, 0x00}, {1, 0x02}, {1, 0xFF}};
    for (size_t k = 0; k < sizeof header_edits / sizeof header_edits[0]; k++) {
        memcpy(bad, ct, len);
        bad[header_edits[k].at] = header_edits[k].value;
        OPEN_FAILS(b, bad, len, aad, sizeof aad, TINYMLS_ERR_MALFORMED);
    }

    /* None of it moved b's epoch or poisoned the sender: the real one opens. */
    CHECK(tu_epoch(b) == 0);
    OPEN_EXPECT(b, ct, len, aad, sizeof aad, msg, MSG_LEN);
    tinymls_context_free(a);
    tinymls_context_free(b);
}

/* ---- receive rules: replay, epochs, senders ---------------------------- */

static void test_replay(void)
{
    tinymls_config cfg = tu_config();
    cfg.replay_window = 64;
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    static uint8_t cts[100][CT_MAX];
    size_t lens[100];

    for (int i = 0; i < 100; i++) {
        lens[i] = tu_seal(a, msg, MSG_LEN, NULL, 0, cts[i], CT_MAX);
        CHECK(tu_ct_seq(cts[i]) == (uint64_t)i);
    }
    OPEN_EXPECT(b, cts[0], lens[0], NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(b, cts[0], lens[0], NULL, 0, TINYMLS_ERR_REPLAY);
    /* Out of order inside the window is fine; older than the window is not. */
    OPEN_EXPECT(b, cts[99], lens[99], NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(b, cts[35], lens[35], NULL, 0, TINYMLS_ERR_REPLAY); /* 100 - 35 > 64 */
    OPEN_EXPECT(b, cts[36], lens[36], NULL, 0, msg, MSG_LEN);      /* 100 - 36 == 64 */
    OPEN_FAILS(b, cts[36], lens[36], NULL, 0, TINYMLS_ERR_REPLAY);
    OPEN_EXPECT(b, cts[98], lens[98], NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(b, cts[99], lens[99], NULL, 0, TINYMLS_ERR_REPLAY);

    /* A shared context replay-checks its own sender id too (SPEC v2 6.3):
     * nobody can reflect a member's message back to it twice. */
    OPEN_EXPECT(a, cts[0], lens[0], NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(a, cts[0], lens[0], NULL, 0, TINYMLS_ERR_REPLAY);
    OPEN_EXPECT(a, cts[99], lens[99], NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(a, cts[99], lens[99], NULL, 0, TINYMLS_ERR_REPLAY);
    OPEN_FAILS(a, cts[1], lens[1], NULL, 0, TINYMLS_ERR_REPLAY); /* 1 + 64 <= 99 */

    /* A local context reads what it encrypted as often as it likes. */
    tinymls_context *l = tu_local(&cfg);
    uint8_t own[CT_MAX];
    size_t own_len = tu_seal(l, msg, MSG_LEN, NULL, 0, own, sizeof own);
    OPEN_EXPECT(l, own, own_len, NULL, 0, msg, MSG_LEN);
    OPEN_EXPECT(l, own, own_len, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(l);

    /* replay_window = 0 turns the check off. */
    cfg.replay_window = 0;
    tinymls_context *c = tu_join(&cfg);
    OPEN_EXPECT(c, cts[5], lens[5], NULL, 0, msg, MSG_LEN);
    OPEN_EXPECT(c, cts[5], lens[5], NULL, 0, msg, MSG_LEN);
    tinymls_context_free(a);
    tinymls_context_free(b);
    tinymls_context_free(c);
}

static void test_epoch_expired(void)
{
    tinymls_config cfg = tu_config();
    cfg.max_epochs = 2;
    tinymls_context *ctx = tu_local(&cfg);
    uint8_t ct[CT_MAX];
    size_t len = tu_seal(ctx, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_epoch(ct) == 0);

    CHECK_STATUS(tinymls_rotate(ctx), TINYMLS_OK);
    OPEN_EXPECT(ctx, ct, len, NULL, 0, msg, MSG_LEN); /* epochs 0 and 1 retained */
    CHECK_STATUS(tinymls_rotate(ctx), TINYMLS_OK);
    CHECK(tu_epoch(ctx) == 2);
    OPEN_FAILS(ctx, ct, len, NULL, 0, TINYMLS_ERR_EPOCH_EXPIRED);
    tinymls_context_free(ctx);

    /* A shared receiver that followed a sender forward drops old epochs too. */
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    uint8_t old_ct[CT_MAX];
    size_t old_len = tu_seal(a, msg, MSG_LEN, NULL, 0, old_ct, sizeof old_ct);
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(tinymls_rotate(a), TINYMLS_OK);
    }
    len = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(b, ct, len, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(b) == 3);
    OPEN_FAILS(b, old_ct, old_len, NULL, 0, TINYMLS_ERR_EPOCH_EXPIRED);
    tinymls_context_free(a);
    tinymls_context_free(b);
}

static void test_epoch_unknown(void)
{
    tinymls_config cfg = tu_config();
    tinymls_context *s = tu_join(&cfg);
    cfg.max_future_epochs = 3;
    tinymls_context *r = tu_join(&cfg);
    tinymls_context *late = tu_join(&cfg);
    uint8_t ct0[CT_MAX], ct3[CT_MAX], ct5[CT_MAX];

    /* r reads s once in epoch 0: from then on max_future_epochs bounds it. */
    size_t len0 = tu_seal(s, msg, MSG_LEN, NULL, 0, ct0, sizeof ct0);
    OPEN_EXPECT(r, ct0, len0, NULL, 0, msg, MSG_LEN);
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(tinymls_rotate(s), TINYMLS_OK);
    }
    size_t len3 = tu_seal(s, msg, MSG_LEN, NULL, 0, ct3, sizeof ct3);
    CHECK_STATUS(tinymls_rotate(s), TINYMLS_OK);
    CHECK_STATUS(tinymls_rotate(s), TINYMLS_OK);
    size_t len5 = tu_seal(s, msg, MSG_LEN, NULL, 0, ct5, sizeof ct5);
    CHECK(tu_ct_epoch(ct3) == 3 && tu_ct_epoch(ct5) == 5);

    /* 5 ahead > max_future_epochs = 3: refused, and r does not move. */
    OPEN_FAILS(r, ct5, len5, NULL, 0, TINYMLS_ERR_EPOCH_UNKNOWN);
    CHECK(tu_epoch(r) == 0);
    /* Exactly 3 ahead is followed; then 5 is only 2 ahead. */
    OPEN_EXPECT(r, ct3, len3, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(r) == 3);
    OPEN_EXPECT(r, ct5, len5, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(r) == 5);

    /* A joiner (period 0) that has read no other sender yet follows an
     * authentic epoch any distance ahead, so that it reaches a long-running
     * group (SPEC v2 6, 7.3); then the bound applies to it too. */
    CHECK(tu_epoch(late) == 0);
    OPEN_EXPECT(late, ct5, len5, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(late) == 5);
    for (int i = 0; i < 4; i++) {
        CHECK_STATUS(tinymls_rotate(s), TINYMLS_OK);
    }
    uint8_t ct9[CT_MAX];
    size_t len9 = tu_seal(s, msg, MSG_LEN, NULL, 0, ct9, sizeof ct9);
    CHECK(tu_ct_epoch(ct9) == 9);
    OPEN_FAILS(late, ct9, len9, NULL, 0, TINYMLS_ERR_EPOCH_UNKNOWN);
    CHECK(tu_epoch(late) == 5);

    /* max_future_epochs = 0: once it has read a peer, a shared context never
     * derives ahead. */
    cfg.max_future_epochs = 0;
    tinymls_context *r0 = tu_join(&cfg);
    OPEN_EXPECT(r0, ct0, len0, NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(r0, ct3, len3, NULL, 0, TINYMLS_ERR_EPOCH_UNKNOWN);
    CHECK(tu_epoch(r0) == 0);

    /* A local context never derives ahead: not another local context's
     * future epoch, nor its own ciphertext relabelled one epoch ahead. */
    tinymls_context *l1 = tu_local(NULL);
    tinymls_context *l2 = tu_local(NULL);
    uint8_t ct[CT_MAX];
    CHECK_STATUS(tinymls_rotate(l1), TINYMLS_OK);
    size_t len = tu_seal(l1, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_epoch(ct) == 1);
    OPEN_FAILS(l2, ct, len, NULL, 0, TINYMLS_ERR_EPOCH_UNKNOWN);
    len = tu_seal(l2, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    tu_set_ct_epoch(ct, 1);
    OPEN_FAILS(l2, ct, len, NULL, 0, TINYMLS_ERR_EPOCH_UNKNOWN);
    CHECK(tu_epoch(l2) == 0);

    tinymls_context_free(s);
    tinymls_context_free(r);
    tinymls_context_free(late);
    tinymls_context_free(r0);
    tinymls_context_free(l1);
    tinymls_context_free(l2);
}

static void test_sender_limit(void)
{
    tinymls_config cfg = tu_config();
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    cfg.max_senders = 1;
    tinymls_context *r = tu_join(&cfg);
    uint8_t ca[CT_MAX], ca2[CT_MAX], cb[CT_MAX], own[CT_MAX];
    size_t la = tu_seal(a, msg, MSG_LEN, NULL, 0, ca, sizeof ca);
    size_t la2 = tu_seal(a, msg, MSG_LEN, NULL, 0, ca2, sizeof ca2);
    size_t lb = tu_seal(b, msg, MSG_LEN, NULL, 0, cb, sizeof cb);
    size_t lown = tu_seal(r, msg, MSG_LEN, NULL, 0, own, sizeof own);

    OPEN_EXPECT(r, ca, la, NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(r, cb, lb, NULL, 0, TINYMLS_ERR_SENDER_LIMIT);
    /* The known sender, and r's own messages, are still fine: r's own id is
     * not a foreign sender (SPEC v2 6 step 3), though it is replay-checked. */
    OPEN_EXPECT(r, ca2, la2, NULL, 0, msg, MSG_LEN);
    OPEN_EXPECT(r, own, lown, NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(r, own, lown, NULL, 0, TINYMLS_ERR_REPLAY);

    /* Nor does reading its own message first take the one foreign slot. */
    tinymls_context *r2 = tu_join(&cfg);
    lown = tu_seal(r2, msg, MSG_LEN, NULL, 0, own, sizeof own);
    OPEN_EXPECT(r2, own, lown, NULL, 0, msg, MSG_LEN);
    OPEN_EXPECT(r2, ca, la, NULL, 0, msg, MSG_LEN);
    OPEN_FAILS(r2, cb, lb, NULL, 0, TINYMLS_ERR_SENDER_LIMIT);
    tinymls_context_free(r2);

    /* The limit is per epoch: in the next epoch b is the first sender. */
    CHECK_STATUS(tinymls_rotate(b), TINYMLS_OK);
    lb = tu_seal(b, msg, MSG_LEN, NULL, 0, cb, sizeof cb);
    OPEN_EXPECT(r, cb, lb, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(r) == 1);
    tinymls_context_free(a);
    tinymls_context_free(b);
    tinymls_context_free(r);
}

static void test_rate_limited(void)
{
    tinymls_config cfg = tu_config();
    cfg.min_rotation_interval_ms = 3600000; /* one hour */
    tinymls_context *ctx = tu_local(&cfg);
    CHECK_STATUS(tinymls_rotate(ctx), TINYMLS_OK);
    CHECK_STATUS(tinymls_rotate(ctx), TINYMLS_ERR_RATE_LIMITED);
    CHECK(tu_epoch(ctx) == 1);
    tinymls_context_free(ctx);

    /* With the default (0), back-to-back manual rotations are fine. */
    ctx = tu_local(NULL);
    for (int i = 0; i < 5; i++) {
        CHECK_STATUS(tinymls_rotate(ctx), TINYMLS_OK);
    }
    CHECK(tu_epoch(ctx) == 5);
    tinymls_context_free(ctx);
}

/* Usage limit (SPEC v2 5): each message counts 1 + len / 16384; a local
 * context rotates before a message would pass max_operations, and a single
 * message costing more than max_operations is refused. */
static void test_usage_rotation(void)
{
    tinymls_config cfg = tu_config();
    cfg.max_operations = 2;
    tinymls_context *ctx = tu_local(&cfg);
    size_t big_len = 16384; /* costs 2 */
    uint8_t *big = (uint8_t *)calloc(1, big_len);
    uint8_t *ct = (uint8_t *)malloc(big_len + TINYMLS_OVERHEAD);
    REQUIRE(big != NULL && ct != NULL);

    tu_seal(ctx, msg, 1, NULL, 0, ct, big_len + TINYMLS_OVERHEAD);      /* usage 1 */
    CHECK(tu_ct_epoch(ct) == 0);
    tu_seal(ctx, msg, 1, NULL, 0, ct, big_len + TINYMLS_OVERHEAD);      /* usage 2 */
    CHECK(tu_ct_epoch(ct) == 0 && tu_ct_seq(ct) == 1);
    tu_seal(ctx, msg, 1, NULL, 0, ct, big_len + TINYMLS_OVERHEAD);      /* would be 3 */
    CHECK(tu_ct_epoch(ct) == 1 && tu_ct_seq(ct) == 0);
    size_t n = tu_seal(ctx, big, big_len, NULL, 0, ct, big_len + TINYMLS_OVERHEAD); /* 1 + 2 */
    CHECK(tu_ct_epoch(ct) == 2 && tu_ct_seq(ct) == 0);
    CHECK(tu_epoch(ctx) == 2);
    uint8_t *back = (uint8_t *)malloc(big_len);
    size_t m = 0;
    REQUIRE(back != NULL);
    CHECK_STATUS(tinymls_decrypt(ctx, ct, n, NULL, 0, back, big_len, &m), TINYMLS_OK);
    CHECK(m == big_len && memcmp(back, big, big_len) == 0);

    /* 2 * 16384 bytes cost 3 > max_operations: refused, nothing written. */
    uint8_t *huge = (uint8_t *)calloc(1, 2 * big_len);
    uint8_t *huge_ct = (uint8_t *)malloc(2 * big_len + TINYMLS_OVERHEAD);
    REQUIRE(huge != NULL && huge_ct != NULL);
    size_t hn = 0;
    CHECK_STATUS(tinymls_encrypt(ctx, huge, 2 * big_len, NULL, 0, huge_ct,
                                 2 * big_len + TINYMLS_OVERHEAD, &hn),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK(tu_epoch(ctx) == 2);
    free(huge);
    free(huge_ct);
    free(back);
    free(big);
    free(ct);
    tinymls_context_free(ctx);

    /* A shared group following the clock may not rotate on its own: usage
     * draws a new sender id, seq restarting at 0, in the same epoch (SPEC
     * v2 5). A period of 2^40 ms keeps the clock epoch at 1 until 2039, so
     * the epoch cannot move during the test. */
    cfg = tu_config();
    cfg.ratchet_period_ms = (uint64_t)1 << 40;
    cfg.state_lifetime_ms = (uint64_t)1 << 41;
    cfg.max_operations = 2;
    tinymls_context *g = tu_join(&cfg);
    tinymls_context *peer = tu_join(&cfg);
    uint8_t c1[CT_MAX], c2[CT_MAX], c3[CT_MAX];
    uint64_t first_id = 0, now_id = 0;
    CHECK_STATUS(tinymls_context_sender_id(g, &first_id), TINYMLS_OK);
    size_t l1 = tu_seal(g, msg, MSG_LEN, NULL, 0, c1, sizeof c1);
    size_t l2 = tu_seal(g, msg, MSG_LEN, NULL, 0, c2, sizeof c2);
    size_t l3 = tu_seal(g, msg, MSG_LEN, NULL, 0, c3, sizeof c3); /* would be usage 3 */
    CHECK(tu_ct_epoch(c1) == 1 && tu_ct_epoch(c2) == 1 && tu_ct_epoch(c3) == 1);
    CHECK(tu_ct_sender(c1) == first_id && tu_ct_sender(c2) == first_id);
    CHECK(tu_ct_seq(c1) == 0 && tu_ct_seq(c2) == 1);
    CHECK(tu_ct_sender(c3) != first_id && tu_ct_seq(c3) == 0);
    CHECK_STATUS(tinymls_context_sender_id(g, &now_id), TINYMLS_OK);
    CHECK(now_id == tu_ct_sender(c3));
    CHECK(tu_epoch(g) == 1);
    OPEN_EXPECT(peer, c1, l1, NULL, 0, msg, MSG_LEN);
    OPEN_EXPECT(peer, c2, l2, NULL, 0, msg, MSG_LEN);
    OPEN_EXPECT(peer, c3, l3, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(g);
    tinymls_context_free(peer);
}

/* ---- cross-context --------------------------------------------------- */

static void test_cross_context(void)
{
    /* Period 0: epochs numbered by the group, adopted from peers (SPEC v2
     * 7.3); test_clock_epochs covers the defaults. */
    tinymls_config cfg = tu_config();
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    uint8_t ct[CT_MAX];
    uint64_t sa = 0, sb = 0;
    size_t len;

    CHECK_STATUS(tinymls_context_sender_id(a, &sa), TINYMLS_OK);
    CHECK_STATUS(tinymls_context_sender_id(b, &sb), TINYMLS_OK);
    CHECK(sa != sb); /* drawn at random, never configured */

    len = tu_seal(a, msg, MSG_LEN, aad, sizeof aad, ct, sizeof ct);
    CHECK(tu_ct_sender(ct) == sa && tu_ct_epoch(ct) == 0 && tu_ct_seq(ct) == 0);
    OPEN_EXPECT(b, ct, len, aad, sizeof aad, msg, MSG_LEN);
    len = tu_seal(b, "reply", 5, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_sender(ct) == sb);
    OPEN_EXPECT(a, ct, len, NULL, 0, "reply", 5);

    /* b follows a forward once a's newer message authenticates. */
    CHECK_STATUS(tinymls_rotate(a), TINYMLS_OK);
    CHECK_STATUS(tinymls_rotate(a), TINYMLS_OK);
    CHECK(tu_epoch(a) == 2 && tu_epoch(b) == 0);
    len = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_epoch(ct) == 2);
    OPEN_EXPECT(b, ct, len, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(b) == 2);
    len = tu_seal(b, "in epoch 2", 10, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_epoch(ct) == 2);
    OPEN_EXPECT(a, ct, len, NULL, 0, "in epoch 2", 10);

    /* Another group (same secret, other id) reads nothing. */
    static const uint8_t secret[32] = {7};
    tinymls_context *g1 = NULL, *g2 = NULL;
    CHECK_STATUS(tinymls_context_join(secret, sizeof secret, (const uint8_t *)"one", 3, &cfg, &g1),
                 TINYMLS_OK);
    CHECK_STATUS(tinymls_context_join(secret, sizeof secret, (const uint8_t *)"two", 3, &cfg, &g2),
                 TINYMLS_OK);
    REQUIRE(g1 != NULL && g2 != NULL);
    len = tu_seal(g1, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_FAILS(g2, ct, len, NULL, 0, TINYMLS_ERR_AUTH);
    OPEN_FAILS(a, ct, len, NULL, 0, TINYMLS_ERR_AUTH);

    /* A local context's ciphertexts are unreadable by another local context. */
    tinymls_context *l1 = tu_local(NULL);
    tinymls_context *l2 = tu_local(NULL);
    len = tu_seal(l1, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_FAILS(l2, ct, len, NULL, 0, TINYMLS_ERR_AUTH);
    OPEN_FAILS(a, ct, len, NULL, 0, TINYMLS_ERR_AUTH);
    OPEN_EXPECT(l1, ct, len, NULL, 0, msg, MSG_LEN);

    tinymls_context *all[] = {a, b, g1, g2, l1, l2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tinymls_context_free(all[i]);
    }
}

/* ---- shared groups following the clock (SPEC v2 7.2) ------------------- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    REQUIRE(clock_gettime(CLOCK_REALTIME, &ts) == 0);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t distance(uint64_t x, uint64_t y)
{
    return x > y ? x - y : y - x;
}

/* Two contexts joined with the defaults (ratchet_period_ms = 100) number
 * their epochs by the wall clock, without talking to each other: they agree
 * on the current epoch (equal, or one apart across a boundary) and read each
 * other. */
static void test_clock_defaults(void)
{
    tinymls_config defaults;
    tinymls_config_default(&defaults);
    REQUIRE(defaults.ratchet_period_ms == 100);

    const uint64_t before = wall_ms();
    tinymls_context *a = tu_join(NULL);
    tinymls_context *b = tu_join(NULL);
    uint64_t ea = tu_epoch(a);
    uint64_t eb = tu_epoch(b);
    const uint64_t after = wall_ms();
    /* The current epoch is floor(unix_ms / period) (about 1.76e10 today: far
     * past 32 bits' reach of the millisecond clock, well inside 48 bits). */
    CHECK(ea >= before / 100 && ea <= after / 100);
    CHECK(eb >= before / 100 && eb <= after / 100);
    CHECK(ea < ((uint64_t)1 << 48));

    /* Equal or one apart. Read again if a slow machine (valgrind) crossed
     * more than one boundary between the two calls; b read between two
     * readings of a lies between them, as both follow the same clock. */
    int tries = 0;
    uint64_t ea2 = ea;
    while (tries++ < 100) {
        ea = tu_epoch(a);
        eb = tu_epoch(b);
        ea2 = tu_epoch(a);
        if (distance(ea, eb) <= 1) {
            break;
        }
    }
    CHECK(distance(ea, eb) <= 1);
    CHECK(ea <= eb && eb <= ea2);

    /* They read each other, both ways, and the replies. */
    uint8_t ct[CT_MAX];
    size_t len = tu_seal(a, msg, MSG_LEN, aad, sizeof aad, ct, sizeof ct);
    CHECK(tu_ct_epoch(ct) >= ea2 && tu_ct_epoch(ct) <= wall_ms() / 100);
    OPEN_EXPECT(b, ct, len, aad, sizeof aad, msg, MSG_LEN);
    /* A shared context replay-checks every sender: reflected twice, refused. */
    OPEN_FAILS(b, ct, len, aad, sizeof aad, TINYMLS_ERR_REPLAY);
    /* The message was sent no later than b read it: b's skew is not
     * positive, and a whole number of periods. */
    tinymls_health hb = tu_health(b);
    CHECK(hb.clock_skew_ms <= 0 && hb.clock_skew_ms % 100 == 0);
    CHECK(hb.decrypt_count == 1);
    len = tu_seal(b, "reply", 5, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(a, ct, len, NULL, 0, "reply", 5);

    /* Each retains the window of max_epochs epochs ending at its current
     * epoch, from the moment it joins. */
    tinymls_health ha = tu_health(a);
    CHECK(ha.retained_epochs == defaults.max_epochs);
    CHECK(ha.current_epoch - ha.oldest_epoch + 1 == defaults.max_epochs);
    CHECK(ha.current_epoch >= ea2);

    /* Another group (same secret, other id) with the defaults reads nothing. */
    static const uint8_t secret[32] = {9};
    tinymls_context *g1 = NULL, *g2 = NULL;
    CHECK_STATUS(tinymls_context_join(secret, sizeof secret, (const uint8_t *)"one", 3, NULL, &g1),
                 TINYMLS_OK);
    CHECK_STATUS(tinymls_context_join(secret, sizeof secret, (const uint8_t *)"two", 3, NULL, &g2),
                 TINYMLS_OK);
    REQUIRE(g1 != NULL && g2 != NULL);
    len = tu_seal(g1, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_FAILS(g2, ct, len, NULL, 0, TINYMLS_ERR_AUTH);
    OPEN_FAILS(a, ct, len, NULL, 0, TINYMLS_ERR_AUTH);

    /* A local context has no clock skew, whatever it does. */
    tinymls_context *l = tu_local(NULL);
    len = tu_seal(l, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(l, ct, len, NULL, 0, msg, MSG_LEN);
    CHECK_STATUS(tinymls_rotate(l), TINYMLS_OK);
    len = tu_seal(l, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(l, ct, len, NULL, 0, msg, MSG_LEN);
    tinymls_health hl = tu_health(l);
    CHECK(hl.clock_skew_ms == 0);
    CHECK(hl.current_epoch == 1 && hl.decrypt_count == 2 && hl.encrypt_count == 2);

    tinymls_context *all[] = {a, b, g1, g2, l};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tinymls_context_free(all[i]);
    }
}

/* The rules of a clock-following group that a real period cannot show
 * without waiting: with a period of 2^40 ms the clock epoch is 1 from 2004
 * to 2039, so nothing below depends on when it runs. */
static void test_clock_rules(void)
{
    const uint64_t period = (uint64_t)1 << 40;
    tinymls_config cfg = tu_config();
    cfg.ratchet_period_ms = period;
    cfg.state_lifetime_ms = period * 2;
    REQUIRE(wall_ms() / period == 1);
    tinymls_context *p = tu_join(&cfg);
    tinymls_context *q = tu_join(&cfg);
    CHECK(tu_epoch(p) == 1 && tu_epoch(q) == 1);

    /* A manual rotation starts the next epoch early, once: a context already
     * ahead of the clock is RATE_LIMITED. */
    CHECK_STATUS(tinymls_rotate(p), TINYMLS_OK);
    CHECK(tu_epoch(p) == 2);
    CHECK_STATUS(tinymls_rotate(p), TINYMLS_ERR_RATE_LIMITED);
    CHECK(tu_epoch(p) == 2);

    /* q reads p's epoch 2 but does not adopt it: a fast member never drags
     * the others ahead. Its health shows p one period ahead. */
    uint8_t ct[CT_MAX], ct2[CT_MAX];
    size_t len = tu_seal(p, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    size_t len2 = tu_seal(p, "second", 6, NULL, 0, ct2, sizeof ct2);
    CHECK(tu_ct_epoch(ct) == 2);
    OPEN_EXPECT(q, ct, len, NULL, 0, msg, MSG_LEN);
    CHECK(tu_epoch(q) == 1);
    tinymls_health hq = tu_health(q);
    CHECK(hq.current_epoch == 1);
    CHECK(hq.clock_skew_ms == (int64_t)period);
    /* The future epoch keeps its replay state. */
    OPEN_FAILS(q, ct, len, NULL, 0, TINYMLS_ERR_REPLAY);
    OPEN_EXPECT(q, ct2, len2, NULL, 0, "second", 6);
    CHECK(tu_epoch(q) == 1);

    /* q still sends in epoch 1, which p retains and reads. The skew is
     * measured from p's clock epoch, 1 (its epoch 2 started early, by hand):
     * q's clock agrees with p's. */
    len = tu_seal(q, "from q", 6, NULL, 0, ct, sizeof ct);
    CHECK(tu_ct_epoch(ct) == 1);
    OPEN_EXPECT(p, ct, len, NULL, 0, "from q", 6);
    tinymls_health hp = tu_health(p);
    CHECK(hp.current_epoch == 2 && hp.clock_skew_ms == 0);

    /* A member joining now starts at the clock epoch and reads both. */
    tinymls_context *r = tu_join(&cfg);
    CHECK(tu_epoch(r) == 1);
    OPEN_EXPECT(r, ct, len, NULL, 0, "from q", 6);
    OPEN_EXPECT(r, ct2, len2, NULL, 0, "second", 6);
    CHECK(tu_epoch(r) == 1);

    tinymls_context_free(p);
    tinymls_context_free(q);
    tinymls_context_free(r);
}

/* ---- close, free, panic ---------------------------------------------- */

static void test_closed(void)
{
    tinymls_context *a = tu_join(NULL);
    tinymls_context *b = tu_join(NULL);
    uint8_t ct[CT_MAX], out[CT_MAX];
    size_t len = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    size_t n = 777;
    uint64_t e = 777;
    uint64_t sender = 777;

    CHECK_STATUS(tinymls_context_close(b), TINYMLS_OK);
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_encrypt(b, msg, MSG_LEN, NULL, 0, out, sizeof out, &n), TINYMLS_ERR_CLOSED);
    CHECK(tu_all_bytes(out, sizeof out, 0xA5));
    /* A NULL pointer is reported before CLOSED. */
    CHECK_STATUS(tinymls_encrypt(b, msg, MSG_LEN, NULL, 0, NULL, 1, &n), TINYMLS_ERR_NULL_POINTER);
    OPEN_FAILS(b, ct, len, NULL, 0, TINYMLS_ERR_CLOSED);
    /* An output too small is CLOSED too and, like every failure but
     * BUFFER_TOO_SMALL (tinymls.h), zeroes the first out_cap bytes. */
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(tinymls_decrypt(b, ct, len, NULL, 0, out, MSG_LEN - 1, &n), TINYMLS_ERR_CLOSED);
    CHECK(n == 777);
    CHECK(tu_all_bytes(out, MSG_LEN - 1, 0));
    CHECK(tu_all_bytes(out + MSG_LEN - 1, sizeof out - (MSG_LEN - 1), 0xA5));
    /* Overlapping buffers are reported before CLOSED, whatever the size:
     * *out_len inside an out too small for the ciphertext. */
    {
        _Alignas(8) uint8_t small[16];
        memset(small, 0xA5, sizeof small);
        CHECK_STATUS(tinymls_encrypt(b, msg, MSG_LEN, NULL, 0, small, sizeof small,
                                     (size_t *)(void *)(small + 8)),
                     TINYMLS_ERR_INVALID_ARGUMENT);
        CHECK(tu_all_bytes(small, sizeof small, 0xA5));
    }
    /* ...and a NULL message with a length, even one too long for a message
     * (tinymls_encrypt_batch, whose slot sum is checked first). */
    {
        size_t lens[1] = {((size_t)1 << 36)};
        size_t out_lens[1];
        tinymls_status statuses[1];
        n = 777;
        CHECK_STATUS(tinymls_encrypt_batch(b, 1, NULL, lens, NULL, NULL, out, sizeof out, out_lens,
                                           statuses, &n),
                     TINYMLS_ERR_NULL_POINTER);
        CHECK(n == 777);
    }
    CHECK_STATUS(tinymls_rotate(b), TINYMLS_ERR_CLOSED);
    CHECK_STATUS(tinymls_context_epoch(b, &e), TINYMLS_ERR_CLOSED);
    CHECK_STATUS(tinymls_context_sender_id(b, &sender), TINYMLS_ERR_CLOSED);
    CHECK(e == 777 && sender == 777);
    CHECK_STATUS(tinymls_context_close(b), TINYMLS_ERR_CLOSED);
    CHECK_STATUS(tinymls_context_close(b), TINYMLS_ERR_CLOSED);
    tinymls_context_free(b);

    /* Closing one context leaves the others alone. */
    OPEN_EXPECT(a, ct, len, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(a); /* free without close closes too */
}

static void test_panic_hook(void)
{
    tinymls_context *a = tu_join(NULL);
    tinymls_context *b = tu_join(NULL);
    uint8_t ct[CT_MAX];

    fprintf(stderr, "(two deliberate panic messages from tinymls_test_panic follow)\n");
    CHECK_STATUS(tinymls_test_panic(), TINYMLS_ERR_INTERNAL);
    CHECK_STATUS(tinymls_test_panic(), TINYMLS_ERR_INTERNAL);
    /* Contexts made before the panic still work... */
    size_t len = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(b, ct, len, NULL, 0, msg, MSG_LEN);
    CHECK_STATUS(tinymls_rotate(a), TINYMLS_OK);
    /* ...and new ones can be made. */
    tinymls_context *c = tu_join(NULL);
    len = tu_seal(a, msg, MSG_LEN, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(c, ct, len, NULL, 0, msg, MSG_LEN);
    tinymls_context_free(a);
    tinymls_context_free(b);
    tinymls_context_free(c);
}

int main(void)
{
    /* Refuse a library built for another ABI, as every binding does. */
    REQUIRE(tinymls_abi_version() == TINYMLS_ABI_VERSION);

    test_metadata();
    test_status_names();
    test_config_defaults();
    test_config_invalid();
    test_constructors();
    test_null_pointers();
    test_empty_messages();
    test_huge_lengths();
    test_too_long_plaintext();
    test_buffer_too_small();
    test_error_details();
    test_overlap();
    test_batch_overlap();
    test_tampering();
    test_replay();
    test_epoch_expired();
    test_epoch_unknown();
    test_sender_limit();
    test_rate_limited();
    test_usage_rotation();
    test_cross_context();
    test_clock_defaults();
    test_clock_rules();
    test_closed();
    test_panic_hook();
    return tu_finish();
}
