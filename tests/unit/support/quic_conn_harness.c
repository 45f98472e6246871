#include "quic_conn_harness.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>

#include "util/loop_turn.h"

uint64_t qch_short_pkts, qch_short_tunnel_tag;
bool qch_client_tunnel_protection;
qch_peer *qch_server_streams[QCH_MAX_SERVER_STREAMS];
size_t qch_n_server_streams;
int qch_server_sink, qch_server_paused;
size_t qch_dgrams_back;

/* ---- the wire ----------------------------------------------------------------------------- */

static uint32_t rnd(qch_wire *w) {
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 17;
  w->rng ^= w->rng << 5;
  return w->rng;
}

static void count_protection(const quic_pkt *p) {
  if (!p->len || (p->data[0] & 0x80) || p->len < 17) return;
  qch_short_pkts++;
  uint8_t any = 0;
  for (size_t i = p->len - 4; i < p->len; i++) any |= p->data[i];
  if (!any) qch_short_tunnel_tag++;
}

static void wire_queue(qch_wire *w, qch_pkt *k, uint64_t due) {
  k->due = due;
  /* sorted by due time, stable */
  qch_pkt **pp = &w->head;
  while (*pp && (*pp)->due <= k->due) pp = &(*pp)->next;
  k->next = *pp;
  *pp = k;
  if (k->to_server) w->sent_to_server++;
}

static void wire_push(qch_wire *w, int to_server, const quic_pkt *p) {
  count_protection(p);
  if (w->capture && to_server && !w->cap_len && p->len <= sizeof w->cap) {
    memcpy(w->cap, p->data, p->len);
    w->cap_len = p->len;
    return;
  }
  if (w->loss_pct && rnd(w) % 100 < w->loss_pct) {
    w->dropped++;
    return;
  }
  qch_pkt *k = malloc(sizeof *k + p->len);
  k->to_server = to_server;
  k->len = p->len;
  memcpy(k->data, p->data, p->len);
  if (!to_server && w->hold_nth) {
    if (w->held && ++w->held_since >= w->hold_for) {
      /* the late one goes first, ahead of what was sent after it */
      wire_queue(w, w->held, uv_now(w->loop));
      w->held = NULL;
      w->held_released = 1;
    }
    if (p->len && !(p->data[0] & 0x80) && ++w->short_to_client == w->hold_nth) {
      w->held = k;
      return;
    }
  }
  uint64_t extra = w->reorder_pct && rnd(w) % 100 < w->reorder_pct ? 3 : 0;
  wire_queue(w, k, uv_now(w->loop) + w->delay_ms + extra);
}

static void server_cb_init(qch_wire *w, quic_conn_cb *cb);

static void on_wire_timer(uv_timer_t *t) {
  qch_wire *w = t->data;
  uint64_t now = uv_now(w->loop);
  while (w->head && w->head->due <= now) {
    qch_pkt *k = w->head;
    w->head = k->next;
    if (k->to_server) {
      if (!w->server && quic_conn_acceptable(k->data, k->len)) {
        quic_conn_cb cb;
        server_cb_init(w, &cb);
        char err[128];
        w->server = quic_conn_server(w->loop, w->stls, &w->opts, &cb, &w->spath, k->data, k->len,
                                     err, sizeof err);
        assert_non_null(w->server);
      } else if (w->server) {
        quic_conn_input(w->server, k->data, k->len);
      }
    } else if (w->client) {
      quic_conn_input(w->client, k->data, k->len);
    }
    free(k);
  }
}

/* The fuzz seeds (qch_seed_open): the first packet's file, closed once it is written, and the
 * whole handshake's. */
static FILE *seed_first, *seed_all;

static void seed_put(FILE *f, const quic_pkt *p) {
  uint8_t len[2] = {(uint8_t)(p->len >> 8), (uint8_t)p->len};
  fwrite(len, 1, 2, f);
  fwrite(p->data, 1, p->len, f);
}

void qch_seed_open(void) {
  const char *dir = getenv("QUIC_SEED_DIR");
  if (!dir) return;
  char path[512];
  snprintf(path, sizeof path, "%s/initial.bin", dir);
  seed_first = fopen(path, "wb");
  snprintf(path, sizeof path, "%s/handshake.bin", dir);
  seed_all = fopen(path, "wb");
  assert_non_null(seed_first);
  assert_non_null(seed_all);
}

void qch_seed_close(void) {
  if (seed_all) fclose(seed_all);
  seed_all = NULL;
}

static void c_send(void *ctx, const quic_pkt *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (seed_first) {
      seed_put(seed_first, &p[i]);
      fclose(seed_first);
      seed_first = NULL;
    }
    if (seed_all) seed_put(seed_all, &p[i]);
    wire_push(ctx, 1, &p[i]);
  }
}
static void s_send(void *ctx, const quic_pkt *p, size_t n) {
  for (size_t i = 0; i < n; i++) wire_push(ctx, 0, &p[i]);
}
static void c_established(void *ctx) { ((qch_wire *)ctx)->client_established++; }
static void s_established(void *ctx) { ((qch_wire *)ctx)->server_established++; }
static void c_closed(void *ctx, const char *reason) { ((qch_wire *)ctx)->client_closed++; }

/* ---- streams: an echo server and a checking client ---------------------------------------- */

uint8_t qch_pattern(uint32_t seed, uint64_t i) { return (uint8_t)((i * 2654435761u) >> 7 ^ seed); }

static void s_read(stream *s, const uint8_t *d, size_t n) {
  qch_peer *p = s->user;
  if (!n) {
    p->eof = 1;
    stream_shutdown(s);
    return;
  }
  p->received += n;
  if (!p->sink) assert_int_equal(stream_write(s, d, n), 0);
}
static void any_shutdown(stream *s) { ((qch_peer *)s->user)->shutdown_done = 1; }
static void any_closed(stream *s) {
  qch_peer *p = s->user;
  p->closed = 1;
}
static void any_error(stream *s, int err) {
  qch_peer *p = s->user;
  p->error = err;
}
static void any_drain(stream *s) {}

void qch_bind_stream(stream *s, void *user, void (*on_read)(stream *, const uint8_t *, size_t)) {
  s->user = user;
  s->on_read = on_read;
  s->on_shutdown = any_shutdown;
  s->on_closed = any_closed;
  s->on_error = any_error;
  s->on_drain = any_drain;
}

static void s_new_stream(void *ctx, stream *s) {
  assert_true(qch_n_server_streams < QCH_MAX_SERVER_STREAMS);
  qch_peer *p = calloc(1, sizeof *p);
  p->s = s;
  p->w = ctx;
  p->sink = qch_server_sink;
  qch_bind_stream(s, p, s_read);
  qch_server_streams[qch_n_server_streams++] = p;
  if (!qch_server_paused) stream_read_start(s);
}

static void s_datagram(void *ctx, const uint8_t *d, size_t n) {
  qch_wire *w = ctx;
  uint8_t hdr[1] = {0xAA};
  quic_conn_send_datagram(w->server, hdr, 1, d, n);
}

static void server_cb_init(qch_wire *w, quic_conn_cb *cb) {
  memset(cb, 0, sizeof *cb);
  cb->send = s_send;
  cb->established = s_established;
  cb->new_stream = s_new_stream;
  cb->datagram = s_datagram;
  cb->ctx = w;
}

static void c_datagram(void *ctx, const uint8_t *d, size_t n) {
  if (n == 101 && d[0] == 0xAA) qch_dgrams_back++;
}

void qch_client_read(stream *s, const uint8_t *d, size_t n) {
  qch_peer *p = s->user;
  if (!n) {
    p->eof = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) assert_int_equal(d[i], qch_pattern(p->seed, p->received + i));
  p->received += n;
}

void qch_feed(qch_peer *p, uint64_t total) {
  uint8_t buf[8192];
  while (p->sent < total) {
    size_t n = total - p->sent < sizeof buf ? (size_t)(total - p->sent) : sizeof buf;
    for (size_t i = 0; i < n; i++) buf[i] = qch_pattern(p->seed, p->sent + i);
    assert_int_equal(stream_write(p->s, buf, n), 0);
    p->sent += n;
  }
  stream_shutdown(p->s);
}

/* ---- setting up and ending ---------------------------------------------------------------- */

static void addr4(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

void qch_wire_init(qch_wire *w, uv_loop_t *loop) {
  memset(w, 0, sizeof *w);
  w->loop = loop;
  w->rng = 12345;
  w->delay_ms = 1;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, on_wire_timer, 1, 1);
  char err[128];
  w->ctls = quic_tls_new(false, qch_client_tunnel_protection, err, sizeof err);
  qch_short_pkts = qch_short_tunnel_tag = 0;
  w->stls = quic_tls_new(true, true, err, sizeof err);
  assert_non_null(w->ctls);
  assert_non_null(w->stls);
  quic_conn_opts_default(&w->opts);
  w->opts.max_payload = 1360;
  addr4(&w->cpath.local, "10.0.0.2", 40000);
  addr4(&w->cpath.remote, "10.0.0.1", 443);
  w->spath.local = w->cpath.remote;
  w->spath.remote = w->cpath.local;
  qch_n_server_streams = 0;
  qch_server_sink = qch_server_paused = 0;
  qch_dgrams_back = 0;
  loop_turn_start(loop);
}

void qch_wire_connect(qch_wire *w) {
  quic_conn_cb cb = {0};
  cb.send = c_send;
  cb.established = c_established;
  cb.closed = c_closed;
  cb.datagram = c_datagram;
  cb.ctx = w;
  char err[128];
  w->client = quic_conn_client(w->loop, w->ctls, &w->opts, &cb, &w->cpath, err, sizeof err);
  assert_non_null(w->client);
}

void qch_run_until(qch_wire *w, int (*done)(qch_wire *), uint64_t limit_ms) {
  uint64_t start = uv_now(w->loop);
  while (!done(w) && uv_now(w->loop) - start < limit_ms) uv_run(w->loop, UV_RUN_ONCE);
}

void qch_wire_end(qch_wire *w) {
  if (w->client) quic_conn_close(w->client);
  if (w->server) quic_conn_close(w->server);
  for (size_t i = 0; i < qch_n_server_streams; i++) {
    if (!qch_server_streams[i]->closed) stream_close(qch_server_streams[i]->s);
  }
  uv_timer_stop(&w->timer);
  for (int i = 0; i < 50; i++) uv_run(w->loop, UV_RUN_NOWAIT);
  for (size_t i = 0; i < qch_n_server_streams; i++) free(qch_server_streams[i]);
  while (w->head) {
    qch_pkt *k = w->head;
    w->head = k->next;
    free(k);
  }
  free(w->held);
  loop_turn_stop();
  uv_close((uv_handle_t *)&w->timer, NULL);
  uv_run(w->loop, UV_RUN_DEFAULT);
  quic_tls_free(w->ctls);
  quic_tls_free(w->stls);
}

int qch_both_established(qch_wire *w) { return w->client_established && w->server_established; }
