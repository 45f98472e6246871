/* QUIC's 1-RTT packets protected by the tunnel alone (ALPN awgproxy/3, quic_tls.h).
 *
 * Every QUIC packet of ours travels inside the AmneziaWG tunnel, which already seals it with
 * ChaCha20-Poly1305 under keys only the two ends hold, rejects replays, and delivers it only to
 * the endpoint bound to the peer whose session carried it (the server matches a connection by
 * the inner source address, which the tunnel checked against that peer's AllowedIPs). QUIC's
 * own AES-GCM on top protects nothing more and cost 15 % of the client's CPU in a download
 * (docs/benchmarks.md). So, when both ends agreed on awgproxy/3, 1-RTT (short header) packets
 * are "sealed" by appending, where the AEAD's tag would be, the packet's nonce (which holds its
 * full packet number) zero-padded to the tag's size, and "opened" by checking it: the handshake
 * (Initial, Handshake: long headers) keeps QUIC's protection, and so does header protection (one
 * AES block per packet). The tag is what still rejects a packet whose truncated number the
 * receiver rebuilt wrong, as AEAD would (quic_protect.c). A stateless reset, random bytes to
 * this scheme, fails the tag check and is recognised as before.
 *
 * ngtcp2's encrypt and decrypt callbacks are not told which connection they work for, so the
 * glue names it around each ngtcp2 call that reads or writes packets (quic_protect_enter /
 * quic_protect_leave): one loop thread, calls may nest. */
#ifndef AWGPROXY_QUIC_QUIC_PROTECT_H
#define AWGPROXY_QUIC_QUIC_PROTECT_H

#include <ngtcp2/ngtcp2.h>

struct quic_conn;

/* Makes c the connection the crypto callbacks work for; returns the previous one, for
 * quic_protect_leave. */
struct quic_conn *quic_protect_enter(struct quic_conn *c);
void quic_protect_leave(struct quic_conn *prev);

/* ngtcp2's encrypt and decrypt callbacks: the tunnel's scheme for 1-RTT packets of a connection
 * on awgproxy/3, ngtcp2's crypto helper (GnuTLS) for everything else. */
int quic_protect_encrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                         const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *plaintext,
                         size_t plaintextlen, const uint8_t *nonce, size_t noncelen,
                         const uint8_t *aad, size_t aadlen);
int quic_protect_decrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                         const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *ciphertext,
                         size_t ciphertextlen, const uint8_t *nonce, size_t noncelen,
                         const uint8_t *aad, size_t aadlen);

#endif
