#include "wg/timers.h"

#include <string.h>

static uint64_t jitter(const wg_timers *t) {
  uint64_t max = t->tunables->rekey_jitter_max;
  if (max == 0) return 0;
  if (max > UINT32_MAX) max = UINT32_MAX;
  return rng_range(t->rng, 0, (uint32_t)max);
}

/* A draw from [lo, hi] in whole seconds, as amneziawg 3.x draws its timing ranges (hi <= lo: lo,
 * without touching the RNG, so that fixed timers behave exactly as before). */
static uint64_t pick(const wg_timers *t, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return lo;
  uint64_t steps = (hi - lo) / WG_NS_PER_SEC;
  if (steps > UINT32_MAX) steps = UINT32_MAX;
  return lo + (uint64_t)rng_range(t->rng, 0, (uint32_t)steps) * WG_NS_PER_SEC;
}

static uint64_t rekey_timeout(const wg_timers *t) {
  return pick(t, t->tunables->rekey_timeout, t->tunables->rekey_timeout_max);
}

static uint64_t keepalive_timeout(const wg_timers *t) {
  return pick(t, t->tunables->keepalive_timeout, t->tunables->keepalive_timeout_max);
}

static uint64_t keepalive_timeout_max(const wg_timers *t) {
  uint64_t hi = t->tunables->keepalive_timeout_max;
  return hi > t->tunables->keepalive_timeout ? hi : t->tunables->keepalive_timeout;
}

static uint64_t persistent_interval(const wg_timers *t) {
  return pick(t, t->persistent_interval, t->persistent_interval_max);
}

/* MaxHandshakeAttempts: retries allowed in the coming round (spec R53). */
static uint32_t draw_max_retries(const wg_timers *t) {
  const wg_tunables *u = t->tunables;
  if (u->max_retries_min == 0 && u->max_retries_max == 0)
    return wg_tunables_max_handshake_retries(u);
  if (u->max_retries_max <= u->max_retries_min) return u->max_retries_min;
  return rng_range(t->rng, u->max_retries_min, u->max_retries_max);
}

static void arm(wg_timers *t, wg_timer_id id, uint64_t deadline) {
  t->deadline[id] = deadline;
  t->armed[id] = true;
}

static void disarm(wg_timers *t, wg_timer_id id) { t->armed[id] = false; }

static uint64_t since(uint64_t then, uint64_t now) { return now > then ? now - then : 0; }

void wg_timers_init(wg_timers *t, const wg_tunables *tunables, const rng_source *rng,
                    uint64_t persistent_interval) {
  memset(t, 0, sizeof *t);
  t->tunables = tunables;
  t->rng = rng;
  t->persistent_interval = persistent_interval;
  t->max_retries = draw_max_retries(t);
}

void wg_timers_set_persistent_max(wg_timers *t, uint64_t interval_max) {
  t->persistent_interval_max = interval_max;
}

void wg_timers_set_persistent(wg_timers *t, uint64_t interval, uint64_t now) {
  t->persistent_interval = interval;
  if (interval)
    arm(t, WG_TIMER_PERSISTENT_KEEPALIVE, now + persistent_interval(t));
  else
    disarm(t, WG_TIMER_PERSISTENT_KEEPALIVE);
}

void wg_timers_stop(wg_timers *t) {
  for (int i = 0; i < WG_TIMER_COUNT; i++) disarm(t, (wg_timer_id)i);
  t->need_another_keepalive = false;
}

void wg_timers_data_sent(wg_timers *t, uint64_t now) {
  if (!t->armed[WG_TIMER_NEW_HANDSHAKE])
    arm(t, WG_TIMER_NEW_HANDSHAKE, now + keepalive_timeout_max(t) + rekey_timeout(t) + jitter(t));
}

void wg_timers_data_received(wg_timers *t, uint64_t now) {
  if (!t->armed[WG_TIMER_SEND_KEEPALIVE])
    arm(t, WG_TIMER_SEND_KEEPALIVE, now + keepalive_timeout(t));
  else
    t->need_another_keepalive = true;
}

/* Anything we send acknowledges what we received: no separate keepalive needed. */
void wg_timers_authenticated_sent(wg_timers *t, uint64_t now) {
  (void)now;
  disarm(t, WG_TIMER_SEND_KEEPALIVE);
}

/* Anything received shows the session is alive: no need to suspect it. */
void wg_timers_authenticated_received(wg_timers *t, uint64_t now) {
  (void)now;
  disarm(t, WG_TIMER_NEW_HANDSHAKE);
}

void wg_timers_traversal(wg_timers *t, uint64_t now) {
  if (t->persistent_interval) arm(t, WG_TIMER_PERSISTENT_KEEPALIVE, now + persistent_interval(t));
}

void wg_timers_handshake_initiated(wg_timers *t, uint64_t now, bool retry) {
  if (!retry) {
    t->handshake_attempts = 0;
    t->max_retries = draw_max_retries(t);
  }
  arm(t, WG_TIMER_RETRANSMIT, now + rekey_timeout(t) + jitter(t));
}

void wg_timers_handshake_sent(wg_timers *t, uint64_t now) {
  t->last_handshake_sent = now;
  t->has_sent_handshake = true;
}

void wg_timers_handshake_complete(wg_timers *t, uint64_t now) {
  (void)now;
  disarm(t, WG_TIMER_RETRANSMIT);
  t->handshake_attempts = 0;
  t->max_retries = draw_max_retries(t);
  t->sent_lastminute_handshake = false;
}

void wg_timers_session_derived(wg_timers *t, uint64_t now) {
  arm(t, WG_TIMER_ZERO_KEYS, now + 3 * t->tunables->reject_after_time);
}

bool wg_timers_may_send_handshake(const wg_timers *t, uint64_t now) {
  return !t->has_sent_handshake || since(t->last_handshake_sent, now) >= t->tunables->rekey_timeout;
}

bool wg_timers_next_deadline(const wg_timers *t, uint64_t *deadline) {
  bool any = false;
  for (int i = 0; i < WG_TIMER_COUNT; i++) {
    if (t->armed[i] && (!any || t->deadline[i] < *deadline)) {
      *deadline = t->deadline[i];
      any = true;
    }
  }
  return any;
}

/* Retries exhausted: stop suspecting the session and let the keys die in due time. */
static unsigned give_up(wg_timers *t, uint64_t now) {
  disarm(t, WG_TIMER_NEW_HANDSHAKE);
  if (!t->armed[WG_TIMER_ZERO_KEYS])
    arm(t, WG_TIMER_ZERO_KEYS, now + 3 * t->tunables->reject_after_time);
  return WG_ACT_HANDSHAKE_FAILED;
}

/* With defaults the first initiation plus 19 retransmissions: 20 attempts over ~95 s. */
static unsigned fire_retransmit(wg_timers *t, uint64_t now) {
  if (t->handshake_attempts > t->max_retries) return give_up(t, now);
  t->handshake_attempts++;
  return WG_ACT_RETRANSMIT;
}

static unsigned fire_send_keepalive(wg_timers *t, uint64_t now) {
  if (t->need_another_keepalive) {
    t->need_another_keepalive = false;
    arm(t, WG_TIMER_SEND_KEEPALIVE, now + keepalive_timeout(t));
  }
  return WG_ACT_SEND_KEEPALIVE;
}

static unsigned fire(wg_timers *t, wg_timer_id id, uint64_t now) {
  switch (id) {
    case WG_TIMER_RETRANSMIT:
      return fire_retransmit(t, now);
    case WG_TIMER_SEND_KEEPALIVE:
      return fire_send_keepalive(t, now);
    case WG_TIMER_NEW_HANDSHAKE:
      return WG_ACT_INITIATE;
    case WG_TIMER_ZERO_KEYS:
      return WG_ACT_ZERO_KEYS;
    case WG_TIMER_PERSISTENT_KEEPALIVE:
      return t->persistent_interval ? WG_ACT_SEND_KEEPALIVE : 0;
    case WG_TIMER_COUNT:
      break;
  }
  return 0;
}

unsigned wg_timers_expire(wg_timers *t, uint64_t now) {
  unsigned actions = 0;
  for (int i = 0; i < WG_TIMER_COUNT; i++) {
    if (!t->armed[i] || t->deadline[i] > now) continue;
    disarm(t, (wg_timer_id)i); /* fire() may re-arm it */
    actions |= fire(t, (wg_timer_id)i, now);
  }
  return actions;
}

bool wg_timers_rekey_on_send(const wg_timers *t, uint64_t birth, bool initiator,
                             uint64_t send_counter, uint64_t now) {
  if (send_counter > t->tunables->rekey_after_messages) return true;
  return initiator && since(birth, now) >=
                          pick(t, t->tunables->rekey_after_time, t->tunables->rekey_after_time_max);
}

bool wg_timers_rekey_on_receive(wg_timers *t, uint64_t birth, bool initiator, uint64_t now) {
  const wg_tunables *u = t->tunables;
  uint64_t margin = u->keepalive_timeout + u->rekey_timeout;
  uint64_t reject = u->reject_after_time_min && u->reject_after_time_min < u->reject_after_time
                        ? pick(t, u->reject_after_time_min, u->reject_after_time)
                        : u->reject_after_time;
  uint64_t limit = reject > margin ? reject - margin : 0;
  if (!initiator || t->sent_lastminute_handshake || since(birth, now) < limit) return false;
  t->sent_lastminute_handshake = true;
  return true;
}
