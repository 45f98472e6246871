/* AWG obfuscation on the datagram path (spec §2-§5, §7; decisions.md #1, #4, #5, #8). */
#include "awg/obfs.h"

#include "awg/first_bytes.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/bytes.h"

/* Unpadded WireGuard sizes of the three handshake kinds, indexed by kind - 1. */
static const size_t kHandshakeSize[3] = {WG_INIT_SIZE, WG_RESPONSE_SIZE, WG_COOKIE_SIZE};

static bool valid_kind(awg_msg_kind kind) {
  return kind >= AWG_MSG_INIT && kind <= AWG_MSG_TRANSPORT;
}

static awg_msg_kind found(awg_msg_kind kind, const uint8_t *m, size_t n, const uint8_t **msg,
                          size_t *msg_len) {
  *msg = m;
  *msg_len = n;
  return kind;
}

awg_msg_kind awg_classify(const awg_params *p, const uint8_t *d, size_t len, const uint8_t **msg,
                          size_t *msg_len, int *bare_keepalive) {
  const uint8_t *m_unused;
  size_t n_unused;
  int b_unused;
  if (msg == NULL) msg = &m_unused;
  if (msg_len == NULL) msg_len = &n_unused;
  if (bare_keepalive == NULL) bare_keepalive = &b_unused;
  *msg = NULL;
  *msg_len = 0;
  *bare_keepalive = 0;
  /* Raw length first, before anything is stripped (as the reference). */
  if (d == NULL || len < WG_TRANSPORT_MIN) return AWG_MSG_UNKNOWN;

  /* Fixed order, first match wins: the handshake kinds by exact size, then transport (§4.1). */
  for (int k = 0; k < 3; k++) {
    uint64_t s = p->s[k];
    if ((uint64_t)len == s + kHandshakeSize[k] && awg_hrange_contains(p->h[k], le32_load(d + s)))
      return found((awg_msg_kind)(k + 1), d + s, kHandshakeSize[k], msg, msg_len);
  }
  uint64_t s4 = p->s[3];
  /* An e796d47 sender never pads keepalives (§3.5). With S4 > 0 no padded transport message is
   * 32 bytes long, so a 32-byte datagram typed in H4 can only be such a keepalive (decisions #1).
   * The caller accepts it only if it authenticates as one. */
  if (s4 > 0 && len == WG_TRANSPORT_MIN && awg_hrange_contains(p->h[3], le32_load(d))) {
    *bare_keepalive = 1;
    return found(AWG_MSG_TRANSPORT, d, len, msg, msg_len);
  }
  if ((uint64_t)len >= s4 + WG_TRANSPORT_HEADER &&
      awg_hrange_contains(p->h[3], le32_load(d + s4))) {
    /* The reference classifies from S4+16 bytes on but then drops anything under 32 (§4.2). */
    if ((uint64_t)len - s4 < WG_TRANSPORT_MIN) return AWG_MSG_UNKNOWN;
    return found(AWG_MSG_TRANSPORT, d + s4, len - (size_t)s4, msg, msg_len);
  }
  return AWG_MSG_UNKNOWN;
}

uint32_t awg_draw_type(const awg_params *p, awg_msg_kind kind, const rng_source *rng) {
  if (!valid_kind(kind)) return 0;
  awg_hrange h = p->h[kind - 1];
  return rng_range(rng, h.start, h.end);
}

size_t awg_handshake_size(awg_msg_kind kind) {
  return kind >= AWG_MSG_INIT && kind <= AWG_MSG_COOKIE ? kHandshakeSize[kind - 1] : 0;
}

uint32_t awg_padding(const awg_params *p, awg_msg_kind kind) {
  return valid_kind(kind) ? p->s[kind - 1] : 0;
}

void awg_fill_padding(const awg_params *p, awg_msg_kind kind, const rng_source *rng, uint8_t *out) {
  rng_bytes(rng, out, awg_padding(p, kind));
}

/* True if a receiver with our params could take a transport datagram of this length for a
 * handshake message. Where S_k = S4 the bytes it would test are our own H4 type, which cannot lie
 * in a disjoint H_k (spec §4.4), so only overlapping ranges (rejected by validation) count there.
 * Everywhere else they are padding, index, counter or ciphertext bytes we cannot steer. */
static bool handshake_length(const awg_params *p, uint64_t len) {
  for (int k = 0; k < 3; k++) {
    if (len != (uint64_t)p->s[k] + kHandshakeSize[k]) continue;
    if (p->s[k] != p->s[3] || awg_hrange_overlap(p->h[k], p->h[3])) return true;
  }
  return false;
}

bool awg_transport_len_ambiguous(const awg_params *p, uint64_t datagram_len) {
  return handshake_length(p, datagram_len);
}

/* Decisions #8: avoid the colliding lengths themselves by whole 16-byte blocks (any receiver strips
 * plaintext padding). Three lengths can collide, so at most three extra blocks are ever needed, and
 * with default params none is (the datagram stays byte-identical to WireGuard). */
size_t awg_transport_extra_padding(const awg_params *p, size_t padded_len) {
  uint64_t len = (uint64_t)p->s[3] + WG_TRANSPORT_MIN + padded_len;
  size_t extra = 0;
  while (handshake_length(p, len + extra)) extra += 16;
  return extra;
}

/* ---- pre-handshake datagrams -------------------------------------------------------------- */

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

static size_t sat_mul(size_t a, size_t b) { return b && a > SIZE_MAX / b ? SIZE_MAX : a * b; }

static size_t count_i(const awg_params *p) {
  size_t n = 0;
  for (int k = 0; k < AWG_NUM_I; k++) n += p->i[k] != NULL;
  return n;
}

size_t awg_prehandshake_count(const awg_params *p) { return sat_add(count_i(p), p->jc); }

size_t awg_prehandshake_max_bytes(const awg_params *p) {
  size_t total = 0;
  for (int k = 0; k < AWG_NUM_I; k++) total = sat_add(total, awg_itemplate_size(p->i[k]));
  /* Validation rejects Jmin > Jmax; the build still stays in bounds by drawing from the sorted
   * pair, so the larger of the two is the bound. */
  uint32_t jhi = p->jmin > p->jmax ? p->jmin : p->jmax;
  return sat_add(total, sat_mul(p->jc, jhi));
}

/* Reserves n bytes of the arena; NULL-safe for empty datagrams with no arena. */
static uint8_t *take(uint8_t *arena, size_t arena_len, size_t *used, size_t n, bool *ok) {
  if (n > arena_len - *used) {
    *ok = false;
    return NULL;
  }
  uint8_t *at = arena ? arena + *used : NULL;
  *used += n;
  return at;
}

int awg_build_prehandshake(const awg_params *p, const awg_render_ctx *ctx, uint8_t *arena,
                           size_t arena_len, awg_datagram *out, size_t out_cap) {
  size_t count = awg_prehandshake_count(p);
  if (count > out_cap || count > INT_MAX) return -1;
  size_t n = 0, used = 0;
  bool ok = true;
  /* <c> counts datagrams sent before this one, so later I-packets see the earlier ones. */
  awg_render_ctx local = *ctx;
  for (int k = 0; k < AWG_NUM_I; k++) {
    if (p->i[k] == NULL) continue;
    size_t size = awg_itemplate_size(p->i[k]);
    uint8_t *at = take(arena, arena_len, &used, size, &ok);
    if (!ok) return -1;
    local.packet_counter = ctx->packet_counter + (uint32_t)n;
    awg_itemplate_render(p->i[k], &local, at, size);
    out[n++] = (awg_datagram){at, size};
  }
  uint32_t lo = p->jmin < p->jmax ? p->jmin : p->jmax;
  uint32_t hi = p->jmin < p->jmax ? p->jmax : p->jmin;
  for (uint32_t j = 0; j < p->jc; j++) {
    size_t size = rng_range(ctx->rng, lo, hi);
    uint8_t *at = take(arena, arena_len, &used, size, &ok);
    if (!ok) return -1;
    awg_fill_screened(ctx->rng, at, size, size); /* junk starts a datagram: first_bytes.h */
    out[n++] = (awg_datagram){at, size};
  }
  return (int)n;
}

/* ---- validation --------------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int validate_padding(const awg_params *p, char *err, size_t errlen) {
  static const char *const kWhat[4] = {"handshake initiation", "handshake response", "cookie reply",
                                       "keepalive"};
  static const size_t kSize[4] = {WG_INIT_SIZE, WG_RESPONSE_SIZE, WG_COOKIE_SIZE, WG_TRANSPORT_MIN};
  for (int k = 0; k < 4; k++) {
    uint64_t total = (uint64_t)p->s[k] + kSize[k];
    if (p->s[k] > AWG_MAX_PADDING || total > AWG_MAX_DATAGRAM)
      return fail(err, errlen,
                  "S%d = %" PRIu32 " is too large: a padded %s would be %" PRIu64
                  " bytes, above the %d-byte datagram limit (S%d can be at most %zu)",
                  k + 1, p->s[k], kWhat[k], total, AWG_MAX_DATAGRAM, k + 1,
                  (size_t)AWG_MAX_DATAGRAM - kSize[k]);
  }
  return 0;
}

static int validate_headers(const awg_params *p, char *err, size_t errlen) {
  for (int a = 0; a < 4; a++) {
    for (int b = a + 1; b < 4; b++) {
      if (!awg_hrange_overlap(p->h[a], p->h[b])) continue;
      char ra[24], rb[24];
      awg_hrange_format(p->h[a], ra, sizeof ra);
      awg_hrange_format(p->h[b], rb, sizeof rb);
      return fail(err, errlen,
                  "H%d (%s) and H%d (%s) overlap: the four header ranges must not share any "
                  "value (unset ones default to H1=1, H2=2, H3=3, H4=4)",
                  a + 1, ra, b + 1, rb);
    }
  }
  return 0;
}

/* Junk settings only matter while Jc > 0 (0 = off, decisions #5). */
static int validate_junk(const awg_params *p, char *err, size_t errlen) {
  if (p->jc == 0) return 0;
  if (p->jmin > p->jmax)
    return fail(err, errlen,
                "Jmin = %" PRIu32 " is greater than Jmax = %" PRIu32
                "%s: junk sizes are drawn from Jmin to Jmax, so set Jmax to at least Jmin",
                p->jmin, p->jmax, p->jmax == 0 ? " (Jmax not set)" : "");
  if (p->jmax > AWG_MAX_DATAGRAM)
    return fail(err, errlen,
                "Jmax = %" PRIu32
                " is above the %d-byte datagram limit (keep junk below the path "
                "MTU, e.g. Jmax = 1000)",
                p->jmax, AWG_MAX_DATAGRAM);
  return 0;
}

static int validate_prehandshake(const awg_params *p, char *err, size_t errlen) {
  for (int k = 0; k < AWG_NUM_I; k++) {
    size_t size = awg_itemplate_size(p->i[k]);
    if (size > AWG_MAX_DATAGRAM)
      return fail(err, errlen, "I%d renders %zu bytes, above the %d-byte datagram limit", k + 1,
                  size, AWG_MAX_DATAGRAM);
  }
  size_t n_i = count_i(p);
  uint64_t total = (uint64_t)n_i + p->jc;
  if (total > AWG_MAX_PREHANDSHAKE_DATAGRAMS)
    return fail(err, errlen,
                "Jc = %" PRIu32 " plus %zu I-packet(s) makes %" PRIu64
                " datagrams before each handshake initiation, above the limit of %d; lower Jc "
                "to at most %zu",
                p->jc, n_i, total, AWG_MAX_PREHANDSHAKE_DATAGRAMS,
                (size_t)AWG_MAX_PREHANDSHAKE_DATAGRAMS - n_i);
  return 0;
}

int awg_params_validate(const awg_params *p, char *err, size_t errlen) {
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (validate_padding(p, err, errlen) || validate_headers(p, err, errlen) ||
      validate_junk(p, err, errlen) || validate_prehandshake(p, err, errlen) ||
      awg3_params_validate(&p->v3, p->s, err, errlen))
    return -1;
  return 0;
}
