/* Loss repair with one peer (tunnel_repair.h): the HELLO exchange that turns it on, NACKs to the
 * peer for what our reorder buffer misses, and resends of what the peer misses. */
#include <stdio.h>

#include "device/tunnel_internal.h"
#include "util/log.h"

#define HELLOS_UNANSWERED_MAX 3 /* then the peer is taken for a stock one and left alone */
#define BUDGET_START 64
#define BUDGET_MAX 256
#define BUDGET_EVERY 8 /* one resend allowed per 8 datagrams sent: a loss share of 12.5 % */

/* The ring keeps whole datagrams: S4, header, an MTU of padded payload and the tag, with room for
 * AWG 3.x trailers; longer ones are not kept. */
static size_t ring_slot_size(const tun_peer *p) { return p->t->mtu + 192; }

/* Inbound checksums (ipstack_trust_peers): skipped while every peer has said it is awgproxy;
 * outbound IPv4 header, TCP and UDP ones (ipstack_omit_checksums) while every peer has said it
 * does not check them. */
void tun_update_inbound_trust(tunnel *t) {
  if (!t->ip) return;
  bool all = t->n_peers > 0, unchecked = all;
  for (size_t i = 0; i < t->n_peers && all; i++) {
    all = t->peers[i]->repair_on;
    unchecked = unchecked && all && t->peers[i]->peer_unchecked;
  }
  ipstack_trust_peers(t->ip, all);
  ipstack_omit_checksums(t->ip, unchecked);
}

static void repair_on(tun_peer *p) {
  if (p->repair_on) return;
  if (tun_repair_ring_enable(&p->repair_ring, ring_slot_size(p)) != 0) {
    LOG_W("tunnel", "repair_unavailable", "peer", p->fp, "reason", "out of memory", NULL);
    return;
  }
  p->repair_on = true;
  p->repair_budget = BUDGET_START;
  tun_reorder_set_repair(&p->reorder, true);
  LOG_I("tunnel", "repair_on", "peer", p->fp, NULL);
  tun_update_inbound_trust(p->t);
}

static void repair_off(tun_peer *p) {
  p->peer_fec = false;
  p->peer_unchecked = false;
  tun_fec_tx_free(&p->fec_tx);
  tun_fec_rx_free(&p->fec_rx);
  if (!p->repair_on) return;
  p->repair_on = false;
  tun_reorder_set_repair(&p->reorder, false);
  tun_repair_ring_free(&p->repair_ring);
  LOG_I("tunnel", "repair_off", "peer", p->fp, NULL);
  tun_update_inbound_trust(p->t);
}

void tun_repair_add_counts(tunnel_stats *st, const tun_peer *p) {
  st->repair_nacks_sent += p->reorder.nacks_sent;
  st->repair_asked += p->reorder.asked;
  st->repair_filled += p->reorder.repaired;
  st->gaps_given_up += p->reorder.gaps_given_up;
  st->gaps_abandoned += p->reorder.gaps_abandoned;
}

void tun_repair_on_session_end(tun_peer *p) {
  /* An idle peer gives its memory back (up to ~3 MB with repair on): the ring, and the reorder
   * buffer unless it still holds packets (they go out on the peer's timer; flushing here could
   * re-enter lwIP, which may be what ended the session). The next handshake asks again. */
  repair_off(p);
  if (!p->reorder.held) tun_reorder_free(&p->reorder);
}

static void send_hello(tun_peer *p, bool reply) {
  uint8_t m[4];
  size_t n = tun_ctl_hello(m, reply, p->t->ip && ipstack_trusts_inbound(p->t->ip));
  tun_send_control(p, m, n);
}

void tun_repair_on_handshake(tun_peer *p) {
  /* The ring covers the round trip of the last handshake (a roam or a new path brings one). */
  p->repair_ring.cover_ms = tun_repair_cover_ms(p->path_rtt_ns);
  if (p->cfg->no_repair) return repair_off(p); /* a reload turned it off */
  /* The end that dials (it has an Endpoint) asks; the other only answers, so a server never sends
   * anything unusual to a stock client. A server that restarted has forgotten us: asking after
   * every handshake tells it again. */
  if (!p->cfg->has_endpoint) return;
  if (!p->repair_on && p->hellos_unanswered >= HELLOS_UNANSWERED_MAX) return;
  if (!p->repair_on) p->hellos_unanswered++;
  send_hello(p, false);
}

static uint32_t now_ms(const tun_peer *p) { return (uint32_t)uv_now(p->t->loop); }

/* Resends one datagram; false when it will not be (not kept, resent enough, over budget). */
static bool resend(tun_peer *p, uint32_t index, uint64_t counter) {
  tunnel_stats *st = &p->t->stats;
  size_t len = 0;
  const uint8_t *d =
      p->repair_budget ? tun_repair_ring_take(&p->repair_ring, index, counter, &len) : NULL;
  if (!d) {
    st->repair_refused++;
    return false;
  }
  p->repair_budget--;
  /* The very same bytes: the receiver's replay window takes a counter it has not seen. */
  if (carrier_send(tun_carrier(p->t, &p->endpoint), &p->endpoint, d, len, &p->tx_bytes,
                   &p->tx_packets) == 0)
    st->repair_resent++;
  return true;
}

bool tun_congested_recently(void *ctx, bool v6, const uint8_t *addr, uint32_t window_ms) {
  tunnel *t = ctx;
  tun_peer *p = allowedips_lookup_cached(&t->aip, v6 ? AF_INET6 : AF_INET, addr);
  return p && p->congested_seen && now_ms(p) - p->congested_ms < window_ms;
}

/* Whether the losses of one NACK came from a queue: judged by the first datagram in it that is
 * asked for the first time (a repeated ask is late by the receiver's own retry timer). */
static bool lost_to_congestion(tun_peer *p, const tun_ctl_msg *m) {
  for (size_t i = 0; i < m->n_runs; i++)
    for (uint16_t k = 0; k < m->runs[i].count; k++) {
      const tun_repair_slot *s =
          tun_repair_ring_find(&p->repair_ring, m->index, m->runs[i].first + k);
      if (!s || s->resends) continue;
      uint32_t now = now_ms(p);
      return tun_loss_delay_congested(&p->loss_delay, now - s->sent_ms, now,
                                      (uint32_t)(p->path_rtt_ns / 1000000));
    }
  return false;
}

static void send_runs(tun_peer *p, uint8_t type, uint32_t index, const tun_nack_run *runs,
                      size_t n) {
  uint8_t m[TUN_CTL_MAX];
  size_t len = tun_ctl_runs(m, type, index, runs, n);
  tun_send_control(p, m, len);
}

/* Resends what a NACK asks for, or tells the receiver to stop waiting: GIVEUP for what will not
 * come (a NACK holds at most TUN_NACK_MAX_RUNS runs, and so does the GIVEUP of its refusals). */
static void answer_nack(tun_peer *p, const tun_ctl_msg *m) {
  bool congested = lost_to_congestion(p, m);
  if (congested) {
    p->t->stats.repair_congestion++;
    p->congested_seen = true;
    p->congested_ms = now_ms(p);
  }
  /* Random loss: parity for the next seconds saves the next single losses a round trip. A queue
   * would only overflow sooner with it. */
  p->fec_until_ms = now_ms(p) + (congested ? 0 : TUN_FEC_ACTIVE_MS);
  tun_nack_run refused[TUN_NACK_MAX_RUNS];
  size_t n = 0;
  for (size_t i = 0; i < m->n_runs; i++)
    for (uint16_t k = 0; k < m->runs[i].count; k++) {
      uint64_t c = m->runs[i].first + k;
      if (!congested && resend(p, m->index, c)) continue;
      if (!tun_nack_runs_add(refused, &n, c)) {
        send_runs(p, TUN_CTL_GIVEUP, m->index, refused, n);
        n = 0;
        tun_nack_runs_add(refused, &n, c);
      }
    }
  if (n) send_runs(p, TUN_CTL_GIVEUP, m->index, refused, n);
}

void tun_repair_on_control(tun_peer *p, const uint8_t *pt, size_t len) {
  tun_ctl_msg m;
  if (tun_ctl_parse(pt, len, &m) != 0) {
    LOG_D("tunnel", "control_ignored", "peer", p->fp, "reason", "malformed or unknown", NULL);
    return;
  }
  if (p->cfg->no_repair) return; /* Repair = off: we do not speak it, as a stock peer would not */
  if (m.type == TUN_CTL_HELLO) {
    p->hellos_unanswered = 0;
    repair_on(p);
    if (p->repair_on && (m.flags & TUN_CTL_HELLO_FEC) && !p->peer_fec)
      p->peer_fec = tun_fec_tx_init(&p->fec_tx, p->t->mtu) == 0;
    bool unchecked = p->repair_on && (m.flags & TUN_CTL_HELLO_UNCHECKED);
    if (unchecked != p->peer_unchecked) {
      p->peer_unchecked = unchecked;
      tun_update_inbound_trust(p->t);
    }
    if (!(m.flags & TUN_CTL_HELLO_REPLY)) send_hello(p, true);
    return;
  }
  if (!p->repair_on) return;
  if (m.type == TUN_CTL_GIVEUP) {
    p->t->stats.repair_giveups_heard++;
    tun_reorder_abandon(&p->reorder, m.index, m.runs, m.n_runs);
    return;
  }
  if (p->has_endpoint) answer_nack(p, &m);
}

bool tun_fec_wanted(const tun_peer *p) {
  return p->peer_fec && (int32_t)(p->fec_until_ms - now_ms(p)) > 0;
}

void tun_repair_send_nack(void *peer, uint32_t keypair, const tun_nack_run *runs, size_t n) {
  send_runs(peer, TUN_CTL_NACK, keypair, runs, n);
}

void tun_repair_keep(tun_peer *p, uint32_t index, uint64_t counter, const uint8_t *wire,
                     size_t wire_len) {
  if (!p->repair_on) return;
  if (tun_repair_ring_store(&p->repair_ring, index, counter, wire, wire_len, now_ms(p)))
    p->t->stats.repair_kept++;
  if (++p->repair_budget_tick == BUDGET_EVERY) {
    p->repair_budget_tick = 0;
    if (p->repair_budget < BUDGET_MAX) p->repair_budget++;
  }
}
