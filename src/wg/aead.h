/* ChaCha20-Poly1305 (RFC 8439) for the transport data path, as a keyed context: the key is
 * installed once when a keypair is created, and each packet only sets the nonce
 * (4 zero bytes || LE64 counter, as WireGuard's AEAD in wg_crypto.h).
 *
 * The backend is chosen at build time (CMake AWG_AEAD): OpenSSL 3 libcrypto (EVP, AVX2/AVX-512
 * code paths; about 2x libsodium 1.0.18 on full-size packets, see docs/benchmarks.md) or
 * libsodium. This file pair is the only place that knows which; the output is identical byte for
 * byte (tests/unit/test_wg_aead.c seals with one and opens with the other). Handshake AEADs stay
 * on wg_aead_seal/open: few per handshake, nothing to gain from a key schedule.
 *
 * Ownership: the caller owns the context from wg_aead_ctx_new to wg_aead_ctx_free, which wipes
 * the key material. A context is not thread-safe (each packet re-initialises it). */
#ifndef AWGPROXY_WG_AEAD_H
#define AWGPROXY_WG_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wg/wg_crypto.h"

/* Largest plaintext a context seals or opens: bounded so that every length fits the backends'
 * int-sized lengths with room for the tag. Transport packets are far below it. */
#define WG_AEAD_MAX_LEN (1u << 30)

typedef struct wg_aead_ctx wg_aead_ctx;

/* A context keyed with key (copied: the caller wipes its own copy). NULL when memory is short. */
wg_aead_ctx *wg_aead_ctx_new(const uint8_t key[WG_KEY_LEN]);
/* Wipes the key and frees the context. NULL is allowed. */
void wg_aead_ctx_free(wg_aead_ctx *ctx);

/* Seals len bytes of pt into out: len bytes of ciphertext followed by the 16-byte tag. out may
 * equal pt (in place); other overlaps are not allowed. ad may be NULL with adlen 0. False only for
 * len or adlen above WG_AEAD_MAX_LEN or a backend failure; out is then unspecified. */
bool wg_aead_ctx_seal(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                      size_t len, const uint8_t *ad, size_t adlen);
/* Seals pt (pt_len bytes) followed by padded_len - pt_len zero bytes into out: padded_len bytes
 * of ciphertext, then the tag. The zeros are never read from memory, so pt need not be followed
 * by room: the transport path seals straight from the caller's packet into the send batch,
 * without copying it there first. out may equal pt; other overlaps are not allowed. False as
 * wg_aead_ctx_seal, or when padded_len < pt_len. */
bool wg_aead_ctx_seal_padded(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *pt,
                             size_t pt_len, size_t padded_len);
/* Bytes of room in front of out and behind its tag that wg_aead_ctx_seal_padded_room borrows. */
#define WG_AEAD_ROOM 64
/* As wg_aead_ctx_seal_padded, a copy less per packet: out is preceded by WG_AEAD_ROOM bytes and
 * its tag followed by WG_AEAD_ROOM bytes that are addressable and the caller's. The call runs
 * ChaCha20 over the Poly1305 key block and the packet in one pass in place, using that room, and
 * puts its bytes back before it returns (nothing else may use them meanwhile). pt may equal out;
 * otherwise it must not overlap out's packet, tag or room. For the transport's send batch, whose
 * carriers all give that room (dgram_carrier.h, DGRAM_CARRIER_ROOM). */
bool wg_aead_ctx_seal_padded_room(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out,
                                  const uint8_t *pt, size_t pt_len, size_t padded_len);
/* Opens ct (len bytes, tag included) into out (len - 16 bytes), which may equal ct. False when
 * the tag does not verify or len < 16; out is then zeroed, so that no unauthenticated plaintext
 * is left behind. */
bool wg_aead_ctx_open(wg_aead_ctx *ctx, uint64_t counter, uint8_t *out, const uint8_t *ct,
                      size_t len, const uint8_t *ad, size_t adlen);

/* "openssl" or "sodium": the backend this build uses (for logs and benchmarks). */
const char *wg_aead_backend(void);

#endif
