/* A small deterministic PRNG for the relay's random choices (xoshiro256**, seeded through
 * splitmix64), so that --seed reproduces a run. Not for cryptography. */
#ifndef IMPAIR_RNG_H
#define IMPAIR_RNG_H

#include <stdint.h>

struct impair_rng {
  uint64_t s[4];
};

static inline uint64_t impair_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline void impair_rng_seed(struct impair_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = impair_splitmix64(&seed);
}

static inline uint64_t impair_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t impair_rng_next(struct impair_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = impair_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = impair_rotl(s[3], 45);
  return result;
}

/* Uniform in [0, 1). */
static inline double impair_rng_unit(struct impair_rng *r) {
  return (double)(impair_rng_next(r) >> 11) * 0x1.0p-53;
}

/* True with probability p (never draws when p <= 0, so an unused impairment does not shift the
 * sequence of the others). */
static inline int impair_rng_chance(struct impair_rng *r, double p) {
  return p > 0 && impair_rng_unit(r) < p;
}

#endif
