/* QUIC's 1-RTT packets protected by the tunnel alone (quic_protect.h). */
#include "quic/quic_protect.h"

#include <ngtcp2/ngtcp2_crypto.h>
#include <string.h>

#include "quic/quic_internal.h"
#include "quic/quic_tls.h"

static struct quic_conn *g_active; /* the connection whose ngtcp2 call is running */

struct quic_conn *quic_protect_enter(struct quic_conn *c) {
  struct quic_conn *prev = g_active;
  g_active = c;
  return prev;
}

void quic_protect_leave(struct quic_conn *prev) { g_active = prev; }

/* Whether the packet whose header is aad gets the tunnel's scheme: a short header (1-RTT) of a
 * connection on the tunnel's protection (QUIC_ALPN_TUNNEL). The agreement is read from the TLS
 * session once it is known, which is before the first 1-RTT packet either way (the server chose it
 * reading the ClientHello; the client reads it in EncryptedExtensions, before the Finished that
 * brings its 1-RTT keys). */
static bool tunnel_scheme(const uint8_t *aad, size_t aadlen) {
  quic_conn *c = g_active;
  if (!c || !aadlen || (aad[0] & 0x80)) return false;
  if (c->protection == QC_PROTECT_UNKNOWN && c->tls) {
    int agreed = quic_tls_tunnel_protected(c->tls); /* asked once, then remembered */
    c->protection = agreed < 0 ? QC_PROTECT_UNKNOWN : agreed ? QC_PROTECT_TUNNEL : QC_PROTECT_QUIC;
  }
  return c->protection == QC_PROTECT_TUNNEL;
}

/* The tunnel's tag: what a 1-RTT packet carries where the AEAD's tag would be. It is the packet's
 * nonce (the 1-RTT IV of the current key phase XOR the full 62-bit packet number, RFC 9001
 * §5.3), zero-padded to the AEAD's tag size.
 *
 * The tunnel authenticates every byte on the wire, but not what the receiver infers: a short
 * header carries only the low 1 to 4 bytes of the packet number, and the receiver rebuilds the
 * full number from the largest it has seen (RFC 9000 §17.1, Appendix A.3). A packet that arrives
 * late by more than half that window (e.g. one with a 1-byte number, overtaken by 129 to 255 of
 * its successors under loss and reordering) is rebuilt to the wrong, higher number. With AEAD the
 * nonce then differs from the sender's and the packet fails to open, which makes it a plain loss;
 * a tag that did not depend on the number (all zero, as awgproxy/2 had) let it through under
 * that number: the receiver acknowledged a packet the peer had not sent (PROTOCOL_VIOLATION,
 * the connection is closed) or, had the peer sent it, later dropped the real one as a duplicate
 * whose data would never be resent. ngtcp2 builds the nonce from the number it decoded, so
 * comparing nonces rejects exactly those packets, and a packet tried with the wrong key phase's
 * IV too. The IV is no secret worth keeping here: it protects nothing else, the packet's payload
 * travels as it is, and both are visible only inside the tunnel. */
static void tunnel_tag(uint8_t *tag, size_t taglen, const uint8_t *nonce, size_t noncelen) {
  /* TLS 1.3's AEADs have 12-byte nonces and 16-byte tags; the packet number is in the nonce's
   * last 8 bytes, so those are the ones kept should a nonce ever be longer than the tag. */
  size_t n = noncelen < taglen ? noncelen : taglen;
  memcpy(tag, nonce + noncelen - n, n);
  memset(tag + n, 0, taglen - n);
}

int quic_protect_encrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                         const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *plaintext,
                         size_t plaintextlen, const uint8_t *nonce, size_t noncelen,
                         const uint8_t *aad, size_t aadlen) {
  if (!tunnel_scheme(aad, aadlen))
    return ngtcp2_crypto_encrypt_cb(dest, aead, aead_ctx, plaintext, plaintextlen, nonce, noncelen,
                                    aad, aadlen);
  memmove(dest, plaintext, plaintextlen);
  tunnel_tag(dest + plaintextlen, aead->max_overhead, nonce, noncelen);
  return 0;
}

int quic_protect_decrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                         const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *ciphertext,
                         size_t ciphertextlen, const uint8_t *nonce, size_t noncelen,
                         const uint8_t *aad, size_t aadlen) {
  if (!tunnel_scheme(aad, aadlen))
    return ngtcp2_crypto_decrypt_cb(dest, aead, aead_ctx, ciphertext, ciphertextlen, nonce,
                                    noncelen, aad, aadlen);
  size_t taglen = aead->max_overhead;
  uint8_t want[64];
  if (ciphertextlen < taglen || taglen > sizeof want) return NGTCP2_ERR_DECRYPT;
  tunnel_tag(want, taglen, nonce, noncelen);
  /* A different tag: a packet whose number was rebuilt wrong (see tunnel_tag), a stateless reset
   * (its token), or garbage. ngtcp2 drops it as it would an AEAD failure. */
  const uint8_t *tag = ciphertext + ciphertextlen - taglen;
  uint8_t diff = 0;
  for (size_t i = 0; i < taglen; i++) diff |= tag[i] ^ want[i];
  if (diff) return NGTCP2_ERR_DECRYPT;
  memmove(dest, ciphertext, ciphertextlen - taglen);
  return 0;
}
