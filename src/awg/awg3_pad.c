/* AmneziaWG 3.x content padding and random trailers (spec R28-R43). */
#include "awg/awg3_pad.h"

#include "awg/obfs.h"

/* fastrand(n) of the spec: uniform in [0, n), 0 when n is 0. */
static size_t below(const rng_source *rng, uint64_t n) {
  if (n == 0) return 0;
  if (n > UINT32_MAX) n = (uint64_t)UINT32_MAX + 1;
  return rng_range(rng, 0, (uint32_t)(n - 1));
}

size_t awg3_trailer_len(const awg3_params *p, size_t base, uint32_t window, size_t room,
                        const rng_source *rng) {
  if (!p->random_trailers || window <= base) return 0;
  size_t t = below(rng, window - base);
  return t < room ? t : room;
}

/* Content padding: pick([lo, hi]), then the MTU cap of spec R30. */
static size_t content_padding(const awg3_params *p, size_t pt_len, uint32_t mtu,
                              const rng_source *rng) {
  size_t add = rng_range(rng, p->content_padding.lo, p->content_padding.hi);
  if (mtu == 0) return add;
  size_t n = pt_len <= mtu ? pt_len : pt_len % mtu;
  size_t cap = mtu - n;
  return add < cap ? add : cap;
}

/* Decisions.md #8 for the AWG 3.x sizes: without the mask our own header is what a receiver
 * tests, so step off a handshake length by one byte (down when the MTU cap forbids up). With
 * the mask every tested value is a keystream byte and nothing can be steered. */
static size_t avoid_handshake_length(const awg_params *p, size_t pt_len, size_t add, size_t cap) {
  if (p->v3.header_protection) return add;
  uint64_t base = (uint64_t)p->s[3] + WG_TRANSPORT_MIN + pt_len;
  if (!awg_transport_len_ambiguous(p, base + add)) return add;
  if (add + 1 <= cap && !awg_transport_len_ambiguous(p, base + add + 1)) return add + 1;
  if (add > 0 && !awg_transport_len_ambiguous(p, base + add - 1)) return add - 1;
  return add;
}

bool awg3_transport_padded_len(const awg_params *p, size_t pt_len, uint32_t mtu, uint32_t window,
                               const rng_source *rng, size_t *padded_len) {
  const awg3_params *v3 = &p->v3;
  size_t add, cap = SIZE_MAX;
  if (awg3_range_is_set(v3->content_padding)) {
    add = content_padding(v3, pt_len, mtu, rng);
    if (mtu) cap = pt_len <= mtu ? mtu - pt_len : mtu - pt_len % mtu;
  } else if (v3->random_trailers) {
    uint64_t base = (uint64_t)p->s[3] + WG_TRANSPORT_MIN + pt_len;
    add = window > base ? below(rng, window - base) : 0;
    cap = window > base ? window - base - 1 : 0;
  } else {
    return false;
  }
  *padded_len = pt_len + avoid_handshake_length(p, pt_len, add, cap);
  return true;
}

uint32_t awg3_window_after_send(uint32_t window, size_t datagram_len) {
  if (datagram_len > UINT32_MAX) return UINT32_MAX;
  return datagram_len > window ? (uint32_t)datagram_len : window;
}
