/*
 * local_encrypt.c: encrypt data that only this process can read back.
 *
 * A *local* context draws its own random group secret and fresh OS entropy
 * at every rotation, so nothing outside it can decrypt what it wrote, and
 * once an epoch has left the window (or the context was closed) its keys
 * are destroyed: a copy of the process's memory taken after that cannot
 * decrypt that epoch's messages either (one taken while the epoch is still
 * held can). Typical use: sealing data that sits in a queue, a cache or a
 * temporary file until this process reads it back.
 *
 * Build:  cc -std=c11 local_encrypt.c -I<include dir> -L<lib dir> -ltinymls -Wl,-rpath,<lib dir>
 *         (the rpath lets it find libtinymls.so at run time; after make install:
 *         cc local_encrypt.c $(pkg-config --cflags --libs tinymls), see the README)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinymls.h"

/* Every TinyMLS call returns a status: on failure, say which call failed
 * and why (tinymls_status_str), then clean up. */
#define TRY(call)                                                                 \
    do {                                                                          \
        tinymls_status s_ = (call);                                               \
        if (s_ != TINYMLS_OK) {                                                   \
            fprintf(stderr, "%s failed: %s\n", #call, tinymls_status_str(s_));   \
            goto done;                                                            \
        }                                                                         \
    } while (0)

int main(void)
{
    const char *note = "the backup finished at 03:00";
    const char *label = "job-42"; /* additional data: authenticated, not encrypted */
    tinymls_context *ctx = NULL;
    uint8_t *ct = NULL;
    uint8_t *pt = NULL;
    size_t ct_len = 0, pt_len = 0;
    uint64_t epoch = 0;
    int exit_code = 1;

    /* The library must implement the ABI this header describes. */
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION) {
        fprintf(stderr, "libtinymls has ABI %u, this program needs %d\n",
                (unsigned)tinymls_abi_version(), TINYMLS_ABI_VERSION);
        return 1;
    }

    /* NULL config = the defaults (keys rotate every 100 ms, +/- 10%). */
    TRY(tinymls_context_new(NULL, &ctx));

    /* A ciphertext is 40 bytes longer than its plaintext. */
    ct = malloc(tinymls_ciphertext_len(strlen(note)));
    pt = malloc(strlen(note));
    if (ct == NULL || pt == NULL) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    TRY(tinymls_encrypt(ctx, (const uint8_t *)note, strlen(note), (const uint8_t *)label,
                        strlen(label), ct, tinymls_ciphertext_len(strlen(note)), &ct_len));
    TRY(tinymls_context_epoch(ctx, &epoch));
    printf("encrypted %zu bytes into %zu (epoch %llu)\n", strlen(note), ct_len,
           (unsigned long long)epoch);

    /* Rotate now (it also happens on its own every ratchet_period_ms). The
     * old epoch is kept (max_epochs, default 64), so the message still opens. */
    TRY(tinymls_rotate(ctx));
    TRY(tinymls_context_epoch(ctx, &epoch));
    printf("rotated to epoch %llu\n", (unsigned long long)epoch);

    /* Decrypt with the same additional data; check the status before using pt. */
    TRY(tinymls_decrypt(ctx, ct, ct_len, (const uint8_t *)label, strlen(label), pt,
                        strlen(note), &pt_len));
    printf("decrypted: \"%.*s\"\n", (int)pt_len, (const char *)pt);

    /* Close zeroizes every key now; later calls return TINYMLS_ERR_CLOSED. */
    TRY(tinymls_context_close(ctx));
    exit_code = 0;

done:
    tinymls_context_free(ctx); /* NULL is fine */
    free(ct);
    free(pt);
    return exit_code;
}
