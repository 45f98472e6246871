/* The stream contract (src/stream/stream.h), checked the same way against every implementation:
 * read and write both ways, 4 MiB each way at once (hash-checked), backpressure (write_queued
 * past STREAM_HIGH_WATER while the reader is stopped, on_drain once it falls to
 * STREAM_LOW_WATER), half-close both ways, close (on_closed later from the loop, nothing after it)
 * and error delivery (a reset arrives once as on_error).
 *
 * Implementations covered (their factories: tests/unit/support/stream_contract_impls.h, which
 * says how to add one): stream_pair (in memory), stream_uv (libuv TCP over loopback),
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

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "lwip/tcp.h"
#include "stream/lwip_unsent_cap.h"
#include "stream/stream.h"
#include "stream_contract_impls.h"
#include "util/loop_turn.h"

static const stream_impl *impl; /* the one under test */

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
  assert_int_equal(impl->make(sc_loop, &sa, &sb), 0);
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
    assert_true(sc_run_until(has_closed, ends[i], 5000));
  }
  sc_run_for(20); /* anything late would show now */
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
  assert_true(sc_run_until(has_bytes, &wb, 5000));
  assert_int_equal(b.got, sizeof hello);
  assert_true(b.hash == fnv(FNV_OFFSET, hello, sizeof hello));
  static const uint8_t back[] = "and back";
  assert_int_equal(stream_write(b.s, back, sizeof back), 0);
  want_bytes wa = {&a, sizeof back};
  assert_true(sc_run_until(has_bytes, &wa, 5000));
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
  assert_true(sc_run_until(both_done, &t, 60000));
  assert_int_equal(a.errors + b.errors, 0);
  assert_int_equal(b.got, LARGE);
  assert_int_equal(a.got, LARGE);
  assert_true(b.hash == pattern_hash(0xA11CE, LARGE));
  assert_true(a.hash == pattern_hash(0xB0B, LARGE));
  assert_int_equal(a.eofs, 1);
  assert_int_equal(b.eofs, 1);
  assert_false(a.read_after_eof || b.read_after_eof);
  assert_true(sc_run_until(has_shutdown, &a, 5000));
  assert_true(sc_run_until(has_shutdown, &b, 5000));
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
    sc_run_for(100);
    if (stream_write_queued(a.s) > STREAM_HIGH_WATER || sent >= 64u * 1024 * 1024) break;
  }
  assert_true(stream_write_queued(a.s) > STREAM_HIGH_WATER);
  int drains = a.drains;
  sc_run_for(100);
  /* With b stopped nothing is delivered and a's queue stays up (a transport may still move a
   * little into b's buffers, e.g. lwIP's window probes, but not down to the low-water mark). */
  assert_true(stream_write_queued(a.s) > STREAM_LOW_WATER);
  assert_int_equal(a.drains, drains);
  assert_int_equal(b.got, 0);
  stream_read_start(b.s);
  want_bytes wb = {&b, sent};
  assert_true(sc_run_until(has_bytes, &wb, 30000));
  sc_run_for(20);
  assert_int_equal(b.got, sent);
  assert_true(b.hash == pattern_hash(7, sent));
  assert_int_equal(a.drains, drains + 1);
  assert_true(a.queued_at_drain <= STREAM_LOW_WATER);
  assert_int_equal(stream_write_queued(a.s), 0);
  /* A stop in the middle of a transfer holds it too, and a restart finishes it. */
  stream_read_stop(b.s);
  sc_run_for(10);
  size_t before = b.got;
  assert_int_equal(stream_write(a.s, buf, sizeof buf), 0);
  sc_run_for(50);
  assert_int_equal(b.got, before);
  stream_read_start(b.s);
  want_bytes wb2 = {&b, before + sizeof buf};
  assert_true(sc_run_until(has_bytes, &wb2, 5000));
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
  assert_true(sc_run_until(has_eof, &b, 5000));
  assert_int_equal(b.got, sizeof buf); /* every byte before the FIN, then EOF */
  assert_true(b.hash == pattern_hash(1, sizeof buf));
  assert_int_equal(b.eofs, 1);
  assert_true(sc_run_until(has_shutdown, &a, 5000));
  assert_int_equal(a.shutdowns, 1);
  /* b's direction is still open. */
  assert_int_equal(stream_write(b.s, buf, 5000), 0);
  want_bytes wa = {&a, 5000};
  assert_true(sc_run_until(has_bytes, &wa, 5000));
  assert_int_equal(a.eofs, 0);
  stream_shutdown(b.s);
  assert_true(sc_run_until(has_eof, &a, 5000));
  assert_int_equal(a.got, 5000);
  assert_true(sc_run_until(has_shutdown, &b, 5000));
  sc_run_for(20);
  assert_int_equal(a.eofs, 1);
  assert_int_equal(b.eofs, 1);
  assert_int_equal(a.shutdowns, 1);
  assert_int_equal(b.shutdowns, 1);
  assert_int_equal(a.errors + b.errors, 0);
  assert_false(a.read_after_eof || b.read_after_eof);
  close_pair(&a, &b);
}

/* close() ends a stream at once: on_closed runs later from the sc_loop, once, and nothing of that
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
  assert_true(sc_run_until(has_closed, &a, 5000));
  for (int i = 0; i < 5; i++) stream_write(b.s, buf, sizeof buf); /* may fail: a is gone */
  assert_true(sc_run_until(has_eof, &b, 5000));
  sc_run_for(50);
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
  assert_true(sc_run_until(has_bytes, &wa, 5000));
  impl->abort_(a.s);
  assert_true(sc_run_until(has_closed, &a, 5000));
  /* A reset may show up on b's next write rather than on its own: keep writing a little. */
  for (int i = 0; i < 100 && !b.errors; i++) {
    stream_write(b.s, buf, sizeof buf);
    sc_run_until(has_error, &b, 20);
  }
  assert_int_equal(b.errors, 1);
  assert_true(b.err < 0);
  sc_run_for(50);
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
  assert_true(sc_run_until(has_eof, &a, 5000));
  a.to_send = 600 * 1000;
  a.seed = 9;
  a.shut_when_sent = true;
  pump_writes(&a);
  assert_true(sc_run_until(has_shutdown, &a, 10000));
  close_rec(&a);
  if (impl->own_wire) {
    sc_wire_quiet = true;
    sc_run_for(4500);
    sc_wire_quiet = false;
  }
  assert_true(sc_run_until(has_eof, &b, 30000));
  assert_int_equal(b.errors, 0);
  assert_int_equal(b.got, a.to_send);
  assert_true(b.hash == pattern_hash(9, a.to_send));
  close_pair(&a, &b);
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
  sc_run_for(50); /* the handshake's last ACK is in: nothing in flight */
  sc_lwip_accepted_pcb()->cwnd = 1;
  uint8_t buf[100000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(3, i);
  assert_int_equal(stream_write(b.s, buf, sizeof buf), 0);
  want_bytes wa = {&a, sizeof buf};
  assert_true(sc_run_until(has_bytes, &wa, 3000));
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
  sc_run_for(50);
  enum { N = 1 << 20 };
  static uint8_t buf[N];
  for (size_t i = 0; i < N; i++) buf[i] = pattern(5, i);
  const struct tcp_pcb *pcb = sc_lwip_accepted_pcb();
  uint32_t wnd = pcb->cwnd < pcb->snd_wnd ? pcb->cwnd : pcb->snd_wnd;
  assert_true(wnd + LWIP_UNSENT_AHEAD < N / 2); /* else this cannot tell a cap from none */
  assert_int_equal(stream_write(b.s, buf, N), 0);
  uint32_t unsent = pcb->snd_lbb - pcb->snd_nxt, flight = pcb->snd_nxt - pcb->lastack;
  assert_true(unsent + flight <= wnd + LWIP_UNSENT_AHEAD);
  assert_true(stream_write_queued(b.s) >= N - (wnd + LWIP_UNSENT_AHEAD));
  want_bytes wa = {&a, N};
  assert_true(sc_run_until(has_bytes, &wa, 10000));
  assert_true(a.hash == pattern_hash(5, N));
  assert_int_equal(stream_write_queued(b.s), 0);
  close_pair(&a, &b);
}

int main(void) {
  static const stream_impl IMPLS[] = {
      {"stream_pair", sc_make_pair, sc_abort_close, false},
      {"stream_uv", sc_make_uv, sc_abort_close, false},
      {"stream_lwip", sc_make_lwip, sc_abort_close, true},
      {"stream_throttle(pair)", sc_make_throttled, sc_abort_close, false},
      {"stream_quic", sc_make_quic, sc_abort_close, true},
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
  sc_loop = uv_default_loop();
  loop_turn_start(sc_loop);
  int failed = 0;
  for (size_t i = 0; i < sizeof IMPLS / sizeof IMPLS[0]; i++) {
    impl = &IMPLS[i];
    failed += cmocka_run_group_tests_name(impl->name, tests, NULL, NULL);
    if (strcmp(impl->name, "stream_lwip") == 0)
      failed += cmocka_run_group_tests_name("stream_lwip internals", lwip_only, NULL, NULL);
  }
  sc_lwip_teardown();
  sc_quic_teardown();
  loop_turn_stop();
  uv_run(sc_loop, UV_RUN_DEFAULT);
  uv_loop_close(sc_loop);
  return failed;
}
