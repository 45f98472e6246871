#include "stream/lwip_unsent_cap.h"

size_t lwip_unsent_cap(const lwip_send_seq *seq, size_t room) {
  /* Modular differences, as TCP sequence numbers wrap; lwIP keeps lastack <= snd_nxt <= snd_lbb
   * (snd_nxt never moves back, not even on an RTO), so each is the true distance. A value past
   * 2^31 would mean that order is broken: treat it as nothing rather than as 4 GB. */
  uint32_t unsent = seq->snd_lbb - seq->snd_nxt;
  uint32_t flight = seq->snd_nxt - seq->lastack;
  if (unsent > INT32_MAX) unsent = 0;
  if (flight > INT32_MAX) flight = 0;
  uint32_t wnd = seq->cwnd < seq->snd_wnd ? seq->cwnd : seq->snd_wnd;
  uint64_t open = wnd > flight ? wnd - flight : 0;
  uint64_t cap = open + LWIP_UNSENT_AHEAD;
  uint64_t lim = unsent < cap ? cap - unsent : 0;
  return (uint64_t)room > lim ? (size_t)lim : room;
}
