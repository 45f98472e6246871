/* A deterministic rng_source for tests: a seeded stream (libsodium's deterministic generator), so
 * keys, indices and jitter are reproducible from run to run. */
#ifndef AWGPROXY_TEST_DET_RNG_H
#define AWGPROXY_TEST_DET_RNG_H

#include <stdint.h>

#include "util/rng.h"

typedef struct {
  rng_source rng; /* pass &d->rng */
  uint64_t seed;
  uint64_t counter;
} det_rng;

void det_rng_init(det_rng *d, uint64_t seed);

#endif
