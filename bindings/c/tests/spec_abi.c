/*
 * SPEC v2 section 9, checked at compile time: each function of the core C ABI
 * assigned to a pointer of the type the spec declares, spelled as the spec
 * spells it (names, argument types, constness, return type), and the status
 * numbers of its table. `make test` compiles this file as C11 and as C++17
 * (cxx-check): in C++ `tinymls_status` (the enum) and `uint32_t` are distinct
 * types, so a parameter declared with one where the spec says the other
 * fails to compile there. (In C the two are the same type up to C17, and
 * compatible types in C23, where the enum's underlying type is uint32_t.)
 * Nothing here runs.
 */
#include "tinymls.h"

#ifdef __cplusplus
#define SPEC_ASSERT(c, m) static_assert(c, m)
#else
#define SPEC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* Functions every binding wraps, as SPEC section 9 declares them. */
void (*const spec_config_default)(tinymls_config *out) = tinymls_config_default;
tinymls_status (*const spec_context_new)(const tinymls_config *cfg, tinymls_context **out) = tinymls_context_new;
tinymls_status (*const spec_context_join)(const uint8_t *group_secret, size_t secret_len, const uint8_t *group_id,
                                          size_t group_id_len, const tinymls_config *cfg,
                                          tinymls_context **out) = tinymls_context_join;
size_t (*const spec_ciphertext_len)(size_t plaintext_len) = tinymls_ciphertext_len;
tinymls_status (*const spec_encrypt)(tinymls_context *ctx, const uint8_t *pt, size_t pt_len, const uint8_t *aad,
                                     size_t aad_len, uint8_t *out, size_t out_cap,
                                     size_t *out_len) = tinymls_encrypt;
tinymls_status (*const spec_decrypt)(tinymls_context *ctx, const uint8_t *ct, size_t ct_len, const uint8_t *aad,
                                     size_t aad_len, uint8_t *out, size_t out_cap,
                                     size_t *out_len) = tinymls_decrypt;
tinymls_status (*const spec_rotate)(tinymls_context *ctx) = tinymls_rotate;
tinymls_status (*const spec_context_close)(tinymls_context *ctx) = tinymls_context_close;
void (*const spec_context_free)(tinymls_context *ctx) = tinymls_context_free;
const char *(*const spec_status_str)(tinymls_status s) = tinymls_status_str;
const char *(*const spec_version)(void) = tinymls_version;
/* Epoch numbers cross the ABI as uint64_t; the ABI version is a number. */
tinymls_status (*const spec_context_epoch)(tinymls_context *ctx, uint64_t *out) = tinymls_context_epoch;
uint32_t (*const spec_abi_version)(void) = tinymls_abi_version;

/* The status table: stable numbers. */
SPEC_ASSERT(TINYMLS_OK == 0, "TINYMLS_OK");
SPEC_ASSERT(TINYMLS_ERR_NULL_POINTER == 1, "TINYMLS_ERR_NULL_POINTER");
SPEC_ASSERT(TINYMLS_ERR_INVALID_ARGUMENT == 2, "TINYMLS_ERR_INVALID_ARGUMENT");
SPEC_ASSERT(TINYMLS_ERR_INVALID_CONFIG == 3, "TINYMLS_ERR_INVALID_CONFIG");
SPEC_ASSERT(TINYMLS_ERR_BUFFER_TOO_SMALL == 4, "TINYMLS_ERR_BUFFER_TOO_SMALL");
SPEC_ASSERT(TINYMLS_ERR_MALFORMED == 5, "TINYMLS_ERR_MALFORMED");
SPEC_ASSERT(TINYMLS_ERR_AUTH == 6, "TINYMLS_ERR_AUTH");
SPEC_ASSERT(TINYMLS_ERR_REPLAY == 7, "TINYMLS_ERR_REPLAY");
SPEC_ASSERT(TINYMLS_ERR_EPOCH_EXPIRED == 8, "TINYMLS_ERR_EPOCH_EXPIRED");
SPEC_ASSERT(TINYMLS_ERR_EPOCH_UNKNOWN == 9, "TINYMLS_ERR_EPOCH_UNKNOWN");
SPEC_ASSERT(TINYMLS_ERR_SENDER_LIMIT == 10, "TINYMLS_ERR_SENDER_LIMIT");
SPEC_ASSERT(TINYMLS_ERR_EXHAUSTED == 11, "TINYMLS_ERR_EXHAUSTED");
SPEC_ASSERT(TINYMLS_ERR_RATE_LIMITED == 12, "TINYMLS_ERR_RATE_LIMITED");
SPEC_ASSERT(TINYMLS_ERR_CLOSED == 13, "TINYMLS_ERR_CLOSED");
SPEC_ASSERT(TINYMLS_ERR_RNG == 14, "TINYMLS_ERR_RNG");
SPEC_ASSERT(TINYMLS_ERR_STATE == 15, "TINYMLS_ERR_STATE");
SPEC_ASSERT(TINYMLS_ERR_INTERNAL == 16, "TINYMLS_ERR_INTERNAL");
SPEC_ASSERT(TINYMLS_ABI_VERSION == 2, "ABI 2 is SPEC v2");
