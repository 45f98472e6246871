/* The QUIC transport's keys: [Peer] Transport, Congestion, QuicServer, QuicPort,
 * QuicStreamWindow, QuicConnWindow and [Server] Quic, QuicPort, QuicStreamWindow, QuicConnWindow
 * (docs/config-reference.md), and where a client sends QUIC by default. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

int cfg_parse_transport(const char *v, cfg_transport *out, char *err, size_t errlen) {
  if (!strcasecmp(v, "auto"))
    *out = CFG_TRANSPORT_AUTO;
  else if (!strcasecmp(v, "quic"))
    *out = CFG_TRANSPORT_QUIC;
  else if (!strcasecmp(v, "ip"))
    *out = CFG_TRANSPORT_IP;
  else
    return snprintf(err, errlen, "'%.32s' is not a transport; use auto, quic or ip", v), -1;
  return 0;
}

int cfg_parse_congestion(const char *v, cfg_congestion *out, char *err, size_t errlen) {
  if (!strcasecmp(v, "cubic"))
    *out = CFG_CC_CUBIC;
  else if (!strcasecmp(v, "reno"))
    *out = CFG_CC_RENO;
  else if (!strcasecmp(v, "bbr"))
    *out = CFG_CC_BBR;
  else
    return snprintf(err, errlen, "'%.32s' is not a congestion controller; use cubic, bbr or reno",
                    v),
           -1;
  return 0;
}

int cfg_parse_quic_protection(const char *v, bool *tunnel, char *err, size_t errlen) {
  if (!strcasecmp(v, "tunnel"))
    *tunnel = true;
  else if (!strcasecmp(v, "quic"))
    *tunnel = false;
  else
    return snprintf(err, errlen, "'%.32s' is not a protection; use tunnel or quic", v), -1;
  return 0;
}

int cfg_parse_port(const char *v, uint16_t *out, char *err, size_t errlen) {
  uint64_t p;
  if (cfg_parse_uint(v, 1, 65535, &p, err, errlen)) return -1;
  *out = (uint16_t)p;
  return 0;
}

/* A window is a receive buffer ceiling: it bounds memory per stream / per connection, and one
 * stream's rate is at most window / RTT (8 MiB at 100 ms: 670 Mbit/s). Below 64 KiB a QUIC stream
 * crawls; above 1 GiB one misbehaving peer could pin that much memory. */
#define WINDOW_MIN (64ull << 10)
#define WINDOW_MAX (1ull << 30)

int cfg_parse_window(const char *v, uint64_t *out, char *err, size_t errlen) {
  static const struct {
    const char *suffix;
    unsigned shift;
  } units[] = {{"", 0}, {"k", 10}, {"kib", 10}, {"m", 20}, {"mib", 20}, {"g", 30}, {"gib", 30}};
  size_t nd = 0;
  uint64_t n = 0;
  while (v[nd] >= '0' && v[nd] <= '9' && nd < 10) n = n * 10 + (uint64_t)(v[nd++] - '0');
  const char *unit = v + nd;
  while (*unit == ' ') unit++;
  for (size_t i = 0; nd && nd < 10 && i < sizeof units / sizeof *units; i++) {
    if (strcasecmp(unit, units[i].suffix)) continue;
    uint64_t bytes = n << units[i].shift;
    if (bytes < WINDOW_MIN || bytes > WINDOW_MAX) break;
    *out = bytes;
    return 0;
  }
  snprintf(err, errlen,
           "'%.32s' is not a window size: write bytes with an optional K, M or G (KiB, MiB, "
           "GiB), from 64K to 1G, e.g. 8M",
           v);
  return -1;
}

/* IPv6: the first address of the client's prefix plus one (fd00:1::2/64 -> fd00:1::1), as
 * stock setups number the server; a host address (/127, /128) is taken as a /64, as the IPv4
 * guess takes a /31 or /32 as a /24. None when that is the client itself. */
static bool v6_server(const cfg_cidr *a, cfg_ip *addr) {
  int prefix = a->prefix > 126 ? 64 : a->prefix;
  memset(addr, 0, sizeof *addr);
  addr->family = AF_INET6;
  for (int b = 0; b < 16; b++) {
    int bits = prefix - 8 * b;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
    addr->addr[b] = a->addr[b] & mask;
  }
  addr->addr[15] |= 1;
  return memcmp(addr->addr, a->addr, 16) != 0;
}

bool config_quic_server(const app_config *c, const cfg_peer *p, cfg_ip *addr, uint16_t *port) {
  *port = p->quic_port ? p->quic_port : CFG_DEFAULT_QUIC_PORT;
  if (p->has_quic_server) {
    *addr = p->quic_server;
    return true;
  }
  /* IPv4 first: where both exist, stock setups give the server the IPv4 .1 for sure. */
  for (size_t i = 0; i < c->n_addresses; i++) {
    const cfg_cidr *a = &c->addresses[i];
    if (a->family != AF_INET) continue;
    memset(addr, 0, sizeof *addr);
    addr->family = AF_INET;
    uint32_t host = (uint32_t)a->addr[0] << 24 | (uint32_t)a->addr[1] << 16 |
                    (uint32_t)a->addr[2] << 8 | a->addr[3];
    uint32_t mask = a->prefix <= 30 ? ~(uint32_t)0 << (32 - a->prefix) : 0xffffff00u;
    uint32_t server = (host & mask) + 1;
    if (server == host) continue; /* the client itself is .1: no guess */
    for (int b = 0; b < 4; b++) addr->addr[b] = (uint8_t)(server >> (24 - 8 * b));
    return true;
  }
  for (size_t i = 0; i < c->n_addresses; i++)
    if (c->addresses[i].family == AF_INET6 && v6_server(&c->addresses[i], addr)) return true;
  return false;
}
