/* Cryptographic primitives of WireGuard, named as in the whitepaper (§5.4): HASH and MAC are
 * BLAKE2s, HMAC is RFC 2104 over BLAKE2s, KDF1..3 is HKDF built on that HMAC, DH is X25519, AEAD is
 * ChaCha20-Poly1305 (IETF, nonce = 4 zero bytes || LE64 counter), XAEAD is XChaCha20-Poly1305.
 * Thin wrappers over libsodium and libb2, so that the protocol files read like the paper. */
#ifndef AWGPROXY_WG_CRYPTO_H
#define AWGPROXY_WG_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

#define WG_KEY_LEN 32
#define WG_HASH_LEN 32
#define WG_MAC_LEN 16
#define WG_AEAD_TAG_LEN 16
#define WG_XNONCE_LEN 24
#define WG_TIMESTAMP_LEN 12

/* HASH(a || b); b may be NULL with blen 0. */
void wg_hash(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen);
/* MAC(key, in): keyed BLAKE2s with a 16-byte output. */
void wg_mac(uint8_t out[WG_MAC_LEN], const uint8_t *key, size_t keylen, const void *in, size_t len);
/* HMAC-BLAKE2s(key, in), 32-byte output. */
void wg_hmac(uint8_t out[WG_HASH_LEN], const uint8_t *key, size_t keylen, const void *in,
             size_t len);
/* HKDF with chaining key ck: writes t1 and, when non-NULL, t2 and t3 (KDF1/KDF2/KDF3). The outputs
 * may alias ck. */
void wg_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[WG_HASH_LEN], const void *in,
            size_t len);

/* Clamps a Curve25519 private key in place (as WireGuard stores them). */
void wg_clamp(uint8_t priv[WG_KEY_LEN]);
void wg_pubkey(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]);
/* DH(priv, pub). False when the result is all zeros (pub of low order): the caller must reject. */
bool wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]);
/* A fresh clamped key pair from rng (ephemeral keys). */
void wg_keygen(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN], const rng_source *rng);

/* AEAD: out receives len + 16 bytes. In-place (out == pt) is allowed. */
void wg_aead_seal(uint8_t *out, const uint8_t key[WG_KEY_LEN], uint64_t counter, const uint8_t *pt,
                  size_t len, const uint8_t *ad, size_t adlen);
/* ct is len bytes including the tag; out receives len - 16 bytes. In-place allowed. On failure
 * returns false and out may have been overwritten (libsodium zeroes it). */
bool wg_aead_open(uint8_t *out, const uint8_t key[WG_KEY_LEN], uint64_t counter, const uint8_t *ct,
                  size_t len, const uint8_t *ad, size_t adlen);
void wg_xaead_seal(uint8_t *out, const uint8_t key[WG_KEY_LEN], const uint8_t nonce[WG_XNONCE_LEN],
                   const uint8_t *pt, size_t len, const uint8_t *ad, size_t adlen);
bool wg_xaead_open(uint8_t *out, const uint8_t key[WG_KEY_LEN], const uint8_t nonce[WG_XNONCE_LEN],
                   const uint8_t *ct, size_t len, const uint8_t *ad, size_t adlen);

/* TAI64N label for a wall-clock time in Unix nanoseconds. */
void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], uint64_t unix_ns);

void wg_wipe(void *p, size_t len);
/* Constant-time equality. */
bool wg_equal(const void *a, const void *b, size_t len);

#endif
