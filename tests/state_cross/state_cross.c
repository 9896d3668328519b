/* Cross-language state export/import: the C side (see README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinymls.h"

static const char *GROUP = "state-cross";
static uint8_t SECRET[32];
static uint8_t KEK[TINYMLS_STATE_KEK_LEN];

#define FAIL(...)                                  \
    do {                                           \
        fprintf(stderr, "state_cross.c: " __VA_ARGS__); \
        fprintf(stderr, "\n");                     \
        exit(1);                                   \
    } while (0)
#define OK(call)                                                                     \
    do {                                                                             \
        tinymls_status st_ = (call);                                                 \
        if (st_ != TINYMLS_OK) FAIL("%s: %s", #call, tinymls_status_str(st_)); \
    } while (0)

static void put(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) FAIL("cannot write %s", path);
}

static uint8_t *get(const char *dir, const char *name, size_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) FAIL("cannot read %s", path);
    uint8_t *b = (uint8_t *)malloc(1 << 20);
    if (!b) FAIL("out of memory");
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static tinymls_config config(void) {
    tinymls_config cfg;
    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 0;
    return cfg;
}

static size_t seal(tinymls_context *ctx, const char *pt, uint8_t *out, size_t cap) {
    size_t n = 0;
    OK(tinymls_encrypt(ctx, (const uint8_t *)pt, strlen(pt), NULL, 0, out, cap, &n));
    return n;
}

static void export_blob(tinymls_context *ctx, uint32_t flags, const char *dir, const char *name) {
    size_t need = 0;
    if (tinymls_context_export(ctx, KEK, sizeof KEK, flags, NULL, 0, &need) !=
        TINYMLS_ERR_BUFFER_TOO_SMALL)
        FAIL("size query");
    uint8_t *blob = (uint8_t *)malloc(need);
    if (!blob) FAIL("out of memory");
    size_t n = 0;
    OK(tinymls_context_export(ctx, KEK, sizeof KEK, flags, blob, need, &n));
    put(dir, name, blob, n);
    free(blob);
}

static int do_export(const char *dir) {
    tinymls_config cfg = config();
    tinymls_context *a = NULL, *s = NULL;
    OK(tinymls_context_join(SECRET, sizeof SECRET, (const uint8_t *)GROUP, strlen(GROUP), &cfg, &a));
    OK(tinymls_context_join(SECRET, sizeof SECRET, (const uint8_t *)GROUP, strlen(GROUP), &cfg, &s));
    uint8_t read[128], m0[128], m1[128], pt[128];
    size_t nr = seal(s, "read before the export", read, sizeof read);
    size_t n = 0;
    OK(tinymls_decrypt(a, read, nr, NULL, 0, pt, sizeof pt, &n));
    size_t n0 = seal(s, "epoch 0, sent before the export", m0, sizeof m0);
    OK(tinymls_rotate(s));
    OK(tinymls_rotate(a));
    size_t n1 = seal(s, "epoch 1, sent before the export", m1, sizeof m1);
    export_blob(a, 0, dir, "blob");
    export_blob(a, TINYMLS_EXPORT_CURRENT_EPOCH_ONLY, dir, "blob_current");
    put(dir, "read.bin", read, nr);
    put(dir, "m0.bin", m0, n0);
    put(dir, "m1.bin", m1, n1);
    uint64_t sender = 0;
    OK(tinymls_context_sender_id(a, &sender));
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sender);
    put(dir, "sender", (const uint8_t *)hex, 16);
    tinymls_context_free(a);
    tinymls_context_free(s);
    return 0;
}

static void expect_plain(tinymls_context *c, const uint8_t *ct, size_t n, const char *want) {
    uint8_t pt[128];
    size_t len = 0;
    OK(tinymls_decrypt(c, ct, n, NULL, 0, pt, sizeof pt, &len));
    if (len != strlen(want) || memcmp(pt, want, len) != 0) FAIL("wrong plaintext for %s", want);
}

static void expect_status(tinymls_context *c, const uint8_t *ct, size_t n, tinymls_status want) {
    uint8_t pt[128];
    size_t len = 0;
    tinymls_status st = tinymls_decrypt(c, ct, n, NULL, 0, pt, sizeof pt, &len);
    if (st != want) FAIL("decrypt gave %s", tinymls_status_str(st));
}

static int do_import(const char *dir) {
    size_t nb, nc, nr, n0, n1, ns;
    uint8_t *blob = get(dir, "blob", &nb), *cur = get(dir, "blob_current", &nc);
    uint8_t *read = get(dir, "read.bin", &nr), *m0 = get(dir, "m0.bin", &n0);
    uint8_t *m1 = get(dir, "m1.bin", &n1), *sender = get(dir, "sender", &ns);
    tinymls_context *c = NULL, *d = NULL;
    OK(tinymls_context_import(blob, nb, KEK, sizeof KEK, NULL, &c));
    expect_plain(c, m0, n0, "epoch 0, sent before the export");
    expect_plain(c, m1, n1, "epoch 1, sent before the export");
    expect_status(c, read, nr, TINYMLS_ERR_REPLAY);
    uint64_t epoch = 0;
    OK(tinymls_context_epoch(c, &epoch));
    if (epoch != 1) FAIL("epoch %llu", (unsigned long long)epoch);
    uint64_t id = 0;
    OK(tinymls_context_sender_id(c, &id));
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)id);
    if (ns != 16 || memcmp(hex, sender, 16) == 0) FAIL("the import kept the exporter's sender id");
    OK(tinymls_context_import(cur, nc, KEK, sizeof KEK, NULL, &d));
    expect_status(d, m0, n0, TINYMLS_ERR_EPOCH_EXPIRED);
    expect_plain(d, m1, n1, "epoch 1, sent before the export");
    uint8_t wrong[TINYMLS_STATE_KEK_LEN] = {0};
    tinymls_context *e = (tinymls_context *)&e;
    if (tinymls_context_import(blob, nb, wrong, sizeof wrong, NULL, &e) != TINYMLS_ERR_STATE || e)
        FAIL("wrong KEK not refused");
    tinymls_context_free(c);
    tinymls_context_free(d);
    free(blob), free(cur), free(read), free(m0), free(m1), free(sender);
    return 0;
}

int main(int argc, char **argv) {
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION || tinymls_state_format_version() != 2)
        FAIL("libtinymls has ABI %u and state format %u; this program needs ABI %d, format 2",
             (unsigned)tinymls_abi_version(), (unsigned)tinymls_state_format_version(),
             TINYMLS_ABI_VERSION);
    for (int i = 0; i < 32; i++) SECRET[i] = (uint8_t)i;
    memset(KEK, 0x33, sizeof KEK);
    if (argc == 3 && strcmp(argv[1], "export") == 0) return do_export(argv[2]);
    if (argc == 3 && strcmp(argv[1], "import") == 0) return do_import(argv[2]);
    fprintf(stderr, "usage: state_cross export|import DIR\n");
    return 2;
}
