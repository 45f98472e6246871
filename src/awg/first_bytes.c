#include "awg/first_bytes.h"

#include "util/bytes.h"

static bool rtp_like(const uint8_t *d, size_t len) {
  if (len < 12 || (d[0] & 0xC0) != 0x80) return false;
  uint8_t pt = d[1] & 0x7F;
  return pt <= 34 || pt >= 96 || (d[1] >= 192 && d[1] <= 223);
}

static bool stun_like(const uint8_t *d, size_t len) {
  if (len < 20) return false;
  if (d[4] == 0x21 && d[5] == 0x12 && d[6] == 0xA4 && d[7] == 0x42) return true;
  return (d[0] & 0xC0) == 0 && (size_t)(d[2] << 8 | d[3]) + 20 == len;
}

static bool dtls_like(const uint8_t *d, size_t len) {
  return len >= 13 && d[0] >= 20 && d[0] <= 25 && d[1] == 0xFE;
}

static bool quic_like(const uint8_t *d, size_t len) {
  if (len < 7 || (d[0] & 0xC0) != 0xC0) return false;
  uint32_t v = be32_load(d + 1);
  return v == 1 || v == 0x6b3343cfu || (v & 0xFFFFFF00u) == 0xFF000000u;
}

static bool wireguard_like(const uint8_t *d, size_t len) {
  return len >= 4 && d[0] >= 1 && d[0] <= 4 && !d[1] && !d[2] && !d[3];
}

static bool skype_like(const uint8_t *d, size_t len) {
  if (len == 3) return (d[2] & 0x0F) == 0x0D;
  return len >= 16 && d[2] == 0x02 && d[0] != 0x30 && d[0] != 0x00;
}

bool awg_first_bytes_match(const uint8_t *d, size_t len) {
  return rtp_like(d, len) || stun_like(d, len) || dtls_like(d, len) || quic_like(d, len) ||
         wireguard_like(d, len) || skype_like(d, len);
}

void awg_fill_screened(const rng_source *rng, uint8_t *d, size_t n, size_t len) {
  if (!n) return;
  rng_bytes(rng, d, n);
  for (int i = 0; i < AWG_SCREEN_TRIES && awg_first_bytes_match(d, len); i++) rng_bytes(rng, d, n);
}
