#include "util/rng.h"

#include <sodium.h>

static void system_fill(void *ctx, uint8_t *buf, size_t len) {
  (void)ctx;
  randombytes_buf(buf, len);
}

static const awg_rng system_rng = {system_fill, NULL};

const awg_rng *awg_rng_system(void) { return &system_rng; }

void awg_rng_bytes(const awg_rng *r, void *buf, size_t len) {
  if (len) r->fill(r->ctx, buf, len);
}

uint32_t awg_rng_range(const awg_rng *r, uint32_t lo, uint32_t hi) {
  uint64_t span = (uint64_t)hi - lo + 1; /* 1 .. 2^32, computed in 64 bits (no wrap) */
  /* Rejection sampling: accept values below the largest multiple of span. */
  uint64_t limit = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % span);
  for (;;) {
    uint32_t v;
    awg_rng_bytes(r, &v, sizeof v);
    if ((uint64_t)v < limit) return (uint32_t)(lo + (uint64_t)v % span);
  }
}
