/* AES-256-GCM from C: OpenSSL's EVP interface (the system libcrypto) beside
 * TinyMLS through its C ABI, on the same sizes, one thread.
 *
 * Built and run by `make -C bindings/c bench` (from `make bench`). Prints one
 * JSON object per line: {"name", "size", "ns_per_op"}, the median of REPEATS
 * timed runs. BENCH_QUICK=1 in the environment shortens each run.
 *
 * The EVP side is what a C user would write for one message: set a fresh
 * nonce on a context keyed once, the 24-byte AAD (standing in for TinyMLS's
 * header), the body, the final block and the tag.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinymls.h"

#define REPEATS 7

static const size_t SIZES[] = {64, 1024, 16384, 1048576};

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef int (*op_fn)(void *state, size_t n);

/* Median ns per call of `op` over REPEATS runs of about `run_ns` each. */
static double measure(op_fn op, void *state, size_t n, double run_ns) {
  /* Calibrate: how many calls fill one run. */
  size_t iters = 1;
  for (;;) {
    double t0 = now_ns();
    for (size_t i = 0; i < iters; i++) {
      if (op(state, n) != 0) {
        fprintf(stderr, "operation failed\n");
        exit(1);
      }
    }
    double dt = now_ns() - t0;
    if (dt > run_ns / 4 || iters > ((size_t)1 << 30)) {
      iters = (size_t)((double)iters * run_ns / (dt > 1 ? dt : 1)) + 1;
      break;
    }
    iters *= 4;
  }
  double samples[REPEATS];
  for (int r = 0; r < REPEATS; r++) {
    double t0 = now_ns();
    for (size_t i = 0; i < iters; i++) {
      if (op(state, n) != 0) {
        fprintf(stderr, "operation failed\n");
        exit(1);
      }
    }
    samples[r] = (now_ns() - t0) / (double)iters;
  }
  qsort(samples, REPEATS, sizeof samples[0], cmp_double);
  return samples[REPEATS / 2];
}

struct evp_state {
  EVP_CIPHER_CTX *ctx;
  uint8_t nonce[12];
  uint8_t aad[24];
  uint8_t tag[16];
  uint8_t *in;
  uint8_t *out;
};

static int evp_seal(void *p, size_t n) {
  struct evp_state *s = p;
  int len = 0;
  /* A fresh nonce per message, as a caller of a bare AEAD must make. */
  for (int i = 11; i >= 0 && ++s->nonce[i] == 0; i--) {
  }
  if (EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, s->nonce) != 1) return -1;
  if (EVP_EncryptUpdate(s->ctx, NULL, &len, s->aad, sizeof s->aad) != 1) return -1;
  if (EVP_EncryptUpdate(s->ctx, s->out, &len, s->in, (int)n) != 1) return -1;
  if (EVP_EncryptFinal_ex(s->ctx, s->out + len, &len) != 1) return -1;
  return EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, 16, s->tag) == 1 ? 0 : -1;
}

static int evp_open(void *p, size_t n) {
  struct evp_state *s = p;
  int len = 0;
  if (EVP_DecryptInit_ex(s->ctx, NULL, NULL, NULL, s->nonce) != 1) return -1;
  if (EVP_DecryptUpdate(s->ctx, NULL, &len, s->aad, sizeof s->aad) != 1) return -1;
  if (EVP_DecryptUpdate(s->ctx, s->in, &len, s->out, (int)n) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_TAG, 16, s->tag) != 1) return -1;
  return EVP_DecryptFinal_ex(s->ctx, s->in + len, &len) == 1 ? 0 : -1;
}

struct tiny_state {
  tinymls_context *ctx;
  uint8_t *in;
  uint8_t *out;
  size_t out_cap;
  size_t ct_len;
};

static int tiny_seal(void *p, size_t n) {
  struct tiny_state *s = p;
  return tinymls_encrypt(s->ctx, s->in, n, NULL, 0, s->out, s->out_cap, &s->ct_len) == TINYMLS_OK ? 0 : -1;
}

static int tiny_open(void *p, size_t n) {
  struct tiny_state *s = p;
  size_t len = 0;
  return tinymls_decrypt(s->ctx, s->out, s->ct_len, NULL, 0, s->in, n, &len) == TINYMLS_OK ? 0 : -1;
}

static void emit(const char *name, size_t n, double ns) {
  printf("{\"name\": \"%s\", \"size\": %zu, \"ns_per_op\": %.2f}\n", name, n, ns);
  fflush(stdout);
}

int main(void) {
  const char *q = getenv("BENCH_QUICK");
  double run_ns = (q && *q && strcmp(q, "0") != 0) ? 20e6 : 100e6;
  size_t max = SIZES[sizeof SIZES / sizeof SIZES[0] - 1];
  uint8_t *in = calloc(1, max), *out = calloc(1, max + 64);
  if (!in || !out) return 1;
  memset(in, 0x5a, max);

  uint8_t key[32];
  memset(key, 7, sizeof key);
  struct evp_state e = {.ctx = EVP_CIPHER_CTX_new(), .in = in, .out = out};
  memset(e.aad, 3, sizeof e.aad);
  if (!e.ctx || EVP_EncryptInit_ex(e.ctx, EVP_aes_256_gcm(), NULL, key, NULL) != 1) return 1;
  struct evp_state d = e;
  d.ctx = EVP_CIPHER_CTX_new();
  if (!d.ctx || EVP_DecryptInit_ex(d.ctx, EVP_aes_256_gcm(), NULL, key, NULL) != 1) return 1;

  /* Default config (rotation every 100 ms, metrics on) for encryption;
   * periodic rotation off for decryption so the one epoch stays retained. */
  tinymls_config cfg;
  tinymls_config_default(&cfg);
  struct tiny_state t = {.in = in, .out = out, .out_cap = max + 64};
  if (tinymls_context_new(&cfg, &t.ctx) != TINYMLS_OK) return 1;
  tinymls_config cfg_dec = cfg;
  cfg_dec.ratchet_period_ms = 0;
  struct tiny_state td = t;
  if (tinymls_context_new(&cfg_dec, &td.ctx) != TINYMLS_OK) return 1;

  printf("{\"name\": \"openssl_version\", \"text\": \"%s\"}\n", OpenSSL_version(OPENSSL_VERSION));
  for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
    size_t n = SIZES[i];
    emit("evp_seal", n, measure(evp_seal, &e, n, run_ns));
    d.nonce[0] = e.nonce[0];
    memcpy(d.nonce, e.nonce, sizeof d.nonce);
    memcpy(d.tag, e.tag, sizeof d.tag);
    emit("evp_open", n, measure(evp_open, &d, n, run_ns));
    emit("tinymls_encrypt", n, measure(tiny_seal, &t, n, run_ns));
    if (tiny_seal(&td, n) != 0) return 1;
    emit("tinymls_decrypt", n, measure(tiny_open, &td, n, run_ns));
  }
  tinymls_context_free(t.ctx);
  tinymls_context_free(td.ctx);
  EVP_CIPHER_CTX_free(e.ctx);
  EVP_CIPHER_CTX_free(d.ctx);
  free(in);
  free(out);
  return 0;
}
