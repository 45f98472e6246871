/* The stream implementations under the contract suite, and its loop helpers
 * (stream_contract_impls.h). */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "stream_contract_impls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "device/ipstack.h"
#include "lwip/tcp.h"
#include "quic/quic_conn.h"
#include "stream/stream_lwip.h"
#include "stream/stream_pair.h"
#include "stream/stream_throttle.h"
#include "stream/stream_uv.h"
#include "util/tbucket.h"

uv_loop_t *sc_loop;
bool sc_wire_quiet;

static void on_tick(uv_timer_t *t) { (void)t; }

bool sc_run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(sc_loop, &tick);
  uv_timer_start(&tick, on_tick, 2, 2);
  uint64_t end = uv_now(sc_loop) + timeout_ms;
  bool ok;
  while (!(ok = cond(arg)) && uv_now(sc_loop) < end) uv_run(sc_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(sc_loop, UV_RUN_NOWAIT);
  return ok;
}

static bool never(void *arg) {
  (void)arg;
  return false;
}

void sc_run_for(uint64_t ms) { sc_run_until(never, NULL, ms); }

/* In memory. A close without shutdown is a reset. */
int sc_make_pair(uv_loop_t *l, stream **a, stream **b) { return stream_pair_new(l, 0, a, b); }
void sc_abort_close(stream *s) { stream_close(s); }

/* libuv TCP over 127.0.0.1: a listener for one accept, a client, both wrapped. */
typedef struct {
  uv_tcp_t listener;
  uv_connect_t creq;
  uv_tcp_t *client, *accepted;
  int connect_status;
  bool connected;
} uv_setup;

static void on_uv_conn(uv_stream_t *srv, int status) {
  uv_setup *u = srv->data;
  if (status < 0 || u->accepted) return;
  u->accepted = malloc(sizeof *u->accepted);
  assert_non_null(u->accepted);
  uv_tcp_init(sc_loop, u->accepted);
  assert_int_equal(uv_accept(srv, (uv_stream_t *)u->accepted), 0);
}

static void on_uv_connected(uv_connect_t *req, int status) {
  uv_setup *u = req->data;
  u->connect_status = status;
  u->connected = true;
}

static bool uv_ready(void *arg) {
  uv_setup *u = arg;
  return u->connected && u->accepted;
}

int sc_make_uv(uv_loop_t *l, stream **a, stream **b) {
  uv_setup u;
  memset(&u, 0, sizeof u);
  uv_tcp_init(l, &u.listener);
  u.listener.data = &u;
  struct sockaddr_in sin;
  uv_ip4_addr("127.0.0.1", 0, &sin);
  int rc = uv_tcp_bind(&u.listener, (struct sockaddr *)&sin, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&u.listener, 4, on_uv_conn);
  int len = sizeof sin;
  if (!rc) rc = uv_tcp_getsockname(&u.listener, (struct sockaddr *)&sin, &len);
  if (!rc) {
    u.client = malloc(sizeof *u.client);
    uv_tcp_init(l, u.client);
    u.creq.data = &u;
    rc = uv_tcp_connect(&u.creq, u.client, (struct sockaddr *)&sin, on_uv_connected);
  }
  if (!rc && !sc_run_until(uv_ready, &u, 5000)) rc = UV_ETIMEDOUT;
  if (!rc) rc = u.connect_status;
  uv_close((uv_handle_t *)&u.listener, NULL);
  uv_run(l, UV_RUN_NOWAIT);
  if (rc) return rc;
  uv_tcp_nodelay(u.client, 1);
  uv_tcp_nodelay(u.accepted, 1);
  *a = stream_uv_wrap(u.client);
  *b = stream_uv_wrap(u.accepted);
  return *a && *b ? 0 : UV_ENOMEM;
}

/* lwIP TCP: one stack (lwIP is process-wide) with the address 10.9.0.1, whose output is fed back
 * into its input from the sc_loop (never from inside lwIP's output call), so a connection to its
 * own address has two real lwIP endpoints, each with its own windows and queues. */
#define LWIP_PORT 7777
typedef struct pkt {
  struct pkt *next;
  size_t len;
  uint8_t data[];
} pkt;

static struct {
  ipstack *ip;
  struct tcp_pcb *listener;
  uv_idle_t feeder;
  pkt *head, **tail;
  stream *accepted, *connected;
  struct tcp_pcb *accepted_pcb;
  int connect_status;
  bool connect_done;
} lw;

static void feed(uv_idle_t *h) {
  (void)h;
  pkt *batch = lw.head; /* what lwIP sends while this batch goes in waits for the next turn */
  lw.head = NULL;
  lw.tail = &lw.head;
  while (batch) {
    pkt *p = batch;
    batch = p->next;
    ipstack_input(lw.ip, p->data, p->len);
    free(p);
  }
  if (!lw.head) uv_idle_stop(&lw.feeder);
}

static void lwip_out(void *ctx, const uint8_t *data, size_t len) {
  (void)ctx;
  if (sc_wire_quiet) return;
  pkt *p = malloc(sizeof *p + len);
  assert_non_null(p);
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  *lw.tail = p;
  lw.tail = &p->next;
  uv_idle_start(&lw.feeder, feed);
}

static err_t on_lwip_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  (void)arg;
  if (err != ERR_OK || !pcb) return ERR_VAL;
  lw.accepted = stream_lwip_wrap(sc_loop, pcb);
  lw.accepted_pcb = pcb;
  return lw.accepted ? ERR_OK : ERR_MEM;
}

static void on_lwip_connected(void *ctx, stream *s, int status) {
  (void)ctx;
  lw.connect_done = true;
  lw.connect_status = status;
  lw.connected = status == 0 ? s : NULL;
}

static bool lwip_ready(void *arg) {
  (void)arg;
  return lw.connect_done && (lw.accepted || lw.connect_status);
}

static const uint8_t LWIP_ADDR[4] = {10, 9, 0, 1};

static int lwip_setup_once(uv_loop_t *l) {
  if (lw.ip) return 0;
  cfg_cidr addr = {.family = AF_INET, .prefix = 24};
  memcpy(addr.addr, LWIP_ADDR, 4);
  char err[200];
  lw.tail = &lw.head;
  uv_idle_init(l, &lw.feeder);
  lw.ip = ipstack_create(l, &addr, 1, 1420, lwip_out, NULL, err, sizeof err);
  if (!lw.ip) return print_error("%s\n", err), -1;
  struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
  ip_addr_t ip;
  ipstack_ip_from_bytes(&ip, AF_INET, LWIP_ADDR);
  if (!pcb || tcp_bind(pcb, &ip, LWIP_PORT) != ERR_OK) return -1;
  lw.listener = tcp_listen_with_backlog(pcb, 8);
  if (!lw.listener) return -1;
  tcp_accept(lw.listener, on_lwip_accept);
  return 0;
}

int sc_make_lwip(uv_loop_t *l, stream **a, stream **b) {
  if (lwip_setup_once(l)) return -1;
  lw.accepted = lw.connected = NULL;
  lw.connect_done = false;
  lw.connect_status = 0;
  stream *s = stream_lwip_connect(l, NULL, AF_INET, LWIP_ADDR, LWIP_PORT, on_lwip_connected, NULL);
  if (!s) return UV_ENOMEM;
  if (!sc_run_until(lwip_ready, NULL, 5000)) return UV_ETIMEDOUT;
  if (lw.connect_status) return lw.connect_status;
  *a = lw.connected;
  *b = lw.accepted;
  return 0;
}

void sc_lwip_teardown(void) {
  if (!lw.ip) return;
  tcp_close(lw.listener);
  sc_run_for(50);
  ipstack_destroy(lw.ip);
  lw.ip = NULL;
  uv_close((uv_handle_t *)&lw.feeder, NULL);
  for (pkt *p = lw.head, *n; p; p = n) n = p->next, free(p);
  lw.head = NULL;
  uv_run(sc_loop, UV_RUN_NOWAIT);
}

struct tcp_pcb *sc_lwip_accepted_pcb(void) {
  return lw.accepted_pcb;
}

/* stream_throttle around both ends of a pair, sharing one bucket whose rate (64 MiB/s) the large
 * test exceeds, so reading pauses and resumes many times. */
static tbucket bucket;

int sc_make_throttled(uv_loop_t *l, stream **a, stream **b) {
  stream *pa, *pb;
  int rc = stream_pair_new(l, 0, &pa, &pb);
  if (rc) return rc;
  uint64_t rate = 64u * 1024 * 1024;
  tbucket_init(&bucket, rate, 256 * 1024, uv_hrtime() / 1000);
  stream_throttle_cfg cfg = {.bucket = &bucket};
  *a = stream_throttle_wrap(l, pa, &cfg);
  *b = stream_throttle_wrap(l, pb, &cfg);
  return *a && *b ? 0 : UV_ENOMEM;
}

/* QUIC streams (src/quic/stream_quic.c): one client and one server quic_conn on the sc_loop, kept
 * for the whole run like the lwIP stack, joined by an in-memory wire whose packets are handed over
 * from an idle handle (never from inside a send callback). A pair is a stream the client opens
 * and the server's new_stream for it. A QUIC stream is announced to the server only when its
 * first byte arrives, so the client writes one byte ahead of the test's data and the server end
 * takes it off with quic_stream_want_header (as the exit reads a request header); the test then
 * sees two clean ends. A close without shutdown is a RESET_STREAM. */
static void quic_server_cb(quic_conn_cb *cb);

static struct {
  quic_tls *ctls, *stls;
  quic_conn *client, *server;
  quic_conn_opts opts;
  quic_path_addrs cpath, spath;
  uv_idle_t feeder;
  pkt *head, **tail; /* each pkt's first data byte says where it goes: 1 server, 0 client */
  stream *announced; /* the server's newest stream, until make_quic takes it */
  bool preamble_read;
} qw;

static void quic_feed(uv_idle_t *h) {
  (void)h;
  pkt *batch = qw.head;
  qw.head = NULL;
  qw.tail = &qw.head;
  while (batch) {
    pkt *p = batch;
    batch = p->next;
    const uint8_t *d = p->data + 1;
    size_t n = p->len - 1;
    if (p->data[0] && !qw.server && quic_conn_acceptable(d, n)) {
      quic_conn_cb cb;
      quic_server_cb(&cb);
      char err[160];
      qw.server =
          quic_conn_server(sc_loop, qw.stls, &qw.opts, &cb, &qw.spath, d, n, err, sizeof err);
      assert_non_null(qw.server);
    } else if (p->data[0] && qw.server) {
      quic_conn_input(qw.server, d, n);
    } else if (!p->data[0] && qw.client) {
      quic_conn_input(qw.client, d, n);
    }
    free(p);
  }
  if (!qw.head) uv_idle_stop(&qw.feeder);
}

static void quic_push(int to_server, const quic_pkt *pk, size_t n) {
  if (sc_wire_quiet) return;
  for (size_t i = 0; i < n; i++) {
    pkt *p = malloc(sizeof *p + 1 + pk[i].len);
    assert_non_null(p);
    p->next = NULL;
    p->len = 1 + pk[i].len;
    p->data[0] = (uint8_t)to_server;
    memcpy(p->data + 1, pk[i].data, pk[i].len);
    *qw.tail = p;
    qw.tail = &p->next;
  }
  uv_idle_start(&qw.feeder, quic_feed);
}

static void quic_c_send(void *ctx, const quic_pkt *p, size_t n) {
  (void)ctx;
  quic_push(1, p, n);
}
static void quic_s_send(void *ctx, const quic_pkt *p, size_t n) {
  (void)ctx;
  quic_push(0, p, n);
}
static void quic_conn_gone(void *ctx, const char *reason) {
  (void)ctx;
  fail_msg("QUIC connection closed: %s", reason);
}

static void preamble_read(stream *s, const uint8_t *d, size_t n) {
  (void)s;
  assert_int_equal(n, 1);
  assert_int_equal(d[0], 0xA5);
  qw.preamble_read = true;
}
static void preamble_nop(stream *s) { (void)s; }
static void preamble_error(stream *s, int err) {
  (void)s;
  fail_msg("QUIC stream error %d before the test took it", err);
}

static void quic_new_stream(void *ctx, stream *s) {
  (void)ctx;
  assert_null(qw.announced);
  qw.announced = s;
  s->on_read = preamble_read;
  s->on_drain = s->on_shutdown = s->on_closed = preamble_nop;
  s->on_error = preamble_error;
  quic_stream_want_header(s, 1);
  stream_read_start(s);
}

static void quic_server_cb(quic_conn_cb *cb) {
  memset(cb, 0, sizeof *cb);
  cb->send = quic_s_send;
  cb->closed = quic_conn_gone;
  cb->new_stream = quic_new_stream;
}

static void quic_addr(struct sockaddr_storage *ss, uint32_t ip, uint16_t port) {
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(ip);
}

static int quic_setup_once(uv_loop_t *l) {
  if (qw.client) return 0;
  char err[160];
  qw.ctls = quic_tls_new(false, true, err, sizeof err);
  qw.stls = quic_tls_new(true, true, err, sizeof err);
  if (!qw.ctls || !qw.stls) return print_error("%s\n", err), -1;
  quic_conn_opts_default(&qw.opts);
  qw.opts.max_payload = 1360;
  quic_addr(&qw.cpath.local, 0x0a000002, 40000);
  quic_addr(&qw.cpath.remote, 0x0a000001, 443);
  qw.spath.local = qw.cpath.remote;
  qw.spath.remote = qw.cpath.local;
  qw.tail = &qw.head;
  uv_idle_init(l, &qw.feeder);
  quic_conn_cb cb = {.send = quic_c_send, .closed = quic_conn_gone};
  qw.client = quic_conn_client(l, qw.ctls, &qw.opts, &cb, &qw.cpath, err, sizeof err);
  if (!qw.client) return print_error("%s\n", err), -1;
  return 0;
}

static bool quic_announced(void *arg) {
  (void)arg;
  return qw.announced && qw.preamble_read;
}

int sc_make_quic(uv_loop_t *l, stream **a, stream **b) {
  if (quic_setup_once(l)) return -1;
  qw.announced = NULL;
  qw.preamble_read = false;
  stream *s = quic_conn_open_stream(qw.client);
  if (!s) return UV_ENOMEM;
  static const uint8_t preamble = 0xA5;
  s->on_read = preamble_read;
  s->on_drain = s->on_shutdown = s->on_closed = preamble_nop;
  s->on_error = preamble_error;
  if (stream_write(s, &preamble, 1)) return UV_EIO;
  if (!sc_run_until(quic_announced, NULL, 5000)) return UV_ETIMEDOUT;
  *a = s;
  *b = qw.announced;
  qw.announced = NULL;
  return 0;
}

void sc_quic_teardown(void) {
  if (!qw.client) return;
  quic_conn_close(qw.client);
  if (qw.server) quic_conn_close(qw.server);
  sc_run_for(20);
  uv_close((uv_handle_t *)&qw.feeder, NULL);
  for (pkt *p = qw.head, *n; p; p = n) n = p->next, free(p);
  qw.head = NULL;
  uv_run(sc_loop, UV_RUN_NOWAIT);
  quic_tls_free(qw.ctls);
  quic_tls_free(qw.stls);
  qw.client = qw.server = NULL;
}
