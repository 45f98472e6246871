#include "device/tunnel_reorder.h"

#include <stdlib.h>
#include <string.h>

#include "wg/replay.h"

#define MS 1000000ull
#define HOLD_DEFAULT_NS (10 * MS)
#define HOLD_MIN_NS (1 * MS)
#define HOLD_MAX_NS (25 * MS)
#define REPAIR_HOLD_MAX_NS (500 * MS)

void tun_reorder_set_rtt(tun_reorder *r, uint64_t rtt_ns) { r->rtt_ns = rtt_ns ? rtt_ns : 1; }

void tun_reorder_set_repair(tun_reorder *r, bool on) { r->repair = on && r->nack; }

/* How long after a counter is noticed missing it is first asked for: reordering on the path is
 * usually shorter than that, and a NACK for a packet that only came late costs one duplicate. */
static uint64_t grace(const tun_reorder *r) {
  if (!r->rtt_ns) return 2 * MS;
  uint64_t g = r->rtt_ns / 8;
  return g < MS ? MS : g > 4 * MS ? 4 * MS : g;
}

/* From one NACK to the next for the same counter: the round trip of the NACK and the resend. */
static uint64_t retry(const tun_reorder *r) {
  return r->rtt_ns ? r->rtt_ns * 3 / 2 + 2 * MS : 20 * MS;
}

/* How long a gap is waited for before it is given up. */
static uint64_t give_up(const tun_reorder *r) {
  if (r->repair) {
    uint64_t h = grace(r) + TUN_REORDER_TRIES * retry(r) + 2 * MS;
    return h > REPAIR_HOLD_MAX_NS ? REPAIR_HOLD_MAX_NS : h;
  }
  if (!r->rtt_ns) return HOLD_DEFAULT_NS;
  return r->rtt_ns < HOLD_MIN_NS ? HOLD_MIN_NS : r->rtt_ns > HOLD_MAX_NS ? HOLD_MAX_NS : r->rtt_ns;
}

static size_t wanted_slots(const tun_reorder *r) {
  return r->repair ? (r->repair_slots ? r->repair_slots : TUN_REORDER_SLOTS_REPAIR)
                   : TUN_REORDER_SLOTS;
}

static size_t window(const tun_reorder *r) { return r->pool ? r->nslots : wanted_slots(r); }

void tun_reorder_init(tun_reorder *r, size_t slot_size, tun_reorder_fn deliver, tun_nack_fn nack,
                      void *ctx) {
  memset(r, 0, sizeof *r);
  r->slot_size = slot_size;
  r->deliver = deliver;
  r->nack = nack;
  r->ctx = ctx;
}

static tun_reorder_slot *slot(tun_reorder *r, uint64_t counter) {
  return &r->slots[counter % r->nslots];
}

static void deliver(tun_reorder *r, const uint8_t *pkt, size_t len) {
  if (len) r->deliver(r->ctx, pkt, len);
}

/* Delivers held packets from next on while there is no gap. */
static void drain(tun_reorder *r) {
  while (r->held) {
    tun_reorder_slot *s = slot(r, r->next);
    if (!s->held) break;
    s->held = false;
    r->held--;
    r->next++;
    deliver(r, r->pool + (r->next - 1) % r->nslots * r->slot_size, s->len);
  }
  if (!r->held) r->deadline = 0, r->top = r->next;
}

void tun_reorder_flush(tun_reorder *r) {
  while (r->held) {
    tun_reorder_slot *s = slot(r, r->next);
    if (!s->held) {
      s->tries = 0, s->due = 0;
      r->gaps_given_up++;
      r->next++;
      continue;
    }
    drain(r);
  }
  r->top = r->next;
  r->deadline = 0;
}

static void earlier(tun_reorder *r, uint64_t when) {
  if (!r->deadline || when < r->deadline) r->deadline = when;
}

static void send_nacks(tun_reorder *r, const tun_nack_run *runs, size_t n) {
  if (!n) return;
  r->nack(r->ctx, r->keypair, runs, n);
  r->nacks_sent++;
}

/* Asks for every missing counter that is due, and works out the next deadline. */
static void ask(tun_reorder *r, uint64_t now) {
  tun_nack_run runs[TUN_NACK_MAX_RUNS];
  size_t n = 0;
  r->deadline = 0;
  for (uint64_t c = r->next; c < r->top; c++) {
    tun_reorder_slot *s = slot(r, c);
    if (s->held) continue;
    if (c == r->next) earlier(r, s->since + give_up(r));
    if (!s->due) continue;
    if (s->due > now) {
      earlier(r, s->due);
      continue;
    }
    s->tries++;
    s->asked = now;
    s->due = s->tries < TUN_REORDER_TRIES ? now + retry(r) : 0;
    if (s->due) earlier(r, s->due);
    r->asked++;
    if (!tun_nack_runs_add(runs, &n, c)) {
      send_nacks(r, runs, n);
      n = 0;
      tun_nack_runs_add(runs, &n, c);
    }
  }
  send_nacks(r, runs, n);
}

void tun_reorder_expire(tun_reorder *r, uint64_t now) {
  while (r->held) {
    tun_reorder_slot *s = slot(r, r->next);
    if (s->held) {
      drain(r);
      continue;
    }
    if (s->since + give_up(r) > now) break;
    s->tries = 0, s->due = 0;
    r->gaps_given_up++;
    r->next++;
  }
  if (!r->held) {
    r->top = r->next;
    r->deadline = 0;
    return;
  }
  if (r->repair) return ask(r, now);
  r->deadline = slot(r, r->next)->since + give_up(r);
}

/* A larger pool while packets are held: each keeps its place by counter (the window [next, top)
 * is narrower than the old pool, so counters stay distinct in the new one). */
static bool grow_holding(tun_reorder *r, size_t want) {
  uint8_t *pool = malloc(want * r->slot_size);
  tun_reorder_slot *slots = calloc(want, sizeof *slots);
  if (!pool || !slots) {
    free(pool), free(slots);
    return true; /* out of memory: keep the pool there is */
  }
  for (uint64_t c = r->next; c < r->top; c++) {
    const tun_reorder_slot *s = slot(r, c);
    slots[c % want] = *s;
    if (s->held && s->len)
      memcpy(pool + c % want * r->slot_size, r->pool + c % r->nslots * r->slot_size, s->len);
  }
  free(r->pool), free(r->slots);
  r->pool = pool, r->slots = slots, r->nslots = want;
  return true;
}

static bool alloc_pool(tun_reorder *r) {
  size_t want = wanted_slots(r);
  if (r->pool && r->nslots == want) return true;
  if (r->pool && r->held && want > r->nslots && r->top - r->next <= r->nslots)
    return grow_holding(r, want);
  if (r->pool && r->held) return true; /* a smaller size waits until the pool has drained */
  free(r->pool);
  free(r->slots);
  r->pool = malloc(want * r->slot_size);
  r->slots = calloc(want, sizeof *r->slots);
  if (!r->pool || !r->slots) {
    free(r->pool), free(r->slots);
    r->pool = NULL, r->slots = NULL, r->nslots = 0;
    return false;
  }
  r->nslots = want;
  return true;
}

/* Marks [top, counter) missing as of now. */
static void open_gaps(tun_reorder *r, uint64_t counter, uint64_t now) {
  uint64_t first_due = r->repair ? now + grace(r) : 0;
  for (uint64_t c = r->top; c < counter; c++) {
    tun_reorder_slot *s = slot(r, c);
    s->held = false;
    s->tries = 0;
    s->since = now;
    s->due = first_due;
  }
  if (counter > r->top) earlier(r, r->repair ? first_due : now + give_up(r));
  if (counter + 1 > r->top) r->top = counter + 1;
}

/* A missing counter arrived: count a repair and learn the round trip from it. */
static void filled(tun_reorder *r, tun_reorder_slot *s, uint64_t now) {
  if (s->tries) {
    r->repaired++;
    uint64_t sample = now - s->asked;
    /* A packet that was only late answers faster than any resend: not a round trip. */
    if (!r->rtt_ns)
      r->rtt_ns = sample;
    else if (sample >= r->rtt_ns / 2)
      r->rtt_ns = (7 * r->rtt_ns + sample) / 8;
  }
  s->tries = 0;
  s->due = 0;
}

static bool hold(tun_reorder *r, uint64_t counter, const uint8_t *pkt, size_t len, uint64_t now) {
  if (len > r->slot_size || !alloc_pool(r)) return false;
  if (counter - r->next >= r->nslots) return false;
  tun_reorder_slot *s = slot(r, counter);
  /* Held already: a duplicate the replay window let through, or an empty place a GIVEUP left
   * for a datagram that was only late (it goes on after all). */
  bool placeholder = counter < r->top && s->held;
  if (placeholder && (s->len || !len)) return true;
  if (counter >= r->top)
    open_gaps(r, counter, now);
  else if (!placeholder)
    filled(r, s, now);
  memcpy(r->pool + counter % r->nslots * r->slot_size, pkt, len);
  s->len = (uint16_t)len;
  if (placeholder) return true;
  s->held = true;
  r->held++;
  r->held_total++;
  return true;
}

void tun_reorder_input(tun_reorder *r, uint32_t keypair, uint64_t counter, const uint8_t *pkt,
                       size_t len, uint64_t now) {
  if (!r->active || keypair != r->keypair) {
    tun_reorder_flush(r); /* a new keypair: its counters start over */
    r->active = true;
    r->keypair = keypair;
    r->next = r->top = counter + 1;
    deliver(r, pkt, len);
    return;
  }
  if (counter < r->next) { /* behind what was released: late, deliver as it is */
    deliver(r, pkt, len);
    return;
  }
  if (r->repair && counter - r->mark_counter >= window(r)) { /* one window further: how fast? */
    size_t want = wanted_slots(r);
    uint64_t cover = (uint64_t)tun_repair_cover_ms(r->rtt_ns) * MS; /* as the sender's ring */
    if (r->mark_ns && now - r->mark_ns < cover && want < TUN_REORDER_SLOTS_MAX)
      r->repair_slots = want * 2; /* taken when the pool is next empty (alloc_pool) */
    r->mark_counter = counter;
    r->mark_ns = now ? now : 1;
  }
  if (counter == r->next) {
    if (r->held) filled(r, slot(r, counter), now);
    r->next++;
    if (r->top < r->next) r->top = r->next;
    deliver(r, pkt, len);
    drain(r);
    return;
  }
  /* The caller services the peer afterwards, which arms its timer for the deadline. Nothing is
   * held for a gap the replay window would refuse once it came (wg/replay.h): it never will. */
  size_t w = window(r) < WG_REPLAY_WINDOW ? window(r) : WG_REPLAY_WINDOW;
  if (counter - r->next < w && hold(r, counter, pkt, len, now)) return;
  /* Too far ahead to hold (or no memory): the gaps before it are given up. */
  tun_reorder_flush(r);
  r->gaps_given_up += counter - r->next;
  r->next = r->top = counter + 1;
  deliver(r, pkt, len);
}

bool tun_reorder_missing(const tun_reorder *r, uint32_t keypair, uint64_t counter) {
  if (!r->active || keypair != r->keypair || counter < r->next) return false;
  if (counter >= r->top) return true;
  return r->pool && !r->slots[counter % r->nslots].held;
}

void tun_reorder_abandon(tun_reorder *r, uint32_t keypair, const tun_nack_run *runs, size_t n) {
  if (!r->active || keypair != r->keypair || !r->held) return;
  for (size_t i = 0; i < n; i++) {
    uint64_t end = runs[i].first + runs[i].count; /* parsed: no overflow */
    for (uint64_t c = runs[i].first < r->next ? r->next : runs[i].first; c < end && c < r->top;
         c++) {
      tun_reorder_slot *s = slot(r, c);
      if (s->held) continue;
      /* Held with nothing in it: drain() passes it in order and delivers nothing. */
      s->held = true;
      s->len = 0;
      s->tries = 0, s->due = 0;
      r->held++;
      r->gaps_given_up++;
      r->gaps_abandoned++;
    }
  }
  drain(r);
}

void tun_reorder_free(tun_reorder *r) {
  free(r->pool);
  free(r->slots);
  r->pool = NULL;
  r->slots = NULL;
  r->nslots = 0;
  r->held = 0;
  r->deadline = 0;
  r->top = r->next;
}
