/* Sliding-window replay protection for transport counters, in the style of RFC 6479: a ring of
 * 64-bit words indexed by counter / 64; when the highest counter advances, whole words that fall
 * out of the window are cleared instead of shifting the bitmap. The window guarantees acceptance
 * of any unseen counter less than WG_REPLAY_WINDOW behind the highest one seen. */
#ifndef AWGPROXY_WG_REPLAY_H
#define AWGPROXY_WG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

/* As Linux's WireGuard and wireguard-go (8,128 counters behind the top). The window is the
 * receiver's own; with 2,048 bits, a repaired datagram (tunnel_repair.h) that came back more
 * than 1,984 counters after its neighbours was refused as a replay: on a 150 ms path that is
 * anything above ~13,000 datagrams a second. */
#define WG_REPLAY_BITS 8192
#define WG_REPLAY_WORDS (WG_REPLAY_BITS / 64)
#define WG_REPLAY_WINDOW (WG_REPLAY_BITS - 64) /* one word is always being recycled */

typedef struct {
  uint64_t top; /* highest counter accepted */
  bool any;     /* false until the first counter */
  uint64_t bitmap[WG_REPLAY_WORDS];
} wg_replay;

void wg_replay_init(wg_replay *r);

/* Would counter be accepted? (No state change: use before spending work on decryption.)
 * Counters >= limit (REJECT_AFTER_MESSAGES) are never accepted. */
bool wg_replay_check(const wg_replay *r, uint64_t counter, uint64_t limit);

/* Accepts counter (marks it seen) or returns false for a duplicate, a too-old or an over-limit
 * counter. Call only after the packet authenticated. */
bool wg_replay_update(wg_replay *r, uint64_t counter, uint64_t limit);

#endif
