/* The QUIC connection core (src/quic/quic_conn.c, stream_quic.c) between a client and a server
 * on one libuv loop, packets handed over through an in-memory wire that can lose and reorder
 * them (the harness: support/quic_conn_harness.h): the handshake, echoed streams over a clean,
 * lossy or late-delivering wire with both protections, flow control, resets and connection
 * close, datagrams, a corrupt first packet, Stateless Reset. Data is checked byte for byte; ASan
 * checks that everything is freed. What the connection costs (memory per stream, packets per
 * answer): test_quic_conn_efficiency.c. */
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

#include "quic/quic_conn.h"
#include "quic/quic_internal.h"
#include "quic_conn_harness.h"

static void test_handshake(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  qch_seed_open();
  qch_wire_connect(&w);
  qch_run_until(&w, qch_both_established, 5000);
  qch_seed_close();
  assert_int_equal(w.client_established, 1);
  assert_int_equal(w.server_established, 1);
  assert_true(quic_conn_is_established(w.client));
  qch_wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- echo of many streams, optionally over a lossy wire ----------------------------------- */

#define NSTREAMS 16
static qch_peer cstreams[NSTREAMS];
static uint64_t echo_bytes;

static int all_echoed(qch_wire *w) {
  for (int i = 0; i < NSTREAMS; i++)
    if (!cstreams[i].eof || cstreams[i].received != echo_bytes) return 0;
  return 1;
}

/* The late packet of the next echo_run (qch_wire.hold_nth, hold_for), and whether it was delivered.
 */
static size_t echo_hold_nth, echo_hold_for;
static int echo_held_released;

/* What each end of every stream saw, and both connections' state: printed when an echo stalls,
 * so that a failure seen once says where the bytes stopped. */
static void report_conn(const char *name, const quic_conn *c) {
  quic_conn_stats st;
  if (!c) return;
  quic_conn_get_stats(c, &st);
  print_message(
      "%s: established %d dead %d streams %llu rtt %llu us cwnd %llu in flight %llu "
      "sent %llu recv %llu lost %llu\n",
      name, quic_conn_is_established(c), quic_conn_is_dead(c),
      (unsigned long long)quic_conn_streams_open(c), (unsigned long long)(st.rtt_ns / 1000),
      (unsigned long long)st.cwnd, (unsigned long long)st.bytes_in_flight,
      (unsigned long long)st.pkts_sent, (unsigned long long)st.pkts_recv,
      (unsigned long long)st.pkts_lost);
}

static void report_stall(qch_wire *w) {
  print_message("echo stalled: %zu packets to the server, %zu dropped, wire %s\n",
                w->sent_to_server, w->dropped, w->head ? "not empty" : "empty");
  report_conn("client", w->client);
  report_conn("server", w->server);
  for (int i = 0; i < NSTREAMS; i++) {
    const qch_peer *c = &cstreams[i];
    print_message("client stream %d: sent %llu queued %zu received %llu eof %d error %d\n", i,
                  (unsigned long long)c->sent, stream_write_queued(c->s),
                  (unsigned long long)c->received, c->eof, c->error);
  }
  if (w->server)
    print_message("server may send %llu more on the connection\n",
                  (unsigned long long)ngtcp2_conn_get_max_data_left(w->server->conn));
  for (size_t i = 0; i < qch_n_server_streams; i++) {
    const qch_peer *v = qch_server_streams[i];
    print_message(
        "server stream %zu: received %llu eof %d echo queued %zu shut down %d "
        "error %d\n",
        i, (unsigned long long)v->received, v->eof, v->closed ? 0 : stream_write_queued(v->s),
        v->shutdown_done, v->error);
    const quic_stream *q = (const quic_stream *)v->s;
    if (v->closed || !w->server || q->snd_sent == q->snd_end) continue;
    print_message(
        "  id %lld in send queue %d held %d fin wanted %d sent %d ng closed %d sent %llu "
        "end %llu acked %llu; ngtcp2 lets it send %llu\n",
        (long long)q->id, q->in_sendq, q->held, q->fin_wanted, q->fin_sent, q->ng_closed,
        (unsigned long long)q->snd_sent, (unsigned long long)q->snd_end,
        (unsigned long long)q->snd_acked,
        q->id >= 0
            ? (unsigned long long)ngtcp2_conn_get_max_stream_data_left(w->server->conn, q->id)
            : 0ull);
  }
}

static void echo_run(unsigned loss, unsigned reorder, uint64_t bytes) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  w.loss_pct = loss;
  w.reorder_pct = reorder;
  w.hold_nth = echo_hold_nth;
  w.hold_for = echo_hold_for;
  echo_bytes = bytes;
  qch_wire_connect(&w);
  memset(cstreams, 0, sizeof cstreams);
  for (int i = 0; i < NSTREAMS; i++) {
    qch_peer *p = &cstreams[i];
    p->s = quic_conn_open_stream(w.client);
    assert_non_null(p->s);
    p->seed = (uint32_t)i * 77 + 1;
    qch_bind_stream(p->s, p, qch_client_read);
    stream_read_start(p->s);
    qch_feed(p, bytes); /* written before the handshake completes: sent when it does */
  }
  qch_run_until(&w, all_echoed, 60000);
  if (!all_echoed(&w)) report_stall(&w);
  for (int i = 0; i < NSTREAMS; i++) {
    assert_int_equal(cstreams[i].received, bytes);
    assert_true(cstreams[i].eof);
    assert_true(cstreams[i].shutdown_done);
    assert_int_equal(cstreams[i].error, 0);
    stream_close(cstreams[i].s);
  }
  assert_int_equal(qch_n_server_streams, NSTREAMS);
  for (size_t i = 0; i < qch_n_server_streams; i++) {
    assert_int_equal(qch_server_streams[i]->received, bytes);
    assert_true(qch_server_streams[i]->eof);
  }
  if (loss) assert_true(w.dropped > 0);
  echo_held_released = w.held_released;
  for (int i = 0; i < 20; i++) uv_run(&loop, UV_RUN_NOWAIT);
  for (int i = 0; i < NSTREAMS; i++) assert_true(cstreams[i].closed);
  qch_wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_echo_clean(void **state) {
  qch_client_tunnel_protection = true;
  echo_run(0, 0, 1 << 20);
  qch_client_tunnel_protection = false;
  /* awgproxy/3 agreed: every 1-RTT packet carries the tunnel's tag, both ways */
  assert_true(qch_short_pkts > 100);
  assert_int_equal(qch_short_tunnel_tag, qch_short_pkts);
}

/* A client that keeps QUIC's own protection (the default, and older clients: awgproxy/1 only):
 * the server agrees to awgproxy/1 and every 1-RTT packet is AES-GCM sealed. */
static void test_echo_own_protection(void **state) {
  echo_run(0, 0, 256 << 10);
  assert_true(qch_short_pkts > 50);
  assert_int_equal(qch_short_tunnel_tag, 0);
}
static void test_echo_lossy(void **state) {
  qch_client_tunnel_protection = true;
  echo_run(3, 5, 256 << 10);
  qch_client_tunnel_protection = false;
  assert_int_equal(qch_short_tunnel_tag, qch_short_pkts);
}

/* A server packet early in the transfer (its number still sent in 1 byte) arrives after 200 of
 * its successors: the client rebuilds its number 256 too high. QUIC's AEAD then fails to open it
 * (the nonce holds the full number) and it is just a loss; the tunnel's protection must reject it
 * the same way, else the client acknowledges a packet the server has not sent and the server
 * closes the connection (PROTOCOL_VIOLATION), which the tunnel's first, all-zero tag
 * (awgproxy/2) did every time here. Both protections, no other loss. */
static void test_late_packet(void **state) {
  for (int tunnel = 1; tunnel >= 0; tunnel--) {
    qch_client_tunnel_protection = tunnel;
    echo_hold_nth = 20;
    echo_hold_for = 200;
    echo_run(0, 0, 256 << 10);
    echo_hold_nth = echo_hold_for = 0;
    qch_client_tunnel_protection = false;
    assert_true(echo_held_released);
    assert_int_equal(qch_short_tunnel_tag, tunnel ? qch_short_pkts : 0);
  }
}

/* ---- flow control: a reader that stops holds the writer ----------------------------------- */

static int some_time(qch_wire *w) { return 0; }
/* Waits that end on a condition, not on a time: a loaded machine (the sanitizer build beside
 * other jobs) once took longer than 500 ms for the handshake alone. */
static int server_stream_open(qch_wire *w) { return qch_n_server_streams == 1; }
static int server_got_all(qch_wire *w) {
  return qch_n_server_streams == 1 && qch_server_streams[0]->eof;
}

/* One client stream writing total bytes to a server application that keeps them but does not
 * read yet (w initialised, its options set). */
static void start_unread_stream(qch_wire *w, qch_peer *p, uint64_t total) {
  qch_server_sink = 1;
  qch_server_paused = 1;
  qch_wire_connect(w);
  p->s = quic_conn_open_stream(w->client);
  qch_bind_stream(p->s, p, qch_client_read);
  qch_feed(p, total);
}

/* The server got all total bytes and the FIN, the client has nothing left queued; then the end. */
static void end_unread_stream(qch_wire *w, uv_loop_t *loop, qch_peer *p, uint64_t total) {
  assert_int_equal(qch_n_server_streams, 1);
  assert_int_equal(qch_server_streams[0]->received, total);
  assert_true(qch_server_streams[0]->eof);
  assert_int_equal(stream_write_queued(p->s), 0);
  stream_close(p->s);
  qch_wire_end(w);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void test_backpressure(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  qch_peer p = {0};
  uint64_t total = 8 << 20;
  start_unread_stream(&w, &p, total);
  qch_run_until(&w, server_stream_open, 10000);
  qch_run_until(&w, some_time, 500);
  /* The server application reads nothing: only the initial stream window (256 KiB) may leave. */
  size_t queued = stream_write_queued(p.s);
  assert_true(queued >= total - (300 << 10));
  assert_int_equal(qch_n_server_streams, 1);
  assert_int_equal(qch_server_streams[0]->received, 0);
  stream_read_start(qch_server_streams[0]->s);
  qch_run_until(&w, server_got_all, 20000);
  end_unread_stream(&w, &loop, &p, total);
}

/* The connection's window, not the stream's, stops the writer. ngtcp2 calls back when a stream's
 * window grows (extend_max_stream_data), never when the connection's does (MAX_DATA); it answers
 * a write blocked by the connection with 0 (nothing to send), not STREAM_DATA_BLOCKED, so the
 * stream stays in the send queue and leaves with the next write pass once MAX_DATA arrives. Were
 * it set aside, its tail and FIN would wait forever: here 160 KiB on one stream behind a 64 KiB
 * connection window, while the stream's window (256 KiB) stays open, so no extend_max_stream_data
 * would come to rescue it. (Dropping such a stream from the queue in write_one_packet makes this
 * test fail.) */

static void test_connection_window_reopens(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  w.opts.conn_window = 64 << 10;
  w.opts.stream_window = 256 << 10;
  qch_peer p = {0};
  uint64_t total = 160 << 10;
  start_unread_stream(&w, &p, total);
  /* The server reads nothing yet: the client stops at the connection's 64 KiB. */
  qch_run_until(&w, server_stream_open, 10000);
  qch_run_until(&w, some_time, 300);
  assert_int_equal(qch_n_server_streams, 1);
  assert_true(stream_write_queued(p.s) >= total - (64 << 10));
  /* It reads: MAX_DATA goes out, and the rest must follow. */
  stream_read_start(qch_server_streams[0]->s);
  qch_run_until(&w, server_got_all, 5000);
  end_unread_stream(&w, &loop, &p, total);
}

/* Bytes a stream still held for the application when ngtcp2 had already closed it (both FINs
 * through: ngtcp2 counts data as consumed once it handed it over, we only once the application
 * read it) go back to the connection's window when they are read. They did not: each such
 * stream kept its unread tail out of the window for good, until a long-lived connection could
 * send nothing more (seen as an echo stalled with a few hundred bytes left on some streams, the
 * server allowed 0 more on the connection). Here the client reads each 24 KiB echo only after
 * both FINs went through, with a 64 KiB connection window: the third stream stalled. */
static qch_peer *window_stream;
static int window_stream_done(qch_wire *w) { return window_stream->eof; }

static void test_closed_streams_give_their_window_back(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  quic_conn_opts_windows(&w.opts, 64 << 10, 64 << 10);
  qch_wire_connect(&w);
  qch_run_until(&w, qch_both_established, 5000);
  for (uint32_t i = 0; i < 12; i++) {
    qch_peer p = {0};
    p.s = quic_conn_open_stream(w.client);
    p.seed = i + 1;
    qch_bind_stream(p.s, &p, qch_client_read);
    qch_feed(&p, 24 << 10);
    qch_run_until(&w, some_time, 100); /* echoed and closed in ngtcp2, not read yet */
    window_stream = &p;
    stream_read_start(p.s);
    qch_run_until(&w, window_stream_done, 10000);
    if (!p.eof)
      fail_msg("stream %u: %llu of %u bytes, the server may send %llu more on the connection", i,
               (unsigned long long)p.received, 24u << 10,
               (unsigned long long)ngtcp2_conn_get_max_data_left(w.server->conn));
    assert_int_equal(p.received, 24 << 10);
    stream_close(p.s);
    for (int k = 0; k < 5; k++) uv_run(&loop, UV_RUN_NOWAIT);
  }
  qch_wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- aborts: a closed stream resets the peer's; a closed connection ends every stream ----- */

static int client_saw_error(qch_wire *w) { return cstreams[0].error != 0; }

static void test_reset_and_close(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  qch_wire_connect(&w);
  memset(cstreams, 0, sizeof cstreams);
  for (int i = 0; i < 2; i++) {
    qch_peer *p = &cstreams[i];
    p->s = quic_conn_open_stream(w.client);
    qch_bind_stream(p->s, p, qch_client_read);
    stream_read_start(p->s);
    uint8_t b = qch_pattern(p->seed, 0);
    stream_write(p->s, &b, 1);
  }
  qch_run_until(&w, some_time, 300);
  assert_int_equal(qch_n_server_streams, 2);
  /* the server's application aborts stream 0 */
  stream_close(qch_server_streams[0]->s);
  qch_run_until(&w, client_saw_error, 2000);
  assert_int_equal(cstreams[0].error, UV_ECONNRESET);
  assert_int_equal(cstreams[1].error, 0);
  stream_close(cstreams[0].s);
  /* the server ends the connection: the client's remaining stream fails, closed is told */
  quic_conn_close(w.server);
  w.server = NULL;
  qch_run_until(&w, some_time, 500);
  assert_int_equal(w.client_closed, 1);
  assert_int_not_equal(cstreams[1].error, 0);
  assert_true(quic_conn_is_dead(w.client));
  stream_close(cstreams[1].s);
  qch_wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static int dgrams_done(qch_wire *w) { return qch_dgrams_back == 50; }

static void test_datagrams(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  qch_wire_connect(&w);
  qch_run_until(&w, qch_both_established, 5000);
  uint8_t hdr[1] = {0x01}, data[99];
  memset(data, 7, sizeof data);
  for (int i = 0; i < 50; i++)
    assert_int_equal(quic_conn_send_datagram(w.client, hdr, 1, data, sizeof data), 0);
  /* too large for one packet: refused at once */
  uint8_t big[2000] = {0};
  assert_int_equal(quic_conn_send_datagram(w.client, hdr, 1, big, sizeof big), -1);
  qch_run_until(&w, dgrams_done, 3000);
  assert_int_equal(qch_dgrams_back, 50);
  qch_wire_end(&w);
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
  qch_wire w;
  qch_wire_init(&w, &loop);
  qch_wire_connect(&w);
  uv_run(&loop, UV_RUN_NOWAIT); /* the client's first write pass puts its Initial on the wire */
  assert_non_null(w.head);
  qch_pkt *k = w.head;
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
  qch_wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A server process that lost the connection (a restart) answers with a Stateless Reset whose
 * token comes from the same secret: the client's connection ends at once. */
static int captured(qch_wire *w) { return w->cap_len > 0; }

static void stateless_reset_run(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  qch_wire w;
  qch_wire_init(&w, &loop);
  static const uint8_t secret[32] = {1, 2, 3};
  w.opts.reset_secret = secret;
  w.opts.reset_secret_len = sizeof secret;
  qch_wire_connect(&w);
  qch_run_until(&w, qch_both_established, 5000);
  assert_true(quic_conn_is_established(w.client));
  w.capture = 1;
  uint8_t hdr[1] = {1}, data[100] = {0};
  quic_conn_send_datagram(w.client, hdr, 1, data, sizeof data);
  /* until it is sent, which pacing may put off by a timer: a fixed number of non-blocking turns
   * was not always enough on a loaded machine */
  qch_run_until(&w, captured, 2000);
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
  qch_wire_end(&w);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* With QUIC's own protection and with the tunnel's (whose tag check the reset must fail too). */
static void test_stateless_reset(void **state) {
  stateless_reset_run();
  qch_client_tunnel_protection = true;
  stateless_reset_run();
  qch_client_tunnel_protection = false;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake),
      cmocka_unit_test(test_echo_clean),
      cmocka_unit_test(test_echo_lossy),
      /* what made the lossy echo fail with awgproxy/2, every time */
      cmocka_unit_test(test_late_packet),
      cmocka_unit_test(test_echo_own_protection),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_connection_window_reopens),
      cmocka_unit_test(test_closed_streams_give_their_window_back),
      cmocka_unit_test(test_reset_and_close),
      cmocka_unit_test(test_datagrams),
      cmocka_unit_test(test_corrupt_initial_refused),
      cmocka_unit_test(test_stateless_reset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
