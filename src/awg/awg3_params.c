/* AmneziaWG 3.x parameters: defaults, value syntax and the load-time rules (spec §2). */
#include "awg/awg3_params.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void awg3_params_init(awg3_params *p) { memset(p, 0, sizeof *p); }

bool awg3_range_is_set(awg3_range r) { return r.lo != 0 || r.hi != 0; }

bool awg3_params_is_off(const awg3_params *p) {
  return !p->header_protection && !awg3_range_is_set(p->content_padding) && !p->random_trailers &&
         !p->disable_cookies && !awg3_range_is_set(p->rekey_after_time) &&
         !awg3_range_is_set(p->rekey_timeout) && !awg3_range_is_set(p->reject_after_time) &&
         !awg3_range_is_set(p->keepalive_timeout) && !awg3_range_is_set(p->max_handshake_attempts);
}

/* Digits only in [s, s+n), at most max. */
static int parse_number(const char *text, const char *s, size_t n, uint32_t max, uint32_t *out,
                        char *err, size_t errlen) {
  if (n == 0) {
    snprintf(err, errlen, "\"%.40s\": a number is missing (write A or A-B, e.g. 10-100)", text);
    return -1;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      snprintf(err, errlen,
               "\"%.40s\": \"%.*s\" is not an unsigned decimal number (digits 0-9 only, write "
               "A or A-B)",
               text, (int)(n > 20 ? 20 : n), s);
      return -1;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > max) {
      snprintf(err, errlen, "\"%.40s\": %.*s is above the maximum %" PRIu32, text,
               (int)(n > 20 ? 20 : n), s, max);
      return -1;
    }
  }
  *out = (uint32_t)v;
  return 0;
}

int awg3_range_parse(const char *text, uint32_t max, awg3_range *out, char *err, size_t errlen) {
  const char *dash = strchr(text, '-');
  if (dash != NULL && strchr(dash + 1, '-') != NULL) {
    snprintf(err, errlen, "\"%.40s\": expected A or A-B with a single '-'", text);
    return -1;
  }
  awg3_range r;
  size_t first = dash ? (size_t)(dash - text) : strlen(text);
  if (parse_number(text, text, first, max, &r.lo, err, errlen)) return -1;
  r.hi = r.lo;
  if (dash && parse_number(text, dash + 1, strlen(dash + 1), max, &r.hi, err, errlen)) return -1;
  if (r.hi < r.lo) {
    snprintf(err, errlen, "\"%.40s\": the end is below the start (write the smaller number first)",
             text);
    return -1;
  }
  *out = r;
  return 0;
}

int awg3_range_format(awg3_range r, char *buf, size_t len) {
  if (r.lo == r.hi) return snprintf(buf, len, "%" PRIu32, r.lo);
  return snprintf(buf, len, "%" PRIu32 "-%" PRIu32, r.lo, r.hi);
}

int awg3_bool_parse(const char *text, bool *out, char *err, size_t errlen) {
  if (!strcasecmp(text, "on")) return *out = true, 0;
  if (!strcasecmp(text, "off")) return *out = false, 0;
  size_t n = strlen(text);
  bool nonzero = false;
  if (n == 0 || n > 10) goto bad;
  for (size_t i = 0; i < n; i++) {
    if (text[i] < '0' || text[i] > '9') goto bad;
    nonzero |= text[i] != '0';
  }
  *out = nonzero;
  return 0;
bad:
  snprintf(err, errlen, "\"%.40s\" is not on/off (write on, off, 1 or 0)", text);
  return -1;
}

int awg3_params_validate(const awg3_params *p, const uint32_t s[4], char *err, size_t errlen) {
  if (!p->header_protection) return 0;
  for (int k = 0; k < 4; k++) {
    if (s[k] >= AWG3_HP_NONCE_LEN) continue;
    snprintf(err, errlen,
             "S%d = %" PRIu32
             " is below 12: with HeaderProtectionKey every S1..S4 must be at least 12, because "
             "the first 12 bytes of each datagram are the mask nonce (set S%d >= 12 on both peers)",
             k + 1, s[k], k + 1);
    return -1;
  }
  return 0;
}
