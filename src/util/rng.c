#include "util/rng.h"

#include <sodium.h>
#include <string.h>

static void system_fill(void *ctx, uint8_t *buf, size_t len) {
  (void)ctx;
  randombytes_buf(buf, len);
}

static const rng_source system_rng = {system_fill, NULL};

const rng_source *rng_system(void) { return &system_rng; }

/* Fast key erasure: each 4 KiB block of ChaCha20 output starts with the next key, which is
 * wiped from the buffer before the rest is handed out, so past output cannot be recomputed. */
#define FAST_BLOCK 4096
static struct {
  uint8_t key[crypto_stream_chacha20_ietf_KEYBYTES];
  uint8_t buf[FAST_BLOCK];
  size_t pos;
  int seeded;
} fast;

static void fast_refill(void) {
  static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
  if (!fast.seeded) randombytes_buf(fast.key, sizeof fast.key), fast.seeded = 1;
  crypto_stream_chacha20_ietf(fast.buf, FAST_BLOCK, nonce, fast.key);
  memcpy(fast.key, fast.buf, sizeof fast.key);
  sodium_memzero(fast.buf, sizeof fast.key);
  fast.pos = sizeof fast.key;
}

static void fast_fill(void *ctx, uint8_t *buf, size_t len) {
  (void)ctx;
  while (len) {
    if (fast.pos == FAST_BLOCK || !fast.seeded) fast_refill();
    size_t n = FAST_BLOCK - fast.pos < len ? FAST_BLOCK - fast.pos : len;
    memcpy(buf, fast.buf + fast.pos, n);
    sodium_memzero(fast.buf + fast.pos, n);
    fast.pos += n;
    buf += n;
    len -= n;
  }
}

static const rng_source fast_rng = {fast_fill, NULL};

const rng_source *rng_fast(void) { return &fast_rng; }

void rng_bytes(const rng_source *r, void *buf, size_t len) {
  if (len) r->fill(r->ctx, buf, len);
}

uint32_t rng_range(const rng_source *r, uint32_t lo, uint32_t hi) {
  uint64_t span = (uint64_t)hi - lo + 1; /* 1 .. 2^32, computed in 64 bits (no wrap) */
  /* Rejection sampling: accept values below the largest multiple of span. */
  uint64_t limit = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % span);
  for (;;) {
    uint32_t v;
    rng_bytes(r, &v, sizeof v);
    if ((uint64_t)v < limit) return (uint32_t)(lo + (uint64_t)v % span);
  }
}
