/* Parsers for the value types that appear in configs: integers, booleans, lists, IP addresses,
 * CIDR prefixes and host:port pairs. Every parser is strict and says what was wrong. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "util/addr_fmt.h"

int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                   size_t errlen) {
  if (!*s) {
    snprintf(err, errlen, "is empty; expected a number from %llu to %llu", (unsigned long long)min,
             (unsigned long long)max);
    return -1;
  }
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (!isdigit((unsigned char)*p)) {
      snprintf(err, errlen, "'%.64s' is not a whole number (digits only, no sign or unit)", s);
      return -1;
    }
    if (v > (UINT64_MAX - 9) / 10) {
      snprintf(err, errlen, "'%.64s' is too large; the maximum is %llu", s,
               (unsigned long long)max);
      return -1;
    }
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v < min || v > max) {
    snprintf(err, errlen, "%llu is out of range; allowed: %llu to %llu", (unsigned long long)v,
             (unsigned long long)min, (unsigned long long)max);
    return -1;
  }
  *out = v;
  return 0;
}

int cfg_parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"yes", "true", "on", "1"};
  static const char *const no[] = {"no", "false", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
    if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
  }
  return -1;
}

static char *trim_inplace(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

int cfg_split_list(char *s, char **items, int max) {
  int n = 0;
  for (char *tok = s;;) {
    char *comma = strchr(tok, ',');
    if (comma) *comma = '\0';
    char *t = trim_inplace(tok);
    if (*t) {
      if (n == max) return -1;
      items[n++] = t;
    }
    if (!comma) break;
    tok = comma + 1;
  }
  return n;
}

size_t cfg_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 1000;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag_prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
      size_t best = diag_prev + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag_prev = up;
    }
  }
  return row[lb];
}

int cfg_parse_ip(const char *s, cfg_ip *out) {
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, s, out->addr) == 1) return out->family = AF_INET, 0;
  if (inet_pton(AF_INET6, s, out->addr) == 1) return out->family = AF_INET6, 0;
  return -1;
}

static void mask_host_bits(cfg_cidr *c) {
  int bytes = c->family == AF_INET ? 4 : 16;
  for (int i = 0; i < bytes; i++) {
    int bits = (int)c->prefix - i * 8;
    if (bits >= 8) continue;
    c->addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xFF << (8 - bits));
  }
}

static int parse_cidr_common(const char *s, cfg_cidr *out, bool keep_host, char *err,
                             size_t errlen) {
  char buf[64];
  if (strlen(s) >= sizeof buf) {
    snprintf(err, errlen, "'%.40s…' is too long for an address", s);
    return -1;
  }
  strcpy(buf, s);
  char *slash = strchr(buf, '/');
  if (slash) *slash = '\0';
  cfg_ip ip;
  if (cfg_parse_ip(buf, &ip) != 0) {
    snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", buf);
    return -1;
  }
  memset(out, 0, sizeof *out);
  out->family = ip.family;
  memcpy(out->addr, ip.addr, 16);
  uint64_t maxp = ip.family == AF_INET ? 32 : 128;
  out->prefix = (uint8_t)maxp;
  if (slash) {
    uint64_t p;
    char why[128];
    if (cfg_parse_uint(slash + 1, 0, maxp, &p, why, sizeof why) != 0) {
      snprintf(err, errlen, "prefix length in '%s': %s", s, why);
      return -1;
    }
    out->prefix = (uint8_t)p;
  }
  if (!keep_host) mask_host_bits(out);
  return 0;
}

/* AllowedIPs-style prefix: host bits are cleared, as `wg` does. */
int cfg_parse_cidr(const char *s, cfg_cidr *out, char *err, size_t errlen) {
  return parse_cidr_common(s, out, false, err, errlen);
}

/* Interface Address: the host part is the address itself, the prefix only the on-link net. */
int cfg_parse_address(const char *s, cfg_cidr *out, char *err, size_t errlen) {
  return parse_cidr_common(s, out, true, err, errlen);
}

static bool valid_hostname(const char *h) {
  size_t len = strlen(h), label = 0;
  bool digits_only = true, last_digits_only = true; /* of the current / last non-empty label */
  if (len == 0 || len > CFG_MAX_HOST) return false;
  for (const char *p = h; *p; p++) {
    if (*p == '.') {
      if (label == 0) return false;
      last_digits_only = digits_only;
      label = 0;
      digits_only = true;
      continue;
    }
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return false;
    if (!isdigit((unsigned char)*p)) digits_only = false;
    if (++label > 63) return false;
  }
  if (label) last_digits_only = digits_only;
  /* An all-numeric top-level label is no DNS name (RFC 3696 §2): "10.0.0.300" is a typo'd IP. */
  return !last_digits_only;
}

int cfg_parse_hostport(const char *s, cfg_hostport *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *host = s, *port;
  size_t host_len;
  if (*s == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') {
      snprintf(err, errlen, "'%.80s': an IPv6 endpoint is written [address]:port", s);
      return -1;
    }
    host = s + 1;
    host_len = (size_t)(close - host);
    port = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon) {
      snprintf(err, errlen, "'%.80s' has no port; write host:port (e.g. vpn.example.com:51820)", s);
      return -1;
    }
    if (memchr(s, ':', (size_t)(colon - s))) {
      snprintf(err, errlen, "'%.80s': put an IPv6 address in brackets, as [2001:db8::1]:51820", s);
      return -1;
    }
    host_len = (size_t)(colon - s);
    port = colon + 1;
  }
  if (host_len == 0 || host_len > CFG_MAX_HOST) {
    snprintf(err, errlen, "'%.80s' has an empty or overlong host", s);
    return -1;
  }
  memcpy(out->host, host, host_len);
  out->host[host_len] = '\0';
  uint64_t p;
  char why[128];
  if (cfg_parse_uint(port, 1, 65535, &p, why, sizeof why) != 0) {
    snprintf(err, errlen, "port in '%.80s': %s", s, why);
    return -1;
  }
  out->port = (uint16_t)p;
  cfg_ip ip;
  out->host_is_ip = cfg_parse_ip(out->host, &ip) == 0;
  if (*s == '[' && (!out->host_is_ip || ip.family != AF_INET6)) {
    snprintf(err, errlen, "'%s' in brackets is not an IPv6 address", out->host);
    return -1;
  }
  if (!out->host_is_ip && !valid_hostname(out->host)) {
    snprintf(err, errlen, "'%s' is neither an IP address nor a valid host name", out->host);
    return -1;
  }
  return 0;
}

void cfg_format_cidr(const cfg_cidr *c, char *buf, size_t len) {
  char ip[INET6_ADDRSTRLEN];
  inet_ntop(c->family, c->addr, ip, sizeof ip);
  snprintf(buf, len, "%s/%u", ip, c->prefix);
}

void cfg_format_hostport(const cfg_hostport *h, char *buf, size_t len) {
  addr_format_host(h->host, h->port, buf, len);
}
