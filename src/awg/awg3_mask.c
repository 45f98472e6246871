/* AmneziaWG 3.x header protection and classification (spec R13-R27). */
#include "awg/awg3_mask.h"

#include <sodium.h>
#include <string.h>

/* Unpadded WireGuard sizes of the three handshake kinds, indexed by kind - 1. */
static const size_t kHandshakeSize[3] = {WG_INIT_SIZE, WG_RESPONSE_SIZE, WG_COOKIE_SIZE};

void awg3_mask(const awg3_params *p, uint8_t *datagram, size_t offset, size_t n) {
  if (!p->header_protection || n == 0) return;
  /* libsodium's IETF ChaCha20 is RFC 8439's: 96-bit nonce, 32-bit counter, here starting at 0.
   * The nonce bytes lie before offset, so reading and XORing the same buffer is safe. */
  uint8_t nonce[AWG3_HP_NONCE_LEN];
  memcpy(nonce, datagram, sizeof nonce);
  crypto_stream_chacha20_ietf_xor_ic(datagram + offset, datagram + offset, n, nonce, 0, p->hp_key);
}

void awg3_type_mask(const awg3_params *p, const uint8_t *datagram, uint8_t out[4]) {
  memset(out, 0, 4);
  if (!p->header_protection) return;
  uint8_t zero[4] = {0};
  crypto_stream_chacha20_ietf_xor_ic(out, zero, 4, datagram, 0, p->hp_key);
}

static uint32_t masked_le32(const uint8_t *at, const uint8_t tm[4]) {
  return (uint32_t)(at[0] ^ tm[0]) | (uint32_t)(at[1] ^ tm[1]) << 8 |
         (uint32_t)(at[2] ^ tm[2]) << 16 | (uint32_t)(at[3] ^ tm[3]) << 24;
}

/* Size test of spec R23 for handshake kind k (0-based). */
static bool handshake_fits(const awg_params *p, int k, size_t len) {
  uint64_t base = (uint64_t)p->s[k] + kHandshakeSize[k];
  return (uint64_t)len == base || (p->v3.random_trailers && (uint64_t)len > base);
}

static awg_msg_kind hit(awg_msg_kind kind, uint8_t *d, size_t off, size_t n, const awg3_params *v3,
                        const uint8_t **msg, size_t *msg_len, size_t masked) {
  awg3_mask(v3, d, off, masked);
  *msg = d + off;
  *msg_len = n;
  return kind;
}

awg_msg_kind awg3_classify(const awg_params *p, uint8_t *d, size_t len, const uint8_t **msg,
                           size_t *msg_len, int *bare_keepalive) {
  const awg3_params *v3 = &p->v3;
  if (!v3->header_protection && !v3->random_trailers)
    return awg_classify(p, d, len, msg, msg_len, bare_keepalive);
  const uint8_t *m_unused;
  size_t n_unused;
  int b_unused;
  if (msg == NULL) msg = &m_unused;
  if (msg_len == NULL) msg_len = &n_unused;
  if (bare_keepalive == NULL) bare_keepalive = &b_unused;
  *msg = NULL;
  *msg_len = 0;
  *bare_keepalive = 0;
  if (d == NULL || len < WG_TRANSPORT_MIN) return AWG_MSG_UNKNOWN;
  uint8_t tm[4];
  awg3_type_mask(v3, d, tm);
  for (int k = 0; k < 3; k++) {
    if (!handshake_fits(p, k, len) || !awg_hrange_contains(p->h[k], masked_le32(d + p->s[k], tm)))
      continue;
    return hit((awg_msg_kind)(k + 1), d, p->s[k], kHandshakeSize[k], v3, msg, msg_len,
               kHandshakeSize[k]);
  }
  uint64_t s4 = p->s[3];
  if ((uint64_t)len >= s4 + WG_TRANSPORT_MIN &&
      awg_hrange_contains(p->h[3], masked_le32(d + s4, tm)))
    return hit(AWG_MSG_TRANSPORT, d, (size_t)s4, len - (size_t)s4, v3, msg, msg_len,
               WG_TRANSPORT_HEADER);
  /* An AWG 2.0 sender's bare 32-byte keepalive (decisions.md #1) can only be recognised when the
   * header is not masked. */
  if (!v3->header_protection && s4 > 0 && len == WG_TRANSPORT_MIN &&
      awg_hrange_contains(p->h[3], masked_le32(d, tm))) {
    *bare_keepalive = 1;
    return hit(AWG_MSG_TRANSPORT, d, 0, len, v3, msg, msg_len, 0);
  }
  return AWG_MSG_UNKNOWN;
}
