#include "device/tunnel_repair.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "wg/messages.h"

size_t tun_ctl_hello(uint8_t out[4], bool reply, bool unchecked) {
  out[0] = TUN_CTL_HELLO;
  out[1] = TUN_CTL_VERSION;
  out[2] = (uint8_t)((reply ? TUN_CTL_HELLO_REPLY : 0) | TUN_CTL_HELLO_FEC |
                     (unchecked ? TUN_CTL_HELLO_UNCHECKED : 0));
  out[3] = 0;
  return 4;
}

size_t tun_ctl_runs(uint8_t *out, uint8_t type, uint32_t index, const tun_nack_run *runs,
                    size_t n) {
  if (n > TUN_NACK_MAX_RUNS) n = TUN_NACK_MAX_RUNS;
  out[0] = type;
  out[1] = TUN_CTL_VERSION;
  out[2] = (uint8_t)n;
  out[3] = 0;
  le32_store(out + 4, index); /* as in the transport header */
  uint8_t *p = out + 8;
  for (size_t i = 0; i < n; i++, p += 10) {
    be64_store(p, runs[i].first);
    p[8] = (uint8_t)(runs[i].count >> 8);
    p[9] = (uint8_t)runs[i].count;
  }
  return (size_t)(p - out);
}

bool tun_nack_runs_add(tun_nack_run *runs, size_t *n, uint64_t c) {
  tun_nack_run *last = *n ? &runs[*n - 1] : NULL;
  if (last && last->first + last->count == c && last->count < TUN_NACK_MAX_RUN_LEN) {
    last->count++;
    return true;
  }
  if (*n == TUN_NACK_MAX_RUNS) return false;
  runs[(*n)++] = (tun_nack_run){c, 1};
  return true;
}

int tun_ctl_parse(const uint8_t *pt, size_t len, tun_ctl_msg *out) {
  /* The plaintext may carry WireGuard's zero padding behind the message: lengths are minimums. */
  if (len < 4 || pt[1] != TUN_CTL_VERSION) return -1;
  out->type = pt[0];
  out->flags = pt[2];
  out->n_runs = 0;
  out->index = 0;
  if (pt[0] == TUN_CTL_HELLO) return 0;
  if (pt[0] != TUN_CTL_NACK && pt[0] != TUN_CTL_GIVEUP) return -1;
  size_t n = pt[2];
  if (n == 0 || n > TUN_NACK_MAX_RUNS || len < 8 + n * 10) return -1;
  out->flags = 0;
  out->index = le32_load(pt + 4);
  const uint8_t *p = pt + 8;
  for (size_t i = 0; i < n; i++, p += 10) {
    uint16_t count = (uint16_t)(p[8] << 8 | p[9]);
    uint64_t first = be64_load(p);
    if (count == 0 || count > TUN_NACK_MAX_RUN_LEN || first > UINT64_MAX - count) return -1;
    out->runs[i].first = first;
    out->runs[i].count = count;
  }
  out->n_runs = n;
  return 0;
}

uint32_t tun_repair_cover_ms(uint64_t rtt_ns) {
  uint64_t ms = 3 * (rtt_ns / 1000000) + 20;
  if (ms < TUN_REPAIR_RING_COVER_MS) return TUN_REPAIR_RING_COVER_MS;
  return ms > TUN_REPAIR_COVER_MAX_MS ? TUN_REPAIR_COVER_MAX_MS : (uint32_t)ms;
}

int tun_repair_ring_enable(tun_repair_ring *r, size_t slot_size) {
  if (r->pool) return 0;
  r->slots = calloc(TUN_REPAIR_RING, sizeof *r->slots);
  r->pool = malloc(TUN_REPAIR_RING * slot_size);
  if (!r->slots || !r->pool) {
    tun_repair_ring_free(r);
    return -1;
  }
  r->slot_size = slot_size;
  r->n = TUN_REPAIR_RING;
  r->mark_counter = 0;
  r->mark_ms = 0;
  return 0;
}

void tun_repair_ring_free(tun_repair_ring *r) {
  free(r->pool);
  free(r->slots);
  r->pool = NULL;
  r->slots = NULL;
  r->n = 0;
}

/* Twice the slots; what is kept moves to its place in the larger ring (the last n counters are
 * distinct modulo 2n). Out of memory: the ring stays as it is. */
static void grow(tun_repair_ring *r) {
  size_t n2 = r->n * 2;
  tun_repair_slot *slots = calloc(n2, sizeof *slots);
  uint8_t *pool = malloc(n2 * r->slot_size);
  if (!slots || !pool) {
    free(slots), free(pool);
    return;
  }
  for (size_t i = 0; i < r->n; i++) {
    const tun_repair_slot *s = &r->slots[i];
    if (!s->len) continue;
    size_t k = (size_t)(s->counter % n2);
    slots[k] = *s;
    memcpy(pool + k * r->slot_size, r->pool + i * r->slot_size, s->len);
  }
  free(r->slots), free(r->pool);
  r->slots = slots, r->pool = pool, r->n = n2;
}

bool tun_repair_ring_store(tun_repair_ring *r, uint32_t index, uint64_t counter,
                           const uint8_t *wire, size_t len, uint32_t now_ms) {
  if (!r->pool) return false;
  if (counter - r->mark_counter >= r->n) { /* the ring has turned over once: how fast? */
    uint32_t cover = r->cover_ms ? r->cover_ms : TUN_REPAIR_RING_COVER_MS;
    if (r->mark_ms && now_ms - r->mark_ms < cover && r->n < TUN_REPAIR_RING_MAX) grow(r);
    r->mark_counter = counter;
    r->mark_ms = now_ms ? now_ms : 1;
  }
  tun_repair_slot *s = &r->slots[counter % r->n];
  if (len > r->slot_size) {
    s->len = 0;
    return false;
  }
  memcpy(r->pool + (counter % r->n) * r->slot_size, wire, len);
  s->counter = counter;
  s->index = index;
  s->len = (uint16_t)len;
  s->resends = 0;
  s->sent_ms = now_ms;
  return true;
}

const tun_repair_slot *tun_repair_ring_find(const tun_repair_ring *r, uint32_t index,
                                            uint64_t counter) {
  if (!r->pool) return NULL;
  const tun_repair_slot *s = &r->slots[counter % r->n];
  return s->len && s->counter == counter && s->index == index ? s : NULL;
}

const uint8_t *tun_repair_ring_take(tun_repair_ring *r, uint32_t index, uint64_t counter,
                                    size_t *len) {
  if (!r->pool) return NULL;
  tun_repair_slot *s = &r->slots[counter % r->n];
  if (!s->len || s->counter != counter || s->index != index || s->resends >= TUN_REPAIR_MAX_RESENDS)
    return NULL;
  s->resends++;
  *len = s->len;
  return r->pool + (counter % r->n) * r->slot_size;
}

bool tun_loss_delay_congested(tun_loss_delay *d, uint32_t sample_ms, uint32_t now_ms,
                              uint32_t rtt_ms) {
  if (sample_ms > TUN_LOSS_DELAY_MAX_MS) return false;
  /* The quietest delay of the window (BBR's min-RTT filter): a standing queue cannot lower it,
   * and a stale one is replaced by the next sample. */
  if (!d->min_ms || sample_ms < d->min_ms || now_ms - d->min_at > TUN_LOSS_DELAY_WINDOW_MS) {
    d->min_ms = sample_ms ? sample_ms : 1;
    d->min_at = now_ms;
  }
  uint32_t base = d->min_ms;
  /* A handshake crosses the path when it is quiet more often than a loss does: when the first
   * losses already come from a full queue (slow start overshooting), it keeps them from
   * becoming the baseline. The NACK's own delay (the grace before asking, the next datagram
   * showing the gap) is covered by the margin. */
  if (rtt_ms && rtt_ms < base) base = rtt_ms;
  d->smooth_ms = d->smooth_ms ? (3 * d->smooth_ms + sample_ms) / 4 : sample_ms;
  uint32_t margin = base > TUN_LOSS_QUEUE_MIN_MS ? base : TUN_LOSS_QUEUE_MIN_MS;
  return d->smooth_ms > base + margin;
}
