/* WireGuard's per-peer timers (whitepaper §6) as a pure state machine: the owner reports events
 * with the current monotonic time, asks for the earliest deadline to arm one real timer, and on
 * expiry gets a bitmask of actions to carry out. Five timers:
 *
 *   RETRANSMIT        initiation unanswered for REKEY_TIMEOUT + jitter: send another, or give up
 *                     after REKEY_ATTEMPT_TIME / REKEY_TIMEOUT retries
 *   SEND_KEEPALIVE    data received and nothing sent back for KEEPALIVE_TIMEOUT: send a keepalive
 *   NEW_HANDSHAKE     data sent and nothing received for KEEPALIVE + REKEY_TIMEOUT + jitter:
 *                     the session may be dead, initiate
 *   ZERO_KEYS         no new session for 3 * REJECT_AFTER_TIME: wipe all key material
 *   PERSISTENT        no authenticated packet either way for the configured interval: keepalive
 *
 * plus the message/age rules that request a rekey on send or receive. Jitter is drawn from the
 * injected RNG (uniform in [0, rekey_jitter_max]). */
#ifndef AWGPROXY_WG_TIMERS_H
#define AWGPROXY_WG_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/rng.h"
#include "wg/tunables.h"

typedef enum {
  WG_TIMER_RETRANSMIT,
  WG_TIMER_SEND_KEEPALIVE,
  WG_TIMER_NEW_HANDSHAKE,
  WG_TIMER_ZERO_KEYS,
  WG_TIMER_PERSISTENT_KEEPALIVE,
  WG_TIMER_COUNT,
} wg_timer_id;

/* Actions for the owner (a bitmask). */
enum {
  WG_ACT_INITIATE = 1u << 0,         /* start a new handshake (attempt counter reset) */
  WG_ACT_RETRANSMIT = 1u << 1,       /* send the next initiation attempt of the current round */
  WG_ACT_SEND_KEEPALIVE = 1u << 2,   /* send an empty transport packet (or pending data) */
  WG_ACT_ZERO_KEYS = 1u << 3,        /* wipe every keypair and the handshake */
  WG_ACT_HANDSHAKE_FAILED = 1u << 4, /* retries exhausted: drop packets waiting for a session */
};

typedef struct {
  const wg_tunables *tunables;
  const rng_source *rng;
  uint64_t deadline[WG_TIMER_COUNT];
  bool armed[WG_TIMER_COUNT];
  uint64_t persistent_interval;     /* 0 = off; with a range, its start */
  uint64_t persistent_interval_max; /* AWG 3.x PersistentKeepalive range end; 0 = no range */
  uint32_t handshake_attempts;      /* retransmissions in the current round */
  uint32_t max_retries;             /* allowed in the current round (drawn per round) */
  bool need_another_keepalive;
  bool sent_lastminute_handshake;
  uint64_t last_handshake_sent; /* for the REKEY_TIMEOUT rate limit on handshake messages */
  bool has_sent_handshake;
} wg_timers;

void wg_timers_init(wg_timers *t, const wg_tunables *tunables, const rng_source *rng,
                    uint64_t persistent_interval);
void wg_timers_set_persistent(wg_timers *t, uint64_t interval, uint64_t now);
/* An AWG 3.x PersistentKeepalive range [interval, interval_max]: each arming draws from it. */
void wg_timers_set_persistent_max(wg_timers *t, uint64_t interval_max);
/* Disarms everything (peer removed or keys zeroed). */
void wg_timers_stop(wg_timers *t);

/* Events. */
void wg_timers_data_sent(wg_timers *t, uint64_t now);          /* non-empty transport sent */
void wg_timers_data_received(wg_timers *t, uint64_t now);      /* non-empty transport received */
void wg_timers_authenticated_sent(wg_timers *t, uint64_t now); /* any authenticated packet */
void wg_timers_authenticated_received(wg_timers *t, uint64_t now); /* any authenticated packet */
void wg_timers_traversal(wg_timers *t, uint64_t now); /* authenticated packet sent or received */
void wg_timers_handshake_initiated(wg_timers *t, uint64_t now, bool retry);
void wg_timers_handshake_sent(wg_timers *t, uint64_t now);     /* initiation or response sent */
void wg_timers_handshake_complete(wg_timers *t, uint64_t now); /* session confirmed */
void wg_timers_session_derived(wg_timers *t, uint64_t now);    /* new keypair installed */

/* False while a handshake message went out less than REKEY_TIMEOUT ago. */
bool wg_timers_may_send_handshake(const wg_timers *t, uint64_t now);

/* Earliest armed deadline; false when nothing is armed. */
bool wg_timers_next_deadline(const wg_timers *t, uint64_t *deadline);
/* Fires every timer due at now and returns the resulting actions. */
unsigned wg_timers_expire(wg_timers *t, uint64_t now);

/* Rekey rules on the current keypair. On send: sent REKEY_AFTER_MESSAGES, or we initiated it
 * REKEY_AFTER_TIME ago. On receive (once per session): we initiated it and it is within
 * KEEPALIVE + REKEY_TIMEOUT of REJECT_AFTER_TIME, so rekey before it dies. */
bool wg_timers_rekey_on_send(const wg_timers *t, uint64_t birth, bool initiator,
                             uint64_t send_counter, uint64_t now);
bool wg_timers_rekey_on_receive(wg_timers *t, uint64_t birth, bool initiator, uint64_t now);

#endif
