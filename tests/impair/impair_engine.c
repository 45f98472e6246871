/* The impairment pipeline (see impair_engine.h for the stages and the slot hand-off). */
#include "impair_engine.h"

#include <stdlib.h>
#include <string.h>

void impair_settings_default(struct impair_settings *s) {
  memset(s, 0, sizeof *s);
  s->reorder_ns = MS_TO_NS(10);
  s->queue_bytes = 256u * 1024u;
}

uint64_t impair_dropped_total(const struct impair_counters *c) {
  return c->dropped_loss + c->dropped_blackhole + c->dropped_mtu + c->dropped_queue +
         c->dropped_pool + c->dropped_send + c->dropped_noclient + c->dropped_stale;
}

/* ---- the slot pool ----------------------------------------------------------------------------
 */

int engine_init(struct engine *e, int32_t n_small, int32_t n_big, uint64_t seed,
                engine_emit_fn emit, void *emit_ctx) {
  memset(e, 0, sizeof *e);
  for (int d = 0; d < DIR_COUNT; d++) {
    impair_settings_default(&e->set[d]);
    impair_rng_seed(&e->rng[d], seed + (uint64_t)d * 0x632be59bd9b4e019ull);
    e->fifo[d].head = e->fifo[d].tail = -1;
  }
  e->n_small = n_small;
  e->n_slots = n_small + n_big;
  e->emit = emit;
  e->emit_ctx = emit_ctx;
  size_t bytes = (size_t)n_small * IMPAIR_SMALL_SLOT + (size_t)n_big * (DGRAM_MAX + 1);
  /* malloc'd but not touched: pages become resident only when a slot is first used. */
  e->memory = malloc(bytes);
  e->slots = calloc((size_t)e->n_slots, sizeof *e->slots);
  e->heap = calloc((size_t)e->n_slots, sizeof *e->heap);
  if (!e->memory || !e->slots || !e->heap) {
    engine_free(e);
    return -1;
  }
  uint8_t *p = e->memory;
  e->free_small = e->free_big = -1;
  for (int32_t i = e->n_slots - 1; i >= 0; i--) {
    struct engine_slot *s = &e->slots[i];
    s->big = i >= n_small;
    s->data =
        s->big ? p + (size_t)n_small * IMPAIR_SMALL_SLOT + (size_t)(i - n_small) * (DGRAM_MAX + 1)
               : p + (size_t)i * IMPAIR_SMALL_SLOT;
    int32_t *list = s->big ? &e->free_big : &e->free_small;
    s->next = *list;
    *list = i;
  }
  return 0;
}

void engine_free(struct engine *e) {
  free(e->memory);
  free(e->slots);
  free(e->heap);
  e->memory = NULL;
  e->slots = NULL;
  e->heap = NULL;
}

/* A free slot big enough for len bytes holding a copy of data, or -1 (pool exhausted). */
static int32_t slot_take(struct engine *e, int dir, const uint8_t *data, uint32_t len) {
  int32_t *list = len <= IMPAIR_SMALL_SLOT && e->free_small >= 0 ? &e->free_small : &e->free_big;
  int32_t i = *list;
  if (i < 0) return -1;
  struct engine_slot *s = &e->slots[i];
  *list = s->next;
  s->next = -1;
  s->dir = (uint8_t)dir;
  s->len = len;
  memcpy(s->data, data, len);
  e->held[dir]++;
  return i;
}

void engine_release(struct engine *e, int32_t i) {
  if (i < 0 || i >= e->n_slots) return;
  struct engine_slot *s = &e->slots[i];
  e->held[s->dir]--;
  int32_t *list = s->big ? &e->free_big : &e->free_small;
  s->next = *list;
  *list = i;
}

/* ---- the delay heap ---------------------------------------------------------------------------
 */

static int slot_before(const struct engine *e, int32_t a, int32_t b) {
  const struct engine_slot *x = &e->slots[a], *y = &e->slots[b];
  return x->due_ns < y->due_ns || (x->due_ns == y->due_ns && x->seq < y->seq);
}

static void heap_push(struct engine *e, int32_t slot) {
  int32_t i = e->heap_len++;
  while (i > 0) {
    int32_t parent = (i - 1) / 2;
    if (!slot_before(e, slot, e->heap[parent])) break;
    e->heap[i] = e->heap[parent];
    i = parent;
  }
  e->heap[i] = slot;
}

static int32_t heap_pop(struct engine *e) {
  int32_t top = e->heap[0];
  int32_t last = e->heap[--e->heap_len];
  int32_t i = 0;
  for (;;) {
    int32_t child = 2 * i + 1;
    if (child >= e->heap_len) break;
    if (child + 1 < e->heap_len && slot_before(e, e->heap[child + 1], e->heap[child])) child++;
    if (!slot_before(e, e->heap[child], last)) break;
    e->heap[i] = e->heap[child];
    i = child;
  }
  if (e->heap_len > 0) e->heap[i] = last;
  return top;
}

/* ---- the rate limiter -------------------------------------------------------------------------
 */

static uint64_t transmit_ns(uint32_t len, uint64_t rate_bps) {
  return (uint64_t)((double)len * 1e9 / (double)rate_bps);
}

/* An idle link earns only a short burst of credit. (A backlogged one keeps all of it: when the
 * relay wakes late it sends what the link would have sent meanwhile, so the rate holds.) */
static void link_catch_up(struct engine_fifo *f, uint64_t now) {
  if (f->head < 0 && now > IMPAIR_MAX_BURST_NS && f->next_free_ns < now - IMPAIR_MAX_BURST_NS)
    f->next_free_ns = now - IMPAIR_MAX_BURST_NS;
}

static void drop_slot(struct engine *e, int32_t slot) {
  if (slot >= 0) engine_release(e, slot);
}

/* Hands a datagram that is past its delay to the rate limiter (or straight out). Takes over
 * slot (or copies data into one if it has to queue it). */
static void rate_admit(struct engine *e, int dir, const uint8_t *data, uint32_t len, int32_t slot,
                       uint64_t now) {
  struct impair_settings *s = &e->set[dir];
  struct impair_counters *c = &e->cnt[dir];
  struct engine_fifo *f = &e->fifo[dir];
  if (s->blackhole) { /* switched on while it was held */
    c->dropped_blackhole++;
    drop_slot(e, slot);
    return;
  }
  if (s->rate_bps == 0) {
    e->emit(e->emit_ctx, dir, data, len, slot);
    return;
  }
  link_catch_up(f, now);
  if (f->head < 0 && f->next_free_ns <= now + IMPAIR_SLACK_NS) {
    if (f->next_free_ns < now) f->next_free_ns = now;
    f->next_free_ns += transmit_ns(len, s->rate_bps);
    e->emit(e->emit_ctx, dir, data, len, slot);
    return;
  }
  if (f->bytes + len > s->queue_bytes) {
    c->dropped_queue++;
    drop_slot(e, slot);
    return;
  }
  if (slot < 0) slot = slot_take(e, dir, data, len);
  if (slot < 0) {
    c->dropped_pool++;
    return;
  }
  e->slots[slot].next = -1;
  if (f->tail >= 0)
    e->slots[f->tail].next = slot;
  else
    f->head = slot;
  f->tail = slot;
  f->bytes += len;
}

static void rate_run(struct engine *e, int dir, uint64_t now) {
  struct engine_fifo *f = &e->fifo[dir];
  struct impair_settings *s = &e->set[dir];
  while (f->head >= 0 && (s->rate_bps == 0 || f->next_free_ns <= now + IMPAIR_SLACK_NS)) {
    int32_t i = f->head;
    struct engine_slot *slot = &e->slots[i];
    f->head = slot->next;
    if (f->head < 0) f->tail = -1;
    f->bytes -= slot->len;
    if (s->blackhole) {
      e->cnt[dir].dropped_blackhole++;
      engine_release(e, i);
      continue;
    }
    if (s->rate_bps) f->next_free_ns += transmit_ns(slot->len, s->rate_bps);
    e->emit(e->emit_ctx, dir, slot->data, slot->len, i);
  }
}

/* ---- the pipeline -----------------------------------------------------------------------------
 */

/* How long this copy waits before the rate limiter: delay +- jitter, plus the reorder hold. */
static uint64_t hold_for(struct engine *e, int dir) {
  struct impair_settings *s = &e->set[dir];
  struct impair_counters *c = &e->cnt[dir];
  uint64_t hold = s->delay_ns;
  if (s->jitter_ns) {
    double offset = (2.0 * impair_rng_unit(&e->rng[dir]) - 1.0) * (double)s->jitter_ns;
    double total = (double)s->delay_ns + offset;
    hold = total > 0 ? (uint64_t)total : 0;
  }
  if (hold) c->delayed++;
  if (impair_rng_chance(&e->rng[dir], s->reorder)) {
    c->reordered++;
    hold += s->reorder_ns;
  }
  return hold;
}

static void schedule_copy(struct engine *e, int dir, const uint8_t *data, uint32_t len,
                          uint64_t now) {
  uint64_t hold = hold_for(e, dir);
  if (hold == 0) {
    rate_admit(e, dir, data, len, -1, now);
    return;
  }
  int32_t slot = slot_take(e, dir, data, len);
  if (slot < 0) {
    e->cnt[dir].dropped_pool++;
    return;
  }
  e->slots[slot].due_ns = now + hold;
  e->slots[slot].seq = e->seq++;
  heap_push(e, slot);
}

void engine_input(struct engine *e, int dir, const uint8_t *data, uint32_t len, uint64_t now) {
  struct impair_settings *s = &e->set[dir];
  struct impair_counters *c = &e->cnt[dir];
  c->received++;
  c->bytes_received += len;
  if (s->blackhole) {
    c->dropped_blackhole++;
    return;
  }
  if (s->mtu && len > s->mtu) {
    c->dropped_mtu++;
    return;
  }
  if (impair_rng_chance(&e->rng[dir], s->loss)) {
    c->dropped_loss++;
    return;
  }
  int copies = 1;
  if (impair_rng_chance(&e->rng[dir], s->dup)) {
    c->duplicated++;
    copies = 2;
  }
  for (int i = 0; i < copies; i++) schedule_copy(e, dir, data, len, now);
}

void engine_run(struct engine *e, uint64_t now) {
  while (e->heap_len > 0 && e->slots[e->heap[0]].due_ns <= now + IMPAIR_SLACK_NS) {
    int32_t i = heap_pop(e);
    struct engine_slot *s = &e->slots[i];
    rate_admit(e, s->dir, s->data, s->len, i, now);
  }
  for (int d = 0; d < DIR_COUNT; d++) rate_run(e, d, now);
}

uint64_t engine_next_due(const struct engine *e) {
  uint64_t due = UINT64_MAX;
  if (e->heap_len > 0) due = e->slots[e->heap[0]].due_ns;
  for (int d = 0; d < DIR_COUNT; d++) {
    const struct engine_fifo *f = &e->fifo[d];
    if (f->head >= 0 && f->next_free_ns < due) due = f->next_free_ns;
  }
  return due;
}
