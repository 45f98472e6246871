/* libFuzzer target for the server's QUIC endpoint (src/quic/quic_conn.c, stream_quic.c): what
 * a client inside the tunnel can send to QuicPort.
 *
 * Input: a sequence of datagrams, each a 2-byte big-endian length then that many bytes (a short
 * last one takes what is left). The first datagram goes through quic_conn_acceptable and, if it
 * is acceptable, starts a server connection (quic_conn_server); the following ones go to
 * quic_conn_input, the loop turning (UV_RUN_NOWAIT) after each so the end-of-turn write pass and
 * stream delivery run. Streams the peer opens are read and echoed, then everything is closed and
 * the loop run to completion every iteration (ASan's leak check sees a clean process). The raw
 * input also goes to quic_ip_parse_udp, whose answer is checked against the input's bounds.
 *
 * The seeds (fuzz/seeds/fuzz_quic_endpoint/) are real client Initials in this format, written by
 * tests/unit/test_quic_conn.c when QUIC_SEED_DIR is set. The server's TLS credentials (an
 * ECDSA key and certificate) are made once. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "quic/quic_conn.h"
#include "quic/quic_ip.h"
#include "util/loop_turn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define MAX_STREAMS 64

static quic_tls *server_tls;

static struct {
  stream *streams[MAX_STREAMS];
  size_t n_streams;
  size_t pkts_out;
} st;

static void on_send(void *ctx, const quic_pkt *p, size_t n) {
  (void)ctx;
  for (size_t i = 0; i < n; i++) CHECK(p[i].len > 0 && p[i].len <= 1360);
  st.pkts_out += n;
}
static void on_established(void *ctx) { (void)ctx; }
static void on_conn_closed(void *ctx, const char *reason) {
  (void)ctx;
  (void)reason;
}
static void on_datagram(void *ctx, const uint8_t *d, size_t n) {
  (void)ctx;
  (void)d;
  (void)n;
}

static void s_read(stream *s, const uint8_t *d, size_t n) {
  if (n)
    stream_write(s, d, n); /* echo: exercises the send side */
  else
    stream_shutdown(s);
}
static void s_nop(stream *s) { (void)s; }
static void s_error(stream *s, int err) {
  (void)s;
  (void)err;
}

static void on_new_stream(void *ctx, stream *s) {
  (void)ctx;
  s->on_read = s_read;
  s->on_drain = s_nop;
  s->on_shutdown = s_nop;
  s->on_closed = s_nop;
  s->on_error = s_error;
  if (st.n_streams == MAX_STREAMS) {
    stream_close(s);
    return;
  }
  st.streams[st.n_streams++] = s;
  stream_read_start(s);
}

static void addr4(struct sockaddr_storage *ss, uint32_t ip, uint16_t port) {
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(ip);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char err[160];
  server_tls = quic_tls_new(true, true, err, sizeof err);
  CHECK(server_tls);
  return 0;
}

static void check_parse_udp(const uint8_t *data, size_t size) {
  struct sockaddr_storage src, dst;
  const uint8_t *payload;
  size_t plen;
  if (!quic_ip_parse_udp(data, size, &src, &dst, &payload, &plen)) return;
  CHECK(payload >= data + 28 && payload + plen <= data + size);
  CHECK(src.ss_family == dst.ss_family);
  CHECK(src.ss_family == (data[0] >> 4 == 6 ? AF_INET6 : AF_INET));
}

/* The next datagram of the input: its bytes and length; false at the end. */
static bool next_dgram(const uint8_t **p, size_t *left, const uint8_t **d, size_t *n) {
  if (*left < 2) return false;
  size_t want = (size_t)(*p)[0] << 8 | (*p)[1];
  *p += 2, *left -= 2;
  *n = want < *left ? want : *left;
  *d = *p;
  *p += *n, *left -= *n;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_parse_udp(data, size);
  const uint8_t *p = data, *d;
  size_t left = size, n;
  if (!next_dgram(&p, &left, &d, &n)) return 0;
  /* Each datagram in its own exact-size allocation: ASan sees any read past its end. */
  uint8_t *first = malloc(n ? n : 1);
  CHECK(first);
  memcpy(first, d, n);
  bool acceptable = quic_conn_acceptable(first, n);
  if (!acceptable) {
    free(first);
    return 0;
  }
  memset(&st, 0, sizeof st);
  uv_loop_t loop;
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(loop_turn_start(&loop) == 0);
  quic_conn_opts o;
  quic_conn_opts_default(&o);
  o.max_payload = 1360;
  o.headroom = QUIC_IP_HEADROOM;
  quic_conn_cb cb = {.send = on_send,
                     .established = on_established,
                     .closed = on_conn_closed,
                     .new_stream = on_new_stream,
                     .datagram = on_datagram};
  quic_path_addrs path;
  addr4(&path.local, 0x0a000001, 443);
  addr4(&path.remote, 0x0a000002, 40000);
  char err[160];
  quic_conn *c = quic_conn_server(&loop, server_tls, &o, &cb, &path, first, n, err, sizeof err);
  free(first);
  if (c) {
    uv_run(&loop, UV_RUN_NOWAIT);
    while (next_dgram(&p, &left, &d, &n)) {
      uint8_t *pkt = malloc(n ? n : 1);
      CHECK(pkt);
      memcpy(pkt, d, n);
      quic_conn_input(c, pkt, n);
      free(pkt);
      uv_run(&loop, UV_RUN_NOWAIT);
    }
    quic_conn_close(c);
    for (size_t i = 0; i < st.n_streams; i++) stream_close(st.streams[i]);
  }
  for (int i = 0; i < 3; i++) uv_run(&loop, UV_RUN_NOWAIT);
  loop_turn_stop();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  return 0;
}
