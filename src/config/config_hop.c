/* Port hopping, our extension against UDP throttling (docs/config-reference.md §4c):
 *   [Server] ExtraPorts = 20000-20099      more UDP ports on the same tunnel
 *   [Peer] EndpointPorts = 20000-20099     the server ports a client moves among
 *   [Peer] HopInterval = 30-60             seconds between moves, a fresh draw per move
 * A list of up to CFG_PORT_RANGES_MAX ranges (or single ports) is accepted in either port key.
 * Stock peers never see these keys: a server with ExtraPorts still answers on ListenPort, and a
 * client without EndpointPorts never moves. */
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

#define HOP_DEFAULT_MIN 30
#define HOP_DEFAULT_MAX 60
#define HOP_MAX_SECONDS 86400

static int parse_range(char *item, uint16_t *lo, uint16_t *hi, char *err, size_t n) {
  char *dash = strchr(item, '-');
  if (dash) *dash = '\0';
  if (cfg_parse_port(item, lo, err, n)) return -1;
  *hi = *lo;
  if (dash && cfg_parse_port(dash + 1, hi, err, n)) return -1;
  if (*hi < *lo)
    return snprintf(err, n, "range %u-%u ends before it starts; write it low-high", *lo, *hi), -1;
  return 0;
}

int cfg_parse_port_ranges(char *v, cfg_port_ranges *out, char *err, size_t n) {
  char *items[CFG_PORT_RANGES_MAX + 1];
  int cnt = cfg_split_list(v, items, CFG_PORT_RANGES_MAX);
  if (cnt < 0)
    return snprintf(err, n, "lists more than %d ranges; use fewer, wider ones",
                    CFG_PORT_RANGES_MAX),
           -1;
  if (cnt == 0) return snprintf(err, n, "is empty; expected e.g. 20000-20099"), -1;
  memset(out, 0, sizeof *out);
  for (int i = 0; i < cnt; i++) {
    if (parse_range(items[i], &out->lo[i], &out->hi[i], err, n)) return -1;
    out->n++;
  }
  return 0;
}

uint32_t cfg_port_ranges_count(const cfg_port_ranges *r) {
  uint32_t total = 0;
  for (uint8_t i = 0; i < r->n; i++) total += (uint32_t)(r->hi[i] - r->lo[i]) + 1;
  return total;
}

uint16_t cfg_port_ranges_at(const cfg_port_ranges *r, uint32_t i) {
  for (uint8_t k = 0; k < r->n; k++) {
    uint32_t width = (uint32_t)(r->hi[k] - r->lo[k]) + 1;
    if (i < width) return (uint16_t)(r->lo[k] + i);
    i -= width;
  }
  return 0;
}

size_t cfg_extra_port_list(const app_config *c, uint16_t *out, size_t max) {
  size_t n = 0;
  uint32_t total = cfg_port_ranges_count(&c->extra_ports);
  for (uint32_t i = 0; i < total && n < max; i++) {
    uint16_t p = cfg_port_ranges_at(&c->extra_ports, i);
    bool seen = c->has_listen_port && p == c->listen_port;
    for (size_t k = 0; k < n && !seen; k++) seen = out[k] == p;
    if (!seen) out[n++] = p;
  }
  return n;
}

int cfg_k_extra_ports(load_ctx *L, char *v, char *err, size_t n) {
  cfg_port_ranges r;
  if (cfg_parse_port_ranges(v, &r, err, n)) return -1;
  if (cfg_port_ranges_count(&r) > CFG_EXTRA_PORTS_MAX)
    return snprintf(err, n,
                    "holds %u ports; at most %d (each port is a socket per address family and "
                    "worker)",
                    cfg_port_ranges_count(&r), CFG_EXTRA_PORTS_MAX),
           -1;
  L->c->extra_ports = r;
  return 0;
}

int cfg_k_endpoint_ports(load_ctx *L, char *v, char *err, size_t n) {
  cfg_peer *p = cfg_load_peer(L);
  if (cfg_parse_port_ranges(v, &p->endpoint_ports, err, n)) return -1;
  if (!p->hop_min) p->hop_min = HOP_DEFAULT_MIN, p->hop_max = HOP_DEFAULT_MAX;
  return 0;
}

int cfg_k_hop_interval(load_ctx *L, char *v, char *err, size_t n) {
  cfg_peer *p = cfg_load_peer(L);
  char *dash = strchr(v, '-');
  uint64_t lo, hi;
  if (dash) *dash = '\0';
  if (cfg_parse_uint(v, 1, HOP_MAX_SECONDS, &lo, err, n)) return -1;
  hi = lo;
  if (dash && cfg_parse_uint(dash + 1, 1, HOP_MAX_SECONDS, &hi, err, n)) return -1;
  if (hi < lo)
    return snprintf(err, n, "range %llu-%llu ends before it starts; write it low-high",
                    (unsigned long long)lo, (unsigned long long)hi),
           -1;
  p->hop_min = (uint32_t)lo;
  p->hop_max = (uint32_t)hi;
  return 0;
}

/* Checks what needs more than one key: hopping needs an Endpoint to hop on, and room to hop. */
void cfg_validate_hop(const app_config *c, diag_list *d) {
  for (size_t i = 0; i < c->n_peers; i++) {
    const cfg_peer *p = &c->peers[i];
    if (!p->endpoint_ports.n) {
      if (p->hop_min)
        diag_add(d, DIAG_ERROR, p->line,
                 "HopInterval is set but EndpointPorts is not; list the server's ports to hop "
                 "among (its [Server] ExtraPorts, e.g. EndpointPorts = 20000-20099)");
      continue;
    }
    if (!p->has_endpoint)
      diag_add(d, DIAG_ERROR, p->line,
               "EndpointPorts needs an Endpoint (the server's address; its port is the first "
               "one used)");
    else if (cfg_port_ranges_count(&p->endpoint_ports) < 2)
      diag_add(d, DIAG_ERROR, p->line,
               "EndpointPorts holds one port: there is nowhere to hop; give a range such as "
               "20000-20099");
  }
  if (c->extra_ports.n && !c->has_listen_port)
    diag_add(d, DIAG_ERROR, 0,
             "[Server] ExtraPorts needs [Interface] ListenPort (a server's main port)");
}
