#include "stream/rcv_window.h"

void rcv_window_init(rcv_window *w, uint32_t start, uint32_t rtt_ms) {
  *w = (rcv_window){.target = start, .rtt_ms = rtt_ms};
}

void rcv_window_on_data(rcv_window *w, uint32_t rcv_nxt, uint32_t now_ms) {
  if (!w->target) return;
  if (w->timing && (int32_t)(rcv_nxt - w->edge) >= 0) {
    uint32_t sample = now_ms - w->edge_ms;
    if (!sample) sample = 1; /* within the loop's millisecond */
    if (!w->rtt_ms || sample < w->rtt_ms) w->rtt_ms = sample;
    w->timing = false;
  }
  if (!w->timing) {
    w->edge = rcv_nxt + w->target;
    w->edge_ms = now_ms;
    w->timing = true;
  }
}

uint32_t rcv_window_on_read(rcv_window *w, size_t n, uint32_t max, uint64_t budget,
                            uint32_t now_ms) {
  if (!w->target || !w->rtt_ms) return 0;
  if (!w->counting) { /* what came before is not divided by a round trip it did not take */
    w->counting = true;
    w->mark_ms = now_ms;
    return 0;
  }
  w->consumed += n;
  uint32_t elapsed = now_ms - w->mark_ms;
  if (elapsed < w->rtt_ms) return 0;
  uint64_t per_rtt = w->consumed * w->rtt_ms / elapsed; /* a round of reads, per round trip */
  w->consumed = 0;
  w->mark_ms = now_ms;
  /* Not the first round: an application's socket buffers take a burst at first however slowly
   * it reads (1.3 MB in the first round trip here). */
  if (!w->rounds++) return 0;
  /* Twice what a round trip read: room for the sender to grow into, as Linux gives. */
  uint64_t want = 2 * per_rtt;
  if (want > max) want = max;
  if (want <= w->target) return 0;
  uint64_t grow = want - w->target;
  if (grow > budget) grow = budget;
  w->target += (uint32_t)grow;
  return (uint32_t)grow;
}
