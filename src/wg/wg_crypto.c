#include "wg/wg_crypto.h"

#include <blake2.h>
#include <sodium.h>
#include <string.h>

#define BLAKE2S_BLOCK 64

void wg_hash(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen) {
  blake2s_state s;
  blake2s_init(&s, WG_HASH_LEN);
  blake2s_update(&s, a, alen);
  if (blen) blake2s_update(&s, b, blen);
  blake2s_final(&s, out, WG_HASH_LEN);
  sodium_memzero(&s, sizeof s);
}

void wg_mac(uint8_t out[WG_MAC_LEN], const uint8_t *key, size_t keylen, const void *in,
            size_t len) {
  blake2s_state s;
  blake2s_init_key(&s, WG_MAC_LEN, key, keylen);
  blake2s_update(&s, in, len);
  blake2s_final(&s, out, WG_MAC_LEN);
  sodium_memzero(&s, sizeof s);
}

/* RFC 2104: H((K ^ opad) || H((K ^ ipad) || m)) with BLAKE2s' 64-byte block. */
void wg_hmac(uint8_t out[WG_HASH_LEN], const uint8_t *key, size_t keylen, const void *in,
             size_t len) {
  uint8_t block[BLAKE2S_BLOCK] = {0}, inner[WG_HASH_LEN];
  blake2s_state s;
  if (keylen > BLAKE2S_BLOCK) {
    wg_hash(block, key, keylen, NULL, 0);
  } else if (keylen) {
    memcpy(block, key, keylen);
  }
  for (size_t i = 0; i < sizeof block; i++) block[i] ^= 0x36;
  blake2s_init(&s, WG_HASH_LEN);
  blake2s_update(&s, block, sizeof block);
  if (len) blake2s_update(&s, in, len);
  blake2s_final(&s, inner, sizeof inner);
  for (size_t i = 0; i < sizeof block; i++) block[i] ^= 0x36 ^ 0x5c;
  blake2s_init(&s, WG_HASH_LEN);
  blake2s_update(&s, block, sizeof block);
  blake2s_update(&s, inner, sizeof inner);
  blake2s_final(&s, out, WG_HASH_LEN);
  sodium_memzero(block, sizeof block);
  sodium_memzero(inner, sizeof inner);
  sodium_memzero(&s, sizeof s);
}

/* HKDF: PRK = HMAC(ck, in); T1 = HMAC(PRK, 0x1); Tn = HMAC(PRK, Tn-1 || n). */
void wg_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[WG_HASH_LEN], const void *in,
            size_t len) {
  uint8_t prk[WG_HASH_LEN], t[WG_HASH_LEN + 1];
  uint8_t *outs[3] = {t1, t2, t3};
  wg_hmac(prk, ck, WG_HASH_LEN, in, len);
  size_t tlen = 0;
  for (uint8_t n = 1; n <= 3 && outs[n - 1]; n++) {
    t[tlen] = n;
    wg_hmac(t, prk, sizeof prk, t, tlen + 1);
    tlen = WG_HASH_LEN;
    memcpy(outs[n - 1], t, WG_HASH_LEN);
  }
  sodium_memzero(prk, sizeof prk);
  sodium_memzero(t, sizeof t);
}

void wg_clamp(uint8_t priv[WG_KEY_LEN]) {
  priv[0] &= 248;
  priv[31] = (uint8_t)((priv[31] & 127) | 64);
}

void wg_pubkey(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]) {
  crypto_scalarmult_curve25519_base(pub, priv);
}

bool wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]) {
  /* libsodium returns -1 for an all-zero shared secret (low-order point). */
  return crypto_scalarmult_curve25519(out, priv, pub) == 0;
}

void wg_keygen(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN], const rng_source *rng) {
  rng_bytes(rng, priv, WG_KEY_LEN);
  wg_clamp(priv);
  wg_pubkey(pub, priv);
}

static void aead_nonce(uint8_t nonce[12], uint64_t counter) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

void wg_aead_seal(uint8_t *out, const uint8_t key[WG_KEY_LEN], uint64_t counter, const uint8_t *pt,
                  size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t nonce[12];
  aead_nonce(nonce, counter);
  crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, adlen, NULL, nonce, key);
}

bool wg_aead_open(uint8_t *out, const uint8_t key[WG_KEY_LEN], uint64_t counter, const uint8_t *ct,
                  size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t nonce[12];
  if (len < WG_AEAD_TAG_LEN) return false;
  aead_nonce(nonce, counter);
  return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, ad, adlen, nonce,
                                                   key) == 0;
}

void wg_xaead_seal(uint8_t *out, const uint8_t key[WG_KEY_LEN], const uint8_t nonce[WG_XNONCE_LEN],
                   const uint8_t *pt, size_t len, const uint8_t *ad, size_t adlen) {
  crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, adlen, NULL, nonce, key);
}

bool wg_xaead_open(uint8_t *out, const uint8_t key[WG_KEY_LEN], const uint8_t nonce[WG_XNONCE_LEN],
                   const uint8_t *ct, size_t len, const uint8_t *ad, size_t adlen) {
  if (len < WG_AEAD_TAG_LEN) return false;
  return crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, ad, adlen, nonce,
                                                    key) == 0;
}

/* TAI64 label = 2^62 + 10 (the TAI-UTC offset WireGuard uses) + seconds, big-endian, followed by
 * big-endian nanoseconds. The nanoseconds are rounded down to 2^24 ns (~16.8 ms, under the
 * 20 ms initiation rate limit) so that the timestamp does not leak a fine-grained clock. */
void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], uint64_t unix_ns) {
  uint64_t secs = UINT64_C(0x400000000000000a) + unix_ns / 1000000000u;
  uint32_t nanos = (uint32_t)(unix_ns % 1000000000u) & ~((UINT32_C(1) << 24) - 1);
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(secs >> (56 - 8 * i));
  for (int i = 0; i < 4; i++) out[8 + i] = (uint8_t)(nanos >> (24 - 8 * i));
}

void wg_wipe(void *p, size_t len) { sodium_memzero(p, len); }

bool wg_equal(const void *a, const void *b, size_t len) { return sodium_memcmp(a, b, len) == 0; }
