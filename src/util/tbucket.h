/* A token bucket: tokens (bytes) accrue at `rate` per second up to `burst`. Callers either take
 * what they used and may run into debt (a stream that already read the bytes; it then waits
 * until the balance is positive again), or take only when the tokens are there (datagrams, which
 * are dropped otherwise). Pure code: the time is passed in (microseconds, any monotonic origin),
 * so tests need no clock. rate 0 means unlimited. */
#ifndef AWGPROXY_UTIL_TBUCKET_H
#define AWGPROXY_UTIL_TBUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  uint64_t rate;  /* bytes per second, 0 = unlimited */
  uint64_t burst; /* the most tokens that can accrue */
  double tokens;  /* may be negative (debt) */
  uint64_t last_us;
} tbucket;

/* The burst for a rate: half a second of traffic, at least 16 KiB (so a few full-size packets
 * pass at once even at low rates). Half a second lets a flow whose path stalled for a moment
 * (a busy receiver, a full window) catch up, so that its average matches the limit; a shorter
 * burst loses that allowance and averages below the limit on a loaded path. */
uint64_t tbucket_default_burst(uint64_t rate);
/* Starts full. */
void tbucket_init(tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_us);
/* Changes the rate and burst, keeping the balance (capped at the new burst); a bucket that was
 * unlimited starts full. */
void tbucket_set(tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_us);
/* Takes n tokens, going into debt if there are fewer. */
void tbucket_take(tbucket *b, uint64_t n, uint64_t now_us);
/* Takes n tokens only if that many are there (or the bucket is full, for n > burst); false
 * (nothing taken) otherwise. */
bool tbucket_try_take(tbucket *b, uint64_t n, uint64_t now_us);
/* Microseconds until the balance is positive (0: it is now). */
uint64_t tbucket_wait_us(tbucket *b, uint64_t now_us);

#endif
