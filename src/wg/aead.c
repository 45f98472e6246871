#include "wg/aead.h"

#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 12

static void transport_nonce(uint8_t nonce[NONCE_LEN], uint64_t counter) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static bool lengths_ok(size_t len, size_t adlen) {
  return len <= WG_AEAD_MAX_LEN && adlen <= WG_AEAD_MAX_LEN;
}

#if defined(AWG_AEAD_OPENSSL)

/* EVP_CIPHER_meth_dup is deprecated since 3.0 (see keyed_cipher for why it is used). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/err.h>
#include <openssl/evp.h>

/* One EVP context keyed once; per packet EVP_CipherInit_ex gets only the nonce and the direction
 * (cipher and key NULL: no fetch, no key setup), so the same context seals and opens.
 *
 * Which implementation sits behind the context: OpenSSL 3 routes EVP_chacha20_poly1305() to its
 * provider, where every packet pays for OSSL_PARAM lookups by name (the IV length on each init,
 * the tag on each get/set): about 100 ns a packet, 10 % of a 1420-byte seal and 25 % of a 64-byte
 * one (bench/bench_transport aead). A copy of the cipher method (EVP_CIPHER_meth_dup) is an
 * application method to EVP, which then calls OpenSSL's built-in ChaCha20-Poly1305 functions
 * directly: the same assembly, none of the parameter plumbing. The copy is owned by the context.
 * Should the copy fail, the provider path is used: slower, same bytes. */
struct wg_aead_ctx {
  EVP_CIPHER_CTX *evp;
  EVP_CIPHER *method; /* owned copy of EVP_chacha20_poly1305(), or NULL (provider path) */
};

const char *wg_aead_backend(void) { return "openssl"; }

static const EVP_CIPHER *keyed_cipher(wg_aead_ctx *ctx) {
  ctx->method = EVP_CIPHER_meth_dup(EVP_chacha20_poly1305());
  return ctx->method ? ctx->method : EVP_chacha20_poly1305();
}

wg_aead_ctx *wg_aead_ctx_new(const uint8_t key[WG_KEY_LEN]) {
  wg_aead_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->evp = EVP_CIPHER_CTX_new();
  if (!ctx->evp || EVP_CipherInit_ex(ctx->evp, keyed_cipher(ctx), NULL, key, NULL, 1) != 1) {
    wg_aead_ctx_free(ctx);
    ERR_clear_error();
    return NULL;
  }
  return ctx;
}

void wg_aead_ctx_free(wg_aead_ctx *ctx) {
  if (!ctx) return;
  /* Freeing the EVP context cleanses the cipher state (key, Poly1305 state) on either path. */
  EVP_CIPHER_CTX_free(ctx->evp);
  EVP_CIPHER_meth_free(ctx->method);
  free(ctx);
}

/* Nonce, direction and AD: the state every packet starts from. */
static bool start_packet(EVP_CIPHER_CTX *evp, uint64_t counter, int enc, const uint8_t *ad,
                         size_t adlen) {
  uint8_t nonce[NONCE_LEN];
  int n;
  transport_nonce(nonce, counter);
  if (EVP_CipherInit_ex(evp, NULL, NULL, NULL, nonce, enc) != 1) return false;
  return adlen == 0 || EVP_CipherUpdate(evp, NULL, &n, ad, (int)adlen) == 1;
}

static bool tag_ctrl(EVP_CIPHER_CTX *evp, int op, uint8_t tag[WG_AEAD_TAG_LEN]) {
  return EVP_CIPHER_CTX_ctrl(evp, op, WG_AEAD_TAG_LEN, tag) == 1;
}

bool wg_aead_ctx_seal(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                      size_t len, const uint8_t *ad, size_t adlen) {
  int n = 0, fin = 0;
  bool ok;
  if (!lengths_ok(len, adlen)) return false;
  ok = start_packet(ctx->evp, counter, 1, ad, adlen) &&
       EVP_CipherUpdate(ctx->evp, out, &n, pt, (int)len) == 1 &&
       EVP_CipherFinal_ex(ctx->evp, out + n, &fin) == 1 && (size_t)n + (size_t)fin == len &&
       tag_ctrl(ctx->evp, EVP_CTRL_AEAD_GET_TAG, out + len);
  if (!ok) ERR_clear_error();
  return ok;
}

/* The cipher streams: the packet's bytes, then its zero padding encrypted in place in out. */
bool wg_aead_ctx_seal_padded(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                             size_t pt_len, size_t padded_len) {
  int n = 0, m = 0, fin = 0;
  bool ok;
  if (padded_len < pt_len || !lengths_ok(padded_len, 0)) return false;
  size_t pad = padded_len - pt_len;
  memset(out + pt_len, 0, pad);
  ok = start_packet(ctx->evp, counter, 1, NULL, 0) &&
       (!pt_len || EVP_CipherUpdate(ctx->evp, out, &n, pt, (int)pt_len) == 1) &&
       (!pad || EVP_CipherUpdate(ctx->evp, out + n, &m, out + pt_len, (int)pad) == 1) &&
       EVP_CipherFinal_ex(ctx->evp, out + n + m, &fin) == 1 &&
       (size_t)n + (size_t)m + (size_t)fin == padded_len &&
       tag_ctrl(ctx->evp, EVP_CTRL_AEAD_GET_TAG, out + padded_len);
  if (!ok) ERR_clear_error();
  return ok;
}

bool wg_aead_ctx_open(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *ct,
                      size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t tag[WG_AEAD_TAG_LEN];
  int n = 0, fin = 0;
  size_t pt_len;
  bool ok;
  if (len < WG_AEAD_TAG_LEN || !lengths_ok(len - WG_AEAD_TAG_LEN, adlen)) return false;
  pt_len = len - WG_AEAD_TAG_LEN;
  /* A copy: the ctrl takes a writable buffer, ct is const. */
  memcpy(tag, ct + pt_len, WG_AEAD_TAG_LEN);
  ok = start_packet(ctx->evp, counter, 0, ad, adlen) &&
       EVP_CipherUpdate(ctx->evp, out, &n, ct, (int)pt_len) == 1 &&
       tag_ctrl(ctx->evp, EVP_CTRL_AEAD_SET_TAG, tag) &&
       EVP_CipherFinal_ex(ctx->evp, out + n, &fin) == 1 && (size_t)n + (size_t)fin == pt_len;
  if (!ok) {
    /* OpenSSL decrypts while it authenticates: do not leave forged plaintext behind. */
    wg_wipe(out, pt_len);
    ERR_clear_error();
  }
  return ok;
}

#elif defined(AWG_AEAD_SODIUM)

#include <sodium.h>

struct wg_aead_ctx {
  uint8_t key[WG_KEY_LEN];
};

const char *wg_aead_backend(void) { return "sodium"; }

wg_aead_ctx *wg_aead_ctx_new(const uint8_t key[WG_KEY_LEN]) {
  wg_aead_ctx *ctx = malloc(sizeof *ctx);
  if (ctx) memcpy(ctx->key, key, WG_KEY_LEN);
  return ctx;
}

void wg_aead_ctx_free(wg_aead_ctx *ctx) {
  if (!ctx) return;
  wg_wipe(ctx->key, sizeof ctx->key);
  free(ctx);
}

bool wg_aead_ctx_seal(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                      size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t nonce[NONCE_LEN];
  if (!lengths_ok(len, adlen)) return false;
  transport_nonce(nonce, counter);
  return crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, adlen, NULL, nonce,
                                                   ctx->key) == 0;
}

/* libsodium's one-shot call wants the padded plaintext in one piece: it is put together in out. */
bool wg_aead_ctx_seal_padded(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                             size_t pt_len, size_t padded_len) {
  if (padded_len < pt_len || !lengths_ok(padded_len, 0)) return false;
  if (out != pt && pt_len) memcpy(out, pt, pt_len);
  memset(out + pt_len, 0, padded_len - pt_len);
  return wg_aead_ctx_seal(ctx, counter, out, out, padded_len, NULL, 0);
}

bool wg_aead_ctx_open(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *ct,
                      size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t nonce[NONCE_LEN];
  if (len < WG_AEAD_TAG_LEN || !lengths_ok(len - WG_AEAD_TAG_LEN, adlen)) return false;
  transport_nonce(nonce, counter);
  /* libsodium verifies before it decrypts and zeroes out on failure. */
  return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, ad, adlen, nonce,
                                                   ctx->key) == 0;
}

#else
#error "AWG_AEAD_OPENSSL or AWG_AEAD_SODIUM must be defined (CMake option AWG_AEAD)"
#endif
