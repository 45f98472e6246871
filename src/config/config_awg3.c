/* AmneziaWG 3.x keys (docs/config-reference.md, ../shared/spec/awg3-obfuscation.md §2):
 * [Interface] HeaderProtectionKey, ContentPaddingAddition, RandomTrailers, DisableCookies,
 * RekeyAfterTime, RekeyTimeout, RejectAfterTime, KeepaliveTimeout, MaxHandshakeAttempts, and the
 * [Peer] PersistentKeepalive range. Cross-key rules (S >= 12 with header protection) are checked
 * after the whole file, in awg_params_validate. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"
#include "util/keys.h"

/* Timing ranges are seconds; a day is far beyond any sensible value, and keeps every
 * nanosecond product (and 3 x RejectAfterTime) far from overflow. */
#define AWG3_MAX_SECONDS 86400u
#define AWG3_MAX_ATTEMPTS 1000u

static awg3_params *v3(load_ctx *L) { return &cfg_load_config(L)->awg.v3; }

int cfg_k_header_protection_key(load_ctx *L, char *v, char *err, size_t n) {
  awg3_params *p = v3(L);
  char why[160];
  if (key_from_base64(v, p->hp_key, why, sizeof why) != 0) {
    snprintf(err, n, "%s (a 32-byte base64 key, e.g. from `awgproxy genkey`)", why);
    return -1;
  }
  /* All zeros is amneziawg's way to say "off" (spec R1). */
  p->header_protection = !sodium_is_zero(p->hp_key, sizeof p->hp_key);
  return 0;
}

int cfg_k_content_padding(load_ctx *L, char *v, char *err, size_t n) {
  /* More than an MTU is never added (the cap), so a bigger bound is a typo. */
  return awg3_range_parse(v, 65535, &v3(L)->content_padding, err, n);
}

int cfg_k_random_trailers(load_ctx *L, char *v, char *err, size_t n) {
  return awg3_bool_parse(v, &v3(L)->random_trailers, err, n);
}

int cfg_k_disable_cookies(load_ctx *L, char *v, char *err, size_t n) {
  return awg3_bool_parse(v, &v3(L)->disable_cookies, err, n);
}

/* A timing range whose start is 0 but whose end is not would sometimes draw 0, which upstream
 * treats as "never fire" (spec R54/R55); we refuse it (docs/decisions.md). */
static int timing(char *v, uint32_t max, awg3_range *out, char *err, size_t n) {
  awg3_range r;
  if (awg3_range_parse(v, max, &r, err, n) != 0) return -1;
  if (r.lo == 0 && r.hi != 0) {
    snprintf(err, n,
             "\"%.40s\" starts at 0: a draw of 0 would disable the timer; start the range at 1 or "
             "more (or write 0 for the default)",
             v);
    return -1;
  }
  *out = r;
  return 0;
}

int cfg_k_rekey_after_time(load_ctx *L, char *v, char *err, size_t n) {
  return timing(v, AWG3_MAX_SECONDS, &v3(L)->rekey_after_time, err, n);
}
int cfg_k_rekey_timeout(load_ctx *L, char *v, char *err, size_t n) {
  return timing(v, AWG3_MAX_SECONDS, &v3(L)->rekey_timeout, err, n);
}
int cfg_k_reject_after_time(load_ctx *L, char *v, char *err, size_t n) {
  return timing(v, AWG3_MAX_SECONDS, &v3(L)->reject_after_time, err, n);
}
int cfg_k_keepalive_timeout(load_ctx *L, char *v, char *err, size_t n) {
  return timing(v, AWG3_MAX_SECONDS, &v3(L)->keepalive_timeout, err, n);
}
int cfg_k_max_handshake_attempts(load_ctx *L, char *v, char *err, size_t n) {
  return timing(v, AWG3_MAX_ATTEMPTS, &v3(L)->max_handshake_attempts, err, n);
}

/* [Peer] PersistentKeepalive: "off", N or A-B seconds (AWG 3.x draws each interval from the
 * range, spec R48). */
int cfg_k_persistent_keepalive(load_ctx *L, char *v, char *err, size_t n) {
  cfg_peer *peer = cfg_load_peer(L);
  if (strcasecmp(v, "off") == 0) {
    peer->persistent_keepalive = peer->persistent_keepalive_max = 0;
    return 0;
  }
  awg3_range r;
  /* A plain number keeps WireGuard's messages; a range is AWG 3.x. */
  if (!strchr(v, '-')) {
    uint64_t k;
    if (cfg_parse_uint(v, 0, 65535, &k, err, n) != 0) return -1;
    r.lo = r.hi = (uint32_t)k;
  } else if (timing(v, 65535, &r, err, n) != 0) {
    return -1;
  }
  peer->persistent_keepalive = (uint16_t)r.lo;
  peer->persistent_keepalive_max = (uint16_t)r.hi;
  return 0;
}
