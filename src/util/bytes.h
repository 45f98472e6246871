/* Loads and stores of fixed-width integers in a given byte order, from and to byte buffers of any
 * alignment: network order (big-endian) for IP, TCP, UDP, DNS and our control messages,
 * little-endian for WireGuard's message fields. The one set every parser uses. */
#ifndef AWGPROXY_UTIL_BYTES_H
#define AWGPROXY_UTIL_BYTES_H

#include <stdint.h>

static inline uint16_t be16_load(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline void be16_store(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline uint32_t be32_load(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void be32_store(uint8_t *p, uint32_t v) {
  be16_store(p, (uint16_t)(v >> 16));
  be16_store(p + 2, (uint16_t)v);
}

static inline uint64_t be64_load(const uint8_t *p) {
  return (uint64_t)be32_load(p) << 32 | be32_load(p + 4);
}

static inline void be64_store(uint8_t *p, uint64_t v) {
  be32_store(p, (uint32_t)(v >> 32));
  be32_store(p + 4, (uint32_t)v);
}

static inline uint32_t le32_load(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void le32_store(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t le64_load(const uint8_t *p) {
  return (uint64_t)le32_load(p) | (uint64_t)le32_load(p + 4) << 32;
}

static inline void le64_store(uint8_t *p, uint64_t v) {
  le32_store(p, (uint32_t)v);
  le32_store(p + 4, (uint32_t)(v >> 32));
}

#endif
