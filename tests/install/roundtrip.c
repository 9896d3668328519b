/* A program built against an installed TinyMLS (tests/install/run.sh):
 * the header and library found through pkg-config, a round trip between
 * two members of a group, a tampered message refused, and the header's
 * version the library's. Prints one line; exits non-zero on any failure. */
#include <stdio.h>
#include <string.h>

#include <tinymls.h>

#define FAIL(...) (fprintf(stderr, "roundtrip: " __VA_ARGS__), fputc('\n', stderr), 1)

int main(void)
{
    if (strcmp(tinymls_version(), TINYMLS_VERSION_STRING) != 0 ||
        tinymls_version_number() != TINYMLS_VERSION_NUMBER) {
        return FAIL("header %s, library %s", TINYMLS_VERSION_STRING, tinymls_version());
    }
    if (tinymls_abi_version() != TINYMLS_ABI_VERSION) {
        return FAIL("ABI %u, header %u", tinymls_abi_version(), (unsigned)TINYMLS_ABI_VERSION);
    }

    static const uint8_t secret[32] = "installed tinymls, group secret";
    static const uint8_t group[] = "install-test";
    tinymls_context *alice = NULL, *bob = NULL;
    if (tinymls_context_join(secret, sizeof secret, group, sizeof group - 1, NULL, &alice) != TINYMLS_OK ||
        tinymls_context_join(secret, sizeof secret, group, sizeof group - 1, NULL, &bob) != TINYMLS_OK) {
        return FAIL("join failed");
    }

    static const char msg[] = "hello from an installed library";
    uint8_t ct[sizeof msg + TINYMLS_OVERHEAD], pt[sizeof msg];
    size_t ct_len = 0, pt_len = 0;
    tinymls_status st = tinymls_encrypt(alice, (const uint8_t *)msg, sizeof msg, NULL, 0, ct, sizeof ct, &ct_len);
    if (st != TINYMLS_OK || ct_len != sizeof ct) {
        return FAIL("encrypt: %s", tinymls_status_str(st));
    }
    st = tinymls_decrypt(bob, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    if (st != TINYMLS_OK || pt_len != sizeof msg || memcmp(pt, msg, sizeof msg) != 0) {
        return FAIL("decrypt: %s", tinymls_status_str(st));
    }
    /* A new message (the old one would be a replay), one bit of its tag flipped. */
    st = tinymls_encrypt(alice, (const uint8_t *)msg, sizeof msg, NULL, 0, ct, sizeof ct, &ct_len);
    if (st != TINYMLS_OK) {
        return FAIL("encrypt: %s", tinymls_status_str(st));
    }
    ct[ct_len - 1] ^= 1;
    st = tinymls_decrypt(bob, ct, ct_len, NULL, 0, pt, sizeof pt, &pt_len);
    if (st != TINYMLS_ERR_AUTH) {
        return FAIL("tampered message: %s", tinymls_status_str(st));
    }

    tinymls_context_free(alice);
    tinymls_context_free(bob);
    printf("roundtrip ok: tinymls %s (%s), %zu-byte message, tampered message refused (%s)\n",
           tinymls_version(), tinymls_aead_backend(), sizeof msg, tinymls_status_name(st));
    return 0;
}
