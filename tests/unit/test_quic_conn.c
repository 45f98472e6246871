/* The QUIC connection core (src/quic/quic_conn.c, stream_quic.c) between a client and a server
 * on one libuv loop, packets handed over through an in-memory wire that can lose and reorder
 * them. Data is checked byte for byte; ASan checks that everything is freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "quic/quic_conn.h"
#include "util/asan.h"
#include "util/loop_turn.h"

/* ---- the wire ----------------------------------------------------------------------------- */

typedef struct pkt {
  struct pkt *next;
  int to_server;
  uint64_t due;
  size_t len;
  uint8_t data[];
} pkt;

typedef struct {
  uv_loop_t *loop;
  uv_timer_t timer;
  pkt *head;
  uint32_t rng;
  unsigned loss_pct, reorder_pct;
  uint64_t delay_ms;
  quic_tls *ctls, *stls;
  quic_conn *client, *server;
  quic_conn_opts opts;
  quic_path_addrs cpath, spath;
  int client_established, server_established, client_closed;
  size_t sent_to_server, dropped;
  int capture; /* the next client packet goes to cap instead of the server */
  uint8_t cap[1500];
  size_t cap_len;
  /* One late packet: the server's hold_nth short-header packet waits until hold_for more
   * packets went to the client. */
  size_t hold_nth, hold_for, short_to_client, held_since;
  struct pkt *held;
  int held_released;
} wire;

static uint32_t rnd(wire *w) {
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 17;
  w->rng ^= w->rng << 5;
  return w->rng;
}

/* Short-header (1-RTT) packets on the wire, and those with the tunnel's tag (quic_protect.h)
 * instead of AES-GCM's: the 12-byte nonce, then 4 zero bytes (AES-GCM's tag ends so once in
 * 2^32). */
static uint64_t short_pkts, short_tunnel_tag;
/* The client offers awgproxy/3 (QuicProtection = tunnel, the client's default); the echo tests
 * set it. */
static bool client_tunnel_protection;

static void count_protection(const quic_pkt *p) {
  if (!p->len || (p->data[0] & 0x80) || p->len < 17) return;
  short_pkts++;
  uint8_t any = 0;
  for (size_t i = p->len - 4; i < p->len; i++) any |= p->data[i];
  if (!any) short_tunnel_tag++;
}

static void wire_queue(wire *w, pkt *k, uint64_t due) {
  k->due = due;
  /* sorted by due time, stable */
  pkt **pp = &w->head;
  while (*pp && (*pp)->due <= k->due) pp = &(*pp)->next;
  k->next = *pp;
  *pp = k;
  if (k->to_server) w->sent_to_server++;
}

static void wire_push(wire *w, int to_server, const quic_pkt *p) {
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
  pkt *k = malloc(sizeof *k + p->len);
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

static void server_cb_init(wire *w, quic_conn_cb *cb);

static void on_wire_timer(uv_timer_t *t) {
  wire *w = t->data;
  uint64_t now = uv_now(w->loop);
  while (w->head && w->head->due <= now) {
    pkt *k = w->head;
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

/* Seeds for fuzz/fuzz_quic_endpoint.c: with QUIC_SEED_DIR set, test_handshake writes the client's
 * first packet (its Initial) and all the client's packets of the handshake as datagram sequences
 * (2-byte big-endian length, then the bytes) to initial.bin and handshake.bin there. */
static FILE *seed_first, *seed_all;

static void seed_put(FILE *f, const quic_pkt *p) {
  uint8_t len[2] = {(uint8_t)(p->len >> 8), (uint8_t)p->len};
  fwrite(len, 1, 2, f);
  fwrite(p->data, 1, p->len, f);
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
static void c_established(void *ctx) { ((wire *)ctx)->client_established++; }
static void s_established(void *ctx) { ((wire *)ctx)->server_established++; }
static void c_closed(void *ctx, const char *reason) { ((wire *)ctx)->client_closed++; }

/* ---- streams: an echo server and a checking client ---------------------------------------- */

typedef struct {
  stream *s;
  wire *w;
  uint64_t received, sent;
  int eof, shutdown_done, closed, error;
  uint32_t seed;
  int sink; /* server: count instead of echo */
} peer_stream;

static uint8_t pattern(uint32_t seed, uint64_t i) {
  return (uint8_t)((i * 2654435761u) >> 7 ^ seed);
}

static void s_read(stream *s, const uint8_t *d, size_t n) {
  peer_stream *p = s->user;
  if (!n) {
    p->eof = 1;
    stream_shutdown(s);
    return;
  }
  p->received += n;
  if (!p->sink) assert_int_equal(stream_write(s, d, n), 0);
}
static void any_shutdown(stream *s) { ((peer_stream *)s->user)->shutdown_done = 1; }
static void any_closed(stream *s) {
  peer_stream *p = s->user;
  p->closed = 1;
}
static void any_error(stream *s, int err) {
  peer_stream *p = s->user;
  p->error = err;
}
static void any_drain(stream *s) {}

#define MANY_STREAMS 10000
static peer_stream *server_streams[MANY_STREAMS + 64];
static size_t n_server_streams;
static int server_sink, server_paused;

/* Gives s its owner and callbacks: the reader on_read, the shared handlers for the rest. */
static void bind_stream(stream *s, void *user, void (*on_read)(stream *, const uint8_t *, size_t)) {
  s->user = user;
  s->on_read = on_read;
  s->on_shutdown = any_shutdown;
  s->on_closed = any_closed;
  s->on_error = any_error;
  s->on_drain = any_drain;
}

static void s_new_stream(void *ctx, stream *s) {
  peer_stream *p = calloc(1, sizeof *p);
  p->s = s;
  p->w = ctx;
  p->sink = server_sink;
  bind_stream(s, p, s_read);
  server_streams[n_server_streams++] = p;
  if (!server_paused) stream_read_start(s);
}

static void s_datagram(void *ctx, const uint8_t *d, size_t n) {
  wire *w = ctx;
  uint8_t hdr[1] = {0xAA};
  quic_conn_send_datagram(w->server, hdr, 1, d, n);
}

static void server_cb_init(wire *w, quic_conn_cb *cb) {
  memset(cb, 0, sizeof *cb);
  cb->send = s_send;
  cb->established = s_established;
  cb->new_stream = s_new_stream;
  cb->datagram = s_datagram;
  cb->ctx = w;
}

static size_t dgrams_back;
static void c_datagram(void *ctx, const uint8_t *d, size_t n) {
  if (n == 101 && d[0] == 0xAA) dgrams_back++;
}

static void c_read(stream *s, const uint8_t *d, size_t n) {
  peer_stream *p = s->user;
  if (!n) {
    p->eof = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) assert_int_equal(d[i], pattern(p->seed, p->received + i));
  p->received += n;
}

static void addr4(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

static void wire_init(wire *w, uv_loop_t *loop) {
  memset(w, 0, sizeof *w);
  w->loop = loop;
  w->rng = 12345;
  w->delay_ms = 1;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, on_wire_timer, 1, 1);
  char err[128];
  w->ctls = quic_tls_new(false, client_tunnel_protection, err, sizeof err);
  short_pkts = short_tunnel_tag = 0;
  w->stls = quic_tls_new(true, true, err, sizeof err);
  assert_non_null(w->ctls);
  assert_non_null(w->stls);
  quic_conn_opts_default(&w->opts);
  w->opts.max_payload = 1360;
  addr4(&w->cpath.local, "10.0.0.2", 40000);
  addr4(&w->cpath.remote, "10.0.0.1", 443);
  w->spath.local = w->cpath.remote;
  w->spath.remote = w->cpath.local;
  n_server_streams = 0;
  server_sink = server_paused = 0;
  dgrams_back = 0;
  loop_turn_start(loop);
}

static void wire_connect(wire *w) {
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

static void run_until(wire *w, int (*done)(wire *), uint64_t limit_ms) {
  uint64_t start = uv_now(w->loop);
  while (!done(w) && uv_now(w->loop) - start < limit_ms) uv_run(w->loop, UV_RUN_ONCE);
}

static void wire_end(wire *w) {
  if (w->client) quic_conn_close(w->client);
  if (w->server) quic_conn_close(w->server);
  for (size_t i = 0; i < n_server_streams; i++) {
    if (!server_streams[i]->closed) stream_close(server_streams[i]->s);
  }
  uv_timer_stop(&w->timer);
  for (int i = 0; i < 50; i++) uv_run(w->loop, UV_RUN_NOWAIT);
  for (size_t i = 0; i < n_server_streams; i++) free(server_streams[i]);
  while (w->head) {
    pkt *k = w->head;
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

static int both_established(wire *w) { return w->client_established && w->server_established; }

static void seed_open(void) {
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

static void test_handshake(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  seed_open();
  wire_connect(&w);
  run_until(&w, both_established, 5000);
  if (seed_all) fclose(seed_all);
  seed_all = NULL;
  assert_int_equal(w.client_established, 1);
  assert_int_equal(w.server_established, 1);
  assert_true(quic_conn_is_established(w.client));
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- echo of many streams, optionally over a lossy wire ----------------------------------- */

#define NSTREAMS 16
static peer_stream cstreams[NSTREAMS];
static uint64_t echo_bytes;

static int all_echoed(wire *w) {
  for (int i = 0; i < NSTREAMS; i++)
    if (!cstreams[i].eof || cstreams[i].received != echo_bytes) return 0;
  return 1;
}

static void feed(peer_stream *p, uint64_t total) {
  uint8_t buf[8192];
  while (p->sent < total) {
    size_t n = total - p->sent < sizeof buf ? (size_t)(total - p->sent) : sizeof buf;
    for (size_t i = 0; i < n; i++) buf[i] = pattern(p->seed, p->sent + i);
    assert_int_equal(stream_write(p->s, buf, n), 0);
    p->sent += n;
  }
  stream_shutdown(p->s);
}

/* The late packet of the next echo_run (wire.hold_nth, hold_for), and whether it was delivered. */
static size_t echo_hold_nth, echo_hold_for;
static int echo_held_released;

static void echo_run(unsigned loss, unsigned reorder, uint64_t bytes) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  w.loss_pct = loss;
  w.reorder_pct = reorder;
  w.hold_nth = echo_hold_nth;
  w.hold_for = echo_hold_for;
  echo_bytes = bytes;
  wire_connect(&w);
  memset(cstreams, 0, sizeof cstreams);
  for (int i = 0; i < NSTREAMS; i++) {
    peer_stream *p = &cstreams[i];
    p->s = quic_conn_open_stream(w.client);
    assert_non_null(p->s);
    p->seed = (uint32_t)i * 77 + 1;
    bind_stream(p->s, p, c_read);
    stream_read_start(p->s);
    feed(p, bytes); /* written before the handshake completes: sent when it does */
  }
  run_until(&w, all_echoed, 60000);
  for (int i = 0; i < NSTREAMS; i++) {
    assert_int_equal(cstreams[i].received, bytes);
    assert_true(cstreams[i].eof);
    assert_true(cstreams[i].shutdown_done);
    assert_int_equal(cstreams[i].error, 0);
    stream_close(cstreams[i].s);
  }
  assert_int_equal(n_server_streams, NSTREAMS);
  for (size_t i = 0; i < n_server_streams; i++) {
    assert_int_equal(server_streams[i]->received, bytes);
    assert_true(server_streams[i]->eof);
  }
  if (loss) assert_true(w.dropped > 0);
  echo_held_released = w.held_released;
  for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
  for (int i = 0; i < NSTREAMS; i++) assert_true(cstreams[i].closed);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_echo_clean(void **state) {
  client_tunnel_protection = true;
  echo_run(0, 0, 1 << 20);
  client_tunnel_protection = false;
  /* awgproxy/3 agreed: every 1-RTT packet carries the tunnel's tag, both ways */
  assert_true(short_pkts > 100);
  assert_int_equal(short_tunnel_tag, short_pkts);
}

/* A client that keeps QUIC's own protection (the default, and older clients: awgproxy/1 only):
 * the server agrees to awgproxy/1 and every 1-RTT packet is AES-GCM sealed. */
static void test_echo_own_protection(void **state) {
  echo_run(0, 0, 256 << 10);
  assert_true(short_pkts > 50);
  assert_int_equal(short_tunnel_tag, 0);
}
static void test_echo_lossy(void **state) {
  client_tunnel_protection = true;
  echo_run(3, 5, 256 << 10);
  client_tunnel_protection = false;
  assert_int_equal(short_tunnel_tag, short_pkts);
}

/* A server packet early in the transfer (its number still sent in 1 byte) arrives after 200 of
 * its successors: the client rebuilds its number 256 too high. QUIC's AEAD then fails to open it
 * (the nonce holds the full number) and it is just a loss; the tunnel's protection must reject it
 * the same way, else the client acknowledges a packet the server has not sent and the server
 * closes the connection (PROTOCOL_VIOLATION), which the tunnel's first, all-zero tag
 * (awgproxy/2) did every time here. Both protections, no other loss. */
static void test_late_packet(void **state) {
  for (int tunnel = 1; tunnel >= 0; tunnel--) {
    client_tunnel_protection = tunnel;
    echo_hold_nth = 20;
    echo_hold_for = 200;
    echo_run(0, 0, 256 << 10);
    echo_hold_nth = echo_hold_for = 0;
    client_tunnel_protection = false;
    assert_true(echo_held_released);
    assert_int_equal(short_tunnel_tag, tunnel ? short_pkts : 0);
  }
}

/* ---- flow control: a reader that stops holds the writer ----------------------------------- */

static int some_time(wire *w) { return 0; }

static void test_backpressure(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  server_sink = 1;
  server_paused = 1;
  wire_connect(&w);
  peer_stream p = {0};
  p.s = quic_conn_open_stream(w.client);
  bind_stream(p.s, &p, c_read);
  uint64_t total = 8 << 20;
  feed(&p, total);
  run_until(&w, some_time, 500);
  /* The server application reads nothing: only the initial stream window (256 KiB) may leave. */
  size_t queued = stream_write_queued(p.s);
  assert_true(queued >= total - (300 << 10));
  assert_int_equal(n_server_streams, 1);
  assert_int_equal(server_streams[0]->received, 0);
  stream_read_start(server_streams[0]->s);
  run_until(&w, some_time, 2000);
  assert_int_equal(server_streams[0]->received, total);
  assert_true(server_streams[0]->eof);
  assert_int_equal(stream_write_queued(p.s), 0);
  stream_close(p.s);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- aborts: a closed stream resets the peer's; a closed connection ends every stream ----- */

static int client_saw_error(wire *w) { return cstreams[0].error != 0; }

static void test_reset_and_close(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  wire_connect(&w);
  memset(cstreams, 0, sizeof cstreams);
  for (int i = 0; i < 2; i++) {
    peer_stream *p = &cstreams[i];
    p->s = quic_conn_open_stream(w.client);
    bind_stream(p->s, p, c_read);
    stream_read_start(p->s);
    uint8_t b = pattern(p->seed, 0);
    stream_write(p->s, &b, 1);
  }
  run_until(&w, some_time, 300);
  assert_int_equal(n_server_streams, 2);
  /* the server's application aborts stream 0 */
  stream_close(server_streams[0]->s);
  run_until(&w, client_saw_error, 2000);
  assert_int_equal(cstreams[0].error, UV_ECONNRESET);
  assert_int_equal(cstreams[1].error, 0);
  stream_close(cstreams[0].s);
  /* the server ends the connection: the client's remaining stream fails, closed is told */
  quic_conn_close(w.server);
  w.server = NULL;
  run_until(&w, some_time, 500);
  assert_int_equal(w.client_closed, 1);
  assert_int_not_equal(cstreams[1].error, 0);
  assert_true(quic_conn_is_dead(w.client));
  stream_close(cstreams[1].s);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int dgrams_done(wire *w) { return dgrams_back == 50; }

static void test_datagrams(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  wire_connect(&w);
  run_until(&w, both_established, 5000);
  uint8_t hdr[1] = {0x01}, data[99];
  memset(data, 7, sizeof data);
  for (int i = 0; i < 50; i++)
    assert_int_equal(quic_conn_send_datagram(w.client, hdr, 1, data, sizeof data), 0);
  /* too large for one packet: refused at once */
  uint8_t big[2000] = {0};
  assert_int_equal(quic_conn_send_datagram(w.client, hdr, 1, big, sizeof big), -1);
  run_until(&w, dgrams_done, 3000);
  assert_int_equal(dgrams_back, 50);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A client Initial that does not decrypt (here: one flipped bit in its AEAD tag) still passes
 * quic_conn_acceptable, but ngtcp2 answers DROP_CONN: the server connection must be refused at
 * once. It used to be kept, and closing it (or its first write pass) crashed inside ngtcp2 --
 * found by fuzz/fuzz_quic_endpoint.c. */
static size_t server_sent;
static void count_send(void *ctx, const quic_pkt *p, size_t n) { server_sent += n; }

static void test_corrupt_initial_refused(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  wire_connect(&w);
  uv_run(&loop, UV_RUN_NOWAIT); /* the client's first write pass puts its Initial on the wire */
  assert_non_null(w.head);
  pkt *k = w.head;
  assert_true(quic_conn_acceptable(k->data, k->len));
  quic_conn_cb cb = {.send = count_send};
  char err[160];
  server_sent = 0;
  k->data[k->len - 1] ^= 0x01;
  assert_true(quic_conn_acceptable(k->data, k->len));
  quic_conn *bad =
      quic_conn_server(&loop, w.stls, &w.opts, &cb, &w.spath, k->data, k->len, err, sizeof err);
  assert_null(bad);
  assert_non_null(strstr(err, "first packet rejected"));
  assert_int_equal(server_sent, 0); /* dropped silently: no CONNECTION_CLOSE */
  /* the intact packet is accepted (the test can tell the two apart) */
  k->data[k->len - 1] ^= 0x01;
  quic_conn *good =
      quic_conn_server(&loop, w.stls, &w.opts, &cb, &w.spath, k->data, k->len, err, sizeof err);
  assert_non_null(good);
  for (int i = 0; i < 3; i++) uv_run(&loop, UV_RUN_NOWAIT);
  assert_true(server_sent > 0); /* its handshake reply */
  quic_conn_close(good);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- bounded memory: 10,000 streams open at once on one connection -------------------------
 * Each client stream writes 8 bytes, the server echoes them; all 10,000 are open together (both
 * ends count them), then every one is half-closed both ways and closed. The growth of the
 * process's peak RSS (ru_maxrss) over the run must stay under MANY_RSS_BOUND_KB. Measured (this
 * test run first in the process, RelWithDebInfo, x86-64, 2026-12): 114-119 MiB of peak growth,
 * ~12 KiB per stream for both ends together (a stream's buffered bytes sit in a 16 KiB chunk of
 * which only the first page is touched). The bound is ~2x the measurement.
 * Under ASan (quarantine, shadow memory) RSS says nothing about our buffers: not checked there. */
#define MANY_RSS_BOUND_KB (240 * 1024)

static peer_stream *many;

static int many_echoed(wire *w) {
  for (int i = 0; i < MANY_STREAMS; i++)
    if (many[i].received < 8) return 0;
  return 1;
}

static int many_eof(wire *w) {
  for (int i = 0; i < MANY_STREAMS; i++)
    if (!many[i].eof || !many[i].shutdown_done) return 0;
  return 1;
}

static int many_closed(wire *w) {
  for (int i = 0; i < MANY_STREAMS; i++)
    if (!many[i].closed) return 0;
  for (size_t i = 0; i < n_server_streams; i++)
    if (!server_streams[i]->closed) return 0;
  return 1;
}

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss; /* KiB on Linux */
}

static void test_many_streams(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  wire_connect(&w);
  run_until(&w, both_established, 5000);
  assert_int_equal(w.server_established, 1);
  long rss_before = max_rss_kb();
  many = calloc(MANY_STREAMS, sizeof *many);
  assert_non_null(many);
  for (int i = 0; i < MANY_STREAMS; i++) {
    peer_stream *p = &many[i];
    p->s = quic_conn_open_stream(w.client);
    assert_non_null(p->s);
    p->seed = (uint32_t)i;
    bind_stream(p->s, p, c_read);
    stream_read_start(p->s);
    uint8_t b[8];
    for (int k = 0; k < 8; k++) b[k] = pattern(p->seed, (uint64_t)k);
    assert_int_equal(stream_write(p->s, b, sizeof b), 0);
  }
  run_until(&w, many_echoed, 120000);
  assert_true(many_echoed(&w));
  /* all open at once, on both ends */
  assert_int_equal(n_server_streams, MANY_STREAMS);
  quic_conn_stats cs, ss;
  quic_conn_get_stats(w.client, &cs);
  quic_conn_get_stats(w.server, &ss);
  assert_int_equal(cs.streams_open, MANY_STREAMS);
  assert_int_equal(ss.streams_open, MANY_STREAMS);
  for (int i = 0; i < MANY_STREAMS; i++) {
    assert_int_equal(many[i].received, 8);
    assert_int_equal(many[i].error, 0);
  }
  /* half-close: the server echoes the EOF (s_read shuts down on it) */
  for (int i = 0; i < MANY_STREAMS; i++) stream_shutdown(many[i].s);
  run_until(&w, many_eof, 120000);
  assert_true(many_eof(&w));
  for (int i = 0; i < MANY_STREAMS; i++) stream_close(many[i].s);
  for (size_t i = 0; i < n_server_streams; i++) stream_close(server_streams[i]->s);
  run_until(&w, many_closed, 10000);
  assert_true(many_closed(&w));
  quic_conn_get_stats(w.client, &cs);
  quic_conn_get_stats(w.server, &ss);
  assert_int_equal(cs.streams_open, 0);
  assert_int_equal(ss.streams_open, 0);
  assert_false(quic_conn_is_dead(w.client));
  long growth = max_rss_kb() - rss_before;
  print_message("10000 streams: peak RSS growth %ld KiB (bound %d KiB)\n", growth,
                MANY_RSS_BOUND_KB);
#if !AWG_ASAN
  assert_true(growth < MANY_RSS_BOUND_KB);
#endif
  wire_end(&w);
  free(many);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- packets per answer ------------------------------------------------------------------- */

static peer_stream ans_client;
static uint64_t ans_client_bytes;
static int ans_client_eof;
static void ans_read(stream *s, const uint8_t *d, size_t n) {
  if (!n) ans_client_eof = 1;
  ans_client_bytes += n;
}
static uint64_t ans_want;
static int server_got_want(wire *w) {
  return n_server_streams == 1 && server_streams[0]->received == ans_want;
}
static int client_got_want(wire *w) { return ans_client_bytes == ans_want; }
static int client_got_eof(wire *w) { return ans_client_eof; }
static uint64_t server_pkts_sent(wire *w) {
  quic_conn_stats st;
  quic_conn_get_stats(w->server, &st);
  return st.pkts_sent;
}

/* The loop runs (timers included) for us microseconds without waiting. */
static void spin(uv_loop_t *loop, uint64_t us) {
  uint64_t end = uv_hrtime() + us * 1000;
  while (uv_hrtime() < end) uv_run(loop, UV_RUN_NOWAIT);
}

/* The server answers 0.8 ms after a request, as after its connect to a destination, the loop
 * running meanwhile: the ACK of the request rides on the answer, one packet, instead of leaving
 * alone first (a delayed ACK waits 1-2 ms for company, quic_conn.c arm_timer; with ngtcp2's own
 * delay, RTT/8, rounded up to the timer's 1 ms, it left first most of the time). Then
 * quic_stream_hold_next_write: a held reply leaves with the next write, or with a shutdown, in one
 * packet, and alone after QUIC_HOLD_MS (1-2 ms: the timer counts whole milliseconds). */
static void test_one_packet_per_answer(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  server_sink = 1;
  wire_connect(&w);
  run_until(&w, both_established, 5000);
  stream *c = quic_conn_open_stream(w.client);
  assert_non_null(c);
  bind_stream(c, &ans_client, ans_read);
  stream_read_start(c);
  ans_client_bytes = 0;
  ans_client_eof = 0;
  const uint8_t req[8] = "request";
  for (int round = 0; round < 5; round++) {
    assert_int_equal(stream_write(c, req, sizeof req), 0);
    ans_want = 8 * (uint64_t)(round + 1);
    run_until(&w, server_got_want, 5000);
    assert_true(server_got_want(&w));
    /* rounds 0 and 1: the answer 0.8 ms after the request, counting from the request (an ACK
     * that left alone meanwhile counts; round 0 warms up: ngtcp2 acknowledges a connection's
     * first packets at once); the holds: once the ACKs have all gone */
    uint64_t before = server_pkts_sent(&w), t0 = uv_hrtime();
    spin(&loop, round < 2 ? 800 : 10000);
    /* a test descheduled on a loaded machine may answer after the ACK's 1-2 ms: no verdict */
    bool late = round < 2 && uv_hrtime() - t0 > 950000;
    stream *s = server_streams[0]->s;
    if (round >= 2) before = server_pkts_sent(&w);
    ans_want = ans_client_bytes;
    if (round < 2) {
      assert_int_equal(stream_write(s, (const uint8_t *)"answer", 6), 0);
      ans_want += 6;
    } else {
      uint64_t t1 = uv_hrtime();
      quic_stream_hold_next_write(s);
      assert_int_equal(stream_write(s, (const uint8_t *)"RR", 2), 0);
      for (int i = 0; i < 3; i++) uv_run(&loop, UV_RUN_NOWAIT);
      late = uv_hrtime() - t1 > 900000; /* the hold's 2 ms may have run out: no verdict */
      if (!late) assert_int_equal(server_pkts_sent(&w), before); /* held */
      if (round == 2) assert_int_equal(stream_write(s, (const uint8_t *)"DATA", 4), 0);
      if (round == 4) stream_shutdown(s); /* round 3: nothing follows, the timer sends it */
      ans_want += round == 2 ? 6 : 2;
      if (round == 3) {
        /* The hold runs out: never before the deadline's millisecond, however loaded the
         * machine (QUIC_HOLD_MS - 1: the timer's granularity, quic_send.c on_timer). */
        uint64_t end = t1 + 50000000;
        while (server_pkts_sent(&w) == before && uv_hrtime() < end) uv_run(&loop, UV_RUN_NOWAIT);
        uint64_t held = uv_hrtime() - t1;
        print_message("round 3: the hold ran out after %.2f ms\n", held / 1e6);
        assert_true(held >= (QUIC_HOLD_MS - 1) * 1000000ull);
        assert_true(server_pkts_sent(&w) > before);
      }
    }
    run_until(&w, client_got_want, 5000);
    assert_int_equal(ans_client_bytes, ans_want);
    uint64_t pkts = server_pkts_sent(&w) - before;
    print_message("round %d: %llu server packet(s) for the answer%s\n", round,
                  (unsigned long long)pkts, late ? " (descheduled: no verdict)" : "");
    if (round > 0 && !late) assert_int_equal(pkts, 1);
  }
  run_until(&w, client_got_eof, 5000);
  assert_true(ans_client_eof);
  stream_close(c);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A server process that lost the connection (a restart) answers with a Stateless Reset whose
 * token comes from the same secret: the client's connection ends at once. */
static int captured(wire *w) { return w->cap_len > 0; }

static void stateless_reset_run(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire w;
  wire_init(&w, &loop);
  static const uint8_t secret[32] = {1, 2, 3};
  w.opts.reset_secret = secret;
  w.opts.reset_secret_len = sizeof secret;
  wire_connect(&w);
  run_until(&w, both_established, 5000);
  assert_true(quic_conn_is_established(w.client));
  w.capture = 1;
  uint8_t hdr[1] = {1}, data[100] = {0};
  quic_conn_send_datagram(w.client, hdr, 1, data, sizeof data);
  /* until it is sent, which pacing may put off by a timer: a fixed number of non-blocking turns
   * was not always enough on a loaded machine */
  run_until(&w, captured, 2000);
  assert_true(w.cap_len > 0);
  uint8_t reset[64];
  /* a wrong secret gives a reset the client ignores */
  static const uint8_t other[32] = {9};
  size_t n = quic_stateless_reset(other, sizeof other, w.cap, w.cap_len, reset, sizeof reset);
  assert_true(n >= 21 && n < w.cap_len);
  quic_conn_input(w.client, reset, n);
  assert_false(quic_conn_is_dead(w.client));
  n = quic_stateless_reset(secret, sizeof secret, w.cap, w.cap_len, reset, sizeof reset);
  assert_true(n >= 21 && n < w.cap_len);
  quic_conn_input(w.client, reset, n);
  assert_true(quic_conn_is_dead(w.client));
  assert_int_equal(w.client_closed, 1);
  /* long-header packets (handshakes) never get one */
  uint8_t lh[100] = {0xc0};
  assert_int_equal(quic_stateless_reset(secret, sizeof secret, lh, sizeof lh, reset, sizeof reset),
                   0);
  wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* With QUIC's own protection and with the tunnel's (whose tag check the reset must fail too). */
static void test_stateless_reset(void **state) {
  stateless_reset_run();
  client_tunnel_protection = true;
  stateless_reset_run();
  client_tunnel_protection = false;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* first: ru_maxrss is a peak, so it must not follow the bulk echo tests */
      cmocka_unit_test(test_many_streams),
      cmocka_unit_test(test_handshake),
      cmocka_unit_test(test_echo_clean),
      cmocka_unit_test(test_echo_lossy),
      /* what made the lossy echo fail with awgproxy/2, every time */
      cmocka_unit_test(test_late_packet),
      cmocka_unit_test(test_echo_own_protection),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_reset_and_close),
      cmocka_unit_test(test_datagrams),
      cmocka_unit_test(test_corrupt_initial_refused),
      cmocka_unit_test(test_stateless_reset),
      cmocka_unit_test(test_one_packet_per_answer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
