/* The send side: inner packets from the IP stack are routed to a peer by destination
 * (cryptokey routing), encrypted and padded; packets for a peer without a session wait in a
 * small queue while a handshake runs. Also the timer-driven actions: initiations with their
 * I-packets and junk, keepalives, giving up. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awg/first_bytes.h"
#include "device/tunnel_hop.h"
#include "device/tunnel_internal.h"
#include "util/log.h"
#include "wg/messages.h"

size_t tun_protect_handshake(tunnel *t, awg_msg_kind kind, size_t s, uint32_t window) {
  size_t base = s + awg_handshake_size(kind);
  size_t trailer = awg3_trailer_len(&t->awg->v3, base, window, TUN_BUF - base, rng_fast());
  rng_bytes(rng_fast(), t->buf + base, trailer);
  /* The prefix is drawn once the datagram's length is known (first_bytes.h), then masks. */
  awg_fill_screened(rng_fast(), t->buf, awg_padding(t->awg, kind), base + trailer);
  awg3_mask(&t->awg->v3, t->buf, s, base - s);
  return base + trailer;
}

void tun_send_datagram(tunnel *t, const dgram_endpoint *to, const uint8_t *data, size_t len,
                       tun_peer *p) {
  /* Queued behind the datagrams sealed before it; p's counters move when it is handed to the
   * kernel (peers are flushed out before they are freed, see tun_peer_remove). */
  int rc = carrier_send(tun_carrier(t, to), to, data, len, p ? &p->tx_bytes : NULL,
                        p ? &p->tx_packets : NULL);
  t->packets_sent++;
  if (rc != 0) LOG_D("tunnel", "send_failed", "error", uv_strerror(rc), NULL);
}

_Static_assert(DGRAM_CARRIER_ROOM >= WG_AEAD_ROOM, "the seal borrows the carrier's room");

/* Encrypts pt_len bytes of plaintext straight into the send batch (no copy of either the
 * plaintext or the ciphertext) and queues the datagram for the end of the loop turn. */
static wg_result seal_and_send(tun_peer *p, const uint8_t *pt, size_t pt_len) {
  tunnel *t = p->t;
  uint64_t now = tun_now();
  size_t s4 = awg_padding(t->awg, AWG_MSG_TRANSPORT);
  size_t padded;
  /* AWG 3.x content padding or data trailer when configured, else WireGuard's alignment. */
  if (!awg3_transport_padded_len(t->awg, pt_len, t->mtu, p->udp_window, rng_fast(), &padded)) {
    padded = wg_padded_len(pt_len, t->mtu);
    padded += awg_transport_extra_padding(t->awg, padded);
  }
  size_t wire_len = s4 + wg_transport_len(padded);
  dgram_carrier *c = tun_carrier(t, &p->endpoint);
  uint8_t *room = carrier_reserve(c, &p->endpoint, wire_len);
  if (!room) return WG_ERR_STATE;
  uint8_t *msg = room + s4;
  uint32_t type = awg_draw_type(t->awg, AWG_MSG_TRANSPORT, rng_fast());
  /* Every carrier's room has DGRAM_CARRIER_ROOM around it: the seal saves a copy with it. */
  wg_result r = wg_peer_encrypt_from(&p->wp, type, msg, pt, pt_len, padded, true, now);
  if (r != WG_OK) return r; /* the room is simply not committed */
  /* Keepalives are padded too (decisions.md #1). The prefix is the mask's nonce, so it comes
   * first; the header is masked after sealing (there is no AAD, spec R20). */
  if (p->screen_left) {
    /* right after a handshake, where classifiers look (first_bytes.h) */
    awg_fill_screened(rng_fast(), room, s4, wire_len);
    p->screen_left--;
  } else {
    awg_fill_padding(t->awg, AWG_MSG_TRANSPORT, rng_fast(), room);
  }
  uint32_t index = le32_load(msg + WG_DATA_RECEIVER);
  uint64_t counter = le64_load(msg + WG_DATA_COUNTER);
  awg3_mask(&t->awg->v3, room, s4, WG_TRANSPORT_HEADER);
  /* Kept for a resend on request, unless the carrier cannot lose it: over TLS the copy (and the
   * ring's page faults) was part of the 6-9 % of the sealing side's CPU that the carrier's copies
   * cost (docs/benchmarks.md, "The TLS carrier's copies"). */
  if (!c->reliable) tun_repair_keep(p, index, counter, room, wire_len);
  p->udp_window = awg3_window_after_send(p->udp_window, s4 + WG_TRANSPORT_MIN + pt_len);
  carrier_commit(c, &p->endpoint, wire_len, &p->tx_bytes, &p->tx_packets);
  t->packets_sent++;
  /* The block's parity right behind its last covered packet, with the next counter (its own
   * seal adds nothing to the block: it sits in the parity's place).
   * While parity is not wanted (a clean path: the usual case) the block state is not touched at
   * all: at hundreds of thousands of packets a second its cache line missed on every packet. A
   * block resumed later sees the counters it skipped and starts over (tun_fec_tx_add). */
  size_t parity =
      tun_fec_wanted(p) ? tun_fec_tx_add(&p->fec_tx, index, counter, pt, pt_len, true) : 0;
  if (parity && seal_and_send(p, p->fec_tx.out, parity) == WG_OK) t->stats.fec_parity_sent++;
  return WG_OK;
}

void tun_send_control(tun_peer *p, const uint8_t *msg, size_t len) {
  if (!p->has_endpoint || !wg_peer_can_send(&p->wp, tun_now())) return;
  if (seal_and_send(p, msg, len) != WG_OK) LOG_D("tunnel", "control_not_sent", "peer", p->fp, NULL);
}

static void stage(tun_peer *p, const uint8_t *pkt, size_t len) {
  if (p->staged_count == TUN_STAGED_MAX) {
    /* Oldest out: fresher packets (retransmissions) matter more once the session is up. */
    p->staged_head = (p->staged_head + 1) % TUN_STAGED_MAX;
    p->staged_count--;
  }
  tun_staged *s = &p->staged[(p->staged_head + p->staged_count) % TUN_STAGED_MAX];
  uint8_t *d = realloc(s->data, len);
  if (!d) return;
  memcpy(d, pkt, len);
  s->data = d;
  s->len = len;
  p->staged_count++;
}

static void send_packet(tun_peer *p, const uint8_t *pkt, size_t len) {
  if (!p->has_endpoint || !wg_peer_can_send(&p->wp, tun_now())) {
    stage(p, pkt, len);
    if (!wg_peer_can_send(&p->wp, tun_now())) p->wp.actions |= WG_ACT_INITIATE;
    tun_service_peer(p);
    return;
  }
  if (seal_and_send(p, pkt, len) != WG_OK) stage(p, pkt, len);
  tun_service_later(p);
}

void tun_flush_staged(tun_peer *p) {
  while (p->staged_count && p->has_endpoint && wg_peer_can_send(&p->wp, tun_now())) {
    tun_staged *s = &p->staged[p->staged_head];
    if (seal_and_send(p, s->data, s->len) != WG_OK) break;
    p->staged_head = (p->staged_head + 1) % TUN_STAGED_MAX;
    p->staged_count--;
  }
}

static void drop_staged(tun_peer *p) {
  p->staged_head = 0;
  p->staged_count = 0;
}

/* Destination address of an inner packet, for cryptokey routing. */
static int inner_dst(const uint8_t *pkt, size_t len, int *family, const uint8_t **addr) {
  if (len >= 20 && pkt[0] >> 4 == 4) {
    *family = AF_INET;
    *addr = pkt + 16;
    return 0;
  }
  if (len >= 40 && pkt[0] >> 4 == 6) {
    *family = AF_INET6;
    *addr = pkt + 24;
    return 0;
  }
  return -1;
}

void tun_send_ip(void *ctx, const uint8_t *pkt, size_t len) {
  tunnel *t = ctx;
  int family;
  const uint8_t *dst;
  if (inner_dst(pkt, len, &family, &dst) != 0) return;
  tun_peer *p = allowedips_lookup_cached(&t->aip, family, dst);
  if (!p) {
    if (log_enabled(LOG_DEBUG)) {
      char a[INET6_ADDRSTRLEN];
      inet_ntop(family, dst, a, sizeof a);
      LOG_D("tunnel", "no_route", "dst", a, NULL);
    }
    return;
  }
  send_packet(p, pkt, len);
}

static void send_keepalive(tun_peer *p) {
  if (p->staged_count) {
    tun_flush_staged(p);
    return;
  }
  if (!p->has_endpoint) return;
  if (seal_and_send(p, NULL, 0) == WG_OK) LOG_D("tunnel", "keepalive_sent", "peer", p->fp, NULL);
}

static void send_initiation(tun_peer *p, bool retry) {
  tunnel *t = p->t;
  if (!p->has_endpoint) return;
  uint64_t now = tun_now();
  if (p->handshakes_ok && !wg_peer_can_send(&p->wp, now)) p->session_lost = true;
  size_t s1 = awg_padding(t->awg, AWG_MSG_INIT);
  uint32_t type = awg_draw_type(t->awg, AWG_MSG_INIT, rng_fast());
  wg_result r = wg_peer_create_initiation(&p->wp, type, now, tun_wall_ns(), retry, t->buf + s1);
  if (r != WG_OK) {
    LOG_D("handshake", "initiation_suppressed", "peer", p->fp, "reason", wg_result_str(r), NULL);
    return;
  }
  size_t init_len = tun_protect_handshake(t, AWG_MSG_INIT, s1, p->udp_window);
  awg_render_ctx ctx = {rng_fast(), (uint32_t)(tun_wall_ns() / 1000000000u), t->packets_sent};
  int n = awg_build_prehandshake(t->awg, &ctx, t->prehs_arena, t->prehs_arena_len, t->prehs,
                                 t->prehs_cap);
  if (n < 0) n = 0;
  const uint8_t *data[AWG_MAX_PREHANDSHAKE_DATAGRAMS + 1];
  size_t lens[AWG_MAX_PREHANDSHAKE_DATAGRAMS + 1];
  for (int i = 0; i < n; i++) data[i] = t->prehs[i].data, lens[i] = t->prehs[i].len;
  data[n] = t->buf;
  lens[n] = init_len;
  const dgram_endpoint *to = &p->endpoint;
  if (p->initiate_via_udp && p->has_udp_endpoint) to = &p->udp_endpoint; /* a UDP trial */
  p->initiate_via_udp = false;
  size_t sent = carrier_send_batch(tun_carrier(t, to), to, data, lens, (size_t)n + 1);
  t->packets_sent += (uint32_t)sent;
  for (size_t i = 0; i < sent; i++) p->tx_bytes += lens[i];
  p->tx_packets += sent;
  /* I1..I5 come first in the batch, then the junk, then the initiation itself. */
  size_t n_sig = awg_prehandshake_count(t->awg) - t->awg->jc;
  for (size_t i = 0; i < sent && i < (size_t)n; i++) {
    if (i < n_sig)
      t->stats.signature_sent++;
    else
      t->stats.junk_sent++;
  }
  if (sent == (size_t)n + 1) p->initiation_sent = now;
  if (!p->handshake_started || !retry) p->handshake_started = now, p->attempts = 0;
  p->attempts++;
  char ep[64], att[12], pre[12];
  dgram_endpoint_format(&p->endpoint, ep, sizeof ep);
  snprintf(att, sizeof att, "%u", p->attempts);
  snprintf(pre, sizeof pre, "%d", n);
  if (sent == (size_t)n + 1)
    LOG_I("handshake", "initiation_sent", "peer", p->fp, "endpoint", ep, "attempt", att,
          "prehandshake_datagrams", pre, NULL);
  else
    LOG_W("handshake", "initiation_send_failed", "peer", p->fp, "endpoint", ep, "sent_datagrams",
          att, NULL);
}

static void handshake_failed(tun_peer *p) {
  char att[12];
  snprintf(att, sizeof att, "%u", p->attempts);
  LOG_W("handshake", "failed", "peer", p->fp, "reason", "no response", "attempts", att, NULL);
  p->handshakes_failed++;
  p->t->stats.handshakes_failed[TUN_HS_TIMEOUT]++;
  if (p->handshakes_ok) p->session_lost = true;
  p->handshake_started = 0;
  p->initiation_sent = 0;
  drop_staged(p);
  tun_resolve_endpoint(p);
}

/* Held packets are released from here only: tun_service_peer also runs inside lwIP's output,
 * where feeding lwIP again would re-enter it. */
static void on_peer_timer(uv_timer_t *h) {
  tun_peer *p = h->data;
  tun_reorder_expire(&p->reorder, tun_now());
  tun_service_peer(p);
}

static void on_service_turn(turn_hook *h) {
  tun_service_peer((tun_peer *)((char *)h - offsetof(tun_peer, service)));
}

void tun_service_later(tun_peer *p) {
  if (p->removed) return;
  p->service.run = on_service_turn;
  p->service.phase = LOOP_TURN_STACK; /* what it sends (a keepalive, an initiation) leaves in
                                       * this turn's batch */
  loop_turn_want(&p->service);
}

void tun_service_peer(tun_peer *p) {
  for (int guard = 0; guard < 4; guard++) {
    unsigned acts = wg_peer_poll(&p->wp, tun_now());
    if (!acts) break;
    if (acts & WG_ACT_HANDSHAKE_FAILED) handshake_failed(p);
    if (acts & (WG_ACT_INITIATE | WG_ACT_RETRANSMIT)) send_initiation(p, !(acts & WG_ACT_INITIATE));
    if (acts & WG_ACT_SEND_KEEPALIVE) send_keepalive(p);
    if (acts & WG_ACT_ZERO_KEYS) {
      if (p->handshakes_ok) p->session_lost = true;
      LOG_D("tunnel", "keys_zeroed", "peer", p->fp, NULL);
    }
  }
  uint64_t now = tun_now();
  /* The session's expiry is a deadline too, so that session_end is logged when it happens. */
  uint64_t expiry = tun_session_check(p, now), deadline;
  bool armed = wg_peer_next_deadline(&p->wp, &deadline);
  if (expiry && (!armed || expiry < deadline)) deadline = expiry, armed = true;
  uint64_t held = p->reorder.deadline; /* packets held for reordering go out by then */
  if (held && (!armed || held < deadline)) deadline = held, armed = true;
  uint64_t hop = tun_hop_service(p, now);
  if (hop && (!armed || hop < deadline)) deadline = hop, armed = true;
  if (!armed) {
    uv_timer_stop(&p->timer);
    return;
  }
  uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
  uv_timer_start(&p->timer, on_peer_timer, ms, 0);
}
