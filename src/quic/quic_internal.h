/* State shared by quic_conn.c (the connection, its callbacks and lifetime), quic_send.c (the
 * write pass, the send queue, holds, the timer) and stream_quic.c (the stream implementation and
 * its buffers). Not part of the public interface. */
#ifndef AWGPROXY_QUIC_QUIC_INTERNAL_H
#define AWGPROXY_QUIC_QUIC_INTERNAL_H

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "quic/qchunk.h"
#include "quic/quic_conn.h"
#include "util/loop_turn.h"
#include "util/list.h"

#define QUIC_BATCH 64       /* packets handed to the tunnel per send callback */
#define QUIC_DGRAM_SLOTS 64 /* DATAGRAM frames waiting for the next write pass */
#define QUIC_DGRAM_MAX 1500

typedef struct quic_stream quic_stream;
struct quic_stream {
  stream s; /* first: the public face */
  quic_conn *c;
  int64_t id;           /* -1 until ngtcp2 gives one */
  list_node all_link;   /* on c->all: every stream of the connection */
  quic_stream *sq_next; /* send queue: unsent data or FIN */
  quic_stream *rq_next; /* ready queue: something to tell the application */
  quic_stream *po_next; /* waiting for a stream id (handshake, stream limit) */
  quic_stream *hd_next; /* held: written bytes wait (quic_stream_hold_next_write) */
  bool in_sendq, in_readyq;
  bool hold_next, held;
  uint64_t held_until; /* qc_now() when held bytes go anyway */

  /* Send side: chunks from the first unacknowledged byte; cur/cur_off is the first unsent. */
  qchunk *snd_head, *snd_tail, *snd_cur;
  size_t snd_cur_off;
  uint64_t snd_base;  /* stream offset of snd_head->data[0] */
  uint64_t snd_sent;  /* offset of the first unsent byte */
  uint64_t snd_end;   /* offset after the last written byte */
  uint64_t snd_acked; /* offset below which everything is acknowledged */
  bool fin_wanted, fin_sent, shutdown_told, over_high, drain_due;

  /* Receive side: in order, delivered at the end of the turn. */
  qchunk *rcv_head, *rcv_tail;
  size_t rcv_off; /* bytes of rcv_head already delivered (a header taken from its start) */
  uint64_t rcv_queued;
  bool rcv_fin, eof_told, reading;
  uint8_t hdr[8]; /* quic_stream_want_header: collected here, then one on_read */
  uint8_t hdr_want, hdr_have;
  bool reply_gate; /* quic_stream_gate_reply: the reply header is still to be checked */
  quic_reply_fn reply_fn;
  void *reply_ctx;

  bool announce; /* server: new_stream not yet called */
  int error;     /* to deliver via on_error (negative UV_*), 0 = none */
  bool error_told;
  bool app_closed;  /* stream_close called: no more application callbacks */
  bool closed_told; /* on_closed ran */
  bool ng_closed;   /* ngtcp2 is done with the stream (or the connection is gone) */
};

/* 1-RTT packet protection (quic_protect.h): QUIC's own until awgproxy/3 is seen agreed. */
typedef enum { QC_PROTECT_UNKNOWN = 0, QC_PROTECT_TUNNEL, QC_PROTECT_QUIC } qc_protection;

struct quic_conn {
  uv_loop_t *loop;
  qc_protection protection;
  ngtcp2_conn *conn;
  gnutls_session_t tls;
  quic_tls *tlsctx; /* a reference for tls */
  ngtcp2_crypto_conn_ref conn_ref;
  ngtcp2_path_storage ps;
  quic_conn_opts opts;
  quic_conn_cb cb;
  bool server;
  uv_timer_t timer;
  turn_hook write_hook;   /* LOOP_TURN_STACK: the write pass */
  turn_hook deliver_hook; /* LOOP_TURN_DELIVER: stream events to the application */
  list_node all;          /* quic_stream.all_link */
  quic_stream *sq_head, *sq_tail;
  quic_stream *rq_head, *rq_tail;
  quic_stream *po_head, *po_tail; /* opened by the application, no stream id yet */
  quic_stream *hd_head, *hd_tail; /* held writes, the oldest first (all hold as long) */
  uint8_t *batch;                 /* QUIC_BATCH * (headroom + max_payload) */
  size_t slot;
  struct {
    uint8_t *buf; /* QUIC_DGRAM_SLOTS * QUIC_DGRAM_MAX, allocated on first use */
    size_t len[QUIC_DGRAM_SLOTS];
    size_t head, count;
  } dq;
  ngtcp2_ccerr ccerr;
  bool established, dead, owner_closed, closed_told, timer_closed, in_write, freed;
  const char *dead_reason;
  uint64_t streams_open; /* application-held streams */
  uint64_t pkts_sent, pkts_recv, dgrams_sent, dgrams_recv, dgrams_dropped;
  uint64_t pkts_lost;   /* STREAM packets declared lost, of streams already closed */
  uint64_t rtt_sampled; /* when the RTT histogram last got a sample from us */
  /* The write pass: wanted at the end of this loop turn; answer_ts is the received batch's clock
   * while that pass only answers received packets (0 once anything else wants it); last_ts is
   * the latest time handed to ngtcp2, which must never see its clock run backwards. */
  bool write_wanted;
  uint64_t answer_ts, last_ts;
  uint64_t streams_to_return; /* peer-opened streams closed, not yet given back (MAX_STREAMS) */
};

/* stream_quic.c */
quic_stream *qs_new(quic_conn *c, int64_t id);
void qs_free(quic_stream *q);
/* ngtcp2 events for a stream */
void qs_on_recv(quic_stream *q, const uint8_t *data, size_t len, bool fin);
void qs_on_acked(quic_stream *q, uint64_t offset, uint64_t len);
void qs_on_reset(quic_stream *q); /* the peer aborted (RESET_STREAM / STOP_SENDING) */
void qs_on_ng_closed(quic_stream *q);
/* The connection died: tell the application (error), let it close. */
void qs_on_conn_dead(quic_stream *q, int err);
/* Fills up to max vectors with unsent data; returns the count. */
size_t qs_unsent(const quic_stream *q, ngtcp2_vec *v, size_t max);
/* n bytes (and the FIN, when fin) went into a packet. */
void qs_sent(quic_stream *q, size_t n, bool fin);
/* Runs the application callbacks that are due (from the DELIVER phase). */
void qs_deliver(quic_stream *q);

/* quic_conn.c */
void qc_readyq_add(quic_stream *q);
void qc_stream_released(quic_conn *c); /* an application-held stream was closed */
uint64_t qc_now(void);
void qc_pending_remove(quic_stream *q); /* closed before it got an id */
void qc_unlink(quic_stream *q);         /* off every queue, before it is freed */
void qc_assign_ids(quic_conn *c);       /* pending streams get ids while the peer allows */
void qc_fail(quic_conn *c, int rc, const char *reason); /* rc: ngtcp2's; tells the peer */
void qc_maybe_free(quic_conn *c); /* frees c once its owner and every stream let go */
/* The stream queues are singly linked through their own field of quic_stream, at next_off. */
void qc_queue_append(quic_stream **head, quic_stream **tail, quic_stream *q, size_t next_off);
void qc_queue_remove(quic_stream **head, quic_stream **tail, quic_stream *q, size_t next_off);

/* quic_send.c */
void qc_want_write(quic_conn *c);
void qc_want_answer(quic_conn *c, uint64_t ts); /* packets received at ts want an answer */
void qc_want_window_update(quic_conn *c);       /* the application read: windows may open */
uint64_t qc_clock(quic_conn *c, uint64_t ts);   /* ts for ngtcp2, never running backwards */
void qc_write_pass(quic_conn *c);
void qc_sendq_add(quic_stream *q);
void qc_hold(quic_stream *q);               /* written bytes wait, QUIC_HOLD_MS at most */
void qc_release(quic_stream *q, bool send); /* ends a hold; send: to the send queue */

#endif
