/* QUIC streams as `stream`s. Written bytes are copied into chunks and stay there until the peer
 * acknowledges them (ngtcp2 retransmits from our memory). write_queued() counts only what has
 * not been handed to ngtcp2 yet: bytes in flight are bounded by the peer's flow-control window,
 * not by the relay's high-water mark, so one stream can fill a long fat pipe. Received bytes
 * wait in chunks (at most our receive window) and are delivered at the end of the loop turn;
 * the window opens by what the application took. */
#include <stdlib.h>
#include <string.h>

#include "quic/quic_internal.h"
#include "quic/quic_metrics.h"
#include "quic/quic_proto.h"
#include "stream/dial_error.h"

static quic_stream *of(stream *s) { return (quic_stream *)s; }
static const quic_stream *cof(const stream *s) { return (const quic_stream *)s; }

/* ---- application side ------------------------------------------------------------------- */

static void q_read_start(stream *s) {
  quic_stream *q = of(s);
  q->reading = true;
  if (q->rcv_queued || (q->rcv_fin && !q->eof_told)) qc_readyq_add(q);
}

static void q_read_stop(stream *s) { of(s)->reading = false; }

static int q_write(stream *s, const uint8_t *data, size_t len) {
  quic_stream *q = of(s);
  if (q->fin_wanted || q->ng_closed) return UV_EPIPE;
  if (q->error) return q->error;
  if (!q->snd_head) q->snd_base = q->snd_end;
  size_t n = qchunk_append(&q->snd_head, &q->snd_tail, data, len, QCHUNK_MIN, QCHUNK_SIZE);
  if (!q->snd_cur) q->snd_cur = q->snd_head, q->snd_cur_off = 0;
  q->snd_end += n;
  if (n < len) return UV_ENOMEM;
  if (q->snd_end - q->snd_sent > STREAM_HIGH_WATER) q->over_high = true;
  if (q->hold_next) {
    q->hold_next = false;
    qc_hold(q);
    return 0;
  }
  qc_release(q, false);
  qc_sendq_add(q);
  return 0;
}

static size_t q_write_queued(const stream *s) {
  const quic_stream *q = cof(s);
  return (size_t)(q->snd_end - q->snd_sent);
}

static void q_shutdown(stream *s) {
  quic_stream *q = of(s);
  if (q->fin_wanted || q->ng_closed) return;
  q->fin_wanted = true;
  q->hold_next = false;
  qc_release(q, false);
  qc_sendq_add(q);
}

static void q_close(stream *s) {
  quic_stream *q = of(s);
  if (q->app_closed) return;
  q->app_closed = true;
  quic_conn *c = q->c;
  qc_release(q, false);
  if (q->id < 0) { /* never reached ngtcp2 */
    qc_pending_remove(q);
    q->ng_closed = true;
  }
  if (!q->ng_closed && !c->dead) {
    /* What was not all handed over with its FIN is aborted; a finished send side stays until it
     * is acknowledged. What we have not read is refused. */
    if (!q->fin_sent || q->snd_sent != q->snd_end)
      ngtcp2_conn_shutdown_stream_write(c->conn, 0, q->id, QP_APP_ABORTED);
    if (!q->rcv_fin) ngtcp2_conn_shutdown_stream_read(c->conn, 0, q->id, QP_APP_NO_ERROR);
    qc_want_write(c);
  }
  /* Data still queued for the application gives the connection's window back: nobody will read
   * it (also when ngtcp2 has closed the stream already, see deliver_data). */
  if (q->rcv_queued && !c->dead) {
    ngtcp2_conn_extend_max_offset(c->conn, q->rcv_queued);
    qc_want_window_update(c);
  }
  qchunk_free_list(q->rcv_head);
  q->rcv_head = q->rcv_tail = NULL;
  q->rcv_queued = 0;
  qc_readyq_add(q); /* on_closed runs later, from the loop */
}

static const stream_ops quic_stream_ops = {q_read_start, q_read_stop, q_write, q_write_queued,
                                           q_shutdown,   q_close,     "quic"};

quic_stream *qs_new(quic_conn *c, int64_t id) {
  quic_stream *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->s.ops = &quic_stream_ops;
  q->c = c;
  q->id = id;
  list_push_front(&c->all, &q->all_link);
  c->streams_open++;
  quic_metrics_get()->streams++;
  quic_metrics_get()->streams_opened++;
  return q;
}

void qs_free(quic_stream *q) {
  qc_unlink(q);
  quic_metrics_get()->streams--;
  list_remove(&q->all_link);
  qchunk_free_list(q->snd_head);
  qchunk_free_list(q->rcv_head);
  free(q);
}

/* ---- ngtcp2 side -------------------------------------------------------------------------- */

void qs_on_recv(quic_stream *q, const uint8_t *data, size_t len, bool fin) {
  quic_conn *c = q->c;
  if (q->app_closed) {
    /* Nobody reads: the bytes are consumed at once so the connection window does not shrink. */
    ngtcp2_conn_extend_max_stream_offset(c->conn, q->id, len);
    ngtcp2_conn_extend_max_offset(c->conn, len);
    return;
  }
  if (!q->rcv_head) q->rcv_off = 0;
  /* A packet's worth arrives at a time. The first of a turn gets a chunk of its own size (a
   * small exchange stays small); once data is waiting, it is a burst, and the next packets
   * share large chunks, which reach the application as one on_read each: one write() to its
   * socket per QCHUNK_RCV_BURST instead of one per packet. */
  size_t min_cap = q->rcv_queued ? QCHUNK_RCV_BURST : QCHUNK_MIN;
  size_t n = qchunk_append(&q->rcv_head, &q->rcv_tail, data, len, min_cap, QCHUNK_RCV_BURST);
  q->rcv_queued += n;
  if (n < len) q->error = UV_ENOMEM;
  if (fin) q->rcv_fin = true;
  if (q->reading || q->error || q->reply_gate) qc_readyq_add(q);
}

void qs_on_acked(quic_stream *q, uint64_t offset, uint64_t len) {
  uint64_t acked = offset + len;
  if (acked > q->snd_acked) q->snd_acked = acked;
  /* Chunks wholly below the acknowledged offset and already sent are done. */
  while (q->snd_head && q->snd_head != q->snd_cur &&
         q->snd_base + q->snd_head->len <= q->snd_acked) {
    qchunk *h = q->snd_head;
    q->snd_base += h->len;
    q->snd_head = h->next;
    if (!q->snd_head) q->snd_tail = NULL;
    qchunk_free(h);
  }
}

void qs_on_reset(quic_stream *q) {
  if (q->app_closed || q->error) return;
  q->error = UV_ECONNRESET;
  qc_readyq_add(q);
}

void qs_on_ng_closed(quic_stream *q) {
  q->ng_closed = true;
  if (!q->app_closed && !q->error && (!q->rcv_fin || !q->fin_sent)) q->error = UV_ECONNRESET;
  qc_readyq_add(q);
}

void qs_on_conn_dead(quic_stream *q, int err) {
  q->ng_closed = true;
  if (q->reply_gate && q->reply_fn) {
    /* No reply will come; its listener hears it now, while it surely exists (the connection's
     * owner may be gone by the time this stream is delivered to). */
    q->reply_fn(q->reply_ctx, DIAL_ERR_TUNNEL_DOWN);
    q->reply_fn = NULL;
  }
  if (!q->app_closed && !q->error && !(q->rcv_fin && q->fin_sent && q->snd_sent == q->snd_end))
    q->error = err;
  qc_readyq_add(q);
}

size_t qs_unsent(const quic_stream *q, ngtcp2_vec *v, size_t max) {
  size_t n = 0;
  const qchunk *c = q->snd_cur;
  size_t off = q->snd_cur_off;
  while (c && n < max) {
    if (c->len > off) {
      v[n].base = (uint8_t *)c->data + off;
      v[n].len = c->len - off;
      n++;
    }
    c = c->next;
    off = 0;
  }
  return n;
}

void qs_sent(quic_stream *q, size_t n, bool fin) {
  q->snd_sent += n;
  while (n) {
    size_t k = q->snd_cur->len - q->snd_cur_off;
    if (k > n) k = n;
    q->snd_cur_off += k;
    n -= k;
    if (q->snd_cur_off == q->snd_cur->len && q->snd_cur->next) {
      q->snd_cur = q->snd_cur->next;
      q->snd_cur_off = 0;
    }
  }
  if (fin) q->fin_sent = true;
  if (q->over_high && q->snd_end - q->snd_sent <= STREAM_LOW_WATER) {
    q->over_high = false;
    q->drain_due = true;
    qc_readyq_add(q);
  }
  if (fin) qc_readyq_add(q);
}

/* ---- delivery (end of the loop turn) ------------------------------------------------------ */

/* The header wanted by quic_stream_want_header, from the front of the buffer; true once it is
 * complete. */
static bool take_header(quic_stream *q, uint64_t *taken) {
  while (q->hdr_have < q->hdr_want && q->rcv_head) {
    qchunk *h = q->rcv_head;
    size_t k = h->len - q->rcv_off;
    if (k > (size_t)(q->hdr_want - q->hdr_have)) k = (size_t)(q->hdr_want - q->hdr_have);
    memcpy(q->hdr + q->hdr_have, h->data + q->rcv_off, k);
    q->hdr_have = (uint8_t)(q->hdr_have + k);
    q->rcv_off += k;
    q->rcv_queued -= k;
    *taken += k;
    if (q->rcv_off == h->len && (h->next || h->len == h->cap)) {
      q->rcv_head = h->next;
      if (!q->rcv_head) q->rcv_tail = NULL;
      q->rcv_off = 0;
      qchunk_free(h);
    }
  }
  return q->hdr_have == q->hdr_want;
}

/* Fast open: the reply header off the front of the stream; a refusal is the stream's error. */
static void check_reply(quic_stream *q, uint64_t *taken) {
  dial_error code = DIAL_ERR_GENERAL;
  if (take_header(q, taken)) {
    size_t used;
    if (qp_parse_reply(q->hdr, QP_REPLY_LEN, &code, &used) != QP_DONE) code = DIAL_ERR_GENERAL;
  } else if (q->error)
    code = dial_error_from_uv(q->error); /* reset or connection lost before the reply */
  else if (!(q->rcv_fin && !q->rcv_queued))
    return; /* more to come */
  q->reply_gate = false;
  q->hdr_want = 0;
  if (q->reply_fn) q->reply_fn(q->reply_ctx, code);
  if (code != DIAL_OK && !q->error) q->error = dial_error_to_uv(code);
}

/* Each chunk is unlinked before on_read sees it, so the application may stop reading or close
 * the stream from inside the call. */
static void deliver_data(quic_stream *q) {
  quic_conn *c = q->c;
  uint64_t taken = 0;
  if (q->reply_gate) check_reply(q, &taken);
  if (q->reading && q->hdr_want && !q->reply_gate && take_header(q, &taken)) {
    size_t n = q->hdr_want;
    q->hdr_want = 0;
    q->reading = false; /* the rest waits for the next read_start */
    q->s.on_read(&q->s, q->hdr, n);
  }
  while (q->reading && !q->app_closed && q->rcv_head && !q->hdr_want) {
    qchunk *h = q->rcv_head;
    size_t off = q->rcv_off;
    q->rcv_head = h->next;
    if (!q->rcv_head) q->rcv_tail = NULL;
    q->rcv_off = 0;
    size_t n = h->len - off;
    q->rcv_queued -= n;
    taken += n;
    if (n) q->s.on_read(&q->s, h->data + off, n);
    qchunk_free(h);
  }
  /* The connection's window gets the bytes back even when ngtcp2 has closed the stream (both
   * FINs through): it counted them consumed when it handed them over, and only we can say when
   * they were read. Left out, every stream closed with unread bytes kept them from the window
   * for good, until a long-lived connection could send nothing at all. */
  if (taken && !c->dead) {
    if (!q->ng_closed) ngtcp2_conn_extend_max_stream_offset(c->conn, q->id, taken);
    ngtcp2_conn_extend_max_offset(c->conn, taken);
    qc_want_window_update(c);
  }
  if (q->reading && !q->app_closed && q->rcv_fin && !q->rcv_queued && !q->eof_told &&
      !q->reply_gate) {
    q->hdr_want = 0;
    q->eof_told = true;
    q->s.on_read(&q->s, NULL, 0);
  }
}

void qs_deliver(quic_stream *q) {
  quic_conn *c = q->c;
  if (q->announce) {
    q->announce = false;
    if (!q->app_closed && c->cb.new_stream) c->cb.new_stream(c->cb.ctx, &q->s);
  }
  if (!q->app_closed) deliver_data(q);
  if (!q->app_closed && q->fin_sent && !q->shutdown_told) {
    q->shutdown_told = true;
    if (q->s.on_shutdown) q->s.on_shutdown(&q->s);
  }
  if (!q->app_closed && q->drain_due) {
    q->drain_due = false;
    if (q->s.on_drain) q->s.on_drain(&q->s);
  }
  if (!q->app_closed && q->error && !q->error_told) {
    q->error_told = true;
    if (q->s.on_error) q->s.on_error(&q->s, q->error);
  }
  if (q->app_closed && !q->closed_told) {
    q->closed_told = true;
    if (q->s.on_closed) q->s.on_closed(&q->s);
    qc_stream_released(c);
  }
  if (q->closed_told && q->ng_closed) qs_free(q);
}

void quic_stream_gate_reply(stream *s, quic_reply_fn fn, void *ctx) {
  quic_stream *q = of(s);
  q->reply_gate = true;
  q->reply_fn = fn;
  q->reply_ctx = ctx;
  q->hdr_want = QP_REPLY_LEN;
  q->hdr_have = 0;
  qc_readyq_add(q);
}

void quic_stream_hold_next_write(stream *s) { of(s)->hold_next = true; }

void quic_stream_want_header(stream *s, size_t n) {
  quic_stream *q = of(s);
  if (n > sizeof q->hdr) n = sizeof q->hdr;
  q->hdr_want = (uint8_t)n;
  q->hdr_have = 0;
}
