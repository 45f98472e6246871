/* Port hopping, the client's side (tunnel_hop.h). */
#include "device/tunnel_hop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "device/tunnel_internal.h"
#include "util/log.h"
#include "util/sockaddr.h"

static uint16_t port_of(const dgram_endpoint *a) {
  return sockaddr_port((const struct sockaddr *)&a->ss);
}

static void set_port(dgram_endpoint *a, uint16_t port) {
  sockaddr_set_port((struct sockaddr *)&a->ss, port);
}

static bool same_host(const dgram_endpoint *a, const dgram_endpoint *b) {
  return sockaddr_same_host((const struct sockaddr *)&a->ss, (const struct sockaddr *)&b->ss);
}

bool tun_hop_keeps_port(const tun_peer *p, const dgram_endpoint *from) {
  return p->cfg->endpoint_ports.n && p->has_endpoint && same_host(&p->endpoint, from);
}

/* A draw from [hop_min, hop_max] seconds, in ms steps so that moves do not fall on whole
 * seconds. */
static uint64_t next_interval(const cfg_peer *c) {
  uint64_t lo = (uint64_t)c->hop_min * 1000, hi = (uint64_t)c->hop_max * 1000;
  uint64_t ms = hi > lo ? lo + rng_range(rng_fast(), 0, (uint32_t)(hi - lo)) : lo;
  return ms * WG_NS_PER_MS;
}

/* Another port of EndpointPorts than the current one (the list holds at least two). */
static uint16_t draw_port(const cfg_port_ranges *r, uint16_t current) {
  uint32_t n = cfg_port_ranges_count(r);
  for (int tries = 0; tries < 16; tries++) {
    uint16_t port = cfg_port_ranges_at(r, rng_range(rng_fast(), 0, n - 1));
    if (port != current) return port;
  }
  return current;
}

static void hop(tun_peer *p) {
  uint16_t from = port_of(&p->endpoint);
  uint16_t to = draw_port(&p->cfg->endpoint_ports, from);
  if (to == from) return;
  set_port(&p->endpoint, to);
  p->t->stats.endpoint_hops++;
  if (log_enabled(LOG_DEBUG)) {
    char a[8], b[8];
    snprintf(a, sizeof a, "%u", from);
    snprintf(b, sizeof b, "%u", to);
    LOG_D("tunnel", "endpoint_hop", "peer", p->fp, "from_port", a, "to_port", b, NULL);
  }
}

uint64_t tun_hop_service(tun_peer *p, uint64_t now) {
  const cfg_peer *c = p->cfg;
  if (!c->endpoint_ports.n || cfg_port_ranges_count(&c->endpoint_ports) < 2) {
    p->hop_at = 0;
    return 0;
  }
  if (!p->hop_at) p->hop_at = now + next_interval(c);
  if (now >= p->hop_at) {
    if (p->has_endpoint && !p->endpoint_pinned) hop(p);
    p->hop_at = now + next_interval(c);
  }
  return p->hop_at;
}
