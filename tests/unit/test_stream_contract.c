/* The stream contract (src/stream/stream.h), checked the same way against every implementation:
 * read and write both ways, 4 MiB each way at once (hash-checked), backpressure (write_queued
 * past STREAM_HIGH_WATER while the reader is stopped, on_drain once it falls to
 * STREAM_LOW_WATER), half-close both ways, close (on_closed later from the loop, nothing after it)
 * and error delivery (a reset arrives once as on_error).
 *
 * ADDING AN IMPLEMENTATION (e.g. QUIC streams): write one factory
 *     static int make_x(uv_loop_t *loop, stream **a, stream **b);
 * that returns two connected streams (running `loop` as long as it needs, e.g. with run_until),
 * and one
 *     static void abort_x(stream *s);
 * that ends s so that its peer sees a failure (a reset: TCP RST, QUIC RESET_STREAM) and s's
 * on_closed still runs; then add {"x", make_x, abort_x} to IMPLS in main(). Every test below runs
 * against it. A factory may keep process-wide state (lwIP: one stack per process).
 *
 * Implementations covered: stream_pair (in memory), stream_uv (libuv TCP over loopback),
 * stream_lwip (two lwIP TCP endpoints on one stack whose output is fed back into its input),
 * stream_throttle wrapped around a pair, and stream_quic (a client and a server QUIC connection
 * over an in-memory wire). */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

#include "device/ipstack.h"
#include "lwip/tcp.h"
#include "quic/quic_conn.h"
#include "stream/stream.h"
#include "stream/lwip_unsent_cap.h"
#include "stream/stream_lwip.h"
#include "stream/stream_pair.h"
#include "stream/stream_throttle.h"
#include "stream/stream_uv.h"
#include "util/loop_turn.h"
#include "util/tbucket.h"

typedef struct {
  const char *name;
  int (*make)(uv_loop_t *loop, stream **a, stream **b);
  void (*abort_)(stream *s);
  bool own_wire; /* its packets cross the test's own wire, which can be made to go quiet */
} stream_impl;

static const stream_impl *impl; /* the one under test */
static uv_loop_t *loop;
static bool wire_quiet; /* the lwIP and QUIC test wires drop everything while set */

/* ---- running the loop ------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until cond(arg) holds or timeout_ms pass (a 2 ms tick keeps uv_run returning
 * while sockets are idle). Returns cond's final answer. */
static bool run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 2, 2);
  uint64_t end = uv_now(loop) + timeout_ms;
  bool ok;
  while (!(ok = cond(arg)) && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

static bool never(void *arg) {
  (void)arg;
  return false;
}

/* Lets the loop run for ms without waiting for anything in particular. */
static void run_for(uint64_t ms) { run_until(never, NULL, ms); }

/* ---- one end under observation ---------------------------------------------------------- */

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
  return h;
}

/* The i-th byte of the test stream seeded with seed: position-dependent, so a lost, duplicated or
 * reordered chunk changes the hash. */
static uint8_t pattern(uint32_t seed, size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u ^ seed;
  x ^= x >> 15;
  return (uint8_t)(x ^ (uint32_t)(i >> 12));
}

typedef struct {
  stream *s;
  const char *who;
  size_t got;    /* bytes read */
  uint64_t hash; /* FNV-1a of them */
  int eofs, errors, err, drains, shutdowns, closeds;
  bool late_callback;  /* anything after on_closed */
  bool read_after_eof; /* data after EOF */
  size_t queued_at_drain;
  bool in_close; /* inside stream_close: on_closed must not run now */
  bool closed_inside_close;
  /* Writing side of the large transfer. */
  size_t to_send, sent;
  uint32_t seed;
  bool shut_when_sent;
} end_rec;

static void rec_on_read(stream *s, const uint8_t *data, size_t len) {
  end_rec *r = s->user;
  if (r->closeds) r->late_callback = true;
  if (!len) {
    r->eofs++;
    return;
  }
  if (r->eofs) r->read_after_eof = true;
  r->hash = fnv(r->hash, data, len);
  r->got += len;
}

static void pump_writes(end_rec *r);

static void rec_on_drain(stream *s) {
  end_rec *r = s->user;
  if (r->closeds) r->late_callback = true;
  r->drains++;
  r->queued_at_drain = stream_write_queued(s);
  pump_writes(r);
}

static void rec_on_shutdown(stream *s) {
  end_rec *r = s->user;
  if (r->closeds) r->late_callback = true;
  r->shutdowns++;
}

static void rec_on_error(stream *s, int err) {
  end_rec *r = s->user;
  if (r->closeds) r->late_callback = true;
  r->errors++;
  r->err = err;
}

static void rec_on_closed(stream *s) {
  end_rec *r = s->user;
  if (r->closeds) r->late_callback = true;
  if (r->in_close) r->closed_inside_close = true;
  r->closeds++;
}

static void watch(end_rec *r, stream *s, const char *who) {
  memset(r, 0, sizeof *r);
  r->s = s;
  r->who = who;
  r->hash = FNV_OFFSET;
  s->user = r;
  s->on_read = rec_on_read;
  s->on_drain = rec_on_drain;
  s->on_shutdown = rec_on_shutdown;
  s->on_error = rec_on_error;
  s->on_closed = rec_on_closed;
}

static void close_rec(end_rec *r) {
  r->in_close = true;
  stream_close(r->s);
  r->in_close = false;
}

/* Writes the pattern while write_queued stays at or below the high-water mark, the way a relay
 * does; on_drain resumes it. Shuts down after the last byte when asked to. */
#define WRITE_PIECE 24576
static void pump_writes(end_rec *r) {
  uint8_t buf[WRITE_PIECE];
  while (r->sent < r->to_send && stream_write_queued(r->s) <= STREAM_HIGH_WATER) {
    size_t n = r->to_send - r->sent < sizeof buf ? r->to_send - r->sent : sizeof buf;
    for (size_t i = 0; i < n; i++) buf[i] = pattern(r->seed, r->sent + i);
    assert_int_equal(stream_write(r->s, buf, n), 0);
    r->sent += n;
  }
  if (r->sent == r->to_send && r->shut_when_sent) {
    r->shut_when_sent = false;
    stream_shutdown(r->s);
  }
}

static uint64_t pattern_hash(uint32_t seed, size_t n) {
  uint64_t h = FNV_OFFSET;
  for (size_t i = 0; i < n; i++) h = (h ^ pattern(seed, i)) * FNV_PRIME;
  return h;
}

typedef struct {
  end_rec *r;
  size_t n;
} want_bytes;

static bool has_bytes(void *arg) {
  want_bytes *w = arg;
  return w->r->got >= w->n || w->r->errors;
}
static bool has_eof(void *arg) { return ((end_rec *)arg)->eofs || ((end_rec *)arg)->errors; }
static bool has_error(void *arg) { return ((end_rec *)arg)->errors > 0; }
static bool has_closed(void *arg) { return ((end_rec *)arg)->closeds > 0; }
static bool has_shutdown(void *arg) { return ((end_rec *)arg)->shutdowns > 0; }

/* Connects a new pair of streams of the implementation under test. */
static void open_pair(end_rec *a, end_rec *b) {
  stream *sa = NULL, *sb = NULL;
  assert_int_equal(impl->make(loop, &sa, &sb), 0);
  assert_non_null(sa);
  assert_non_null(sb);
  watch(a, sa, "a");
  watch(b, sb, "b");
}

/* Closes both (if still open) and checks each on_closed ran once, later, and last. */
static void close_pair(end_rec *a, end_rec *b) {
  end_rec *ends[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    if (ends[i]->closeds) continue;
    close_rec(ends[i]);
    assert_false(ends[i]->closed_inside_close);
  }
  for (int i = 0; i < 2; i++) {
    assert_true(run_until(has_closed, ends[i], 5000));
  }
  run_for(20); /* anything late would show now */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(ends[i]->closeds, 1);
    assert_false(ends[i]->late_callback);
    assert_false(ends[i]->closed_inside_close);
  }
}

/* ---- the tests -------------------------------------------------------------------------- */

static void test_read_write(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  static const uint8_t hello[] = "hello, far side";
  assert_int_equal(stream_write(a.s, hello, sizeof hello), 0);
  assert_int_equal(stream_write(a.s, hello, 0), 0); /* empty writes are fine */
  want_bytes wb = {&b, sizeof hello};
  assert_true(run_until(has_bytes, &wb, 5000));
  assert_int_equal(b.got, sizeof hello);
  assert_true(b.hash == fnv(FNV_OFFSET, hello, sizeof hello));
  static const uint8_t back[] = "and back";
  assert_int_equal(stream_write(b.s, back, sizeof back), 0);
  want_bytes wa = {&a, sizeof back};
  assert_true(run_until(has_bytes, &wa, 5000));
  assert_true(a.hash == fnv(FNV_OFFSET, back, sizeof back));
  assert_int_equal(a.errors + b.errors + a.eofs + b.eofs, 0);
  close_pair(&a, &b);
}

/* 4 MiB each way at the same time, written relay-style (stop above the high-water mark, resume on
 * on_drain), then EOF: every byte arrives once and in order, and nothing is left queued. */
#define LARGE (4u * 1024 * 1024)
typedef struct {
  end_rec *a, *b;
} two;
static bool both_done(void *arg) {
  two *t = arg;
  return (t->a->eofs && t->b->eofs) || t->a->errors || t->b->errors;
}

static void test_large_both_ways(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  a.to_send = b.to_send = LARGE;
  a.seed = 0xA11CE, b.seed = 0xB0B;
  a.shut_when_sent = b.shut_when_sent = true;
  stream_read_start(a.s);
  stream_read_start(b.s);
  pump_writes(&a);
  pump_writes(&b);
  two t = {&a, &b};
  assert_true(run_until(both_done, &t, 60000));
  assert_int_equal(a.errors + b.errors, 0);
  assert_int_equal(b.got, LARGE);
  assert_int_equal(a.got, LARGE);
  assert_true(b.hash == pattern_hash(0xA11CE, LARGE));
  assert_true(a.hash == pattern_hash(0xB0B, LARGE));
  assert_int_equal(a.eofs, 1);
  assert_int_equal(b.eofs, 1);
  assert_false(a.read_after_eof || b.read_after_eof);
  assert_true(run_until(has_shutdown, &a, 5000));
  assert_true(run_until(has_shutdown, &b, 5000));
  assert_int_equal(stream_write_queued(a.s), 0);
  assert_int_equal(stream_write_queued(b.s), 0);
  close_pair(&a, &b);
}

/* The reader stops: once the transport's own buffers are full, the writer's queue stays past
 * the high-water mark and no on_drain comes while the reader is stopped. Reading again drains
 * it: on_drain fires once, with the queue at or below the low-water mark, and every byte
 * arrives. */
static void test_backpressure(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  /* b never started reading. Write until a's own queue is over the mark and stays there once the
   * transport has moved what it can (its buffers in between hold a bounded amount; 64 MiB is far
   * beyond any of them). The transport may drain a's queue meanwhile (on_drain is then right). */
  uint8_t buf[WRITE_PIECE];
  size_t sent = 0;
  for (;;) {
    while (stream_write_queued(a.s) <= STREAM_HIGH_WATER && sent < 64u * 1024 * 1024) {
      for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(7, sent + i);
      assert_int_equal(stream_write(a.s, buf, sizeof buf), 0);
      sent += sizeof buf;
    }
    run_for(100);
    if (stream_write_queued(a.s) > STREAM_HIGH_WATER || sent >= 64u * 1024 * 1024) break;
  }
  assert_true(stream_write_queued(a.s) > STREAM_HIGH_WATER);
  int drains = a.drains;
  run_for(100);
  /* With b stopped nothing is delivered and a's queue stays up (a transport may still move a
   * little into b's buffers, e.g. lwIP's window probes, but not down to the low-water mark). */
  assert_true(stream_write_queued(a.s) > STREAM_LOW_WATER);
  assert_int_equal(a.drains, drains);
  assert_int_equal(b.got, 0);
  stream_read_start(b.s);
  want_bytes wb = {&b, sent};
  assert_true(run_until(has_bytes, &wb, 30000));
  run_for(20);
  assert_int_equal(b.got, sent);
  assert_true(b.hash == pattern_hash(7, sent));
  assert_int_equal(a.drains, drains + 1);
  assert_true(a.queued_at_drain <= STREAM_LOW_WATER);
  assert_int_equal(stream_write_queued(a.s), 0);
  /* A stop in the middle of a transfer holds it too, and a restart finishes it. */
  stream_read_stop(b.s);
  run_for(10);
  size_t before = b.got;
  assert_int_equal(stream_write(a.s, buf, sizeof buf), 0);
  run_for(50);
  assert_int_equal(b.got, before);
  stream_read_start(b.s);
  want_bytes wb2 = {&b, before + sizeof buf};
  assert_true(run_until(has_bytes, &wb2, 5000));
  assert_int_equal(a.errors + b.errors, 0);
  close_pair(&a, &b);
}

/* Half-close both ways: a says all it has and shuts down; b reads all of it then EOF, and can
 * still talk back; then b shuts down and a reads b's bytes then EOF. Writing after shutdown is an
 * error. */
static void test_shutdown(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  uint8_t buf[100000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(1, i);
  assert_int_equal(stream_write(a.s, buf, sizeof buf), 0);
  stream_shutdown(a.s);
  assert_true(stream_write(a.s, buf, 1) < 0);
  assert_true(run_until(has_eof, &b, 5000));
  assert_int_equal(b.got, sizeof buf); /* every byte before the FIN, then EOF */
  assert_true(b.hash == pattern_hash(1, sizeof buf));
  assert_int_equal(b.eofs, 1);
  assert_true(run_until(has_shutdown, &a, 5000));
  assert_int_equal(a.shutdowns, 1);
  /* b's direction is still open. */
  assert_int_equal(stream_write(b.s, buf, 5000), 0);
  want_bytes wa = {&a, 5000};
  assert_true(run_until(has_bytes, &wa, 5000));
  assert_int_equal(a.eofs, 0);
  stream_shutdown(b.s);
  assert_true(run_until(has_eof, &a, 5000));
  assert_int_equal(a.got, 5000);
  assert_true(run_until(has_shutdown, &b, 5000));
  run_for(20);
  assert_int_equal(a.eofs, 1);
  assert_int_equal(b.eofs, 1);
  assert_int_equal(a.shutdowns, 1);
  assert_int_equal(b.shutdowns, 1);
  assert_int_equal(a.errors + b.errors, 0);
  assert_false(a.read_after_eof || b.read_after_eof);
  close_pair(&a, &b);
}

/* close() ends a stream at once: on_closed runs later from the loop, once, and nothing of that
 * stream is called after it even though its peer keeps writing. The peer then sees the end (EOF
 * or an error) and closes in turn. */
static void test_close(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  uint8_t buf[200000];
  memset(buf, 0x5a, sizeof buf);
  assert_int_equal(stream_write(b.s, buf, sizeof buf), 0); /* in flight towards a */
  assert_int_equal(stream_write(a.s, buf, sizeof buf), 0); /* and from it */
  close_rec(&a);
  assert_int_equal(a.closeds, 0);
  assert_false(a.closed_inside_close);
  assert_true(run_until(has_closed, &a, 5000));
  for (int i = 0; i < 5; i++) stream_write(b.s, buf, sizeof buf); /* may fail: a is gone */
  assert_true(run_until(has_eof, &b, 5000));
  run_for(50);
  assert_int_equal(a.closeds, 1);
  assert_false(a.late_callback);
  close_pair(&a, &b);
}

/* A transport failure (a reset) reaches the peer once as on_error with a negative code; after the
 * owner closes, on_closed runs once and nothing else follows. */
static void test_error(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  uint8_t buf[1000];
  memset(buf, 1, sizeof buf);
  assert_int_equal(stream_write(b.s, buf, sizeof buf), 0);
  want_bytes wa = {&a, sizeof buf};
  assert_true(run_until(has_bytes, &wa, 5000));
  impl->abort_(a.s);
  assert_true(run_until(has_closed, &a, 5000));
  /* A reset may show up on b's next write rather than on its own: keep writing a little. */
  for (int i = 0; i < 100 && !b.errors; i++) {
    stream_write(b.s, buf, sizeof buf);
    run_until(has_error, &b, 20);
  }
  assert_int_equal(b.errors, 1);
  assert_true(b.err < 0);
  run_for(50);
  assert_int_equal(b.errors, 1);
  close_pair(&a, &b);
  assert_int_equal(a.errors, 0); /* a was closed by its owner: it hears nothing */
}

/* How a relay ends a stream: the peer has shut down, this end shuts down after its last bytes
 * and closes as soon as on_shutdown says they are handed over, while they may still be on their
 * way. The peer still reads every byte and a clean EOF. Where the implementation has a wire of
 * its own (lwIP, QUIC) it also goes quiet for 4.5 s right after the close (longer than the 2 MSL
 * after which lwIP drops a closed connection in LAST_ACK that hears nothing), and the data still
 * arrives once the wire is back. */
static void test_close_after_shutdown(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  stream_shutdown(b.s);
  assert_true(run_until(has_eof, &a, 5000));
  a.to_send = 600 * 1000;
  a.seed = 9;
  a.shut_when_sent = true;
  pump_writes(&a);
  assert_true(run_until(has_shutdown, &a, 10000));
  close_rec(&a);
  if (impl->own_wire) {
    wire_quiet = true;
    run_for(4500);
    wire_quiet = false;
  }
  assert_true(run_until(has_eof, &b, 30000));
  assert_int_equal(b.errors, 0);
  assert_int_equal(b.got, a.to_send);
  assert_true(b.hash == pattern_hash(9, a.to_send));
  close_pair(&a, &b);
}

/* ---- implementations -------------------------------------------------------------------- */

/* In memory. A close without shutdown is a reset. */
static int make_pair(uv_loop_t *l, stream **a, stream **b) { return stream_pair_new(l, 0, a, b); }
static void abort_close(stream *s) { stream_close(s); }

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
  uv_tcp_init(loop, u->accepted);
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

static int make_uv(uv_loop_t *l, stream **a, stream **b) {
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
  if (!rc && !run_until(uv_ready, &u, 5000)) rc = UV_ETIMEDOUT;
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
 * into its input from the loop (never from inside lwIP's output call), so a connection to its own
 * address has two real lwIP endpoints, each with its own windows and queues. */
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
  if (wire_quiet) return;
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
  lw.accepted = stream_lwip_wrap(loop, pcb);
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

static int make_lwip(uv_loop_t *l, stream **a, stream **b) {
  if (lwip_setup_once(l)) return -1;
  lw.accepted = lw.connected = NULL;
  lw.connect_done = false;
  lw.connect_status = 0;
  stream *s = stream_lwip_connect(l, NULL, AF_INET, LWIP_ADDR, LWIP_PORT, on_lwip_connected, NULL);
  if (!s) return UV_ENOMEM;
  if (!run_until(lwip_ready, NULL, 5000)) return UV_ETIMEDOUT;
  if (lw.connect_status) return lw.connect_status;
  *a = lw.connected;
  *b = lw.accepted;
  return 0;
}

static void lwip_teardown(void) {
  if (!lw.ip) return;
  tcp_close(lw.listener);
  run_for(50);
  ipstack_destroy(lw.ip);
  lw.ip = NULL;
  uv_close((uv_handle_t *)&lw.feeder, NULL);
  for (pkt *p = lw.head, *n; p; p = n) n = p->next, free(p);
  lw.head = NULL;
  uv_run(loop, UV_RUN_NOWAIT);
}

/* stream_throttle around both ends of a pair, sharing one bucket whose rate (64 MiB/s) the large
 * test exceeds, so reading pauses and resumes many times. */
static tbucket bucket;

static int make_throttled(uv_loop_t *l, stream **a, stream **b) {
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

/* QUIC streams (src/quic/stream_quic.c): one client and one server quic_conn on the loop, kept for
 * the whole run like the lwIP stack, joined by an in-memory wire whose packets are handed over
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
      qw.server = quic_conn_server(loop, qw.stls, &qw.opts, &cb, &qw.spath, d, n, err, sizeof err);
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
  if (wire_quiet) return;
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

static int make_quic(uv_loop_t *l, stream **a, stream **b) {
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
  if (!run_until(quic_announced, NULL, 5000)) return UV_ETIMEDOUT;
  *a = s;
  *b = qw.announced;
  qw.announced = NULL;
  return 0;
}

static void quic_teardown(void) {
  if (!qw.client) return;
  quic_conn_close(qw.client);
  if (qw.server) quic_conn_close(qw.server);
  run_for(20);
  uv_close((uv_handle_t *)&qw.feeder, NULL);
  for (pkt *p = qw.head, *n; p; p = n) n = p->next, free(p);
  qw.head = NULL;
  uv_run(loop, UV_RUN_NOWAIT);
  quic_tls_free(qw.ctls);
  quic_tls_free(qw.stls);
  qw.client = qw.server = NULL;
}

/* lwIP only: a sender whose window went below one segment with nothing in flight starts no
 * timer in lwIP, so without a wake-up of its own the stream would wait for the peer to send
 * something. stream_lwip's poll pushes it again within a fraction of a second. */
static void test_lwip_send_resumes_when_idle(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  run_for(50); /* the handshake's last ACK is in: nothing in flight */
  lw.accepted_pcb->cwnd = 1;
  uint8_t buf[100000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(3, i);
  assert_int_equal(stream_write(b.s, buf, sizeof buf), 0);
  want_bytes wa = {&a, sizeof buf};
  assert_true(run_until(has_bytes, &wa, 3000));
  assert_true(a.hash == pattern_hash(3, sizeof buf));
  close_pair(&a, &b);
}

/* lwIP only: a large write does not fill lwIP's unsent queue to its send buffer (each tcp_write
 * walks that queue, see lwip_unsent_cap.h): lwIP holds at most the open window plus
 * LWIP_UNSENT_AHEAD unsent, the stream keeps the rest queued, and ACKs feed it all through. */
static void test_lwip_unsent_held_near_window(void **state) {
  (void)state;
  end_rec a, b;
  open_pair(&a, &b);
  stream_read_start(a.s);
  stream_read_start(b.s);
  run_for(50);
  enum { N = 1 << 20 };
  static uint8_t buf[N];
  for (size_t i = 0; i < N; i++) buf[i] = pattern(5, i);
  const struct tcp_pcb *pcb = lw.accepted_pcb;
  uint32_t wnd = pcb->cwnd < pcb->snd_wnd ? pcb->cwnd : pcb->snd_wnd;
  assert_true(wnd + LWIP_UNSENT_AHEAD < N / 2); /* else this cannot tell a cap from none */
  assert_int_equal(stream_write(b.s, buf, N), 0);
  uint32_t unsent = pcb->snd_lbb - pcb->snd_nxt, flight = pcb->snd_nxt - pcb->lastack;
  assert_true(unsent + flight <= wnd + LWIP_UNSENT_AHEAD);
  assert_true(stream_write_queued(b.s) >= N - (wnd + LWIP_UNSENT_AHEAD));
  want_bytes wa = {&a, N};
  assert_true(run_until(has_bytes, &wa, 10000));
  assert_true(a.hash == pattern_hash(5, N));
  assert_int_equal(stream_write_queued(b.s), 0);
  close_pair(&a, &b);
}

int main(void) {
  static const stream_impl IMPLS[] = {
      {"stream_pair", make_pair, abort_close, false},
      {"stream_uv", make_uv, abort_close, false},
      {"stream_lwip", make_lwip, abort_close, true},
      {"stream_throttle(pair)", make_throttled, abort_close, false},
      {"stream_quic", make_quic, abort_close, true},
  };
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_write),
      cmocka_unit_test(test_large_both_ways),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_shutdown),
      cmocka_unit_test(test_close),
      cmocka_unit_test(test_error),
      cmocka_unit_test(test_close_after_shutdown),
  };
  const struct CMUnitTest lwip_only[] = {cmocka_unit_test(test_lwip_send_resumes_when_idle),
                                         cmocka_unit_test(test_lwip_unsent_held_near_window)};
  signal(SIGPIPE, SIG_IGN); /* writes to a reset socket: an error, as in the daemon */
  loop = uv_default_loop();
  loop_turn_start(loop);
  int failed = 0;
  for (size_t i = 0; i < sizeof IMPLS / sizeof IMPLS[0]; i++) {
    impl = &IMPLS[i];
    failed += cmocka_run_group_tests_name(impl->name, tests, NULL, NULL);
    if (strcmp(impl->name, "stream_lwip") == 0)
      failed += cmocka_run_group_tests_name("stream_lwip internals", lwip_only, NULL, NULL);
  }
  lwip_teardown();
  quic_teardown();
  loop_turn_stop();
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return failed;
}
