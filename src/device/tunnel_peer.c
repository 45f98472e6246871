/* Peer lifetime (creation, endpoint resolution, removal) and the session log lines.
 *
 * A session, as component=tunnel event=session_start/session_end report it, runs from the first
 * completed handshake after the peer had none until the peer can no longer send: the current
 * keypair passed REJECT_AFTER_TIME (180 s) without a new handshake, the peer was removed by a
 * reload, its PresharedKey changed, or the daemon shut down. Rekeys inside a live session do not
 * start a new one. The end of an expired session is the moment its keypair expired, so its
 * duration does not depend on when the expiry was noticed. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/tunnel_internal.h"
#include "util/keys.h"
#include "util/log.h"
#include "util/shard_counts.h"
#include "wg/wg_crypto.h"

static void set_endpoint_from_ai(tun_peer *p, const struct addrinfo *ai) {
  /* Prefer IPv4 when both exist: most censored networks' IPv6 is the less reliable path. */
  const struct addrinfo *pick = NULL;
  for (const struct addrinfo *a = ai; a; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  if (!pick) pick = ai;
  if (!pick || pick->ai_addrlen > sizeof p->endpoint.ss) return;
  memset(&p->endpoint, 0, sizeof p->endpoint);
  memcpy(&p->endpoint.ss, pick->ai_addr, pick->ai_addrlen);
  p->endpoint.len = (socklen_t)pick->ai_addrlen;
  p->has_endpoint = true;
}

static int resolve_now(tun_peer *p, char *err, size_t errlen) {
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_ADDRCONFIG}, *ai = NULL;
  char port[8];
  snprintf(port, sizeof port, "%u", p->cfg->endpoint.port);
  if (p->cfg->endpoint.host_is_ip) hints.ai_flags = AI_NUMERICHOST;
  int rc = getaddrinfo(p->cfg->endpoint.host, port, &hints, &ai);
  if (rc) {
    snprintf(err, errlen, "cannot resolve peer Endpoint %s: %s", p->cfg->endpoint.host,
             gai_strerror(rc));
    return -1;
  }
  set_endpoint_from_ai(p, ai);
  freeaddrinfo(ai);
  return 0;
}

static void peer_handle_closed(tun_peer *p) {
  if (--p->handles_open) return;
  tunnel *t = p->t;
  free(p);
  if (--t->peer_objs == 0 && t->destroying) tun_free(t);
}

static void on_timer_closed(uv_handle_t *h) { peer_handle_closed(h->data); }

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
  tun_peer *p = req->data;
  p->resolving = false;
  if (p->removed) {
    if (ai) uv_freeaddrinfo(ai);
    peer_handle_closed(p);
    return;
  }
  if (status == 0 && ai && !p->endpoint_pinned) {
    set_endpoint_from_ai(p, ai);
    char ep[64];
    dgram_endpoint_format(&p->endpoint, ep, sizeof ep);
    LOG_I("tunnel", "endpoint_resolved", "peer", p->fp, "endpoint", ep, NULL);
  } else {
    LOG_W("tunnel", "endpoint_unresolved", "peer", p->fp, "host", p->cfg->endpoint.host, "error",
          uv_strerror(status), NULL);
  }
  if (ai) uv_freeaddrinfo(ai);
}

/* Re-resolves a host name Endpoint after a failed handshake round (the server may have moved). */
void tun_resolve_endpoint(tun_peer *p) {
  if (!p->cfg->has_endpoint || p->endpoint_pinned || p->cfg->endpoint.host_is_ip || p->resolving ||
      p->removed)
    return;
  static const struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_ADDRCONFIG};
  char port[8];
  snprintf(port, sizeof port, "%u", p->cfg->endpoint.port);
  p->resolve.data = p;
  if (uv_getaddrinfo(p->t->loop, &p->resolve, on_resolved, p->cfg->endpoint.host, port, &hints) ==
      0)
    p->resolving = true;
}

void tun_peer_apply_endpoint(tun_peer *p) {
  if (!p->cfg->has_endpoint || p->endpoint_pinned) return;
  if (!p->cfg->endpoint.host_is_ip) return tun_resolve_endpoint(p);
  char err[300];
  if (resolve_now(p, err, sizeof err) != 0)
    LOG_W("tunnel", "endpoint_unresolved", "peer", p->fp, "error", err, NULL);
}

static void deliver_in_order(void *ctx, const uint8_t *pkt, size_t len);

tun_peer *tun_peer_new(tunnel *t, const cfg_peer *c, char *err, size_t errlen) {
  tun_peer *p = calloc(1, sizeof *p);
  if (!p) return snprintf(err, errlen, "out of memory"), NULL;
  p->t = t;
  /* an inner packet is at most the tunnel MTU */
  tun_reorder_init(&p->reorder, t->mtu + 80, deliver_in_order, tun_repair_send_nack, p);
  p->cfg = c;
  key_fingerprint(c->public_key, p->fp);
  wg_result r = wg_peer_init(&p->wp, &t->dev, c->public_key, c->has_psk ? c->psk : NULL,
                             (uint64_t)c->persistent_keepalive * WG_NS_PER_SEC);
  if (r != WG_OK) {
    snprintf(err, errlen, "peer %s: %s", p->fp, wg_result_str(r));
    wg_wipe(&p->wp, sizeof p->wp); /* init may have stopped half-way, never linked */
    free(p);
    return NULL;
  }
  p->wp.user = p; /* after init, which starts from a zeroed peer */
  wg_timers_set_persistent_max(&p->wp.timers,
                               (uint64_t)c->persistent_keepalive_max * WG_NS_PER_SEC);
  p->udp_window = AWG3_UDP_WINDOW;
  uv_timer_init(t->loop, &p->timer);
  p->timer.data = p;
  t->peer_objs++;
  if (c->has_endpoint && resolve_now(p, err, errlen) != 0) {
    /* Not fatal: the network may come up later; retried after each failed round. */
    LOG_W("tunnel", "endpoint_unresolved", "peer", p->fp, "error", err, NULL);
    err[0] = '\0';
  }
  return p;
}

static void deliver_in_order(void *ctx, const uint8_t *pkt, size_t len) {
  tun_peer *p = ctx;
  /* With repair, QUIC's packets come through the buffer too (tunnel_rx.c): the hook sees them
   * here, in order; without it, it saw them as they arrived. */
  if (p->repair_on && p->t->inner_hook && p->t->inner_hook(p->t->inner_ctx, pkt, len)) return;
  tun_deliver_inner(p->t, pkt, len);
}

void tun_peer_remove(tun_peer *p, const char *reason) {
  if (p->removed) return;
  /* Datagrams still in the send batch count into p's tx counters: send them while p lives. */
  tun_flush_carriers(p->t);
  if (p->in_session) tun_session_end(p, reason, tun_now());
  p->removed = true;
  for (size_t k = 0; k < TUN_STAGED_MAX; k++) free(p->staged[k].data), p->staged[k].data = NULL;
  p->staged_count = 0;
  tun_repair_add_counts(&p->t->stats, p); /* its counts stay in the tunnel's totals */
  tun_reorder_free(&p->reorder);
  tun_repair_ring_free(&p->repair_ring);
  wg_peer_remove(&p->wp); /* unlinks it and its indices, wipes keys and handshake */
  p->handles_open = 1 + (p->resolving ? 1 : 0);
  if (p->resolving) uv_cancel((uv_req_t *)&p->resolve); /* its callback still runs */
  loop_turn_cancel(&p->service);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

/* ---- sessions ----------------------------------------------------------------------------- */

void tun_session_begin(tun_peer *p) {
  if (p->in_session) return;
  p->in_session = true;
  shard_counts_set(p->t->counts, SHARD_COUNT_SESSIONS, tun_sessions_live(p->t));
  p->session_started = tun_now();
  p->session_rx0 = p->rx_bytes;
  p->session_tx0 = p->tx_bytes;
  char ep[64] = "";
  if (p->has_endpoint) dgram_endpoint_format(&p->endpoint, ep, sizeof ep);
  LOG_I("tunnel", "session_start", "peer", p->fp, "endpoint", ep[0] ? ep : "unknown", NULL);
}

void tun_session_end(tun_peer *p, const char *reason, uint64_t end) {
  if (!p->in_session) return;
  p->in_session = false;
  shard_counts_set(p->t->counts, SHARD_COUNT_SESSIONS, tun_sessions_live(p->t));
  if (end < p->session_started) end = p->session_started;
  uint64_t ms = (end - p->session_started) / 1000000;
  char ep[64] = "", dur[32], rx[24], tx[24];
  if (p->has_endpoint) dgram_endpoint_format(&p->endpoint, ep, sizeof ep);
  snprintf(dur, sizeof dur, "%llu.%03u", (unsigned long long)(ms / 1000), (unsigned)(ms % 1000));
  snprintf(rx, sizeof rx, "%llu", (unsigned long long)(p->rx_bytes - p->session_rx0));
  snprintf(tx, sizeof tx, "%llu", (unsigned long long)(p->tx_bytes - p->session_tx0));
  LOG_I("tunnel", "session_end", "peer", p->fp, "endpoint", ep[0] ? ep : "unknown", "reason",
        reason, "duration_s", dur, "rx_bytes", rx, "tx_bytes", tx, NULL);
  tun_repair_on_session_end(p);
}

uint64_t tun_session_check(tun_peer *p, uint64_t now) {
  if (!p->in_session) return 0;
  const wg_keypair *kp = p->wp.current;
  uint64_t expiry = kp ? kp->birth + p->t->tunables.reject_after_time : now;
  if (wg_peer_can_send(&p->wp, now)) return expiry > now ? expiry : now + 1;
  tun_session_end(p, "expired", expiry < now ? expiry : now);
  return 0;
}

size_t tun_sessions_live(const tunnel *t) {
  size_t n = 0;
  for (size_t i = 0; i < t->n_peers; i++)
    n += t->peers[i]->in_session || t->peers[i]->wp.next != NULL;
  return n;
}

void tunnel_peer_pin_endpoint(tunnel *t, size_t i, const dgram_endpoint *ep, bool soft,
                              const char *reason) {
  if (i >= t->n_peers) return;
  tun_peer *p = t->peers[i];
  char where[80];
  if (!ep) {
    p->endpoint_pinned = p->pin_soft = false;
    p->has_endpoint = false;
    tun_peer_apply_endpoint(p); /* back to its Endpoint over UDP */
    LOG_I("tunnel", "endpoint_unpinned", "peer", p->fp, NULL);
    return;
  }
  bool moved = !p->has_endpoint || p->endpoint.carrier != ep->carrier;
  if (p->has_endpoint && p->endpoint.carrier == DGRAM_CARRIER_UDP) {
    p->udp_endpoint = p->endpoint; /* for UDP trials (tunnel_peer_try_udp) */
    p->has_udp_endpoint = true;
  }
  p->endpoint = *ep;
  p->has_endpoint = true;
  p->endpoint_pinned = true;
  p->pin_soft = soft;
  dgram_endpoint_format(ep, where, sizeof where);
  if (!moved) return;
  if (ep->carrier < DGRAM_CARRIERS) t->stats.carrier_switches[ep->carrier]++;
  LOG_I("tunnel", "carrier_switched", "peer", p->fp, "to", dgram_carrier_kind_name(ep->carrier),
        "endpoint", where, "reason", reason, NULL);
  if (!p->in_session && (p->wp.timers.has_sent_handshake || p->cfg->persistent_keepalive)) {
    /* Connect at once, as tunnel_create does for a peer with a keepalive; an initiation that
     * went out the old way is not waited for (REKEY_TIMEOUT). */
    p->wp.timers.has_sent_handshake = false;
    p->wp.actions |= WG_ACT_INITIATE;
    tun_service_peer(p);
  }
}

void tunnel_peer_try_udp(tunnel *t, size_t i) {
  if (i >= t->n_peers) return;
  tun_peer *p = t->peers[i];
  if (!p->pin_soft || !p->has_udp_endpoint) return;
  p->udp_trial_at = tun_now();
  p->initiate_via_udp = true;
  p->wp.timers.has_sent_handshake = false; /* a trial is not held back by REKEY_TIMEOUT */
  p->wp.actions |= WG_ACT_INITIATE;
  tun_service_peer(p);
}
