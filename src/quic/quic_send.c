/* The send side of a QUIC connection: the write pass that turns queued stream data, datagrams
 * and ngtcp2's own frames into packets, the send queue it serves, held writes, and the one timer
 * (ngtcp2's expiry: loss detection, ACK delay, pacing, idle; and the holds' deadlines). */
#include <stdlib.h>

#include "quic/quic_internal.h"
#include "quic/quic_metrics.h"
#include "quic/quic_protect.h"

/* ---- wanting a write pass ---------------------------------------------------------------- */

void qc_want_write(quic_conn *c) {
  if (c->dead || c->in_write) return;
  c->answer_ts = 0;
  c->write_wanted = true;
  loop_turn_want(&c->write_hook);
}

/* A write pass that only answers packets received at ts runs stamped with ts, as if it ran the
 * instant they arrived, which is when a kernel's TCP answers. ngtcp2 then writes what is due at
 * that instant (an immediate ACK every second packet, retransmissions, data the ACKs let out)
 * and leaves a delayed ACK, due a fraction of the RTT later, to ride with the application's
 * answer in a later pass, or else with the ack timer. Stamped with the end of the loop turn
 * instead, that ACK is already due and leaves alone: on a sequential connection that was half
 * of all packets, and each one wakes the peer. */
void qc_want_answer(quic_conn *c, uint64_t ts) {
  if (c->dead || c->in_write) return;
  if (!c->write_wanted && c->established) c->answer_ts = ts; /* the handshake goes at once */
  c->write_wanted = true;
  loop_turn_want(&c->write_hook);
}

/* A window update rides with the pass already wanted, keeping its stamp: the application read
 * what a received batch brought, in the same turn, and that is still an answer. */
void qc_want_window_update(quic_conn *c) {
  if (c->dead || c->in_write || c->write_wanted) return;
  qc_want_write(c);
}

uint64_t qc_clock(quic_conn *c, uint64_t ts) {
  if (ts < c->last_ts) ts = c->last_ts;
  c->last_ts = ts;
  return ts;
}

/* ---- the send queue ---------------------------------------------------------------------- */

void qc_sendq_add(quic_stream *q) {
  quic_conn *c = q->c;
  if (!q->in_sendq) {
    q->in_sendq = true;
    qc_queue_append(&c->sq_head, &c->sq_tail, q, offsetof(quic_stream, sq_next));
  }
  qc_want_write(c);
}

static quic_stream *sendq_pop(quic_conn *c) {
  quic_stream *q = c->sq_head;
  if (!q) return NULL;
  c->sq_head = q->sq_next;
  if (!c->sq_head) c->sq_tail = NULL;
  q->in_sendq = false;
  q->sq_next = NULL;
  return q;
}

/* ---- held writes ------------------------------------------------------------------------- */

static void arm_timer(quic_conn *c);
static void on_timer(uv_timer_t *t);

void qc_hold(quic_stream *q) {
  quic_conn *c = q->c;
  if (q->held) return;
  q->held = true;
  q->held_until = qc_now() + QUIC_HOLD_MS * 1000000ull;
  qc_queue_append(&c->hd_head, &c->hd_tail, q, offsetof(quic_stream, hd_next));
  if (!c->write_wanted) arm_timer(c); /* else the write pass arms it */
}

void qc_release(quic_stream *q, bool send) {
  if (!q->held) return;
  q->held = false;
  qc_queue_remove(&q->c->hd_head, &q->c->hd_tail, q, offsetof(quic_stream, hd_next));
  if (send) qc_sendq_add(q);
}

/* The holds due at now. (Not all of them whenever the timer fires: ngtcp2's expiry cannot tell
 * a due ACK from pacing, which keeps it due after every write.) */
static void release_holds(quic_conn *c, uint64_t now) {
  while (c->hd_head && c->hd_head->held_until <= now) qc_release(c->hd_head, true);
}

/* ---- the timer --------------------------------------------------------------------------- */

static void arm_timer(quic_conn *c) {
  if (c->dead) return;
  ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->conn);
  if (c->hd_head && c->hd_head->held_until < exp) exp = c->hd_head->held_until;
  if (exp == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = qc_now();
  uint64_t ms = exp > now ? (exp - now + 999999) / 1000000 : 0;
  /* Due within a millisecond with nothing of ours to send: that is a delayed ACK (after a pass
   * stamped with a received batch's clock, qc_want_answer, it is due already), or pacing with
   * nothing to pace (ngtcp2 keeps its next send time after every write). It waits 1-2 ms for
   * the application's answer to ride on, instead of leaving alone at once: libuv counts whole
   * milliseconds from the start of the loop turn, so 2 is the least that is more than 1. Well
   * within the max_ack_delay we announce (25 ms), which the peer's RTT estimate allows for. */
  if (ms < 2 && !c->sq_head && !c->po_head && !c->dq.count) ms = 2;
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  quic_conn *c = t->data;
  if (c->dead) return;
  /* Holds due within the timer's millisecond end now: libuv counts from the start of the turn in
   * whole milliseconds, so the timer may fire up to a millisecond before the deadline, and the
   * next firing (at least 2 ms on, arm_timer) would make a 2 ms hold into 3-4. */
  release_holds(c, qc_now() + 1000000);
  int rc = ngtcp2_conn_handle_expiry(c->conn, qc_clock(c, qc_now()));
  if (rc) {
    qc_fail(c, rc, rc == NGTCP2_ERR_IDLE_CLOSE ? "idle timeout" : "handshake timeout");
    qc_maybe_free(c);
    return;
  }
  qc_write_pass(c);
}

/* ---- write pass --------------------------------------------------------------------------- */

static void flush(quic_conn *c, quic_pkt *pkts, size_t *n) {
  if (!*n) return;
  c->pkts_sent += *n;
  quic_metrics_get()->pkts_sent += *n;
  if (c->cb.send && !c->owner_closed) c->cb.send(c->cb.ctx, pkts, *n);
  *n = 0;
}

/* Writes one packet into dest from the queued datagram, then stream data (several streams per
 * packet), then control frames only. Returns its length, 0 when nothing can be written, or a
 * fatal ngtcp2 error. */
static ngtcp2_ssize write_one_packet(quic_conn *c, uint8_t *dest, uint64_t ts);

/* One packet (or none) into dest, for c's crypto callbacks (quic_protect.h). */
static ngtcp2_ssize write_one(quic_conn *c, uint8_t *dest, uint64_t ts) {
  quic_conn *prev = quic_protect_enter(c);
  ngtcp2_ssize n = write_one_packet(c, dest, ts);
  quic_protect_leave(prev);
  return n;
}

static ngtcp2_ssize write_one_packet(quic_conn *c, uint8_t *dest, uint64_t ts) {
  for (;;) {
    ngtcp2_ssize datalen = -1;
    ngtcp2_ssize n;
    if (c->dq.count) {
      ngtcp2_vec v = {c->dq.buf + c->dq.head * QUIC_DGRAM_MAX, c->dq.len[c->dq.head]};
      int accepted = 0;
      n = ngtcp2_conn_writev_datagram(c->conn, &c->ps.path, NULL, dest, c->opts.max_payload,
                                      &accepted, NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, ts);
      if (accepted || n == NGTCP2_ERR_INVALID_ARGUMENT) {
        /* Sent, or larger than any packet can carry: either way it leaves the queue. */
        if (accepted) {
          c->dgrams_sent++;
          quic_metrics_get()->dgrams_sent++;
        } else {
          c->dgrams_dropped++;
          quic_metrics_get()->dgrams_dropped++;
        }
        c->dq.head = (c->dq.head + 1) % QUIC_DGRAM_SLOTS;
        c->dq.count--;
      }
      if (n == NGTCP2_ERR_WRITE_MORE || n == NGTCP2_ERR_INVALID_ARGUMENT) continue;
      return n;
    }
    quic_stream *q = c->sq_head;
    while (q && (q->id < 0 || q->ng_closed ||
                 (q->snd_sent == q->snd_end && (!q->fin_wanted || q->fin_sent)))) {
      sendq_pop(c); /* nothing (more) to send */
      q = c->sq_head;
    }
    ngtcp2_vec v[16];
    size_t nv = 0;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    int64_t id = -1;
    if (q) {
      nv = qs_unsent(q, v, 16);
      id = q->id;
      /* FIN goes with the last bytes when they all fit in this vector set. */
      size_t total = 0;
      for (size_t i = 0; i < nv; i++) total += v[i].len;
      if (q->fin_wanted && total == q->snd_end - q->snd_sent) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    }
    n = ngtcp2_conn_writev_stream(c->conn, &c->ps.path, NULL, dest, c->opts.max_payload, &datalen,
                                  flags, id, v, nv, ts);
    if (q && datalen >= 0) {
      size_t total = 0;
      for (size_t i = 0; i < nv; i++) total += v[i].len;
      bool fin = (flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && (size_t)datalen == total;
      qs_sent(q, (size_t)datalen, fin);
      /* Round robin: a stream with more to send goes to the back. */
      sendq_pop(c);
      if (q->snd_sent != q->snd_end || (q->fin_wanted && !q->fin_sent)) qc_sendq_add(q);
    }
    if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
        n == NGTCP2_ERR_STREAM_NOT_FOUND) {
      sendq_pop(c); /* back in the queue when its window opens (extend_max_stream_data) */
      continue;
    }
    if (n == NGTCP2_ERR_WRITE_MORE) continue;
    return n;
  }
}

static void sample_rtt(quic_conn *c, uint64_t ts) {
  if (!c->established || ts - c->rtt_sampled < NGTCP2_SECONDS) return;
  c->rtt_sampled = ts;
  ngtcp2_conn_info ci;
  ngtcp2_conn_get_conn_info(c->conn, &ci);
  obs_hist_observe(&quic_metrics_get()->rtt, (double)ci.latest_rtt / 1e9);
}

void qc_write_pass(quic_conn *c) {
  if (c->dead) return;
  c->in_write = true;
  uint64_t ts = qc_clock(c, c->answer_ts ? c->answer_ts : qc_now());
  c->answer_ts = 0;
  c->write_wanted = false;
  /* Held bytes join our other data, which leaves anyway. */
  if (c->hd_head && (c->sq_head || c->dq.count)) release_holds(c, UINT64_MAX);
  size_t quantum = ngtcp2_conn_get_send_quantum(c->conn), bytes = 0;
  quic_pkt pkts[QUIC_BATCH];
  size_t n = 0;
  if (c->established) qc_assign_ids(c);
  for (;;) {
    uint8_t *dest = c->batch + n * c->slot + c->opts.headroom;
    ngtcp2_ssize w = write_one(c, dest, ts);
    if (w < 0) {
      flush(c, pkts, &n);
      c->in_write = false;
      qc_fail(c, (int)w, "protocol error");
      return;
    }
    if (w == 0) break;
    pkts[n].data = dest;
    pkts[n].len = (size_t)w;
    bytes += (size_t)w;
    if (++n == QUIC_BATCH) flush(c, pkts, &n);
    if (bytes >= quantum) break; /* pacing: the timer brings the next burst */
  }
  flush(c, pkts, &n);
  ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
  sample_rtt(c, ts);
  c->in_write = false;
  arm_timer(c);
}
