/* One monotonic clock read per received batch instead of several per datagram.
 *
 * A recvmmsg batch is handled in well under a millisecond, and every datagram in it arrived
 * before the handling began, yet the tunnel, lwIP and QUIC each read the clock several times per
 * datagram (vDSO clock_gettime was 6-7 % of the client's CPU in a download). While a batch is
 * held, batch_clock_ns() returns the time read when it began; outside, the clock itself. The
 * clock never runs backwards: a held value is older than any later read. Per thread: each
 * worker's loop holds its own. Header-only (lwIP's sys_now takes it too, lwip_port/sys_port.c,
 * which defines the variable). */
#ifndef AWG_UTIL_BATCH_CLOCK_H
#define AWG_UTIL_BATCH_CLOCK_H

#include <stdint.h>
#include <uv.h>

extern _Thread_local uint64_t batch_clock_held_ns; /* 0: not held */

/* uv_hrtime: held values are compared with the uv_hrtime() reads elsewhere. */
static inline uint64_t batch_clock_read(void) { return uv_hrtime(); }

static inline uint64_t batch_clock_ns(void) {
  return batch_clock_held_ns ? batch_clock_held_ns : batch_clock_read();
}

/* Holds the clock at now for the batch about to be handled; returns what to give back to
 * batch_clock_release (holds nest). */
static inline uint64_t batch_clock_hold(void) {
  uint64_t before = batch_clock_held_ns;
  batch_clock_held_ns = batch_clock_read();
  return before;
}

static inline void batch_clock_release(uint64_t before) { batch_clock_held_ns = before; }

#endif
