/* The impairment pipeline: what happens to each datagram between receive and send.
 *
 *   receive -> blackhole? -> longer than mtu? -> lost? -> duplicated? (each copy on its own:)
 *     -> delay + jitter, + reorder hold-back -> (held in a min-heap until due)
 *     -> rate limiter (FIFO, bounded in bytes, tail drop) -> emit
 *
 * Held datagrams live in a fixed pool of slots allocated once (no allocation per datagram): small
 * slots (<= IMPAIR_SMALL_SLOT bytes) and a few big ones (up to DGRAM_MAX). When the pool is empty
 * a datagram that would have to wait is dropped and counted (dropped_pool).
 *
 * Ownership: a datagram not held is emitted straight from the caller's buffer (slot -1), which
 * must stay valid until the emitter has sent it. A held one is emitted with its slot index; the
 * emitter owns that slot from then on and gives it back with engine_release(). */
#ifndef IMPAIR_ENGINE_H
#define IMPAIR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "impair.h"
#include "impair_rng.h"

#define IMPAIR_SMALL_SLOT 2048u
#define IMPAIR_SLACK_NS 50000ull       /* release what is due within 50 us: fewer wake-ups */
#define IMPAIR_MAX_BURST_NS 1000000ull /* an idle rate limiter earns at most 1 ms of credit */

struct engine_slot {
  uint64_t due_ns;
  uint64_t seq; /* ties in the heap keep arrival order */
  uint8_t *data;
  uint32_t len;
  int32_t next; /* free list or rate FIFO */
  uint8_t dir;
  uint8_t big;
};

struct engine_fifo {
  int32_t head, tail;
  uint64_t bytes;
  uint64_t next_free_ns; /* when the emulated link finishes sending what it already sent */
};

typedef void (*engine_emit_fn)(void *ctx, int dir, const uint8_t *data, uint32_t len, int32_t slot);

struct engine {
  struct impair_settings set[DIR_COUNT];
  struct impair_counters cnt[DIR_COUNT];
  uint64_t held[DIR_COUNT]; /* slots in use per direction (heap + FIFO + being sent) */
  struct impair_rng rng[DIR_COUNT];
  struct engine_slot *slots;
  uint8_t *memory;
  int32_t n_slots, n_small;
  int32_t free_small, free_big;
  int32_t *heap; /* slot indices, a binary min-heap on (due_ns, seq) */
  int32_t heap_len;
  struct engine_fifo fifo[DIR_COUNT];
  uint64_t seq;
  engine_emit_fn emit;
  void *emit_ctx;
};

/* n_small slots of IMPAIR_SMALL_SLOT bytes and n_big of DGRAM_MAX. 0 on success. */
int engine_init(struct engine *e, int32_t n_small, int32_t n_big, uint64_t seed,
                engine_emit_fn emit, void *emit_ctx);
void engine_free(struct engine *e);

/* One received datagram of direction dir at time now (CLOCK_MONOTONIC ns). */
void engine_input(struct engine *e, int dir, const uint8_t *data, uint32_t len, uint64_t now);
/* Releases what is due by now: heap -> rate limiter -> emit. */
void engine_run(struct engine *e, uint64_t now);
/* When engine_run has something to do next (UINT64_MAX: nothing held). */
uint64_t engine_next_due(const struct engine *e);
/* Gives a slot emitted with an index back to the pool (the emitter's side of the hand-off). */
void engine_release(struct engine *e, int32_t slot);

#endif
