#include "device/tunnel_reorder.h"

#include <stdlib.h>
#include <string.h>

#define HOLD_DEFAULT_NS (10 * 1000000ull)
#define HOLD_MIN_NS (1 * 1000000ull)
#define HOLD_MAX_NS (25 * 1000000ull)

void tun_reorder_set_rtt(tun_reorder *r, uint64_t rtt_ns) {
  r->hold_ns = rtt_ns < HOLD_MIN_NS ? HOLD_MIN_NS : rtt_ns > HOLD_MAX_NS ? HOLD_MAX_NS : rtt_ns;
}

static uint64_t hold_time(const tun_reorder *r) {
  return r->hold_ns ? r->hold_ns : HOLD_DEFAULT_NS;
}

void tun_reorder_init(tun_reorder *r, size_t slot_size, tun_reorder_fn deliver, void *ctx) {
  memset(r, 0, sizeof *r);
  r->slot_size = slot_size;
  r->deliver = deliver;
  r->ctx = ctx;
}

static void deliver(tun_reorder *r, const uint8_t *pkt, size_t len) {
  if (len) r->deliver(r->ctx, pkt, len);
}

/* Delivers held packets from next on while there is no gap. */
static void drain(tun_reorder *r) {
  while (r->held) {
    size_t i = r->next % TUN_REORDER_SLOTS;
    if (!r->used[i]) break;
    r->used[i] = false;
    r->held--;
    r->next++;
    deliver(r, r->pool + i * r->slot_size, r->len[i]);
  }
  if (!r->held) r->deadline = 0;
}

void tun_reorder_flush(tun_reorder *r) {
  while (r->held) {
    size_t i = r->next % TUN_REORDER_SLOTS;
    if (!r->used[i]) {
      r->gaps_given_up++;
      r->next++;
      continue;
    }
    drain(r);
  }
  r->deadline = 0;
}

void tun_reorder_expire(tun_reorder *r, uint64_t now) {
  if (r->deadline && now >= r->deadline) tun_reorder_flush(r);
}

static bool hold(tun_reorder *r, uint64_t counter, const uint8_t *pkt, size_t len, uint64_t now) {
  if (!r->pool) {
    r->pool = malloc(TUN_REORDER_SLOTS * r->slot_size);
    if (!r->pool) return false;
  }
  if (len > r->slot_size) return false;
  size_t i = counter % TUN_REORDER_SLOTS;
  if (r->used[i]) return true; /* a duplicate the replay window let through: already held */
  memcpy(r->pool + i * r->slot_size, pkt, len);
  r->len[i] = (uint16_t)len;
  r->used[i] = true;
  r->held++;
  r->held_total++;
  /* The caller services the peer afterwards, which arms its timer for the deadline. */
  if (!r->deadline) r->deadline = now + hold_time(r);
  return true;
}

void tun_reorder_input(tun_reorder *r, uint32_t keypair, uint64_t counter, const uint8_t *pkt,
                       size_t len, uint64_t now) {
  if (!r->active || keypair != r->keypair) {
    tun_reorder_flush(r); /* a new keypair: its counters start over */
    r->active = true;
    r->keypair = keypair;
    r->next = counter + 1;
    deliver(r, pkt, len);
    return;
  }
  if (counter < r->next) { /* behind what was released: late, deliver as it is */
    deliver(r, pkt, len);
    return;
  }
  if (counter == r->next) {
    r->next++;
    deliver(r, pkt, len);
    drain(r);
    return;
  }
  if (counter - r->next < TUN_REORDER_SLOTS && hold(r, counter, pkt, len, now)) return;
  /* Too far ahead to hold (or no memory): the gaps before it are given up. */
  tun_reorder_flush(r);
  r->gaps_given_up += counter - r->next;
  r->next = counter + 1;
  deliver(r, pkt, len);
}

void tun_reorder_free(tun_reorder *r) {
  free(r->pool);
  r->pool = NULL;
  r->held = 0;
  r->deadline = 0;
  memset(r->used, 0, sizeof r->used);
}
