/* Protocol constants of WireGuard's key-rotation and timer rules (whitepaper §6), gathered in a
 * struct so that integration tests can run the same state machines with fast timers. Production
 * code uses wg_tunables_default(). All times are in nanoseconds of a monotonic clock. */
#ifndef AWGPROXY_WG_TUNABLES_H
#define AWGPROXY_WG_TUNABLES_H

#include <stdint.h>

#define WG_NS_PER_MS UINT64_C(1000000)
#define WG_NS_PER_SEC UINT64_C(1000000000)

#define WG_REKEY_AFTER_MESSAGES (UINT64_C(1) << 60)
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (UINT64_C(1) << 13)) /* 2^64 - 2^13 - 1 */

typedef struct {
  uint64_t rekey_after_messages;    /* initiate a new handshake after sending this many */
  uint64_t reject_after_messages;   /* never send/accept a counter at or beyond this */
  uint64_t rekey_after_time;        /* initiator rekeys a session this old on send (120 s) */
  uint64_t reject_after_time;       /* a session this old is unusable (180 s) */
  uint64_t rekey_attempt_time;      /* give up retrying a handshake after this long (90 s) */
  uint64_t rekey_timeout;           /* retransmit an unanswered initiation after this (5 s) */
  uint64_t rekey_jitter_max;        /* + uniform [0, this] jitter on handshake timers (333 ms) */
  uint64_t keepalive_timeout;       /* passive keepalive after receiving data (10 s) */
  uint64_t initiation_min_interval; /* accept at most one initiation per peer per this (20 ms) */
  /* AmneziaWG 3.x timing ranges (awg3-obfuscation.md R48): where a range is set, each use draws
   * from it. The fields above hold the value WireGuard's fixed rules use: the start of the range
   * for rekey_after_time, rekey_timeout and keepalive_timeout, the end for reject_after_time.
   * 0 = no range (the fixed value alone). */
  uint64_t rekey_after_time_max;
  uint64_t rekey_timeout_max;
  uint64_t keepalive_timeout_max;
  uint64_t reject_after_time_min;
  uint32_t max_retries_min, max_retries_max; /* MaxHandshakeAttempts; both 0 = derived (18) */
} wg_tunables;

void wg_tunables_default(wg_tunables *t);

/* Number of retransmissions allowed: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT (18 with defaults). */
uint32_t wg_tunables_max_handshake_retries(const wg_tunables *t);

#endif
