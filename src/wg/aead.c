#include "wg/aead.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

#define NONCE_LEN 12

static void transport_nonce(uint8_t nonce[NONCE_LEN], uint64_t counter) {
  memset(nonce, 0, 4);
  le64_store(nonce + 4, counter);
}

static bool lengths_ok(size_t len, size_t adlen) {
  return len <= WG_AEAD_MAX_LEN && adlen <= WG_AEAD_MAX_LEN;
}

#if defined(AWG_AEAD_OPENSSL)

/* EVP_CIPHER_meth_dup is deprecated since 3.0 (the comment above struct wg_aead_ctx says why it is
 * used). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

/* Two ways to the same bytes (RFC 8439), chosen per packet.
 *
 * The one-call path, for packets up to ONE_CALL_MAX: the packet is copied behind a zero block in
 * a scratch buffer, one ChaCha20 call from block counter 0 turns that block into the Poly1305
 * key and the packet into its ciphertext (the call is rounded up to whole 64-byte blocks: what
 * lies past the packet is scratch), Poly1305 runs over AD and ciphertext, and the result is
 * copied out. Why: OpenSSL's ChaCha20-Poly1305 (EVP_chacha20_poly1305) makes three ChaCha20
 * calls per packet, one for the Poly1305 key block, one for the whole blocks and one for a
 * final partial block, and each short call costs about as much as a kilobyte of the long one
 * (its AVX-512 code computes four blocks for one). A 1392-byte packet, the default MTU's with
 * S4 = 23, sealed in ~950 ns that way and in ~740 ns here, copies included (docs/benchmarks.md,
 * "ChaCha20 in one call per packet"). The scratch is per thread (a context is not thread-safe
 * anyway) and keeps no key: the Poly1305 key block is wiped after each packet.
 *
 * The room path, for the send batch (wg_aead_ctx_seal_padded_room): the same call, in place in
 * the datagram, with the 64 bytes in front of it as the zero block. The packet is copied once,
 * into the datagram, instead of into the scratch and back out; the room's bytes are saved and
 * put back. Sealing a 1392-byte packet from a separate buffer took a median 0.95 of the
 * scratch path's time (bench/bench_transport aead, docs/benchmarks.md "A copy less per seal").
 *
 * The AEAD path, for longer packets and should the one-call set-up fail: one EVP context of
 * ChaCha20-Poly1305 keyed once; per packet EVP_CipherInit_ex gets only the nonce and the
 * direction (cipher and key NULL: no fetch, no key setup), so the same context seals and opens.
 *
 * Which implementation sits behind an EVP cipher context: OpenSSL 3 routes EVP_chacha20_poly1305()
 * and EVP_chacha20() to its provider, where every packet pays for OSSL_PARAM lookups by name (the
 * IV length on each init, the tag on each get/set): about 100 ns a packet, 10 % of a 1420-byte
 * seal and 25 % of a 64-byte one (bench/bench_transport aead). A copy of the cipher method
 * (EVP_CIPHER_meth_dup) is an application method to EVP, which then calls OpenSSL's built-in
 * functions directly: the same assembly, none of the parameter plumbing. The copies are owned by
 * the context. Should a copy fail, the provider path is used: slower, same bytes. */
#define ONE_CALL_MAX 4096
#define BLOCK 64

struct wg_aead_ctx {
  EVP_CIPHER_CTX *evp;       /* ChaCha20-Poly1305 (the AEAD path) */
  EVP_CIPHER *method;        /* owned copy of EVP_chacha20_poly1305(), or NULL (provider path) */
  EVP_CIPHER_CTX *stream;    /* ChaCha20 alone (the one-call path), or NULL: AEAD path only */
  EVP_CIPHER *stream_method; /* owned copy of EVP_chacha20(), or NULL */
  EVP_MAC_CTX *poly;         /* Poly1305, keyed per packet; NULL with stream */
};

static _Thread_local _Alignas(64) uint8_t scratch[BLOCK + ONE_CALL_MAX + BLOCK];

const char *wg_aead_backend(void) { return "openssl"; }

static const EVP_CIPHER *dup_method(const EVP_CIPHER *c, EVP_CIPHER **copy) {
  *copy = EVP_CIPHER_meth_dup(c);
  return *copy ? *copy : c;
}

/* The one-call path's ChaCha20 and Poly1305; on failure the context keeps the AEAD path only. */
static void one_call_setup(wg_aead_ctx *ctx, const uint8_t key[WG_KEY_LEN]) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
  ctx->poly = mac ? EVP_MAC_CTX_new(mac) : NULL;
  EVP_MAC_free(mac); /* the MAC context holds its own reference */
  ctx->stream = EVP_CIPHER_CTX_new();
  if (!ctx->poly || !ctx->stream ||
      EVP_CipherInit_ex(ctx->stream, dup_method(EVP_chacha20(), &ctx->stream_method), NULL, key,
                        NULL, 1) != 1) {
    EVP_MAC_CTX_free(ctx->poly);
    EVP_CIPHER_CTX_free(ctx->stream);
    EVP_CIPHER_meth_free(ctx->stream_method);
    ctx->poly = NULL, ctx->stream = NULL, ctx->stream_method = NULL;
    ERR_clear_error();
  }
}

wg_aead_ctx *wg_aead_ctx_new(const uint8_t key[WG_KEY_LEN]) {
  wg_aead_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->evp = EVP_CIPHER_CTX_new();
  if (!ctx->evp || EVP_CipherInit_ex(ctx->evp, dup_method(EVP_chacha20_poly1305(), &ctx->method),
                                     NULL, key, NULL, 1) != 1) {
    wg_aead_ctx_free(ctx);
    ERR_clear_error();
    return NULL;
  }
  one_call_setup(ctx, key);
  return ctx;
}

void wg_aead_ctx_free(wg_aead_ctx *ctx) {
  if (!ctx) return;
  /* Freeing an EVP context cleanses the cipher state (key, Poly1305 state) on either path. */
  EVP_CIPHER_CTX_free(ctx->evp);
  EVP_CIPHER_meth_free(ctx->method);
  EVP_CIPHER_CTX_free(ctx->stream);
  EVP_CIPHER_meth_free(ctx->stream_method);
  EVP_MAC_CTX_free(ctx->poly);
  free(ctx);
}

/* ---- the one-call path ------------------------------------------------------------------- */

static bool one_call(const wg_aead_ctx *ctx, size_t len) {
  return ctx->stream && len <= ONE_CALL_MAX;
}

/* Runs ChaCha20 from block 0 over buf: the zero block, then len bytes of packet rounded up to
 * whole blocks. Afterwards buf[0..32) is the Poly1305 key and buf + BLOCK the packet, encrypted
 * or decrypted. */
static bool keystream(wg_aead_ctx *ctx, uint64_t counter, uint8_t *buf, size_t len) {
  uint8_t iv[16]; /* OpenSSL's ChaCha20 IV: LE32 block counter (0), then the 12-byte nonce */
  int n = 0;
  memset(iv, 0, 4);
  transport_nonce(iv + 4, counter);
  memset(buf, 0, BLOCK);
  size_t total = BLOCK + (len + BLOCK - 1) / BLOCK * BLOCK;
  return EVP_CipherInit_ex(ctx->stream, NULL, NULL, NULL, iv, 1) == 1 &&
         EVP_CipherUpdate(ctx->stream, buf, &n, buf, (int)total) == 1 && (size_t)n == total;
}

static bool poly_update_padded(EVP_MAC_CTX *poly, const uint8_t *p, size_t len) {
  static const uint8_t zeros[16];
  return (!len || EVP_MAC_update(poly, p, len) == 1) &&
         (len % 16 == 0 || EVP_MAC_update(poly, zeros, 16 - len % 16) == 1);
}

/* RFC 8439's tag: Poly1305 keyed with key[0..32) over AD, ciphertext (each padded to 16) and
 * both lengths as LE64. */
static bool poly_tag(wg_aead_ctx *ctx, const uint8_t *key, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t len, uint8_t tag[WG_AEAD_TAG_LEN]) {
  uint8_t lens[16];
  size_t taglen = 0;
  le64_store(lens, adlen);
  le64_store(lens + 8, len);
  return EVP_MAC_init(ctx->poly, key, 32, NULL) == 1 && poly_update_padded(ctx->poly, ad, adlen) &&
         poly_update_padded(ctx->poly, ct, len) &&
         EVP_MAC_update(ctx->poly, lens, sizeof lens) == 1 &&
         EVP_MAC_final(ctx->poly, tag, &taglen, WG_AEAD_TAG_LEN) == 1 && taglen == WG_AEAD_TAG_LEN;
}

/* pt_len bytes of pt and padded_len - pt_len zeros, sealed into out (ciphertext, then tag). */
static bool seal_one_call(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                          size_t pt_len, size_t padded_len, const uint8_t *ad, size_t adlen) {
  uint8_t tag[WG_AEAD_TAG_LEN];
  if (pt_len) memcpy(scratch + BLOCK, pt, pt_len);
  memset(scratch + BLOCK + pt_len, 0, padded_len - pt_len);
  bool ok = keystream(ctx, counter, scratch, padded_len) &&
            poly_tag(ctx, scratch, ad, adlen, scratch + BLOCK, padded_len, tag);
  wg_wipe(scratch, BLOCK);
  if (!ok) return ERR_clear_error(), false;
  memcpy(out, scratch + BLOCK, padded_len);
  memcpy(out + padded_len, tag, WG_AEAD_TAG_LEN);
  return true;
}

/* As seal_one_call, without the scratch: the packet is put together in out itself (a copy less,
 * none when pt == out) and the zero block is out's room in front of it. What the call borrows
 * is put back: the room in front, and the whole blocks' overrun past the tag. */
static bool seal_in_room(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                         size_t pt_len, size_t padded_len) {
  uint8_t front[BLOCK], back[BLOCK], tag[WG_AEAD_TAG_LEN];
  uint8_t *zero = out - BLOCK;
  size_t overrun = (padded_len + BLOCK - 1) / BLOCK * BLOCK - padded_len; /* < BLOCK */
  memcpy(front, zero, BLOCK);
  memcpy(back, out + padded_len, overrun);
  if (pt_len && pt != out) memcpy(out, pt, pt_len);
  memset(out + pt_len, 0, padded_len - pt_len);
  bool ok = keystream(ctx, counter, zero, padded_len) &&
            poly_tag(ctx, zero, NULL, 0, out, padded_len, tag);
  memcpy(zero, front, BLOCK); /* also wipes the Poly1305 key */
  memcpy(out + padded_len, tag, WG_AEAD_TAG_LEN);
  if (overrun > WG_AEAD_TAG_LEN)
    memcpy(out + padded_len + WG_AEAD_TAG_LEN, back + WG_AEAD_TAG_LEN, overrun - WG_AEAD_TAG_LEN);
  if (!ok) ERR_clear_error();
  return ok;
}

/* The tag is checked against ct as it came in (out is written only after it verified). */
static bool open_one_call(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *ct,
                          size_t pt_len, const uint8_t *ad, size_t adlen) {
  uint8_t tag[WG_AEAD_TAG_LEN];
  if (pt_len) memcpy(scratch + BLOCK, ct, pt_len);
  bool ok = keystream(ctx, counter, scratch, pt_len) &&
            poly_tag(ctx, scratch, ad, adlen, ct, pt_len, tag) &&
            CRYPTO_memcmp(tag, ct + pt_len, WG_AEAD_TAG_LEN) == 0;
  wg_wipe(scratch, BLOCK);
  if (!ok) {
    wg_wipe(scratch + BLOCK, pt_len); /* forged plaintext stays nowhere */
    wg_wipe(out, pt_len);
    ERR_clear_error();
    return false;
  }
  memcpy(out, scratch + BLOCK, pt_len);
  return true;
}

/* ---- the AEAD path ----------------------------------------------------------------------- */

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
  if (one_call(ctx, len)) return seal_one_call(ctx, counter, out, pt, len, len, ad, adlen);
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
  if (one_call(ctx, padded_len))
    return seal_one_call(ctx, counter, out, pt, pt_len, padded_len, NULL, 0);
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

bool wg_aead_ctx_seal_padded_room(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out,
                                  const uint8_t *pt, size_t pt_len, size_t padded_len) {
  if (padded_len < pt_len || !lengths_ok(padded_len, 0)) return false;
  if (one_call(ctx, padded_len)) return seal_in_room(ctx, counter, out, pt, pt_len, padded_len);
  return wg_aead_ctx_seal_padded(ctx, counter, out, pt, pt_len, padded_len);
}

bool wg_aead_ctx_open(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *ct,
                      size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t tag[WG_AEAD_TAG_LEN];
  int n = 0, fin = 0;
  size_t pt_len;
  bool ok;
  if (len < WG_AEAD_TAG_LEN || !lengths_ok(len - WG_AEAD_TAG_LEN, adlen)) return false;
  pt_len = len - WG_AEAD_TAG_LEN;
  if (one_call(ctx, pt_len)) return open_one_call(ctx, counter, out, ct, pt_len, ad, adlen);
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

bool wg_aead_ctx_seal_padded_room(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out,
                                  const uint8_t *pt, size_t pt_len, size_t padded_len) {
  return wg_aead_ctx_seal_padded(ctx, counter, out, pt, pt_len, padded_len); /* no room needed */
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
