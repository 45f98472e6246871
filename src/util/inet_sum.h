/* The Internet checksum's one's-complement sum (RFC 1071), in the machine's byte order.
 *
 * RFC 1071's sum does not care about byte order: summing the buffer as native 16-bit words gives
 * the big-endian sum byte-swapped, so a checksum computed here is stored with memcpy, not
 * be16_store. Words are added 32 bits at a time into 64-bit accumulators, with no carry to
 * propagate until the end (2^16 = 1 modulo 2^16 - 1), which runs several times faster than
 * lwIP's own loops: lwIP takes this one as its LWIP_CHKSUM (lwipopts.h), and the QUIC
 * transport's inner UDP headers use it too (quic_ip.c). Header-only so that lwIP, built as
 * its own library, can use it without a link-order dependency on ours. */
#ifndef AWG_UTIL_INET_SUM_H
#define AWG_UTIL_INET_SUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* acc plus the native 16-bit words of p[0..len) (an odd last byte padded with a zero byte).
 * Any alignment. Keep len under 2^30 bytes per call so that nothing overflows. */
static inline uint64_t inet_sum_add(uint64_t acc, const void *data, size_t len) {
  const uint8_t *p = data;
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (; len >= 32; p += 32, len -= 32) {
    uint64_t w[4];
    memcpy(w, p, sizeof w);
    a0 += (w[0] & 0xffffffffu) + (w[0] >> 32);
    a1 += (w[1] & 0xffffffffu) + (w[1] >> 32);
    a2 += (w[2] & 0xffffffffu) + (w[2] >> 32);
    a3 += (w[3] & 0xffffffffu) + (w[3] >> 32);
  }
  acc += a0 + a1 + a2 + a3;
  for (; len >= 4; p += 4, len -= 4) {
    uint32_t w;
    memcpy(&w, p, sizeof w);
    acc += w;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, sizeof w);
    acc += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0;
    memcpy(&w, p, 1); /* the byte first in memory, as a 16-bit word would hold it */
    acc += w;
  }
  return acc;
}

/* The accumulator folded to 16 bits: the sum, not yet inverted. */
static inline uint16_t inet_sum_fold(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

/* The checksum to store (native order, store with memcpy) over acc's words. */
static inline uint16_t inet_sum_checksum(uint64_t acc) { return (uint16_t)~inet_sum_fold(acc); }

/* RFC 1624 incremental update of a stored checksum (either byte order, as long as all three
 * agree) for a 16-bit word that changed from old to new_. */
static inline uint16_t inet_sum_adjust(uint16_t sum, uint16_t old, uint16_t new_) {
  uint32_t x = (uint16_t)~sum + (uint32_t)(uint16_t)~old + new_;
  x = (x & 0xFFFF) + (x >> 16);
  x = (x & 0xFFFF) + (x >> 16);
  return (uint16_t)~x;
}

#endif
