/*
 * Calls of the C ABI that fetch the library's detail of a failure in the
 * same cgo call (tinymls_last_error_message is per OS thread, and a
 * goroutine may move to another thread between two cgo calls).
 *
 * Each tinymls_go_<name> calls tinymls_<name> and returns a
 * tinymls_go_result: the status (or, for encrypt and decrypt, the status
 * and the output length packed as (len << 8) | status) and, only if the
 * call failed, a malloc'd copy of the detail that the Go side frees. A
 * successful call costs one comparison more than the plain call.
 */
#ifndef TINYMLS_GO_H
#define TINYMLS_GO_H

#include <stdint.h>
#include <stdlib.h>

#include "tinymls.h"

typedef struct {
	uint64_t r;   /* the status, or (len << 8) | status */
	char *detail; /* NULL on success (or if malloc failed); free it */
} tinymls_go_result;

/* The calling thread's detail, copied for the Go side (NULL for OK, and
 * for AUTH, whose detail is always its description: a flood of forged
 * messages costs no allocation). */
static inline char *tinymls_go_detail(tinymls_status st) {
	if (st == TINYMLS_OK || st == TINYMLS_ERR_AUTH) {
		return NULL;
	}
	char *d = malloc(TINYMLS_ERROR_MESSAGE_MAX_LEN + 1);
	if (d != NULL) {
		tinymls_last_error_message(d, TINYMLS_ERROR_MESSAGE_MAX_LEN + 1);
	}
	return d;
}

static inline tinymls_go_result tinymls_go_status(tinymls_status st) {
	tinymls_go_result res = {(uint64_t)st, tinymls_go_detail(st)};
	return res;
}

/* tinymls_go_<name>(params): tinymls_<name>(args), with its detail. */
#define TINYMLS_GO_CALL(name, params, args) \
	static inline tinymls_go_result tinymls_go_##name params { return tinymls_go_status(tinymls_##name args); }

TINYMLS_GO_CALL(config_validate, (const tinymls_config *cfg), (cfg))
TINYMLS_GO_CALL(context_new, (const tinymls_config *cfg, tinymls_context **out), (cfg, out))
TINYMLS_GO_CALL(context_join,
	(const uint8_t *secret, size_t secret_len, const uint8_t *id, size_t id_len, const tinymls_config *cfg,
		tinymls_context **out),
	(secret, secret_len, id, id_len, cfg, out))
TINYMLS_GO_CALL(rotate, (tinymls_context *ctx), (ctx))
TINYMLS_GO_CALL(context_close, (tinymls_context *ctx), (ctx))
TINYMLS_GO_CALL(context_epoch, (tinymls_context *ctx, uint64_t *out), (ctx, out))
TINYMLS_GO_CALL(context_sender_id, (tinymls_context *ctx, uint64_t *out), (ctx, out))
TINYMLS_GO_CALL(context_health, (tinymls_context *ctx, tinymls_health *out), (ctx, out))
TINYMLS_GO_CALL(metrics_prometheus, (uint8_t *out, size_t cap, size_t *len), (out, cap, len))
TINYMLS_GO_CALL(encrypt_batch,
	(tinymls_context *ctx, size_t count, const uint8_t *in, const size_t *in_lens, const uint8_t *aad,
		const size_t *aad_lens, uint8_t *out, size_t cap, size_t *out_lens, tinymls_status *statuses,
		size_t *total),
	(ctx, count, in, in_lens, aad, aad_lens, out, cap, out_lens, statuses, total))
TINYMLS_GO_CALL(decrypt_batch,
	(tinymls_context *ctx, size_t count, const uint8_t *in, const size_t *in_lens, const uint8_t *aad,
		const size_t *aad_lens, uint8_t *out, size_t cap, size_t *out_lens, tinymls_status *statuses,
		size_t *total),
	(ctx, count, in, in_lens, aad, aad_lens, out, cap, out_lens, statuses, total))
TINYMLS_GO_CALL(context_export,
	(tinymls_context *ctx, const uint8_t *kek, size_t kek_len, uint32_t flags, uint8_t *out, size_t cap,
		size_t *len),
	(ctx, kek, kek_len, flags, out, cap, len))
TINYMLS_GO_CALL(context_import,
	(const uint8_t *blob, size_t blob_len, const uint8_t *kek, size_t kek_len, const tinymls_config *cfg,
		tinymls_context **out),
	(blob, blob_len, kek, kek_len, cfg, out))
TINYMLS_GO_CALL(context_import_min_generation,
	(const uint8_t *blob, size_t blob_len, const uint8_t *kek, size_t kek_len, const tinymls_config *cfg,
		uint64_t min_generation, tinymls_context **out),
	(blob, blob_len, kek, kek_len, cfg, min_generation, out))
TINYMLS_GO_CALL(state_get_info,
	(const uint8_t *blob, size_t blob_len, const uint8_t *kek, size_t kek_len, tinymls_state_info *out),
	(blob, blob_len, kek, kek_len, out))
TINYMLS_GO_CALL(context_state_generation, (tinymls_context *ctx, uint64_t *out), (ctx, out))

/* Encrypt and decrypt may call back into Go (security events), so cgo cannot
 * keep a Go pointer passed to them on the stack: a &outLen would be a heap
 * allocation per call. These keep out_len on the C side and return it with
 * the status, packed as (len << 8) | status (statuses are < 256, lengths
 * < 2^56), so the hot path passes only the caller's buffers. */
static inline tinymls_go_result tinymls_go_encrypt(tinymls_context *ctx, const uint8_t *pt, size_t pt_len,
	const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_cap) {
	size_t n = 0;
	tinymls_status st = tinymls_encrypt(ctx, pt, pt_len, aad, aad_len, out, out_cap, &n);
	tinymls_go_result res = {((uint64_t)n << 8) | ((uint64_t)st & 0xff), tinymls_go_detail(st)};
	return res;
}

static inline tinymls_go_result tinymls_go_decrypt(tinymls_context *ctx, const uint8_t *ct, size_t ct_len,
	const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_cap) {
	size_t n = 0;
	tinymls_status st = tinymls_decrypt(ctx, ct, ct_len, aad, aad_len, out, out_cap, &n);
	tinymls_go_result res = {((uint64_t)n << 8) | ((uint64_t)st & 0xff), tinymls_go_detail(st)};
	return res;
}

#endif /* TINYMLS_GO_H */
