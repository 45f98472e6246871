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
 * connection on awgproxy/2. The agreement is read from the TLS session once it is known, which
 * is before the first 1-RTT packet either way (the server chose it reading the ClientHello; the
 * client reads it in EncryptedExtensions, before the Finished that brings its 1-RTT keys). */
static bool tunnel_scheme(const uint8_t *aad, size_t aadlen) {
  quic_conn *c = g_active;
  if (!c || !aadlen || (aad[0] & 0x80)) return false;
  if (c->protection == QC_PROTECT_UNKNOWN && c->tls) {
    int agreed = quic_tls_tunnel_protected(c->tls); /* asked once, then remembered */
    c->protection = agreed < 0 ? QC_PROTECT_UNKNOWN : agreed ? QC_PROTECT_TUNNEL : QC_PROTECT_QUIC;
  }
  return c->protection == QC_PROTECT_TUNNEL;
}

int quic_protect_encrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                         const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *plaintext,
                         size_t plaintextlen, const uint8_t *nonce, size_t noncelen,
                         const uint8_t *aad, size_t aadlen) {
  if (!tunnel_scheme(aad, aadlen))
    return ngtcp2_crypto_encrypt_cb(dest, aead, aead_ctx, plaintext, plaintextlen, nonce, noncelen,
                                    aad, aadlen);
  memmove(dest, plaintext, plaintextlen);
  memset(dest + plaintextlen, 0, aead->max_overhead);
  return 0;
}

int quic_protect_decrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                         const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *ciphertext,
                         size_t ciphertextlen, const uint8_t *nonce, size_t noncelen,
                         const uint8_t *aad, size_t aadlen) {
  if (!tunnel_scheme(aad, aadlen))
    return ngtcp2_crypto_decrypt_cb(dest, aead, aead_ctx, ciphertext, ciphertextlen, nonce,
                                    noncelen, aad, aadlen);
  size_t tag = aead->max_overhead;
  if (ciphertextlen < tag) return NGTCP2_ERR_DECRYPT;
  uint8_t any = 0;
  for (size_t i = ciphertextlen - tag; i < ciphertextlen; i++) any |= ciphertext[i];
  if (any) return NGTCP2_ERR_DECRYPT; /* not ours: a stateless reset, or garbage */
  memmove(dest, ciphertext, ciphertextlen - tag);
  return 0;
}
