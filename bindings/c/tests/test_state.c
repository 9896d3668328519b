/*
 * State export and import through the C ABI (docs/STATE.md): the size
 * query, BUFFER_TOO_SMALL, the NULL rules, a round trip in which a message
 * sent before the export decrypts after the import, the current-epoch-only
 * flag, every rejection leaving the output handle NULL, and (format 2) a
 * clock-following context's future epochs and their replay state surviving
 * the trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const uint8_t KEK[TINYMLS_STATE_KEK_LEN] = {
    0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
    0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17};

/* Exports ctx with flags into a new malloc'd buffer (size query first). */
static uint8_t *export_blob(tinymls_context *ctx, uint32_t flags, size_t *len) {
    size_t need = 0;
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, flags, NULL, 0, &need),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    uint8_t *blob = (uint8_t *)malloc(need);
    REQUIRE(blob != NULL);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, flags, blob, need, len), TINYMLS_OK);
    CHECK(*len == need);
    return blob;
}

/* Imports and checks the status; a failure must leave *out NULL. */
static tinymls_context *import_expect(const uint8_t *blob, size_t len, const uint8_t *kek,
                                      size_t kek_len, const tinymls_config *cfg,
                                      tinymls_status want) {
    tinymls_context *out = (tinymls_context *)&out; /* not NULL before the call */
    CHECK_STATUS(tinymls_context_import(blob, len, kek, kek_len, cfg, &out), want);
    if (want != TINYMLS_OK) {
        CHECK(out == NULL);
        return NULL;
    }
    CHECK(out != NULL);
    return out;
}

static void test_size_query_and_null_rules(void) {
    tinymls_config cfg = tu_config();
    tinymls_context *ctx = tu_join(&cfg);
    size_t need = 0, got = 0;
    CHECK(tinymls_state_format_version() == TINYMLS_STATE_FORMAT_VERSION);
    CHECK(tinymls_state_format_version() == 2); /* SPEC v2: 48-bit epochs, frontier */
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, NULL, 0, &need),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(need > 44);
    uint8_t *buf = (uint8_t *)malloc(need);
    REQUIRE(buf != NULL);
    memset(buf, 0xEE, need);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, buf, need - 1, &got),
                 TINYMLS_ERR_BUFFER_TOO_SMALL);
    CHECK(got == need);
    int untouched = 1;
    for (size_t i = 0; i < need; i++) untouched &= buf[i] == 0xEE;
    CHECK(untouched);
    CHECK_STATUS(tinymls_context_export(NULL, KEK, sizeof KEK, 0, buf, need, &got),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_export(ctx, NULL, sizeof KEK, 0, buf, need, &got),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, buf, need, NULL),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, NULL, need, &got),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, 16, 0, buf, need, &got),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0x80, buf, need, &got),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, buf, need, &got), TINYMLS_OK);
    CHECK(got == need);

    CHECK_STATUS(tinymls_context_import(buf, got, KEK, sizeof KEK, NULL, NULL),
                 TINYMLS_ERR_NULL_POINTER);
    import_expect(NULL, got, KEK, sizeof KEK, NULL, TINYMLS_ERR_NULL_POINTER);
    import_expect(buf, got, NULL, sizeof KEK, NULL, TINYMLS_ERR_NULL_POINTER);
    import_expect(buf, got, KEK, 31, NULL, TINYMLS_ERR_INVALID_ARGUMENT);
    /* NULL with length 0 is empty (the ABI's rule): a short KEK, an empty blob. */
    import_expect(buf, got, NULL, 0, NULL, TINYMLS_ERR_INVALID_ARGUMENT);
    import_expect(NULL, 0, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    CHECK_STATUS(tinymls_context_export(ctx, NULL, 0, 0, buf, need, &got),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    tinymls_config bad = tu_config();
    bad.replay_window = 100;
    import_expect(buf, got, KEK, sizeof KEK, &bad, TINYMLS_ERR_INVALID_CONFIG);

    /* *out_len inside out: refused before the blob is made, so no state
     * generation is spent on it. */
    uint64_t gen0 = 0, gen1 = 0;
    CHECK_STATUS(tinymls_context_state_generation(ctx, &gen0), TINYMLS_OK);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, buf, need, (size_t *)(void *)(buf + 8)),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(tinymls_context_state_generation(ctx, &gen1), TINYMLS_OK);
    CHECK(gen1 == gen0);

    CHECK_STATUS(tinymls_context_close(ctx), TINYMLS_OK);
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, buf, need, &got),
                 TINYMLS_ERR_CLOSED);
    /* Overlapping buffers are reported before CLOSED (tinymls_context_close):
     * *out_len inside out, as on an open context. */
    CHECK_STATUS(tinymls_context_export(ctx, KEK, sizeof KEK, 0, buf, need, (size_t *)(void *)(buf + 8)),
                 TINYMLS_ERR_INVALID_ARGUMENT);
    free(buf);
    tinymls_context_free(ctx);
}

static void test_round_trip_and_rejections(void) {
    tinymls_config cfg = tu_config();
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    uint8_t m0[64], m1[64], m2[64];
    size_t n0 = tu_seal(a, "epoch zero", 10, NULL, 0, m0, sizeof m0);
    CHECK_STATUS(tinymls_rotate(a), TINYMLS_OK);
    size_t n1 = tu_seal(a, "epoch one", 9, NULL, 0, m1, sizeof m1);
    OPEN_EXPECT(b, m1, n1, NULL, 0, "epoch one", 9); /* b follows to epoch 1 */

    size_t len = 0;
    uint8_t *blob = export_blob(b, 0, &len);
    tinymls_context *c = import_expect(blob, len, KEK, sizeof KEK, NULL, TINYMLS_OK);
    REQUIRE(c != NULL);
    uint64_t sb = 0, sc = 0;
    CHECK_STATUS(tinymls_context_sender_id(b, &sb), TINYMLS_OK);
    CHECK_STATUS(tinymls_context_sender_id(c, &sc), TINYMLS_OK);
    CHECK(sb != sc);
    OPEN_EXPECT(c, m0, n0, NULL, 0, "epoch zero", 10); /* sent before the export */
    uint8_t pt[64];
    size_t pt_len = 0;
    CHECK_STATUS(tinymls_decrypt(c, m1, n1, NULL, 0, pt, sizeof pt, &pt_len), TINYMLS_ERR_REPLAY);
    size_t n2 = tu_seal(c, "from c", 6, NULL, 0, m2, sizeof m2);
    OPEN_EXPECT(a, m2, n2, NULL, 0, "from c", 6);

    /* Current epoch only: epoch 0 is gone, epoch 1 is there. */
    size_t len1 = 0;
    uint8_t *cur = export_blob(b, TINYMLS_EXPORT_CURRENT_EPOCH_ONLY, &len1);
    CHECK(len1 < len);
    tinymls_context *d = import_expect(cur, len1, KEK, sizeof KEK, NULL, TINYMLS_OK);
    REQUIRE(d != NULL);
    CHECK_STATUS(tinymls_decrypt(d, m0, n0, NULL, 0, pt, sizeof pt, &pt_len),
                 TINYMLS_ERR_EPOCH_EXPIRED);
    OPEN_EXPECT(d, m2, n2, NULL, 0, "from c", 6);

    /* Wrong KEK, every single-bit flip of the sealed part, truncation,
     * extension, a foreign blob, a newer format version. */
    uint8_t wrong[TINYMLS_STATE_KEK_LEN] = {0};
    import_expect(blob, len, wrong, sizeof wrong, NULL, TINYMLS_ERR_STATE);
    uint8_t *m = (uint8_t *)malloc(len + 1);
    REQUIRE(m != NULL);
    unsigned flips = 0;
    /* From the nonce on (bytes 12..16 are the length: a change is MALFORMED). */
    for (size_t bit = 16 * 8; bit < len * 8; bit += 7) {
        memcpy(m, blob, len);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        import_expect(m, len, KEK, sizeof KEK, NULL, TINYMLS_ERR_STATE);
        flips++;
    }
    CHECK(flips > 50);
    memcpy(m, blob, len);
    m[11] ^= 1; /* flags */
    import_expect(m, len, KEK, sizeof KEK, NULL, TINYMLS_ERR_STATE);
    import_expect(blob, len - 1, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    import_expect(blob, 20, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    memcpy(m, blob, len);
    m[len] = 0;
    import_expect(m, len + 1, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    import_expect(m0, n0, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    /* The version is the u16 at bytes 8..10: this library writes 2. */
    CHECK(blob[8] == 0 && blob[9] == 2);
    memcpy(m, blob, len);
    m[9] = (uint8_t)(m[9] + 1); /* format version 3, newer */
    import_expect(m, len, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    memcpy(m, blob, len);
    m[9] = 1; /* format version 1 (SPEC v1 blobs are not read) */
    import_expect(m, len, KEK, sizeof KEK, NULL, TINYMLS_ERR_MALFORMED);
    CHECK(strstr(tinymls_status_str(TINYMLS_ERR_MALFORMED), "state") != NULL);

    free(m);
    free(cur);
    free(blob);
    tinymls_context_free(d);
    tinymls_context_free(c);
    tinymls_context_free(b);
    tinymls_context_free(a);
}

/* SPEC v2: a shared context following the clock holds the future epochs it
 * has read, with their replay state, and the blob carries them; an import
 * starts at the clock epoch, or later if the restored state is ahead. A
 * period of 2^40 ms keeps the clock epoch at 1 until 2039, so nothing here
 * depends on when it runs. */
static void test_clock_state(void) {
    const uint64_t period = (uint64_t)1 << 40;
    tinymls_config cfg = tu_config();
    cfg.ratchet_period_ms = period;
    cfg.state_lifetime_ms = 2 * period;
    tinymls_context *p = tu_join(&cfg);
    tinymls_context *q = tu_join(&cfg);
    REQUIRE(tu_epoch(p) == 1 && tu_epoch(q) == 1);
    CHECK_STATUS(tinymls_rotate(p), TINYMLS_OK); /* one epoch ahead of the clock */
    uint8_t f1[64], f2[64], now1[64];
    size_t n1 = tu_seal(p, "future one", 10, NULL, 0, f1, sizeof f1);
    size_t n2 = tu_seal(p, "future two", 10, NULL, 0, f2, sizeof f2);
    size_t nn = tu_seal(q, "epoch one", 9, NULL, 0, now1, sizeof now1);
    CHECK(tu_ct_epoch(f1) == 2 && tu_ct_epoch(now1) == 1);
    OPEN_EXPECT(q, f1, n1, NULL, 0, "future one", 10); /* read, not adopted */
    CHECK(tu_epoch(q) == 1);

    size_t len = 0;
    uint8_t *blob = export_blob(q, 0, &len);
    tinymls_context *q2 = import_expect(blob, len, KEK, sizeof KEK, NULL, TINYMLS_OK);
    REQUIRE(q2 != NULL);
    CHECK(tu_epoch(q2) == 1);
    /* The future epoch came along with its replay state. */
    OPEN_FAILS(q2, f1, n1, NULL, 0, TINYMLS_ERR_REPLAY);
    OPEN_EXPECT(q2, f2, n2, NULL, 0, "future two", 10);
    /* q's own message: a shared context replay-checks its own sender id, but
     * the import has a new one and q never read it: it reads once. */
    OPEN_EXPECT(q2, now1, nn, NULL, 0, "epoch one", 9);
    OPEN_FAILS(q2, now1, nn, NULL, 0, TINYMLS_ERR_REPLAY);
    tinymls_health h = tu_health(q2);
    CHECK(h.current_epoch == 1);

    /* p's state is ahead of the clock: the import keeps its epoch. */
    size_t plen = 0;
    uint8_t *pblob = export_blob(p, 0, &plen);
    tinymls_context *p2 = import_expect(pblob, plen, KEK, sizeof KEK, NULL, TINYMLS_OK);
    REQUIRE(p2 != NULL);
    CHECK(tu_epoch(p2) == 2);
    OPEN_EXPECT(p2, now1, nn, NULL, 0, "epoch one", 9);

    /* The clock rules hold at import too: a config with max_epochs 1 for a
     * clock-following group is refused. */
    tinymls_config bad = cfg;
    bad.max_epochs = 1;
    import_expect(blob, len, KEK, sizeof KEK, &bad, TINYMLS_ERR_INVALID_CONFIG);

    free(blob);
    free(pblob);
    tinymls_context_free(p2);
    tinymls_context_free(q2);
    tinymls_context_free(q);
    tinymls_context_free(p);
}

/* Rollback (docs/STATE.md, "Rollback"): generations, tinymls_state_get_info,
 * tinymls_context_import_min_generation. */
static uint64_t generation_of(const uint8_t *blob, size_t len) {
    tinymls_state_info info = {0, 0};
    CHECK_STATUS(tinymls_state_get_info(blob, len, KEK, sizeof KEK, &info), TINYMLS_OK);
    return info.generation;
}

static void test_rollback(void) {
    tinymls_config cfg = tu_config();
    tinymls_context *a = tu_join(&cfg);
    tinymls_context *b = tu_join(&cfg);
    uint64_t g = 99;
    CHECK_STATUS(tinymls_context_state_generation(b, &g), TINYMLS_OK);
    CHECK(g == 0);
    CHECK_STATUS(tinymls_context_state_generation(b, NULL), TINYMLS_ERR_NULL_POINTER);

    size_t old_len = 0, new_len = 0;
    uint8_t *old = export_blob(b, 0, &old_len);
    uint8_t ct[64];
    size_t n = tu_seal(a, "once", 4, NULL, 0, ct, sizeof ct);
    OPEN_EXPECT(b, ct, n, NULL, 0, "once", 4);
    uint8_t *blob = export_blob(b, 0, &new_len);
    uint64_t newest = generation_of(blob, new_len);
    CHECK(generation_of(old, old_len) > 0);
    CHECK(newest > generation_of(old, old_len));
    CHECK_STATUS(tinymls_context_state_generation(b, &g), TINYMLS_OK);
    CHECK(g == newest);

    /* Authenticated as an import is; *out written only on success. */
    tinymls_state_info info = {7, 7};
    uint8_t zero_kek[32] = {0};
    CHECK_STATUS(tinymls_state_get_info(blob, new_len, zero_kek, sizeof zero_kek, &info),
                 TINYMLS_ERR_STATE);
    blob[40] ^= 1;
    CHECK_STATUS(tinymls_state_get_info(blob, new_len, KEK, sizeof KEK, &info), TINYMLS_ERR_STATE);
    blob[40] ^= 1;
    CHECK_STATUS(tinymls_state_get_info(blob, new_len - 1, KEK, sizeof KEK, &info),
                 TINYMLS_ERR_MALFORMED);
    CHECK_STATUS(tinymls_state_get_info(blob, new_len, KEK, sizeof KEK, NULL),
                 TINYMLS_ERR_NULL_POINTER);
    CHECK(info.exported_at_ms == 7 && info.generation == 7);
    CHECK_STATUS(tinymls_state_get_info(blob, new_len, KEK, sizeof KEK, &info), TINYMLS_OK);
    CHECK(info.generation == newest && info.exported_at_ms > 1600000000000ULL);

    /* The rolled-back blob accepts the message again, unless refused. */
    tinymls_context *r = import_expect(old, old_len, KEK, sizeof KEK, NULL, TINYMLS_OK);
    REQUIRE(r != NULL);
    OPEN_EXPECT(r, ct, n, NULL, 0, "once", 4);
    tinymls_context_free(r);
    tinymls_context *out = (tinymls_context *)&out;
    CHECK_STATUS(tinymls_context_import_min_generation(old, old_len, KEK, sizeof KEK, NULL, newest,
                                                       &out),
                 TINYMLS_ERR_STATE);
    CHECK(out == NULL);
    out = (tinymls_context *)&out;
    CHECK_STATUS(tinymls_context_import_min_generation(blob, new_len, KEK, sizeof KEK, NULL,
                                                       newest + 1, &out),
                 TINYMLS_ERR_STATE);
    CHECK(out == NULL);
    CHECK_STATUS(tinymls_context_import_min_generation(blob, new_len, KEK, sizeof KEK, NULL, newest,
                                                       &out),
                 TINYMLS_OK);
    REQUIRE(out != NULL);
    uint8_t pt[64];
    size_t pt_len = 0;
    CHECK_STATUS(tinymls_decrypt(out, ct, n, NULL, 0, pt, sizeof pt, &pt_len), TINYMLS_ERR_REPLAY);
    CHECK_STATUS(tinymls_context_state_generation(out, &g), TINYMLS_OK);
    CHECK(g == newest);

    tinymls_context_free(out);
    free(old);
    free(blob);
    tinymls_context_free(b);
    tinymls_context_free(a);
}

int main(void) {
    test_size_query_and_null_rules();
    test_round_trip_and_rejections();
    test_clock_state();
    test_rollback();
    return tu_finish();
}
