/* The receive side: every datagram is classified by the obfuscation layer, then handled as a
 * handshake message or decrypted into an inner IP packet for the IP stack. Nothing is ever sent
 * back to a sender that has not authenticated (a server stays silent to probes), except cookie
 * replies under load, which only go to senders that proved they know our public key (mac1). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "device/tunnel_internal.h"
#include "util/log.h"
#include "wg/messages.h"

static const char *kind_name(awg_msg_kind k) {
  static const char *const names[] = {"unknown", "initiation", "response", "cookie", "transport"};
  return names[k];
}

static void log_drop(const char *what, const udp_addr *from, size_t len, const char *reason) {
  if (!log_enabled(LOG_DEBUG)) return;
  char ep[64], l[16];
  udp_addr_format(from, ep, sizeof ep);
  snprintf(l, sizeof l, "%zu", len);
  LOG_D("rx", "drop", "kind", what, "from", ep, "len", l, "reason", reason, NULL);
}

/* An authenticated packet from p came from `from`: follow the peer if it moved (roaming). */
static void update_endpoint(tun_peer *p, const udp_addr *from) {
  if (p->has_endpoint && udp_addr_equal(&p->endpoint, from)) return;
  char ep[64];
  udp_addr_format(from, ep, sizeof ep);
  LOG_I("tunnel", p->has_endpoint ? "endpoint_changed" : "endpoint_learned", "peer", p->fp,
        "endpoint", ep, NULL);
  p->endpoint = *from;
  p->has_endpoint = true;
}

static bool under_load(tunnel *t, uint64_t now) {
  if (now - t->load_window_start > WG_NS_PER_SEC) t->load_window_start = now, t->load_window_count = 0;
  t->load_window_count++;
  return wg_under_load(&t->load, t->load_window_count, TUN_HANDSHAKE_BURST, now);
}

static void send_cookie_reply(tunnel *t, const uint8_t *msg, size_t len, const udp_addr *from,
                              const uint8_t *src, size_t srclen, uint64_t now) {
  size_t s3 = awg_padding(t->awg, AWG_MSG_COOKIE);
  uint32_t type = awg_draw_type(t->awg, AWG_MSG_COOKIE, awg_rng_fast());
  if (wg_device_create_cookie_reply(&t->dev, type, msg, len, src, srclen, now, t->buf + s3) != WG_OK)
    return;
  awg_fill_padding(t->awg, AWG_MSG_COOKIE, awg_rng_fast(), t->buf);
  tun_send_datagram(t, from, t->buf, s3 + WG_MSG_COOKIE_LEN, NULL);
  log_drop("handshake", from, len, "under load: cookie reply sent");
}

static void handshake_completed(tun_peer *p, const char *role) {
  p->handshakes_ok++;
  p->handshake_started = 0;
  p->last_handshake_unix_ns = tun_wall_ns();
  char ep[64];
  udp_addr_format(&p->endpoint, ep, sizeof ep);
  LOG_I("handshake", "completed", "peer", p->fp, "endpoint", ep, "role", role, NULL);
}

/* Failures an operator should see (the sender knows our public key, so it is a real client with
 * a wrong setup or an attacker worth noticing); pure noise stays at debug. */
static void log_handshake_failure(const char *kind, const udp_addr *from, wg_result r,
                                  const tun_peer *p) {
  char ep[64];
  udp_addr_format(from, ep, sizeof ep);
  if (r == WG_ERR_MAC1 || r == WG_ERR_UNKNOWN_INDEX) {
    LOG_D("handshake", "rejected", "kind", kind, "from", ep, "reason", wg_result_str(r), NULL);
    return;
  }
  LOG_W("handshake", "rejected", "kind", kind, "from", ep, "peer", p ? p->fp : "unknown",
        "reason", wg_result_str(r), NULL);
}

static void on_initiation(tunnel *t, const uint8_t *msg, size_t len, const udp_addr *from) {
  uint64_t now = tun_now();
  uint8_t src[18];
  size_t srclen;
  tun_addr_bytes(from, src, &srclen);
  struct wg_peer *wp = NULL;
  wg_result r = wg_device_consume_initiation(&t->dev, msg, len, src, srclen, under_load(t, now), now,
                                             &wp);
  if (r == WG_ERR_NEED_COOKIE) return send_cookie_reply(t, msg, len, from, src, srclen, now);
  tun_peer *p = wp ? wp->user : NULL;
  if (r != WG_OK) return log_handshake_failure("initiation", from, r, p);
  update_endpoint(p, from);
  size_t s2 = awg_padding(t->awg, AWG_MSG_RESPONSE);
  uint32_t type = awg_draw_type(t->awg, AWG_MSG_RESPONSE, awg_rng_fast());
  r = wg_peer_create_response(&p->wp, type, now, t->buf + s2);
  if (r != WG_OK) return log_handshake_failure("initiation", from, r, p);
  awg_fill_padding(t->awg, AWG_MSG_RESPONSE, awg_rng_fast(), t->buf);
  tun_send_datagram(t, from, t->buf, s2 + WG_MSG_RESPONSE_LEN, p);
  char ep[64];
  udp_addr_format(from, ep, sizeof ep);
  LOG_I("handshake", "response_sent", "peer", p->fp, "endpoint", ep, NULL);
  tun_service_peer(p);
}

static void on_response(tunnel *t, const uint8_t *msg, size_t len, const udp_addr *from) {
  uint64_t now = tun_now();
  uint8_t src[18];
  size_t srclen;
  tun_addr_bytes(from, src, &srclen);
  struct wg_peer *wp = NULL;
  wg_result r =
      wg_device_consume_response(&t->dev, msg, len, src, srclen, under_load(t, now), now, &wp);
  if (r == WG_ERR_NEED_COOKIE) return send_cookie_reply(t, msg, len, from, src, srclen, now);
  tun_peer *p = wp ? wp->user : NULL;
  if (r != WG_OK) return log_handshake_failure("response", from, r, p);
  update_endpoint(p, from);
  handshake_completed(p, "initiator");
  tun_flush_staged(p);
  tun_service_peer(p);
}

static void on_cookie(tunnel *t, const uint8_t *msg, size_t len, const udp_addr *from) {
  struct wg_peer *wp = NULL;
  wg_result r = wg_device_consume_cookie_reply(&t->dev, msg, len, tun_now(), &wp);
  if (r != WG_OK) return log_drop("cookie", from, len, wg_result_str(r));
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

static void on_transport(tunnel *t, uint8_t *msg, size_t len, const udp_addr *from, int bare) {
  uint64_t now = tun_now();
  struct wg_peer *wp = NULL;
  size_t pt_len = 0;
  /* Peek at the peer before decrypting, to tell when this packet confirms a new session (the
   * responder's side of a completed handshake). */
  wg_index_entry *e =
      len >= 8 ? wg_device_lookup_index(&t->dev, wg_le32_load(msg + 4), WG_INDEX_KEYPAIR) : NULL;
  bool had = e && e->peer->has_handshake;
  uint64_t before = e ? e->peer->last_handshake : 0;
  wg_result r = wg_device_decrypt(&t->dev, msg, len, now, &wp, &pt_len);
  if (r != WG_OK) return log_drop("transport", from, len, wg_result_str(r));
  tun_peer *p = wp->user;
  if (bare && pt_len != 0) return log_drop("transport", from, len, "bare datagram is not a keepalive");
  update_endpoint(p, from);
  p->rx_bytes += len;
  if (p->wp.has_handshake && (!had || p->wp.last_handshake != before)) handshake_completed(p, "responder");
  if (pt_len == 0) {
    LOG_D("rx", "keepalive", "peer", p->fp, NULL);
  } else {
    int family = 0;
    const uint8_t *src = NULL;
    size_t n = inner_len(msg + WG_DATA_PAYLOAD, pt_len, &family, &src);
    if (!n) {
      log_drop("transport", from, len, "not an IP packet");
    } else if (allowedips_lookup(&t->aip, family, src) != p) {
      log_drop("transport", from, len, "inner source not in the peer's AllowedIPs");
    } else {
      ipstack_input(t->ip, msg + WG_DATA_PAYLOAD, n);
    }
  }
  tun_flush_staged(p);
  tun_service_peer(p);
}

void tun_on_datagram(void *ctx, uint8_t *data, size_t len, const udp_addr *from) {
  tunnel *t = ctx;
  const uint8_t *msg = NULL;
  size_t msg_len = 0;
  int bare = 0;
  awg_msg_kind k = awg_classify(t->awg, data, len, &msg, &msg_len, &bare);
  if (log_enabled(LOG_DEBUG)) {
    char ep[64], l[16];
    udp_addr_format(from, ep, sizeof ep);
    snprintf(l, sizeof l, "%zu", len);
    LOG_D("rx", "classified", "from", ep, "len", l, "kind", kind_name(k), "bare_keepalive",
          bare ? "yes" : "no", NULL);
  }
  switch (k) {
    case AWG_MSG_INIT: on_initiation(t, msg, msg_len, from); break;
    case AWG_MSG_RESPONSE: on_response(t, msg, msg_len, from); break;
    case AWG_MSG_COOKIE: on_cookie(t, msg, msg_len, from); break;
    case AWG_MSG_TRANSPORT: on_transport(t, (uint8_t *)msg, msg_len, from, bare); break;
    default: log_drop("unknown", from, len, "no class matches (junk, I-packet or probe)");
  }
}
