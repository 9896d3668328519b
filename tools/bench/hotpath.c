/* The 64-byte hot path in one process: TinyMLS through its C ABI beside the
 * raw AEAD it calls (aws-lc's EVP_AEAD, linked from the same libtinymls.a),
 * for comparing builds of the library with each other (the ablations in
 * tools/bench/notes.md). Not part of `make bench`: run it with
 * `tools/bench/hotpath.sh` (see there).
 *
 *   hotpath time [ROUNDS]      min ns per call of each operation, over
 *                              ROUNDS interleaved runs of 200 000 calls
 *   hotpath loop OP N          N calls of one operation (OP: raw_seal,
 *                              tinymls_encrypt, raw_open, tinymls_decrypt;
 *                              for callgrind: the difference of two N is the
 *                              cost per call)
 *
 * Same set-up as benches/core.rs: encryption on a default context (rotation
 * every 100 ms, metrics on); decryption of the context's own message (not
 * replay-checked) with periodic rotation off. The raw AEAD has a fixed key
 * and nonce and a 24-byte AAD standing in for the header.
 *
 * HOTPATH_METRICS=0 in the environment turns metrics off first
 * (`tinymls_metrics_enable(0)`).
 *
 * AWSLC(x) names aws-lc's prefixed symbol (the prefix follows aws-lc-sys's
 * version; hotpath.sh finds it with nm and passes -DAWSLC_PREFIX=...).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinymls.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define AWSLC(x) CAT(AWSLC_PREFIX, x)

typedef struct evp_aead_st EVP_AEAD;
/* EVP_AEAD_CTX's layout (include/openssl/aead.h): a pointer, a 580-byte
 * state, an alignment byte and a tag length, 8-byte aligned. A generous,
 * aligned buffer is all this program needs. */
typedef struct {
  _Alignas(16) uint8_t bytes[1024];
} EVP_AEAD_CTX;
struct iovec_in {
  const uint8_t *in;
  size_t in_len;
};
extern const EVP_AEAD *AWSLC(EVP_aead_aes_256_gcm)(void);
extern int AWSLC(EVP_AEAD_CTX_init)(EVP_AEAD_CTX *, const EVP_AEAD *, const uint8_t *, size_t, size_t, void *);
extern int AWSLC(EVP_AEAD_CTX_seal_scatter)(const EVP_AEAD_CTX *, uint8_t *, uint8_t *, size_t *, size_t,
                                            const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *,
                                            size_t, const uint8_t *, size_t);
extern int AWSLC(EVP_AEAD_CTX_open_gather)(const EVP_AEAD_CTX *, uint8_t *, const uint8_t *, size_t,
                                           const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *,
                                           size_t);

#define N 64
#define CALLS 200000L

static EVP_AEAD_CTX raw;
static const uint8_t nonce[12], header[24] = {3};
static uint8_t pt[N] = {0x5a}, body[N], tag[16], out[N];
static tinymls_context *enc_ctx, *dec_ctx;
static uint8_t own[N + 40], ct[N + 40];
static size_t own_len;

static int raw_seal(void) {
  size_t tag_len = 0;
  return !AWSLC(EVP_AEAD_CTX_seal_scatter)(&raw, body, tag, &tag_len, sizeof tag, nonce, sizeof nonce, pt, N,
                                           NULL, 0, header, sizeof header);
}
static int raw_open(void) {
  return !AWSLC(EVP_AEAD_CTX_open_gather)(&raw, out, nonce, sizeof nonce, body, N, tag, sizeof tag, header,
                                          sizeof header);
}
static int tm_encrypt(void) {
  size_t len = 0;
  return tinymls_encrypt(enc_ctx, pt, N, NULL, 0, ct, sizeof ct, &len) != TINYMLS_OK;
}
static int tm_decrypt(void) {
  size_t len = 0;
  return tinymls_decrypt(dec_ctx, own, own_len, NULL, 0, out, sizeof out, &len) != TINYMLS_OK;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void setup(void) {
  static const uint8_t key[32] = {7};
  const char *metrics = getenv("HOTPATH_METRICS");
  if (metrics && strcmp(metrics, "0") == 0) tinymls_metrics_enable(0);
  if (!AWSLC(EVP_AEAD_CTX_init)(&raw, AWSLC(EVP_aead_aes_256_gcm)(), key, sizeof key, 16, NULL)) exit(2);
  if (tinymls_context_new(NULL, &enc_ctx) != TINYMLS_OK) exit(2);
  tinymls_config cfg;
  tinymls_config_default(&cfg);
  cfg.ratchet_period_ms = 0;
  if (tinymls_context_new(&cfg, &dec_ctx) != TINYMLS_OK) exit(2);
  if (tinymls_encrypt(dec_ctx, pt, N, NULL, 0, own, sizeof own, &own_len) != TINYMLS_OK) exit(2);
  if (raw_seal()) exit(2);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*op)(void);
  } ops[] = {{"raw_seal", raw_seal}, {"tinymls_encrypt", tm_encrypt}, {"raw_open", raw_open},
             {"tinymls_decrypt", tm_decrypt}};
  setup();
  if (argc >= 4 && strcmp(argv[1], "loop") == 0) {
    for (int k = 0; k < 4; k++) {
      if (strcmp(argv[2], ops[k].name) != 0) continue;
      for (long i = atol(argv[3]); i > 0; i--)
        if (ops[k].op()) return 1;
      return 0;
    }
  }
  if (argc < 2 || strcmp(argv[1], "time") != 0) {
    fprintf(stderr, "usage: %s time [ROUNDS] | loop OP N\n", argv[0]);
    return 2;
  }
  int rounds = argc > 2 ? atoi(argv[2]) : 25;
  double best[4] = {1e18, 1e18, 1e18, 1e18};
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < 4; k++) {
      double t0 = now_ns();
      for (long i = 0; i < CALLS; i++)
        if (ops[k].op()) return 1;
      double dt = (now_ns() - t0) / CALLS;
      if (dt < best[k]) best[k] = dt;
    }
  }
  for (int k = 0; k < 4; k++) printf("%-16s %6.1f ns\n", ops[k].name, best[k]);
  printf("encrypt/raw      %6.2fx\ndecrypt/raw      %6.2fx\n", best[0] / best[1], best[2] / best[3]);
  tinymls_context_free(enc_ctx);
  tinymls_context_free(dec_ctx);
  return 0;
}
