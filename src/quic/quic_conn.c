/* ngtcp2 connection glue: callbacks, input, the stream queues, and the connection's lifetime
 * (the write pass and the timer are in quic_send.c).
 * ngtcp2 is never called from inside its own callbacks except where its documentation allows
 * (stream data offsets and shutdowns); everything that reaches the application is queued and
 * delivered at the end of the loop turn. */
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic/quic_internal.h"
#include "quic/quic_protect.h"
#include "quic/quic_metrics.h"
#include "quic/quic_proto.h"
#include "util/batch_clock.h"
#include "util/sockaddr.h"

#define CID_LEN 16

uint64_t qc_now(void) { return batch_clock_ns(); } /* held per received batch */

const char *quic_cc_name(quic_cc cc) {
  return cc == QUIC_CC_CUBIC ? "cubic" : cc == QUIC_CC_RENO ? "reno" : "bbr";
}

void quic_conn_opts_default(quic_conn_opts *o) {
  memset(o, 0, sizeof *o);
  o->cc = QUIC_CC_BBR;
  o->max_payload = 1380;
  o->headroom = 48;
  o->stream_window = 8u << 20;
  o->conn_window = 32u << 20;
  o->max_streams = 16384;
  /* Longer than a 30 s blackhole, which open streams must survive (issue 10), and short enough
   * that a dead server still ends them within a minute. */
  o->idle_timeout_ms = 45000;
  o->keepalive_ms = 10000;
}

void quic_conn_opts_windows(quic_conn_opts *o, uint64_t stream_window, uint64_t conn_window) {
  if (stream_window) o->stream_window = stream_window;
  if (conn_window) o->conn_window = conn_window;
  if (o->conn_window < o->stream_window) o->conn_window = o->stream_window;
}

/* ---- queues ------------------------------------------------------------------------------- */

/* The four stream queues (send, ready, waiting for an id, held) are singly linked through their
 * own field of quic_stream, at next_off. */
#define QNEXT(x, off) (*(quic_stream **)((char *)(x) + (off)))

void qc_queue_append(quic_stream **head, quic_stream **tail, quic_stream *q, size_t next_off) {
  QNEXT(q, next_off) = NULL;
  if (*tail)
    QNEXT(*tail, next_off) = q;
  else
    *head = q;
  *tail = q;
}

void qc_queue_remove(quic_stream **head, quic_stream **tail, quic_stream *q, size_t next_off) {
  quic_stream *prev = NULL;
  for (quic_stream *p = *head; p; prev = p, p = QNEXT(p, next_off)) {
    if (p != q) continue;
    if (prev)
      QNEXT(prev, next_off) = QNEXT(q, next_off);
    else
      *head = QNEXT(q, next_off);
    if (*tail == q) *tail = prev;
    QNEXT(q, next_off) = NULL;
    return;
  }
}

/* A stream being freed leaves whatever queue it is on. */
void qc_unlink(quic_stream *q) {
  quic_conn *c = q->c;
  qc_release(q, false);
  if (q->in_sendq) qc_queue_remove(&c->sq_head, &c->sq_tail, q, offsetof(quic_stream, sq_next));
  if (q->in_readyq) qc_queue_remove(&c->rq_head, &c->rq_tail, q, offsetof(quic_stream, rq_next));
  q->in_sendq = q->in_readyq = false;
  if (q->id < 0) qc_pending_remove(q);
}

void qc_readyq_add(quic_stream *q) {
  quic_conn *c = q->c;
  if (q->in_readyq) return;
  q->in_readyq = true;
  qc_queue_append(&c->rq_head, &c->rq_tail, q, offsetof(quic_stream, rq_next));
  loop_turn_want(&c->deliver_hook);
}

static void conn_free(quic_conn *c);

void qc_maybe_free(quic_conn *c) {
  if (c->owner_closed && c->streams_open == 0 && !c->rq_head) conn_free(c);
}

void qc_stream_released(quic_conn *c) { c->streams_open--; }

uint64_t quic_conn_streams_open(const quic_conn *c) { return c->streams_open; }

static void on_deliver(turn_hook *h) {
  quic_conn *c = (quic_conn *)((char *)h - offsetof(quic_conn, deliver_hook));
  /* Streams added while delivering are handled in the same turn. */
  while (c->rq_head) {
    quic_stream *q = c->rq_head;
    c->rq_head = q->rq_next;
    if (!c->rq_head) c->rq_tail = NULL;
    q->in_readyq = false;
    qs_deliver(q);
  }
  qc_maybe_free(c);
}

/* ---- death -------------------------------------------------------------------------------- */

static void conn_dead(quic_conn *c, const char *reason, int err) {
  if (c->dead) return;
  c->dead = true;
  c->dead_reason = reason;
  if (c->established)
    quic_metrics_get()->conns--;
  else
    quic_metrics_get()->conn_failures++;
  loop_turn_cancel(&c->write_hook);
  uv_timer_stop(&c->timer);
  list_node *it, *tmp;
  list_each_safe(it, tmp, &c->all) qs_on_conn_dead(list_entry(it, quic_stream, all_link), err);
  if (!c->owner_closed && !c->closed_told && c->cb.closed) {
    c->closed_told = true;
    c->cb.closed(c->cb.ctx, reason);
  }
}

static int extend_local_streams_cb(ngtcp2_conn *conn, uint64_t max, void *user);

/* ---- ngtcp2 callbacks --------------------------------------------------------------------- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  return ((quic_conn *)ref->user_data)->conn;
}

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx) {
  gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}

static int reset_token(const quic_conn_opts *o, const ngtcp2_cid *cid, uint8_t *token) {
  if (o->reset_secret)
    return ngtcp2_crypto_generate_stateless_reset_token(token, o->reset_secret, o->reset_secret_len,
                                                        cid);
  return gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN);
}

static int new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                      void *user) {
  quic_conn *c = user;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  return reset_token(&c->opts, cid, token) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

size_t quic_stateless_reset(const uint8_t *secret, size_t secret_len, const uint8_t *pkt,
                            size_t len, uint8_t *out, size_t cap) {
  ngtcp2_version_cid vc;
  if (len < 1 || (pkt[0] & 0x80) || ngtcp2_pkt_decode_version_cid(&vc, pkt, len, CID_LEN) != 0)
    return 0; /* long headers (handshakes) get no reset */
  /* Smaller than what it answers (no reset loops), at least 21 bytes (RFC 9000 §10.3). */
  size_t total = len - 1 < 64 ? len - 1 : 64;
  if (total < NGTCP2_MIN_STATELESS_RESET_RANDLEN + 1 + NGTCP2_STATELESS_RESET_TOKENLEN ||
      total > cap)
    return 0;
  ngtcp2_cid cid;
  ngtcp2_cid_init(&cid, vc.dcid, vc.dcidlen);
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64];
  if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, secret_len, &cid) != 0) return 0;
  gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd);
  ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(out, total, token, rnd,
                                                    total - NGTCP2_STATELESS_RESET_TOKENLEN);
  return n > 0 ? (size_t)n : 0;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user) {
  quic_conn *c = user;
  c->established = true;
  quic_metrics *m = quic_metrics_get();
  m->conns++;
  m->conns_total++;
  if (c->cb.established) c->cb.established(c->cb.ctx);
  return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                               const uint8_t *data, size_t len, void *user, void *sdata) {
  quic_stream *q = sdata;
  if (!q) return 0;
  qs_on_recv(q, data, len, flags & NGTCP2_STREAM_DATA_FLAG_FIN);
  return 0;
}

static int acked_cb(ngtcp2_conn *conn, int64_t id, uint64_t offset, uint64_t len, void *user,
                    void *sdata) {
  if (sdata) qs_on_acked(sdata, offset, len);
  return 0;
}

static int stream_open_cb(ngtcp2_conn *conn, int64_t id, void *user) {
  quic_conn *c = user;
  if (!c->server || !ngtcp2_is_bidi_stream(id) || c->owner_closed) return 0;
  quic_stream *q = qs_new(c, id);
  if (!q) return NGTCP2_ERR_CALLBACK_FAILURE;
  ngtcp2_conn_set_stream_user_data(conn, id, q);
  q->announce = true;
  qc_readyq_add(q);
  return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t app_error,
                           void *user, void *sdata) {
  quic_conn *c = user;
  if (c->server && !ngtcp2_is_bidi_stream(id)) return 0;
  /* A peer-opened stream that ended makes room for another, given back in batches of a
   * sixteenth of the limit: one MAX_STREAMS frame per stream would be one more packet per
   * connection whenever nothing else is going out. */
  if (!ngtcp2_conn_is_local_stream(conn, id) &&
      ++c->streams_to_return >= (c->opts.max_streams + 15) / 16) {
    ngtcp2_conn_extend_max_streams_bidi(conn, (size_t)c->streams_to_return);
    c->streams_to_return = 0;
  }
  /* ngtcp2 counts losses per stream: keep them once the stream is gone. */
  size_t lost = ngtcp2_conn_get_stream_loss_count(conn, id);
  c->pkts_lost += lost;
  quic_metrics_get()->pkts_lost += lost;
  if (sdata) qs_on_ng_closed(sdata);
  return 0;
}

static int stream_reset_cb(ngtcp2_conn *conn, int64_t id, uint64_t final_size, uint64_t app_error,
                           void *user, void *sdata) {
  if (sdata) qs_on_reset(sdata);
  return 0;
}

static int stop_sending_cb(ngtcp2_conn *conn, int64_t id, uint64_t app_error, void *user,
                           void *sdata) {
  /* The peer will not read: our side of the stream is aborted too. */
  ngtcp2_conn_shutdown_stream_write(conn, 0, id, QP_APP_NO_ERROR);
  if (sdata) qs_on_reset(sdata);
  return 0;
}

static int extend_stream_data_cb(ngtcp2_conn *conn, int64_t id, uint64_t max_data, void *user,
                                 void *sdata) {
  quic_stream *q = sdata;
  if (q && (q->snd_sent != q->snd_end || (q->fin_wanted && !q->fin_sent))) qc_sendq_add(q);
  return 0;
}

static int recv_datagram_cb(ngtcp2_conn *conn, uint32_t flags, const uint8_t *data, size_t len,
                            void *user) {
  quic_conn *c = user;
  c->dgrams_recv++;
  quic_metrics_get()->dgrams_recv++;
  if (c->cb.datagram && !c->owner_closed) c->cb.datagram(c->cb.ctx, data, len);
  return 0;
}

static void fill_callbacks(ngtcp2_callbacks *cb, bool server) {
  memset(cb, 0, sizeof *cb);
  if (server)
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  else
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = quic_protect_encrypt;
  cb->decrypt = quic_protect_decrypt;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->rand = rand_cb;
  cb->get_new_connection_id = new_cid_cb;
  cb->handshake_completed = handshake_completed_cb;
  cb->recv_stream_data = recv_stream_data_cb;
  cb->acked_stream_data_offset = acked_cb;
  cb->stream_open = stream_open_cb;
  cb->stream_close = stream_close_cb;
  cb->stream_reset = stream_reset_cb;
  cb->stream_stop_sending = stop_sending_cb;
  cb->extend_max_stream_data = extend_stream_data_cb;
  cb->recv_datagram = recv_datagram_cb;
  cb->extend_max_local_streams_bidi = extend_local_streams_cb;
}

static void fill_settings(ngtcp2_settings *s, const quic_conn_opts *o) {
  ngtcp2_settings_default(s);
  s->initial_ts = qc_now();
  s->cc_algo = o->cc == QUIC_CC_CUBIC  ? NGTCP2_CC_ALGO_CUBIC
               : o->cc == QUIC_CC_RENO ? NGTCP2_CC_ALGO_RENO
                                       : NGTCP2_CC_ALGO_BBR;
  s->max_tx_udp_payload_size = o->max_payload;
  s->no_tx_udp_payload_size_shaping = 1;
  s->no_pmtud = 1; /* the tunnel MTU is known */
  s->max_window = o->conn_window;
  s->max_stream_window = o->stream_window;
  s->handshake_timeout = 10 * NGTCP2_SECONDS;
}

static void fill_params(ngtcp2_transport_params *p, const quic_conn_opts *o, bool server) {
  ngtcp2_transport_params_default(p);
  uint64_t sw = o->stream_window < 256 * 1024 ? o->stream_window : 256 * 1024;
  uint64_t cw = o->conn_window < 1024 * 1024 ? o->conn_window : 1024 * 1024;
  p->initial_max_stream_data_bidi_local = sw;
  p->initial_max_stream_data_bidi_remote = sw;
  p->initial_max_data = cw;
  p->initial_max_streams_bidi = server ? o->max_streams : 0;
  p->initial_max_streams_uni = 0;
  p->max_idle_timeout = o->idle_timeout_ms * NGTCP2_MILLISECONDS;
  p->max_datagram_frame_size = 65535;
  p->active_connection_id_limit = 2;
}

/* ---- creation ----------------------------------------------------------------------------- */

static void on_write_hook(turn_hook *h) {
  qc_write_pass((quic_conn *)((char *)h - offsetof(quic_conn, write_hook)));
}

static socklen_t sa_len(const struct sockaddr_storage *ss) {
  return sockaddr_len((const struct sockaddr *)ss);
}

static quic_conn *conn_alloc(uv_loop_t *loop, quic_tls *tls, const quic_conn_opts *o,
                             const quic_conn_cb *cb, const quic_path_addrs *path, bool server) {
  quic_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  list_init(&c->all);
  c->slot = o->headroom + o->max_payload;
  c->batch = malloc(QUIC_BATCH * c->slot);
  if (!c->batch) {
    free(c);
    return NULL;
  }
  c->loop = loop;
  c->opts = *o;
  c->cb = *cb;
  c->server = server;
  c->conn_ref.get_conn = get_conn;
  c->conn_ref.user_data = c;
  ngtcp2_path_storage_init(&c->ps, (const struct sockaddr *)&path->local, sa_len(&path->local),
                           (const struct sockaddr *)&path->remote, sa_len(&path->remote), NULL);
  c->write_hook.run = on_write_hook;
  c->write_hook.phase = LOOP_TURN_STACK;
  c->deliver_hook.run = on_deliver;
  c->deliver_hook.phase = LOOP_TURN_DELIVER;
  ngtcp2_ccerr_default(&c->ccerr);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->tls = quic_tls_session(tls, &c->conn_ref);
  c->tlsctx = tls;
  if (!c->tls) {
    uv_close((uv_handle_t *)&c->timer, NULL);
    free(c->batch);
    free(c);
    return NULL;
  }
  return c;
}

static void abandon(quic_conn *c) {
  c->owner_closed = true;
  c->dead = true;
  conn_free(c);
}

static void set_err(char *err, size_t errlen, const char *what, int rc) {
  snprintf(err, errlen, "%s: %s", what, rc ? ngtcp2_strerror(rc) : "out of memory");
}

quic_conn *quic_conn_client(uv_loop_t *loop, quic_tls *tls, const quic_conn_opts *o,
                            const quic_conn_cb *cb, const quic_path_addrs *path, char *err,
                            size_t errlen) {
  quic_conn *c = conn_alloc(loop, tls, o, cb, path, false);
  if (!c) {
    set_err(err, errlen, "QUIC client", 0);
    return NULL;
  }
  ngtcp2_cid dcid, scid;
  dcid.datalen = scid.datalen = CID_LEN;
  gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, CID_LEN);
  gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, CID_LEN);
  ngtcp2_callbacks cbs;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  fill_callbacks(&cbs, false);
  fill_settings(&st, o);
  fill_params(&tp, o, false);
  int rc = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &c->ps.path, NGTCP2_PROTO_VER_V1, &cbs,
                                  &st, &tp, NULL, c);
  if (rc) {
    set_err(err, errlen, "QUIC client", rc);
    abandon(c);
    return NULL;
  }
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
  if (o->keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(c->conn, o->keepalive_ms * NGTCP2_MILLISECONDS);
  qc_want_write(c);
  return c;
}

bool quic_conn_acceptable(const uint8_t *pkt, size_t len) {
  ngtcp2_pkt_hd hd;
  return ngtcp2_accept(&hd, pkt, len) == 0;
}

quic_conn *quic_conn_server(uv_loop_t *loop, quic_tls *tls, const quic_conn_opts *o,
                            const quic_conn_cb *cb, const quic_path_addrs *path, const uint8_t *pkt,
                            size_t len, char *err, size_t errlen) {
  ngtcp2_pkt_hd hd;
  int rc = ngtcp2_accept(&hd, pkt, len);
  if (rc) {
    set_err(err, errlen, "QUIC accept", rc);
    return NULL;
  }
  quic_conn *c = conn_alloc(loop, tls, o, cb, path, true);
  if (!c) {
    set_err(err, errlen, "QUIC server", 0);
    return NULL;
  }
  ngtcp2_cid scid;
  scid.datalen = CID_LEN;
  gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, CID_LEN);
  ngtcp2_callbacks cbs;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  fill_callbacks(&cbs, true);
  fill_settings(&st, o);
  fill_params(&tp, o, true);
  tp.original_dcid = hd.dcid;
  tp.original_dcid_present = 1;
  if (reset_token(o, &scid, tp.stateless_reset_token) == 0) tp.stateless_reset_token_present = 1;
  rc = ngtcp2_conn_server_new(&c->conn, &hd.scid, &scid, &c->ps.path, hd.version, &cbs, &st, &tp,
                              NULL, c);
  if (rc) {
    set_err(err, errlen, "QUIC server", rc);
    abandon(c);
    return NULL;
  }
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
  /* A first packet that kills the connection is reported by the NULL return, not by the closed
   * callback: the owner has no handle yet and would free its context twice. */
  c->closed_told = true;
  quic_conn_input(c, pkt, len);
  c->closed_told = false;
  if (c->dead) {
    snprintf(err, errlen, "QUIC server: first packet rejected (%s)", c->dead_reason);
    abandon(c);
    return NULL;
  }
  return c;
}

/* ---- input, timer ------------------------------------------------------------------------- */

/* Sends a CONNECTION_CLOSE carrying c->ccerr. */
static void send_close(quic_conn *c) {
  quic_pkt p = {c->batch + c->opts.headroom, 0};
  quic_conn *prev = quic_protect_enter(c);
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
      c->conn, &c->ps.path, NULL, p.data, c->opts.max_payload, &c->ccerr, qc_clock(c, qc_now()));
  quic_protect_leave(prev);
  if (n <= 0 || !c->cb.send) return;
  p.len = (size_t)n;
  c->cb.send(c->cb.ctx, &p, 1);
}

void qc_fail(quic_conn *c, int rc, const char *reason) {
  if (c->dead) return;
  /* Tell the peer, unless the connection is already silent (idle, draining). */
  if (rc != NGTCP2_ERR_IDLE_CLOSE && rc != NGTCP2_ERR_DRAINING && rc != NGTCP2_ERR_CLOSING &&
      rc != NGTCP2_ERR_DROP_CONN && rc != NGTCP2_ERR_RETRY) {
    ngtcp2_ccerr_set_liberr(&c->ccerr, rc, NULL, 0);
    send_close(c);
  }
  conn_dead(c, reason, rc == NGTCP2_ERR_IDLE_CLOSE ? UV_ETIMEDOUT : UV_ECONNABORTED);
}

static const char *read_error_reason(int rc) {
  switch (rc) {
    case NGTCP2_ERR_DRAINING:
      return "closed by the peer";
    case NGTCP2_ERR_CRYPTO:
      return "TLS handshake failed";
    case NGTCP2_ERR_IDLE_CLOSE:
      return "idle timeout";
    default:
      return "protocol error";
  }
}

void quic_conn_input(quic_conn *c, const uint8_t *pkt, size_t len) {
  if (c->dead) return;
  ngtcp2_pkt_info pi = {0};
  uint64_t ts = qc_clock(c, qc_now());
  quic_conn *prev = quic_protect_enter(c);
  int rc = ngtcp2_conn_read_pkt(c->conn, &c->ps.path, &pi, pkt, len, ts);
  quic_protect_leave(prev);
  c->pkts_recv++;
  quic_metrics_get()->pkts_recv++;
  if (rc == 0) {
    qc_want_answer(c, ts);
    return;
  }
  /* Packets that do not decrypt (stray, reordered across a key change) are not fatal. DROP_CONN
   * (a server whose client Initial could not be read) and RETRY are: ngtcp2 wants that state
   * discarded without another call (writing a CONNECTION_CLOSE then dereferences NULL). */
  if (rc == NGTCP2_ERR_DISCARD_PKT) return;
  qc_fail(c, rc, read_error_reason(rc));
}

/* ---- streams, datagrams, info ------------------------------------------------------------- */

/* Streams get their id in the write pass, once the handshake told the peer's stream limit and
 * while it has room; until then they hold what the application writes. */
stream *quic_conn_open_stream(quic_conn *c) {
  if (c->dead || c->owner_closed) return NULL;
  quic_stream *q = qs_new(c, -1);
  if (!q) return NULL;
  qc_queue_append(&c->po_head, &c->po_tail, q, offsetof(quic_stream, po_next));
  qc_want_write(c);
  return &q->s;
}

void qc_pending_remove(quic_stream *q) {
  qc_queue_remove(&q->c->po_head, &q->c->po_tail, q, offsetof(quic_stream, po_next));
}

void qc_assign_ids(quic_conn *c) {
  while (c->po_head) {
    quic_stream *q = c->po_head;
    if (!q->app_closed) {
      int64_t id;
      if (ngtcp2_conn_open_bidi_stream(c->conn, &id, q) != 0) return; /* no room yet */
      q->id = id;
      if ((q->snd_end && !q->held) || q->fin_wanted) qc_sendq_add(q);
    }
    c->po_head = q->po_next;
    if (!c->po_head) c->po_tail = NULL;
    q->po_next = NULL;
  }
}

static int extend_local_streams_cb(ngtcp2_conn *conn, uint64_t max, void *user) {
  qc_want_write(user);
  return 0;
}

int quic_conn_send_datagram(quic_conn *c, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                            size_t len) {
  if (c->dead || hlen + len > QUIC_DGRAM_MAX || c->dq.count == QUIC_DGRAM_SLOTS) {
    c->dgrams_dropped++;
    quic_metrics_get()->dgrams_dropped++;
    return -1;
  }
  if (!c->dq.buf && !(c->dq.buf = malloc((size_t)QUIC_DGRAM_SLOTS * QUIC_DGRAM_MAX))) return -1;
  size_t i = (c->dq.head + c->dq.count) % QUIC_DGRAM_SLOTS;
  uint8_t *slot = c->dq.buf + i * QUIC_DGRAM_MAX;
  memcpy(slot, hdr, hlen);
  memcpy(slot + hlen, data, len);
  c->dq.len[i] = hlen + len;
  c->dq.count++;
  qc_want_write(c);
  return 0;
}

bool quic_conn_is_established(const quic_conn *c) { return c->established && !c->dead; }
bool quic_conn_is_dead(const quic_conn *c) { return c->dead; }

void quic_conn_get_stats(const quic_conn *c, quic_conn_stats *out) {
  memset(out, 0, sizeof *out);
  if (c->conn) {
    ngtcp2_conn_info ci;
    ngtcp2_conn_get_conn_info(c->conn, &ci);
    out->rtt_ns = ci.smoothed_rtt;
    out->min_rtt_ns = ci.min_rtt;
    out->cwnd = ci.cwnd;
    out->bytes_in_flight = ci.bytes_in_flight;
  }
  out->cc = c->opts.cc;
  out->tunnel_protection = c->tls && quic_tls_tunnel_protected(c->tls) > 0;
  out->pkts_sent = c->pkts_sent;
  out->pkts_lost = c->pkts_lost;
  list_node *it, *tmp;
  list_each_safe(it, tmp, &c->all) {
    const quic_stream *q = list_entry(it, quic_stream, all_link);
    if (c->conn && q->id >= 0 && !q->ng_closed)
      out->pkts_lost += ngtcp2_conn_get_stream_loss_count(c->conn, q->id);
  }
  out->pkts_recv = c->pkts_recv;
  out->streams_open = c->streams_open;
  out->dgrams_sent = c->dgrams_sent;
  out->dgrams_recv = c->dgrams_recv;
  out->dgrams_dropped = c->dgrams_dropped;
}

/* ---- the end ------------------------------------------------------------------------------ */

static void on_timer_closed(uv_handle_t *h) {
  quic_conn *c = h->data;
  free(c->batch);
  free(c->dq.buf);
  free(c);
}

static void conn_free(quic_conn *c) {
  if (c->freed) return; /* the owner's close can run inside a callback of ours */
  c->freed = true;
  loop_turn_cancel(&c->write_hook);
  loop_turn_cancel(&c->deliver_hook);
  while (!list_empty(&c->all)) qs_free(list_entry(c->all.next, quic_stream, all_link));
  if (c->conn) ngtcp2_conn_del(c->conn);
  if (c->tls) quic_tls_session_done(c->tlsctx, c->tls);
  c->conn = NULL;
  c->tls = NULL;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void quic_conn_close(quic_conn *c) {
  if (c->owner_closed) return;
  if (!c->dead) {
    ngtcp2_ccerr_set_application_error(&c->ccerr, QP_APP_NO_ERROR, NULL, 0);
    send_close(c);
  }
  c->owner_closed = true;
  conn_dead(c, "closed", UV_ECONNABORTED);
  qc_maybe_free(c);
}
