/*
 * The C runner of the interop matrix (tests/interop/run.py).
 *
 *   interop encrypt PLAN SECRET_HEX GROUP_ID OUT
 *   interop decrypt PLAN SECRET_HEX GROUP_ID IN
 *
 * PLAN is the text file written by run.py (README there): lines
 * "msg LEN SEED AAD_HEX" ("-" for no AAD) and "rotate". Plaintext byte j of a
 * message is (SEED*131 + j*7 + (j>>8)) mod 256. Both modes join the group
 * (secret, id) with periodic rotation off, so that the epoch moves exactly
 * at the plan's "rotate" lines. encrypt writes "TMLSIOP1" and one record
 * (u32 big-endian length, ciphertext) per message, calling tinymls_rotate at
 * every "rotate". decrypt reads such a file made by any runner, checks each
 * record's header epoch against the plan, decrypts it, compares the
 * plaintext with the plan's and checks its own context followed the epoch;
 * before the first record it tries a copy with a flipped tag bit (AUTH
 * expected), and at the end it replays the first record (REPLAY expected). It prints the counts run.py checks, and
 * exits non-zero at the first mismatch.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinymls.h"

#define MAX_LINE 4096
#define MAX_AAD 1024

static void die(const char *what)
{
    fprintf(stderr, "interop c: %s\n", what);
    exit(1);
}

static void die_status(const char *what, tinymls_status s)
{
    fprintf(stderr, "interop c: %s: %s (status %u)\n", what, tinymls_status_str(s), (unsigned)s);
    exit(1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex (or "-" for empty) into out; returns the length. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    if (strcmp(s, "-") == 0)
        return 0;
    size_t n = strlen(s);
    if (n % 2 != 0 || n / 2 > cap)
        die("bad hex string in the plan or arguments");
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            die("bad hex digit");
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return n / 2;
}

static void plaintext(uint8_t *pt, size_t len, uint32_t seed)
{
    for (size_t j = 0; j < len; j++)
        pt[j] = (uint8_t)((seed * 131u + (uint32_t)j * 7u + (uint32_t)(j >> 8)) & 0xffu);
}

/* The header's epoch: u48 big-endian at bytes 2..8 (SPEC v2 section 4). */
static uint64_t header_epoch(const uint8_t *ct)
{
    uint64_t e = 0;
    for (int i = 2; i < 8; i++)
        e = e << 8 | ct[i];
    return e;
}

static uint64_t context_epoch(tinymls_context *ctx)
{
    uint64_t e = 0;
    tinymls_status s = tinymls_context_epoch(ctx, &e);
    if (s != TINYMLS_OK)
        die_status("tinymls_context_epoch", s);
    return e;
}

static void write_all(FILE *f, const void *p, size_t n)
{
    if (n > 0 && fwrite(p, 1, n, f) != n)
        die("write failed");
}

static int read_exact(FILE *f, void *p, size_t n)
{
    return n == 0 || fread(p, 1, n, f) == n;
}

/* Reads one record into a fresh buffer (caller frees). */
static uint8_t *read_record(FILE *f, size_t *len)
{
    uint8_t b[4];
    if (!read_exact(f, b, 4))
        die("ciphertext file ends early");
    *len = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | (size_t)b[3];
    uint8_t *ct = malloc(*len ? *len : 1);
    if (!ct)
        die("out of memory");
    if (!read_exact(f, ct, *len))
        die("ciphertext file ends early");
    return ct;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "encrypt") != 0 && strcmp(argv[1], "decrypt") != 0)) {
        fprintf(stderr, "usage: %s encrypt|decrypt PLAN SECRET_HEX GROUP_ID FILE\n", argv[0]);
        return 2;
    }
    int enc = strcmp(argv[1], "encrypt") == 0;
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION) {
        fprintf(stderr, "interop c: libtinymls has ABI %u, this runner needs %d\n",
                (unsigned)tinymls_abi_version(), TINYMLS_ABI_VERSION);
        return 1;
    }
    uint8_t secret[TINYMLS_MAX_GROUP_SECRET_LEN];
    size_t secret_len = unhex(argv[3], secret, sizeof secret);
    const char *group = argv[4];

    tinymls_config cfg;
    tinymls_config_default(&cfg);
    cfg.ratchet_period_ms = 0; /* the epoch moves only at the plan's rotations */
    tinymls_context *ctx = NULL;
    tinymls_status s = tinymls_context_join(secret, secret_len, (const uint8_t *)group, strlen(group), &cfg, &ctx);
    if (s != TINYMLS_OK)
        die_status("tinymls_context_join", s);

    FILE *plan = fopen(argv[2], "r");
    FILE *data = fopen(argv[5], enc ? "wb" : "rb");
    if (!plan || !data)
        die("cannot open the plan or the ciphertext file");
    char magic[8];
    if (enc)
        write_all(data, "TMLSIOP1", 8);
    else if (!read_exact(data, magic, 8) || memcmp(magic, "TMLSIOP1", 8) != 0)
        die("not an interop ciphertext file");

    char line[MAX_LINE];
    uint8_t aad[MAX_AAD];
    uint64_t epoch = 0, final_epoch = 0;
    unsigned long messages = 0, rotations = 0, rejected = 0;
    unsigned long long bytes = 0;
    int saw_empty = 0, saw_mib = 0, saw_aad = 0;
    uint8_t *first = NULL;
    size_t first_len = 0;
    char first_aad[MAX_LINE] = "";

    while (fgets(line, sizeof line, plan)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (strcmp(line, "rotate") == 0) {
            epoch++;
            rotations++;
            if (enc) {
                if ((s = tinymls_rotate(ctx)) != TINYMLS_OK)
                    die_status("tinymls_rotate", s);
                if (context_epoch(ctx) != epoch)
                    die("rotate did not move to the next epoch");
            }
            continue;
        }
        char aad_hex[MAX_LINE];
        unsigned long len = 0, seed = 0;
        if (sscanf(line, "msg %lu %lu %4095s", &len, &seed, aad_hex) != 3)
            die("bad plan line");
        size_t aad_len = unhex(aad_hex, aad, sizeof aad);
        saw_empty |= len == 0;
        saw_mib |= len >= (1ul << 20);
        saw_aad |= aad_len > 0;
        uint8_t *pt = malloc(len ? len : 1);
        if (!pt)
            die("out of memory");
        plaintext(pt, len, (uint32_t)seed);

        if (enc) {
            size_t cap = tinymls_ciphertext_len(len), n = 0;
            uint8_t *ct = malloc(cap);
            if (!ct)
                die("out of memory");
            s = tinymls_encrypt(ctx, len ? pt : NULL, len, aad_len ? aad : NULL, aad_len, ct, cap, &n);
            if (s != TINYMLS_OK)
                die_status("tinymls_encrypt", s);
            if (n != len + TINYMLS_OVERHEAD || header_epoch(ct) != epoch)
                die("ciphertext length or header epoch differs from the plan");
            uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
            write_all(data, b, 4);
            write_all(data, ct, n);
            bytes += n;
            free(ct);
        } else {
            size_t n = 0, got = 0;
            uint8_t *ct = read_record(data, &n);
            if (n != len + TINYMLS_OVERHEAD || header_epoch(ct) != epoch)
                die("record length or header epoch differs from the plan");
            uint8_t *out = malloc(len ? len : 1);
            if (!out)
                die("out of memory");
            if (messages == 0) {
                /* First, a copy of the first record with one bit of its tag
                 * flipped: refused, and it does not burn the sequence number. */
                ct[n - 1] ^= 0x01;
                s = tinymls_decrypt(ctx, ct, n, aad_len ? aad : NULL, aad_len, out, len, &got);
                ct[n - 1] ^= 0x01;
                if (s != TINYMLS_ERR_AUTH)
                    die_status("tampered first record: expected TINYMLS_ERR_AUTH, got", s);
                rejected++;
            }
            s = tinymls_decrypt(ctx, ct, n, aad_len ? aad : NULL, aad_len, out, len, &got);
            if (s != TINYMLS_OK)
                die_status("tinymls_decrypt", s);
            if (got != len || (len && memcmp(out, pt, len) != 0))
                die("decrypted plaintext differs from the plan");
            if (context_epoch(ctx) != epoch)
                die("the decrypting context did not follow the sender's epoch");
            free(out);
            bytes += len;
            if (!first) {
                first = ct;
                first_len = n;
                snprintf(first_aad, sizeof first_aad, "%s", aad_hex);
            } else {
                free(ct);
            }
        }
        free(pt);
        messages++;
    }
    if (ferror(plan))
        die("cannot read the plan");
    /* What this runner ran: the cases the matrix promises, or it fails. */
    if (rotations == 0 || !saw_empty || !saw_mib || !saw_aad)
        die("the plan must have a rotation, an empty message, a 1 MiB one and one with AAD");

    if (enc) {
        if (fclose(data) != 0)
            die("cannot write the ciphertext file");
        printf("interop c encrypt: messages=%lu rotations=%lu bytes=%llu\n", messages, rotations, bytes);
    } else {
        if (fgetc(data) != EOF)
            die("extra bytes after the last record");
        fclose(data);
        final_epoch = context_epoch(ctx);
        if (!first)
            die("the plan has no message");
        /* The first message again: a replay. */
        size_t cap = first_len, got = 0;
        uint8_t *out = malloc(cap ? cap : 1);
        size_t a = unhex(first_aad, aad, sizeof aad);
        s = tinymls_decrypt(ctx, first, first_len, a ? aad : NULL, a, out, cap, &got);
        if (s != TINYMLS_ERR_REPLAY)
            die_status("replayed first record: expected TINYMLS_ERR_REPLAY, got", s);
        rejected++;
        free(out);
        free(first);
        printf("interop c decrypt: messages=%lu epoch=%llu bytes=%llu rejected=%lu\n", messages,
               (unsigned long long)final_epoch, bytes, rejected);
    }
    fclose(plan);
    tinymls_context_free(ctx);
    return 0;
}
