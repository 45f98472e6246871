#include "det_rng.h"

#include <sodium.h>
#include <string.h>

static void det_fill(void *ctx, uint8_t *buf, size_t len) {
  det_rng *d = ctx;
  unsigned char seed[randombytes_SEEDBYTES] = {0};
  memcpy(seed, &d->seed, sizeof d->seed);
  memcpy(seed + 8, &d->counter, sizeof d->counter);
  d->counter++;
  randombytes_buf_deterministic(buf, len, seed);
}

void det_rng_init(det_rng *d, uint64_t seed) {
  d->rng.fill = det_fill;
  d->rng.ctx = d;
  d->seed = seed;
  d->counter = 0;
}
