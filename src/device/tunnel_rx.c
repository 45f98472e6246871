/* The receive side: every datagram is classified by the obfuscation layer, then handled as a
 * handshake message or decrypted into an inner IP packet for the IP stack. Nothing is ever sent
 * back to a sender that has not authenticated (a server stays silent to probes), except cookie
 * replies under load, which only go to senders that proved they know our public key (mac1). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "awg/first_bytes.h"
#include "device/tunnel_hop.h"
#include "device/tunnel_internal.h"
#include "util/log.h"
#include "util/shard_counts.h"
#include "wg/messages.h"

static const char *kind_name(awg_msg_kind k) {
  static const char *const names[] = {"unknown", "initiation", "response", "cookie", "transport"};
  return names[k];
}

static void log_drop(const char *what, const dgram_endpoint *from, size_t len, const char *reason) {
  if (!log_enabled(LOG_DEBUG)) return;
  char ep[64], l[16];
  dgram_endpoint_format(from, ep, sizeof ep);
  snprintf(l, sizeof l, "%zu", len);
  LOG_D("rx", "drop", "kind", what, "from", ep, "len", l, "reason", reason, NULL);
}

static void drop(tunnel *t, tun_drop_reason why, const char *what, const dgram_endpoint *from,
                 size_t len, const char *reason) {
  t->stats.dropped[why]++;
  log_drop(what, from, len, reason);
}

static tun_drop_reason transport_drop_reason(wg_result r) {
  switch (r) {
    case WG_ERR_DECRYPT:
      return TUN_DROP_DECRYPT;
    case WG_ERR_REPLAY:
      return TUN_DROP_REPLAY;
    case WG_ERR_UNKNOWN_INDEX:
      return TUN_DROP_UNKNOWN_INDEX;
    case WG_ERR_EXPIRED:
      return TUN_DROP_EXPIRED;
    default:
      return TUN_DROP_OTHER;
  }
}

static tun_hs_failure hs_failure_reason(wg_result r) {
  switch (r) {
    case WG_ERR_DECRYPT:
      return TUN_HS_DECRYPT;
    case WG_ERR_UNKNOWN_PEER:
      return TUN_HS_UNKNOWN_PEER;
    case WG_ERR_STALE_TIMESTAMP:
      return TUN_HS_STALE_TIMESTAMP;
    case WG_ERR_FLOOD:
      return TUN_HS_FLOOD;
    case WG_ERR_STATE:
      return TUN_HS_STATE;
    case WG_ERR_BAD_KEY:
      return TUN_HS_BAD_KEY;
    default:
      return TUN_HS_OTHER;
  }
}

static void count_rx(tun_peer *p, size_t wire_len) {
  p->rx_bytes += wire_len;
  p->rx_packets++;
}

/* Carrier = auto on another carrier: an answer over UDP to a recent trial returns the peer to
 * UDP (a stray datagram from before the move does not). */
static bool udp_trial_answered(tun_peer *p, const dgram_endpoint *from) {
  if (!p->pin_soft || from->carrier != DGRAM_CARRIER_UDP || !p->udp_trial_at ||
      tun_now() - p->udp_trial_at > 10 * WG_NS_PER_SEC)
    return false;
  p->endpoint_pinned = p->pin_soft = false;
  p->udp_trial_at = 0;
  p->t->stats.carrier_switches[DGRAM_CARRIER_UDP]++;
  LOG_I("tunnel", "carrier_switched", "peer", p->fp, "to", "udp", "reason", "UDP answered again",
        NULL);
  return true;
}

/* An authenticated packet from p came from `from`: follow the peer if it moved (roaming). */
static void update_endpoint(tun_peer *p, const dgram_endpoint *from) {
  p->last_rx = tun_now(); /* only authenticated packets get here: proof the peer is alive */
  /* amneziawg-go resets its trailer window on every received packet (spec R37). */
  p->udp_window = AWG3_UDP_WINDOW;
  if (p->has_endpoint && dgram_endpoint_equal(&p->endpoint, from)) return;
  if (p->endpoint_pinned && !udp_trial_answered(p, from)) return;
  if (tun_hop_keeps_port(p, from)) return;
  if (p->has_endpoint && p->endpoint.carrier == from->carrier && p->endpoint.len == from->len &&
      !memcmp(&p->endpoint.ss, &from->ss, from->len)) {
    /* The same address on another of our ports (a hopping client moved): answer from there. */
    p->endpoint.sock = from->sock;
    return;
  }
  char ep[64];
  dgram_endpoint_format(from, ep, sizeof ep);
  LOG_I("tunnel", p->has_endpoint ? "endpoint_changed" : "endpoint_learned", "peer", p->fp,
        "endpoint", ep, NULL);
  p->endpoint = *from;
  p->has_endpoint = true;
}

static bool under_load(tunnel *t, uint64_t now) {
  if (now - t->load_window_start > WG_NS_PER_SEC)
    t->load_window_start = now, t->load_window_count = 0;
  t->load_window_count++;
  return wg_under_load(&t->load, t->load_window_count, TUN_HANDSHAKE_BURST, now);
}

static void send_cookie_reply(tunnel *t, const uint8_t *msg, size_t len, const dgram_endpoint *from,
                              const uint8_t *src, size_t srclen, uint64_t now) {
  t->stats.dropped[TUN_DROP_UNDER_LOAD]++;
  if (t->awg->v3.disable_cookies) {
    log_drop("handshake", from, len, "under load: dropped (DisableCookies)");
    return;
  }
  size_t s3 = awg_padding(t->awg, AWG_MSG_COOKIE);
  uint32_t type = awg_draw_type(t->awg, AWG_MSG_COOKIE, rng_fast());
  if (wg_device_create_cookie_reply(&t->dev, type, msg, len, src, srclen, now, t->buf + s3) !=
      WG_OK)
    return;
  /* Cookie replies take their trailer from the fixed window (spec R40). */
  size_t wire = tun_protect_handshake(t, AWG_MSG_COOKIE, s3, AWG3_UDP_WINDOW);
  tun_send_datagram(t, from, t->buf, wire, NULL);
  log_drop("handshake", from, len, "under load: cookie reply sent");
}

static void handshake_completed(tun_peer *p, const char *role) {
  tunnel *t = p->t;
  uint64_t now = tun_now();
  if (p->handshakes_ok &&
      (p->session_lost || now - p->last_handshake_mono >= t->tunables.reject_after_time))
    t->stats.reconnects++;
  p->session_lost = false;
  t->stats.handshakes_ok++;
  p->handshakes_ok++;
  p->handshake_started = 0;
  p->last_handshake_mono = now;
  p->screen_left = AWG_SCREEN_DATAGRAMS;
  p->last_handshake_unix_ns = tun_wall_ns();
  char ep[64];
  dgram_endpoint_format(&p->endpoint, ep, sizeof ep);
  LOG_I("handshake", "completed", "peer", p->fp, "endpoint", ep, "role", role, NULL);
  tun_session_begin(p);
  tun_repair_on_handshake(p);
}

/* [Server] MaxSessions: a peer without a session may not start one while the cap is reached
 * (peers that have one rekey as usual). */
static bool refuse_for_max_sessions(tunnel *t, tun_peer *p, const dgram_endpoint *from) {
  uint32_t max = t->cfg->server_max_sessions;
  if (!max || p->in_session || p->wp.next) return false;
  /* A sharded server's cap holds for all its workers together. */
  size_t live = tun_sessions_live(t);
  shard_counts_set(t->counts, SHARD_COUNT_SESSIONS, live);
  if (live + shard_counts_others(t->counts, SHARD_COUNT_SESSIONS) < max) return false;
  t->stats.dropped[TUN_DROP_HANDSHAKE]++;
  t->stats.handshakes_failed[TUN_HS_MAX_SESSIONS]++;
  p->handshakes_failed++;
  char ep[64], m[12];
  dgram_endpoint_format(from, ep, sizeof ep);
  snprintf(m, sizeof m, "%u", max);
  LOG_W("handshake", "rejected", "kind", "initiation", "from", ep, "peer", p->fp, "reason",
        "max-sessions", "max_sessions", m, NULL);
  return true;
}

/* Failures an operator should see (the sender knows our public key, so it is a real client with
 * a wrong setup or an attacker worth noticing); pure noise stays at debug. */
static void log_handshake_failure(tunnel *t, const char *kind, const dgram_endpoint *from,
                                  wg_result r, const tun_peer *p) {
  char ep[64];
  dgram_endpoint_format(from, ep, sizeof ep);
  if (r == WG_ERR_MAC1 || r == WG_ERR_UNKNOWN_INDEX) {
    t->stats.dropped[r == WG_ERR_MAC1 ? TUN_DROP_MAC1 : TUN_DROP_UNKNOWN_INDEX]++;
    LOG_D("handshake", "rejected", "kind", kind, "from", ep, "reason", wg_result_str(r), NULL);
    return;
  }
  t->stats.dropped[TUN_DROP_HANDSHAKE]++;
  t->stats.handshakes_failed[hs_failure_reason(r)]++;
  LOG_W("handshake", "rejected", "kind", kind, "from", ep, "peer", p ? p->fp : "unknown", "reason",
        wg_result_str(r), NULL);
}

static void on_initiation(tunnel *t, const uint8_t *msg, size_t len, const dgram_endpoint *from,
                          size_t wire_len, bool handed) {
  uint64_t now = tun_now();
  uint8_t src[18];
  size_t srclen;
  tun_addr_bytes(from, src, &srclen);
  struct wg_peer *wp = NULL;
  wg_result r =
      wg_device_consume_initiation(&t->dev, msg, len, src, srclen, under_load(t, now), now, &wp);
  if (r == WG_ERR_NEED_COOKIE) return send_cookie_reply(t, msg, len, from, src, srclen, now);
  if (r == WG_ERR_OTHER_SHARD) {
    if (handed) return drop(t, TUN_DROP_HANDOFF, "initiation", from, len, "not this worker's");
    return tun_shard_hand_off(t, t->dev.other_shard, AWG_MSG_INIT, 0, msg, len, from, wire_len);
  }
  tun_peer *p = wp ? wp->user : NULL;
  if (r != WG_OK) return log_handshake_failure(t, "initiation", from, r, p);
  if (refuse_for_max_sessions(t, p, from)) return;
  count_rx(p, wire_len);
  update_endpoint(p, from);
  size_t s2 = awg_padding(t->awg, AWG_MSG_RESPONSE);
  uint32_t type = awg_draw_type(t->awg, AWG_MSG_RESPONSE, rng_fast());
  r = wg_peer_create_response(&p->wp, type, now, t->buf + s2);
  if (r != WG_OK) return log_handshake_failure(t, "initiation", from, r, p);
  size_t wire = tun_protect_handshake(t, AWG_MSG_RESPONSE, s2, p->udp_window);
  tun_send_datagram(t, from, t->buf, wire, p);
  p->response_sent = now;
  char ep[64];
  dgram_endpoint_format(from, ep, sizeof ep);
  LOG_I("handshake", "response_sent", "peer", p->fp, "endpoint", ep, NULL);
  tun_service_peer(p);
}

static void on_response(tunnel *t, const uint8_t *msg, size_t len, const dgram_endpoint *from,
                        size_t wire_len) {
  uint64_t now = tun_now();
  uint8_t src[18];
  size_t srclen;
  tun_addr_bytes(from, src, &srclen);
  struct wg_peer *wp = NULL;
  wg_result r =
      wg_device_consume_response(&t->dev, msg, len, src, srclen, under_load(t, now), now, &wp);
  if (r == WG_ERR_NEED_COOKIE) return send_cookie_reply(t, msg, len, from, src, srclen, now);
  tun_peer *p = wp ? wp->user : NULL;
  if (r != WG_OK) return log_handshake_failure(t, "response", from, r, p);
  count_rx(p, wire_len);
  update_endpoint(p, from);
  if (p->initiation_sent) {
    obs_hist_observe(&t->stats.handshake_duration, (double)(now - p->initiation_sent) / 1e9);
    tun_reorder_set_rtt(&p->reorder, now - p->initiation_sent);
    p->handshake_rtt = p->path_rtt_ns = now - p->initiation_sent;
    p->initiation_sent = 0;
  }
  handshake_completed(p, "initiator");
  tun_flush_staged(p);
  tun_service_peer(p);
}

static void on_cookie(tunnel *t, const uint8_t *msg, size_t len, const dgram_endpoint *from,
                      size_t wire_len) {
  struct wg_peer *wp = NULL;
  wg_result r = wg_device_consume_cookie_reply(&t->dev, msg, len, tun_now(), &wp);
  if (r != WG_OK) return drop(t, TUN_DROP_COOKIE, "cookie", from, len, wg_result_str(r));
  count_rx(wp->user, wire_len);
  LOG_D("handshake", "cookie_received", "peer", ((tun_peer *)wp->user)->fp, NULL);
}

/* Length of the inner IP packet (the plaintext may carry padding behind it). */
static size_t inner_len(const uint8_t *pkt, size_t len, int *family, const uint8_t **src) {
  size_t n = 0;
  if (len >= 20 && pkt[0] >> 4 == 4) {
    n = (size_t)pkt[2] << 8 | pkt[3];
    *family = AF_INET;
    *src = pkt + 12;
  } else if (len >= 40 && pkt[0] >> 4 == 6) {
    n = ((size_t)pkt[4] << 8 | pkt[5]) + 40;
    *family = AF_INET6;
    *src = pkt + 8;
  }
  return n <= len ? n : 0;
}

/* A packet rebuilt from a block's parity (tunnel_fec.h) goes where the lost datagram would have:
 * checked as that one would have been, its counter marked seen, into the reorder buffer. */
static void fec_deliver(tunnel *t, tun_peer *p, uint32_t keypair, const tun_fec_recovered *rec,
                        uint64_t now) {
  if (!tun_reorder_missing(&p->reorder, keypair, rec->counter)) return; /* it came after all */
  size_t n = 0;
  if (rec->len) {
    int family = 0;
    const uint8_t *src = NULL;
    n = inner_len(rec->pkt, rec->len, &family, &src);
    if (n != rec->len || allowedips_lookup_cached(&t->aip, family, src) != p) return;
  }
  if (!wg_device_mark_received(&t->dev, keypair, rec->counter)) return;
  t->stats.fec_recovered++;
  tun_reorder_input(&p->reorder, keypair, rec->counter, rec->pkt, n, now);
}

static void on_transport(tunnel *t, uint8_t *msg, size_t len, const dgram_endpoint *from, int bare,
                         size_t wire_len) {
  uint64_t now = tun_now();
  struct wg_peer *wp = NULL;
  size_t pt_len = 0;
  /* Peek at the peer before decrypting, to tell when this packet confirms a new session (the
   * responder's side of a completed handshake). */
  wg_index_entry *e =
      len >= 8 ? wg_device_lookup_index(&t->dev, le32_load(msg + 4), WG_INDEX_KEYPAIR) : NULL;
  bool had = e && e->peer->has_handshake;
  uint64_t before = e ? e->peer->last_handshake : 0;
  uint32_t keypair = len >= 16 ? le32_load(msg + 4) : 0;
  uint64_t counter = len >= 16 ? le64_load(msg + 8) : 0;
  wg_result r = wg_device_decrypt(&t->dev, msg, len, now, &wp, &pt_len);
  if (r != WG_OK)
    return drop(t, transport_drop_reason(r), "transport", from, len, wg_result_str(r));
  tun_peer *p = wp->user;
  if (bare && pt_len != 0) {
    tun_reorder_input(&p->reorder, keypair, counter, NULL, 0, now); /* its counter is used */
    return drop(t, TUN_DROP_BARE_NOT_KEEPALIVE, "transport", from, len,
                "bare datagram is not a keepalive");
  }
  update_endpoint(p, from);
  count_rx(p, wire_len);
  if (p->wp.has_handshake && (!had || p->wp.last_handshake != before)) {
    /* The initiator's first packet follows our response by about a round trip when it has
     * something to send at once (as our client does); a later one says nothing about the path. */
    if (p->response_sent && now - p->response_sent < WG_NS_PER_SEC) {
      tun_reorder_set_rtt(&p->reorder, now - p->response_sent);
      p->path_rtt_ns = now - p->response_sent;
    }
    p->response_sent = 0;
    handshake_completed(p, "responder");
  }
  size_t n = 0;
  const uint8_t *pt = msg + WG_DATA_PAYLOAD; /* the plaintext, pt_len bytes with padding */
  tun_fec_recovered rec;
  bool recovered = false;
  /* An empty plaintext, or one starting with a zero byte (an AWG 3.x padded keepalive, spec R33:
   * no IP packet starts with version 0). */
  if (pt_len == 0 || pt[0] == 0) {
    LOG_D("rx", "keepalive", "peer", p->fp, NULL);
  } else if (pt[0] == TUN_CTL_PARITY) {
    if (p->repair_on)
      recovered =
          tun_fec_rx_parity(&p->fec_rx, keypair, counter, pt, pt_len, t->mtu, now, &rec) == 1;
  } else if (tun_ctl_is(pt, pt_len)) {
    tun_repair_on_control(p, pt, pt_len); /* takes its counter, below */
  } else {
    int family = 0;
    const uint8_t *src = NULL;
    n = inner_len(pt, pt_len, &family, &src);
    if (!n) {
      drop(t, TUN_DROP_NOT_IP, "transport", from, len, "not an IP packet");
    } else if (allowedips_lookup_cached(&t->aip, family, src) != p) {
      drop(t, TUN_DROP_NOT_ALLOWED_SOURCE, "transport", from, len,
           "inner source not in the peer's AllowedIPs");
      n = 0;
    }
  }
  /* Without repair QUIC takes its packets as they come (it handles reordering itself and undoes
   * congestion responses to reordering, and holding them would only delay its loss recovery);
   * lwIP's TCP gets them back in order. With repair a loss is repaired below QUIC, so its
   * packets wait in order too (the hook sees them in deliver_in_order). */
  if (n && !p->repair_on && t->inner_hook && t->inner_hook(t->inner_ctx, pt, n)) n = 0;
  /* Every datagram counts in its parity block as the sender counted it, whatever became of it
   * here (the parity itself excepted). */
  if (p->repair_on && tun_fec_rx_on(&p->fec_rx) && !(pt_len && pt[0] == TUN_CTL_PARITY))
    recovered = tun_fec_rx_add(&p->fec_rx, keypair, counter, pt,
                               tun_fec_cover_len(pt, pt_len, false), now, &rec);
  tun_reorder_input(&p->reorder, keypair, counter, pt, n, now);
  if (recovered) fec_deliver(t, p, keypair, &rec, now);
  tun_flush_staged(p);
  tun_service_later(p);
}

void tun_deliver_inner(tunnel *t, const uint8_t *pkt, size_t len) {
  ipstack_input(t->ip, pkt, len);
}

void tun_dispatch(tunnel *t, awg_msg_kind k, const uint8_t *msg, size_t len,
                  const dgram_endpoint *from, int bare, size_t wire_len, bool handed) {
  unsigned owner;
  if (tun_shard_owner(t, k, msg, len, &owner)) {
    if (handed) return drop(t, TUN_DROP_HANDOFF, kind_name(k), from, len, "not this worker's");
    return tun_shard_hand_off(t, owner, k, bare, msg, len, from, wire_len);
  }
  switch (k) {
    case AWG_MSG_INIT:
      on_initiation(t, msg, len, from, wire_len, handed);
      break;
    case AWG_MSG_RESPONSE:
      on_response(t, msg, len, from, wire_len);
      break;
    case AWG_MSG_COOKIE:
      on_cookie(t, msg, len, from, wire_len);
      break;
    case AWG_MSG_TRANSPORT:
      /* Decrypted in place: the message lies in the receive buffer (or the handoff buffer). */
      on_transport(t, (uint8_t *)msg, len, from, bare, wire_len);
      break;
    default:
      drop(t, TUN_DROP_UNKNOWN_CLASS, "unknown", from, wire_len,
           "no class matches (junk, I-packet or probe)");
  }
}

void tun_on_datagram(void *ctx, uint8_t *data, size_t len, const dgram_endpoint *from) {
  tunnel *t = ctx;
  const uint8_t *msg = NULL;
  size_t msg_len = 0;
  int bare = 0;
  awg_msg_kind k = awg3_classify(t->awg, data, len, &msg, &msg_len, &bare);
  if (log_enabled(LOG_DEBUG)) {
    char ep[64], l[16];
    dgram_endpoint_format(from, ep, sizeof ep);
    snprintf(l, sizeof l, "%zu", len);
    LOG_D("rx", "classified", "from", ep, "len", l, "kind", kind_name(k), "bare_keepalive",
          bare ? "yes" : "no", NULL);
  }
  tun_dispatch(t, k, msg, msg_len, from, bare, len, false);
}

void tunnel_datagram_in(tunnel *t, uint8_t *data, size_t len, const dgram_endpoint *from) {
  tun_on_datagram(t, data, len, from);
}

bool tunnel_gate_initiation(tunnel *t, const uint8_t *data, size_t len,
                            const dgram_endpoint *from) {
  uint8_t copy[4096]; /* classifying unmasks in place (AWG 3.x): look at a copy */
  if (len > sizeof copy) return false;
  memcpy(copy, data, len);
  const uint8_t *msg = NULL;
  size_t msg_len = 0;
  int bare = 0;
  if (awg3_classify(t->awg, copy, len, &msg, &msg_len, &bare) != AWG_MSG_INIT) return false;
  uint8_t src[18];
  size_t srclen;
  tun_addr_bytes(from, src, &srclen);
  return wg_cookie_check(&t->dev.checker, &t->dev.keys, msg, msg_len, src, srclen, false,
                         tun_now()) == WG_OK;
}
