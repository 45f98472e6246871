/* Parsers for the server's per-peer exit settings: destination rules (ExitAllow, ExitDeny),
 * domain patterns (ExitAllowDomain, ExitDenyDomain) and bandwidths (UploadLimit, DownloadLimit).
 * Strict, and every error says what a correct value looks like. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config/config.h"
#include "config/config_internal.h"

#define RULE_EXAMPLES \
  "e.g. 203.0.113.0/24, 203.0.113.5:443, 0.0.0.0/0:8000-8999, [2001:db8::/32]:443 or *:25"

/* "PORT" or "LO-HI", 1-65535, LO <= HI. */
static int parse_ports(const char *s, const char *whole, cfg_exit_rule *r, char *err,
                       size_t errlen) {
  char buf[16], why[128];
  if (strlen(s) >= sizeof buf || !*s) {
    snprintf(err, errlen, "'%.80s': the port after ':' must be PORT or LO-HI (%s)", whole,
             RULE_EXAMPLES);
    return -1;
  }
  strcpy(buf, s);
  char *dash = strchr(buf, '-');
  if (dash) *dash = '\0';
  uint64_t lo, hi;
  if (cfg_parse_uint(buf, 1, 65535, &lo, why, sizeof why) != 0 ||
      (dash && cfg_parse_uint(dash + 1, 1, 65535, &hi, why, sizeof why) != 0)) {
    snprintf(err, errlen, "port in '%.80s': %s", whole, why);
    return -1;
  }
  if (!dash) hi = lo;
  if (lo > hi) {
    snprintf(err, errlen, "port range in '%.80s' runs backwards; write the lower port first",
             whole);
    return -1;
  }
  r->port_lo = (uint16_t)lo;
  r->port_hi = (uint16_t)hi;
  return 0;
}

int cfg_parse_exit_rule(const char *s, cfg_exit_rule *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  char buf[80];
  if (strlen(s) >= sizeof buf) {
    snprintf(err, errlen, "'%.40s…' is too long for a destination rule", s);
    return -1;
  }
  strcpy(buf, s);
  char *addr = buf, *ports = NULL;
  if (buf[0] == '[') { /* [V6CIDR]:PORTS */
    char *close = strchr(buf, ']');
    if (!close || close[1] != ':') {
      snprintf(err, errlen, "'%.80s': write an IPv6 prefix with ports as [2001:db8::/32]:443", s);
      return -1;
    }
    *close = '\0';
    addr = buf + 1;
    ports = close + 2;
    if (!strchr(addr, ':')) {
      snprintf(err, errlen, "'%.80s': only IPv6 prefixes go in brackets", s);
      return -1;
    }
  } else {
    char *colon = strchr(buf, ':');
    if (colon && strchr(colon + 1, ':')) {
      ports = NULL; /* a bare IPv6 prefix, no ports */
    } else if (colon) {
      *colon = '\0';
      ports = colon + 1;
    }
  }
  if (strcmp(addr, "*") == 0) {
    out->any = true;
  } else if (cfg_parse_cidr(addr, &out->net, err, errlen) != 0) {
    size_t l = strlen(err);
    snprintf(err + l, errlen - l, " (destination rules look like %s)", RULE_EXAMPLES);
    return -1;
  }
  if (ports && parse_ports(ports, s, out, err, errlen) != 0) return -1;
  return 0;
}

void cfg_format_exit_rule(const cfg_exit_rule *r, char *buf, size_t len) {
  char net[64] = "*";
  if (!r->any) cfg_format_cidr(&r->net, net, sizeof net);
  bool v6 = !r->any && r->net.family == AF_INET6;
  if (!r->port_lo)
    snprintf(buf, len, "%s", net);
  else if (r->port_lo == r->port_hi)
    snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", net, r->port_lo);
  else
    snprintf(buf, len, v6 ? "[%s]:%u-%u" : "%s:%u-%u", net, r->port_lo, r->port_hi);
}

int cfg_parse_domain_rule(const char *s, cfg_domain_rule *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *name = s;
  if (s[0] == '*') {
    if (s[1] != '.') {
      snprintf(err, errlen,
               "'%.80s': a wildcard is written *.example.com (every name below example.com)", s);
      return -1;
    }
    out->suffix = true;
    name = s + 2;
  }
  size_t len = strlen(name);
  if (len && name[len - 1] == '.') len--; /* the root's dot */
  if (!len || len > CFG_MAX_HOST) {
    snprintf(err, errlen, "'%.80s' is not a domain name (e.g. example.com or *.example.com)", s);
    return -1;
  }
  size_t label = 0;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (c == '.') {
      if (!label) goto bad;
      label = 0;
    } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
      if (++label > 63) goto bad;
    } else {
      goto bad;
    }
    out->name[i] = (char)tolower((unsigned char)c);
  }
  if (!label) goto bad;
  out->name[len] = '\0';
  return 0;
bad:
  snprintf(err, errlen,
           "'%.80s' is not a domain pattern: use letters, digits, '-' and '_' in dot-separated "
           "labels, optionally starting with '*.' (e.g. example.com or *.example.com)",
           s);
  return -1;
}

static const struct {
  const char *unit;
  uint64_t bytes_per_unit; /* times 8 for the bit units, see below */
  bool bits;
  bool exact_case;
} units[] = {
    {"kbit", 1000, true, false},       {"mbit", 1000000, true, false},
    {"gbit", 1000000000, true, false}, {"KB/s", 1000, false, true},
    {"kB/s", 1000, false, true},       {"MB/s", 1000000, false, true},
    {"GB/s", 1000000000, false, true},
};

int cfg_parse_rate(const char *s, uint64_t *out, char *err, size_t errlen) {
  if (strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0) return *out = 0, 0;
  size_t nd = 0;
  uint64_t v = 0;
  while (isdigit((unsigned char)s[nd]) && nd < 9) v = v * 10 + (uint64_t)(s[nd++] - '0');
  if (isdigit((unsigned char)s[nd])) {
    snprintf(err, errlen, "'%.64s' is too large; the maximum is 1000gbit", s);
    return -1;
  }
  const char *unit = s + nd;
  while (*unit == ' ') unit++;
  if (!nd || s[nd] == '.' || s[nd] == ',') {
    snprintf(err, errlen,
             "'%.64s' is not a bandwidth: write a whole number and a unit, e.g. 10mbit or "
             "2MB/s (kbit, mbit, gbit are bits per second; KB/s, MB/s, GB/s bytes per second), "
             "or off",
             s);
    return -1;
  }
  for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
    bool same = units[i].exact_case ? strcmp(unit, units[i].unit) == 0
                                    : strcasecmp(unit, units[i].unit) == 0;
    if (!same) continue;
    uint64_t bps = units[i].bits ? v * units[i].bytes_per_unit / 8 : v * units[i].bytes_per_unit;
    if (bps < CFG_MIN_RATE || bps > CFG_MAX_RATE) {
      snprintf(err, errlen, "'%.64s' is out of range; allowed: 8kbit (1KB/s) to 1000gbit", s);
      return -1;
    }
    *out = bps;
    return 0;
  }
  if (!*unit)
    snprintf(err, errlen,
             "'%.64s' has no unit: write e.g. %.12smbit (megabits per second) or %.12sMB/s "
             "(megabytes per second)",
             s, s, s);
  else
    snprintf(err, errlen,
             "unit '%.16s' in '%.64s' is ambiguous or unknown: use kbit, mbit, gbit for bits "
             "per second or KB/s, MB/s, GB/s for bytes per second (powers of 1000)",
             unit, s);
  return -1;
}

void cfg_format_rate(uint64_t b, char *buf, size_t len) {
  if (!b)
    snprintf(buf, len, "off");
  else if (b % 1000000 == 0)
    snprintf(buf, len, "%lluMB/s", (unsigned long long)(b / 1000000));
  else if (b % 1000 == 0)
    snprintf(buf, len, "%lluKB/s", (unsigned long long)(b / 1000));
  else
    snprintf(buf, len, "%llukbit", (unsigned long long)(b * 8 / 1000));
}
