/* Settings by name and JSON output (see impair_settings.h). */
#include "impair_settings.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const impair_setting_help =
    "  loss P          drop probability, 0..1\n"
    "  dup P           probability that a datagram is sent twice, 0..1\n"
    "  reorder P       probability that a datagram is held back by reorder_ms, 0..1\n"
    "  reorder_ms MS   how long a reordered datagram is held back (default 10)\n"
    "  delay_ms MS     fixed delay (alias: delay)\n"
    "  jitter_ms MS    delay is uniform in [delay-jitter, delay+jitter], never < 0; like netem,\n"
    "                  jitter can itself reorder (alias: jitter)\n"
    "  rate B          rate limit in bytes/s (suffix k, M, G = 10^3, 10^6, 10^9), 0 = unlimited\n"
    "  queue B         bytes the rate limiter queues before it tail-drops (default 256k)\n"
    "  mtu N           drop datagrams with more than N payload bytes (0 = off)\n"
    "  blackhole on|off  drop everything (also drops what is already held when it leaves)\n"
    "  MS values may be fractional (0.5); they are capped at 600000.\n";

unsigned impair_parse_dirs(const char *text) {
  if (strcmp(text, "up") == 0) return 1u << DIR_UP;
  if (strcmp(text, "down") == 0) return 1u << DIR_DOWN;
  if (strcmp(text, "both") == 0) return (1u << DIR_UP) | (1u << DIR_DOWN);
  return 0;
}

int impair_parse_bool(const char *text) {
  static const char *const yes[] = {"on", "1", "true", "yes"};
  static const char *const no[] = {"off", "0", "false", "no"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) return 1;
    if (strcasecmp(text, no[i]) == 0) return 0;
  }
  return -1;
}

/* A finite number in [lo, hi] with an optional k/M/G multiplier (when allowed). */
static int parse_number(const char *text, double lo, double hi, int suffixes, double *out) {
  if (!*text || isspace((unsigned char)*text)) return -1;
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || errno == ERANGE || !isfinite(v)) return -1;
  if (suffixes && *end) {
    if (*end == 'k' || *end == 'K')
      v *= 1e3;
    else if (*end == 'm' || *end == 'M')
      v *= 1e6;
    else if (*end == 'g' || *end == 'G')
      v *= 1e9;
    else
      return -1;
    end++;
  }
  if (*end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

enum key_kind { K_PROB, K_MS, K_BYTES, K_MTU, K_BOOL };

struct key_def {
  const char *name;
  enum key_kind kind;
  size_t offset;
};

static const struct key_def keys[] = {
    {"loss", K_PROB, offsetof(struct impair_settings, loss)},
    {"dup", K_PROB, offsetof(struct impair_settings, dup)},
    {"reorder", K_PROB, offsetof(struct impair_settings, reorder)},
    {"reorder_ms", K_MS, offsetof(struct impair_settings, reorder_ns)},
    {"delay_ms", K_MS, offsetof(struct impair_settings, delay_ns)},
    {"delay", K_MS, offsetof(struct impair_settings, delay_ns)},
    {"jitter_ms", K_MS, offsetof(struct impair_settings, jitter_ns)},
    {"jitter", K_MS, offsetof(struct impair_settings, jitter_ns)},
    {"rate", K_BYTES, offsetof(struct impair_settings, rate_bps)},
    {"queue", K_BYTES, offsetof(struct impair_settings, queue_bytes)},
    {"mtu", K_MTU, offsetof(struct impair_settings, mtu)},
    {"blackhole", K_BOOL, offsetof(struct impair_settings, blackhole)},
};

static const struct key_def *find_key(const char *name) {
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp(keys[i].name, name) == 0) return &keys[i];
  return NULL;
}

/* Stores value into one direction's settings. The value was validated by the caller. */
static void store(struct impair_settings *s, const struct key_def *k, double v) {
  char *field = (char *)s + k->offset;
  switch (k->kind) {
    case K_PROB:
      *(double *)field = v;
      break;
    case K_MS:
      *(uint64_t *)field = (uint64_t)(v * 1e6 + 0.5);
      break;
    case K_BYTES:
      *(uint64_t *)field = (uint64_t)(v + 0.5);
      break;
    case K_MTU:
      *(uint32_t *)field = (uint32_t)v;
      break;
    case K_BOOL:
      *(bool *)field = v != 0;
      break;
  }
}

static int parse_value(const struct key_def *k, const char *value, double *v) {
  switch (k->kind) {
    case K_PROB:
      return parse_number(value, 0, 1, 0, v);
    case K_MS:
      return parse_number(value, 0, 600000, 0, v);
    case K_BYTES:
      return parse_number(value, 0, 1e12, 1, v);
    case K_MTU:
      if (parse_number(value, 0, DGRAM_MAX, 0, v) != 0 || *v != floor(*v)) return -1;
      return 0;
    case K_BOOL: {
      int b = impair_parse_bool(value);
      *v = b;
      return b < 0 ? -1 : 0;
    }
  }
  return -1;
}

int impair_setting_apply(struct impair_settings *set, const char *name, const char *value,
                         char *err, size_t errcap) {
  char dir[8];
  const char *dot = strchr(name, '.');
  if (!dot || (size_t)(dot - name) >= sizeof dir) {
    snprintf(err, errcap, "setting names are DIR.KEY with DIR up, down or both");
    return -1;
  }
  memcpy(dir, name, (size_t)(dot - name));
  dir[dot - name] = 0;
  unsigned dirs = impair_parse_dirs(dir);
  if (!dirs) {
    snprintf(err, errcap, "unknown direction (up, down or both)");
    return -1;
  }
  const struct key_def *k = find_key(dot + 1);
  if (!k) {
    snprintf(err, errcap, "unknown setting (see --help)");
    return -1;
  }
  double v;
  if (!value || parse_value(k, value, &v) != 0) {
    snprintf(err, errcap, "bad value for %s", k->name);
    return -1;
  }
  for (int d = 0; d < DIR_COUNT; d++)
    if (dirs & (1u << d)) store(&set[d], k, v);
  return 0;
}

static size_t one_settings_json(const struct impair_settings *s, char *out, size_t cap) {
  int n = snprintf(out, cap,
                   "{\"loss\":%.6g,\"dup\":%.6g,\"reorder\":%.6g,\"reorder_ms\":%.6g,"
                   "\"delay_ms\":%.6g,\"jitter_ms\":%.6g,\"rate\":%" PRIu64 ",\"queue\":%" PRIu64
                   ",\"mtu\":%u,\"blackhole\":%s}",
                   s->loss, s->dup, s->reorder, (double)s->reorder_ns / 1e6,
                   (double)s->delay_ns / 1e6, (double)s->jitter_ns / 1e6, s->rate_bps,
                   s->queue_bytes, s->mtu, s->blackhole ? "true" : "false");
  return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void impair_settings_json(const struct impair_settings *set, char *out, size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "{\"up\":");
  n += one_settings_json(&set[DIR_UP], out + n, cap - n);
  n += (size_t)snprintf(out + n, cap - n, ",\"down\":");
  n += one_settings_json(&set[DIR_DOWN], out + n, cap - n);
  snprintf(out + n, cap - n, "}");
}

size_t impair_counters_json(const struct impair_counters *c, uint64_t held, char *out, size_t cap) {
  int n = snprintf(
      out, cap,
      "{\"received\":%" PRIu64 ",\"forwarded\":%" PRIu64 ",\"dropped\":%" PRIu64
      ",\"dropped_loss\":%" PRIu64 ",\"dropped_blackhole\":%" PRIu64 ",\"dropped_mtu\":%" PRIu64
      ",\"dropped_queue\":%" PRIu64 ",\"dropped_pool\":%" PRIu64 ",\"dropped_send\":%" PRIu64
      ",\"dropped_noclient\":%" PRIu64 ",\"dropped_stale\":%" PRIu64 ",\"duplicated\":%" PRIu64
      ",\"reordered\":%" PRIu64 ",\"delayed\":%" PRIu64 ",\"held\":%" PRIu64
      ",\"bytes_received\":%" PRIu64 ",\"bytes_forwarded\":%" PRIu64 "}",
      c->received, c->forwarded, impair_dropped_total(c), c->dropped_loss, c->dropped_blackhole,
      c->dropped_mtu, c->dropped_queue, c->dropped_pool, c->dropped_send, c->dropped_noclient,
      c->dropped_stale, c->duplicated, c->reordered, c->delayed, held, c->bytes_received,
      c->bytes_forwarded);
  return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}
