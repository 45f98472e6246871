/* Tunnel setup and teardown, peers, endpoints, status. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device/tunnel_internal.h"
#include "util/batch_clock.h"
#include "util/keys.h"
#include "util/log.h"

uint64_t tun_now(void) { return batch_clock_ns(); }

uint64_t tun_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The address bytes the cookie mechanism binds to: IP and port. */
void tun_addr_bytes(const dgram_endpoint *a, uint8_t out[18], size_t *len) {
  if (a->ss.ss_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
    memcpy(out, &s->sin_addr, 4);
    memcpy(out + 4, &s->sin_port, 2);
    *len = 6;
  } else {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
    memcpy(out, &s->sin6_addr, 16);
    memcpy(out + 16, &s->sin6_port, 2);
    *len = 18;
  }
}

/* AWG 3.x timing ranges replace WireGuard's constants where set (spec R47/R48). */
static void awg3_timers(wg_tunables *t, const awg3_params *v3) {
  if (awg3_range_is_set(v3->rekey_after_time)) {
    t->rekey_after_time = v3->rekey_after_time.lo * WG_NS_PER_SEC;
    t->rekey_after_time_max = v3->rekey_after_time.hi * WG_NS_PER_SEC;
  }
  if (awg3_range_is_set(v3->rekey_timeout)) {
    t->rekey_timeout = v3->rekey_timeout.lo * WG_NS_PER_SEC;
    t->rekey_timeout_max = v3->rekey_timeout.hi * WG_NS_PER_SEC;
  }
  if (awg3_range_is_set(v3->keepalive_timeout)) {
    t->keepalive_timeout = v3->keepalive_timeout.lo * WG_NS_PER_SEC;
    t->keepalive_timeout_max = v3->keepalive_timeout.hi * WG_NS_PER_SEC;
  }
  if (awg3_range_is_set(v3->reject_after_time)) {
    t->reject_after_time = v3->reject_after_time.hi * WG_NS_PER_SEC;
    t->reject_after_time_min = v3->reject_after_time.lo * WG_NS_PER_SEC;
  }
  if (awg3_range_is_set(v3->max_handshake_attempts)) {
    t->max_retries_min = v3->max_handshake_attempts.lo;
    t->max_retries_max = v3->max_handshake_attempts.hi;
  }
}

/* Cryptokey routing for peers[i] = cfg's peers (NULL entries skipped) into a fresh trie. */
int tun_build_allowedips(allowedips *aip, tun_peer **peers, const cfg_peer *cps, size_t n) {
  allowedips_init(aip);
  for (size_t i = 0; i < n; i++) {
    if (!peers[i]) continue;
    for (size_t k = 0; k < cps[i].n_allowed_ips; k++) {
      const cfg_cidr *c = &cps[i].allowed_ips[k];
      if (allowedips_insert(aip, c->family, c->addr, c->prefix, peers[i]) != 0) {
        allowedips_free(aip);
        return -1;
      }
    }
  }
  return 0;
}

static int add_peers(tunnel *t, char *err, size_t errlen) {
  for (size_t i = 0; i < t->cfg->n_peers; i++, t->n_peers++)
    if (!(t->peers[i] = tun_peer_new(t, &t->cfg->peers[i], err, errlen))) return -1;
  if (tun_build_allowedips(&t->aip, t->peers, t->cfg->peers, t->n_peers) != 0)
    return snprintf(err, errlen, "out of memory"), -1;
  return 0;
}

static int alloc_buffers(tunnel *t, char *err, size_t errlen) {
  t->buf = malloc(TUN_BUF);
  t->prehs_cap = awg_prehandshake_count(t->awg) + 1;
  t->prehs_arena_len = awg_prehandshake_max_bytes(t->awg) + 1;
  t->prehs_arena = malloc(t->prehs_arena_len);
  t->prehs = calloc(t->prehs_cap, sizeof *t->prehs);
  t->peers = calloc(t->cfg->n_peers ? t->cfg->n_peers : 1, sizeof *t->peers);
  if (!t->buf || !t->prehs_arena || !t->prehs || !t->peers)
    return snprintf(err, errlen, "out of memory"), -1;
  return 0;
}

/* ListenPort (0: any) and [Server] ExtraPorts. A worker's main port comes from its supervisor
 * (steered by receiver index); its extra ports it binds itself, in a SO_REUSEPORT group with its
 * siblings' (spread by the kernel's hash: what lands on the wrong worker is handed on). */
static int open_udp(tunnel *t, const tunnel_shard *sh, char *err, size_t errlen) {
  const app_config *cfg = t->cfg;
  uint16_t ports[1 + CFG_EXTRA_PORTS_MAX];
  ports[0] = cfg->has_listen_port ? cfg->listen_port : 0;
  size_t n = 1 + cfg_extra_port_list(cfg, ports + 1, CFG_EXTRA_PORTS_MAX);
  if (!(sh && (sh->udp4_fd >= 0 || sh->udp6_fd >= 0))) {
    t->udp = udp_io_open_ports(t->loop, ports, n, t->shards > 1, tun_on_datagram, t, err, errlen);
    return t->udp ? 0 : -1;
  }
  t->udp = udp_io_adopt(t->loop, sh->udp4_fd, sh->udp6_fd, tun_on_datagram, t, err, errlen);
  if (!t->udp) return -1;
  return n > 1 ? udp_io_add_ports(t->udp, t->loop, ports, n, true, err, errlen) : 0;
}

tunnel *tunnel_create(uv_loop_t *loop, const app_config *cfg, char *err, size_t errlen) {
  return tunnel_create_shard(loop, cfg, NULL, err, errlen);
}

tunnel *tunnel_create_shard(uv_loop_t *loop, const app_config *cfg, const tunnel_shard *sh,
                            char *err, size_t errlen) {
  tunnel *t = calloc(1, sizeof *t);
  if (!t) return snprintf(err, errlen, "out of memory"), NULL;
  t->inbox_fd = -1;
  t->shards = 1;
  t->loop = loop;
  t->cfg = cfg;
  t->awg = &cfg->awg;
  t->mtu = cfg->mtu;
  wg_tunables_default(&t->tunables);
  awg3_timers(&t->tunables, &cfg->awg.v3);
  static const double hs_bounds[TUN_HS_DURATION_BOUNDS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,    2.5,   5,    10,  30};
  obs_hist_init(&t->stats.handshake_duration, hs_bounds, TUN_HS_DURATION_BOUNDS);
  allowedips_init(&t->aip);
  wg_device_init(&t->dev, cfg->private_key, &t->tunables, rng_system());
  /* Before the first peer: its handshake indices must already be this worker's. */
  if (tun_shard_start(t, sh, err, errlen) != 0) goto fail;
  if (alloc_buffers(t, err, errlen) != 0 || add_peers(t, err, errlen) != 0) goto fail;
  if (open_udp(t, sh, err, errlen) != 0) goto fail;
  t->carriers[DGRAM_CARRIER_UDP] = udp_io_carrier(t->udp);
  t->ip =
      ipstack_create(loop, cfg->addresses, cfg->n_addresses, cfg->mtu, tun_send_ip, t, err, errlen);
  if (!t->ip) goto fail;
  ipstack_set_congestion_probe(t->ip, tun_congested_recently, t);
  char port[8], extra[8];
  snprintf(port, sizeof port, "%u", udp_io_port(t->udp));
  snprintf(extra, sizeof extra, "%zu", udp_io_port_count(t->udp) - 1);
  bool gso, gro;
  udp_io_offload(t->udp, &gso, &gro);
  LOG_I("tunnel", "listening", "udp_port", port, "peers", cfg->n_peers ? "configured" : "none",
        "udp_gso", gso ? "on" : "off", "udp_gro", gro ? "on" : "off",
        udp_io_port_count(t->udp) > 1 ? "extra_ports" : NULL, extra, NULL);
  for (size_t i = 0; i < t->n_peers; i++) tun_service_peer(t->peers[i]);
  /* Peers with an Endpoint and a keepalive connect at once, so the tunnel is up before use. */
  for (size_t i = 0; i < t->n_peers; i++)
    if (t->peers[i]->has_endpoint && t->peers[i]->cfg->persistent_keepalive &&
        cfg_peer_carrier(t->peers[i]->cfg) != CFG_CARRIER_TLS) { /* its carrier starts it */
      t->peers[i]->wp.actions |= WG_ACT_INITIATE;
      tun_service_peer(t->peers[i]);
    }
  return t;
fail:
  tunnel_destroy(t);
  return NULL;
}

void tunnel_set_carrier(tunnel *t, dgram_carrier_kind kind, dgram_carrier *c) {
  if (kind == DGRAM_CARRIER_UDP || kind >= DGRAM_CARRIERS) return;
  if (!c && t->carriers[kind]) carrier_flush(t->carriers[kind]); /* its last datagrams */
  t->carriers[kind] = c;
}

void tun_flush_carriers(tunnel *t) {
  for (size_t i = 0; i < DGRAM_CARRIERS; i++)
    if (t->carriers[i]) carrier_flush(t->carriers[i]);
}

void tun_free(tunnel *t) {
  free(t->peers);
  free(t);
}

void tunnel_destroy(tunnel *t) {
  if (!t) return;
  t->destroying = true;
  tun_shard_stop(t);
  if (t->ip) ipstack_destroy(t->ip);
  if (t->udp) udp_io_close(t->udp); /* sends the batch first, while the peers still exist */
  t->udp = NULL;
  memset(t->carriers, 0, sizeof t->carriers);
  for (size_t i = 0; i < t->n_peers; i++) tun_peer_remove(t->peers[i], "shutdown");
  t->n_peers = 0;
  wg_device_wipe(&t->dev);
  allowedips_free(&t->aip);
  free(t->buf);
  free(t->prehs_arena);
  free(t->prehs);
  if (!t->peer_objs) tun_free(t); /* otherwise the last peer handle to close frees it */
}

ipstack *tunnel_ipstack(tunnel *t) { return t->ip; }
uint16_t tunnel_port(const tunnel *t) { return udp_io_port(t->udp); }
size_t tunnel_peer_count(const tunnel *t) { return t->n_peers; }

uint64_t tunnel_last_rx(const tunnel *t) {
  uint64_t last = 0;
  for (size_t i = 0; i < t->n_peers; i++)
    if (t->peers[i]->last_rx > last) last = t->peers[i]->last_rx;
  return last;
}

uint64_t tunnel_last_handshake(const tunnel *t) {
  uint64_t last = 0;
  for (size_t i = 0; i < t->n_peers; i++)
    if (t->peers[i]->last_handshake_mono > last) last = t->peers[i]->last_handshake_mono;
  return last;
}

#define PROBE_AFTER_SILENCE (1 * WG_NS_PER_SEC)

void tunnel_probe(tunnel *t, bool even_if_recent) {
  uint64_t now = tun_now();
  for (size_t i = 0; i < t->n_peers; i++) {
    tun_peer *p = t->peers[i];
    wg_timers *tm = &p->wp.timers;
    if (!p->has_endpoint) continue;
    if (!even_if_recent && now - p->last_rx < PROBE_AFTER_SILENCE) continue;
    /* An unanswered handshake is already probing (its retries run on the WireGuard timers). */
    if (tm->has_sent_handshake && tm->last_handshake_sent > p->last_rx) continue;
    /* The last handshake was answered, so the REKEY_TIMEOUT spacing (which protects a silent
     * peer from floods) may be waived once: peers accept initiations every 20 ms. */
    tm->has_sent_handshake = false;
    p->wp.actions |= WG_ACT_INITIATE;
    tun_service_peer(p);
  }
}

uint64_t tunnel_probe_delay_ms(const tunnel *t) {
  uint64_t rtt = 0;
  for (size_t i = 0; i < t->n_peers; i++)
    if (t->peers[i]->handshake_rtt > rtt) rtt = t->peers[i]->handshake_rtt;
  return (rtt ? rtt / 1000000 : 300) + 1000;
}

bool tunnel_is_up(const tunnel *t) {
  uint64_t now = tun_now();
  for (size_t i = 0; i < t->n_peers; i++)
    if (wg_peer_can_send(&t->peers[i]->wp, now)) return true;
  return false;
}

void tunnel_peer_status_get(const tunnel *t, size_t i, tunnel_peer_status *out) {
  const tun_peer *p = t->peers[i];
  memset(out, 0, sizeof *out);
  memcpy(out->fingerprint, p->fp, sizeof p->fp);
  if (p->has_endpoint) dgram_endpoint_format(&p->endpoint, out->endpoint, sizeof out->endpoint);
  out->carrier = dgram_carrier_kind_name(p->has_endpoint ? p->endpoint.carrier : 0);
  uint64_t now = tun_now();
  out->unanswered_initiations = p->handshake_started ? p->attempts : 0;
  out->silent_ms = p->last_rx ? (now - p->last_rx) / 1000000 : UINT64_MAX;
  out->has_session = wg_peer_can_send(&p->wp, tun_now());
  out->last_handshake_unix_ns = p->last_handshake_unix_ns;
  out->rx_bytes = p->rx_bytes;
  out->tx_bytes = p->tx_bytes;
  out->rx_packets = p->rx_packets;
  out->tx_packets = p->tx_packets;
  out->handshakes_ok = p->handshakes_ok;
  out->handshakes_failed = p->handshakes_failed;
  out->repair = p->repair_on;
}

const cfg_peer *tunnel_peer_cfg(const tunnel *t, size_t i) { return t->peers[i]->cfg; }

void tunnel_stats_get(const tunnel *t, tunnel_stats *out) {
  *out = t->stats;
  /* The reorder buffers count per peer; the tunnel-wide figures add up the peers configured now
   * to what removed peers had counted. */
  for (size_t i = 0; i < t->n_peers; i++) tun_repair_add_counts(out, t->peers[i]);
}

const char *tunnel_drop_reason_name(tun_drop_reason r) {
  static const char *const names[TUN_DROP_COUNT] = {
      "unknown-class",
      "mac1",
      "decrypt",
      "replay",
      "unknown-index",
      "expired",
      "not-allowed-source",
      "not-ip",
      "bare-not-keepalive",
      "under-load",
      "handshake-rejected",
      "bad-cookie-reply",
      "handoff",
      "other",
  };
  return r < TUN_DROP_COUNT ? names[r] : "other";
}

const char *tunnel_hs_failure_name(tun_hs_failure f) {
  static const char *const names[TUN_HS_FAILURE_COUNT] = {
      "timeout",          "decrypt", "unknown-peer", "stale-timestamp", "flood",
      "unexpected-state", "bad-key", "max-sessions", "other",
  };
  return f < TUN_HS_FAILURE_COUNT ? names[f] : "other";
}

void tunnel_set_inner_hook(tunnel *t, tunnel_inner_fn fn, void *ctx) {
  t->inner_hook = fn;
  t->inner_ctx = ctx;
}

void tunnel_send_inner(tunnel *t, const uint8_t *pkt, size_t len) { tun_send_ip(t, pkt, len); }

const cfg_peer *tunnel_owner_of(const tunnel *t, int family, const uint8_t *addr) {
  const tun_peer *p = allowedips_lookup(&t->aip, family, addr);
  return p ? p->cfg : NULL;
}

bool tunnel_route_is_up(const tunnel *t, int family, const uint8_t *dst) {
  tun_peer *p = allowedips_lookup(&t->aip, family, dst);
  return p && wg_peer_can_send(&p->wp, tun_now());
}
