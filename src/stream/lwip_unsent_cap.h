#ifndef AWG_STREAM_LWIP_UNSENT_CAP_H
#define AWG_STREAM_LWIP_UNSENT_CAP_H

#include <stddef.h>
#include <stdint.h>

/* How far ahead of the window a stream keeps lwIP's unsent queue filled: enough to refill the
 * window from the queue between two of our feeds, at every rate this path reaches. */
#define LWIP_UNSENT_AHEAD 65536u

/* A TCP sender's sequence state, as lwIP's pcb holds it (snd_lbb: the next byte to be queued;
 * snd_nxt: the next byte to be sent for the first time; lastack: the oldest unacked byte). */
typedef struct lwip_send_seq {
  uint32_t snd_lbb, snd_nxt, lastack;
  uint32_t cwnd, snd_wnd;
} lwip_send_seq;

/* How many more bytes a stream should hand lwIP now, at most `room` (what its send buffer
 * takes): what the open window (min(cwnd, snd_wnd) less what is in flight) will send plus
 * LWIP_UNSENT_AHEAD, less what already waits unsent.
 *
 * Why: lwIP 2.1's tcp_write walks the whole unsent queue to find its tail on every call, so a
 * queue filled to TCP_SND_BUF while the window is far smaller makes each write cost O(queue).
 * Holding the unsent queue near the window keeps that walk short (12.9 % of an upload's CPU
 * before); the bytes not taken stay in the stream's own pending buffer, and a later ACK (the
 * sent callback) feeds them. */
size_t lwip_unsent_cap(const lwip_send_seq *seq, size_t room);

#endif
