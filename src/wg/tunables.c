#include "wg/tunables.h"

void wg_tunables_default(wg_tunables *t) {
  t->rekey_after_messages = WG_REKEY_AFTER_MESSAGES;
  t->reject_after_messages = WG_REJECT_AFTER_MESSAGES;
  t->rekey_after_time = 120 * WG_NS_PER_SEC;
  t->reject_after_time = 180 * WG_NS_PER_SEC;
  t->rekey_attempt_time = 90 * WG_NS_PER_SEC;
  t->rekey_timeout = 5 * WG_NS_PER_SEC;
  t->rekey_jitter_max = 333 * WG_NS_PER_MS;
  t->keepalive_timeout = 10 * WG_NS_PER_SEC;
  /* 50 initiations per second, the rate WireGuard allows per peer. */
  t->initiation_min_interval = WG_NS_PER_SEC / 50;
  t->rekey_after_time_max = t->rekey_timeout_max = t->keepalive_timeout_max = 0;
  t->reject_after_time_min = 0;
  t->max_retries_min = t->max_retries_max = 0;
}

uint32_t wg_tunables_max_handshake_retries(const wg_tunables *t) {
  if (t->rekey_timeout == 0) return 0;
  return (uint32_t)(t->rekey_attempt_time / t->rekey_timeout);
}
