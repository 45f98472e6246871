#include "awg/awg_params.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "awg/itag.h"

void awg_params_init(awg_params *p) {
  memset(p, 0, sizeof *p);
  awg3_params_init(&p->v3);
  /* H defaults are the vanilla WireGuard message types, so defaults are byte-identical to WG. */
  for (uint32_t k = 0; k < 4; k++) p->h[k] = (awg_hrange){k + 1, k + 1};
}

void awg_params_free(awg_params *p) {
  for (int k = 0; k < AWG_NUM_I; k++) {
    awg_itemplate_free(p->i[k]);
    p->i[k] = NULL;
  }
}

/* "Plain" means the wire format is WireGuard's: Jmin/Jmax are irrelevant while Jc is 0. */
bool awg_params_is_plain(const awg_params *p) {
  if (p->jc != 0) return false;
  for (uint32_t k = 0; k < 4; k++) {
    if (p->s[k] != 0 || p->h[k].start != k + 1 || p->h[k].end != k + 1) return false;
  }
  for (int k = 0; k < AWG_NUM_I; k++) {
    if (p->i[k] != NULL) return false;
  }
  return awg3_params_is_off(&p->v3);
}

/* Parses the decimal number in [s, s+n) (digits only, leading zeros fine) into *out.
 * Returns 0, or -1 with a message about `part` quoted from the whole value `text`. */
static int parse_u32_part(const char *text, const char *s, size_t n, const char *what,
                          uint32_t *out, char *err, size_t errlen) {
  if (n == 0) {
    snprintf(err, errlen, "\"%s\": the range %s is missing (write A or A-B, e.g. 100-200)", text,
             what);
    return -1;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      snprintf(err, errlen,
               "\"%s\": the range %s \"%.*s\" is not an unsigned decimal number "
               "(digits 0-9 only, no sign or spaces)",
               text, what, (int)n, s);
      return -1;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > UINT32_MAX) {
      snprintf(err, errlen, "\"%s\": the range %s \"%.*s\" is above the maximum 4294967295", text,
               what, (int)n, s);
      return -1;
    }
  }
  *out = (uint32_t)v;
  return 0;
}

int awg_hrange_parse(const char *text, awg_hrange *out, char *err, size_t errlen) {
  if (text == NULL || text[0] == '\0') {
    snprintf(err, errlen, "empty value: write a number 0..4294967295 or a range A-B");
    return -1;
  }
  const char *dash = strchr(text, '-');
  if (dash != NULL && strchr(dash + 1, '-') != NULL) {
    snprintf(err, errlen, "\"%s\": expected A or A-B with a single '-'", text);
    return -1;
  }
  awg_hrange r;
  size_t first_len = dash ? (size_t)(dash - text) : strlen(text);
  if (parse_u32_part(text, text, first_len, dash ? "start" : "value", &r.start, err, errlen))
    return -1;
  r.end = r.start;
  if (dash != NULL && parse_u32_part(text, dash + 1, strlen(dash + 1), "end", &r.end, err, errlen))
    return -1;
  if (r.end < r.start) {
    snprintf(err, errlen, "\"%s\": range end is below its start (write the smaller number first)",
             text);
    return -1;
  }
  *out = r;
  return 0;
}

int awg_hrange_format(awg_hrange r, char *buf, size_t len) {
  if (r.start == r.end) return snprintf(buf, len, "%" PRIu32, r.start);
  return snprintf(buf, len, "%" PRIu32 "-%" PRIu32, r.start, r.end);
}

bool awg_hrange_overlap(awg_hrange a, awg_hrange b) { return a.start <= b.end && b.start <= a.end; }

bool awg_hrange_contains(awg_hrange r, uint32_t v) { return r.start <= v && v <= r.end; }
