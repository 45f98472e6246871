/* Injectable randomness: production uses libsodium's CSPRNG; tests pass a scripted source. */
#ifndef AWGPROXY_UTIL_RNG_H
#define AWGPROXY_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  void (*fill)(void *ctx, uint8_t *buf, size_t len);
  void *ctx;
} rng_source;

/* The process-wide CSPRNG (libsodium randombytes_buf: one getrandom() call per request). Used
 * for keys and anything secret. */
const rng_source *rng_system(void);
/* A buffered ChaCha20 keystream keyed from rng_system() and re-keyed from its own output
 * every block (fast key erasure), for the bulk randomness on the packet path: paddings, header
 * draws, junk. Unpredictable like the system RNG, without a system call per packet. Not
 * thread-safe: one loop thread. */
const rng_source *rng_fast(void);
void rng_bytes(const rng_source *r, void *buf, size_t len);
/* Uniform, unbiased integer in [lo, hi] (inclusive); lo <= hi; the full 32-bit range works. */
uint32_t rng_range(const rng_source *r, uint32_t lo, uint32_t hi);

#endif
