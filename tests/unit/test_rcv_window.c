/* The receive window's growth (src/stream/rcv_window.c): a reader that takes a whole window per
 * round trip doubles it each round trip up to the most; a slow reader or a slow path never grows
 * it (an accepted connection on a slow path: at most to twice its start); the instance's budget
 * bounds the growth; the round trip is timed from data to the byte a window beyond it, across
 * sequence wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stream/rcv_window.h"

#define MIB (1024u * 1024u)
#define START (2 * MIB)
#define MAX (6 * MIB)
#define RTT 150 /* ms: a server abroad */
#define STEPS 10

/* A receiver and its sender a round trip apart, in STEPS steps per round trip. At each step the
 * sender has sent up to the edge announced one round trip before (at most `rate` bytes a step:
 * the path), the application reads up to `reads` bytes, and the receiver announces what was read
 * plus its window. */
typedef struct {
  rcv_window w;
  uint32_t nxt, read, now, last_edge;
  uint32_t edges[STEPS]; /* announced one round trip ago, step by step */
  uint64_t budget, granted;
} path;

static void path_init(path *p, uint32_t nxt, uint32_t rtt_hint, uint64_t budget) {
  p->nxt = p->read = nxt;
  p->now = 1000;
  p->budget = budget;
  p->granted = 0;
  rcv_window_init(&p->w, START, rtt_hint);
  p->last_edge = nxt + START;
  for (int i = 0; i < STEPS; i++) p->edges[i] = p->last_edge;
}

static void round_trip(path *p, uint32_t rate, uint32_t reads) {
  for (int i = 0; i < STEPS; i++) {
    p->now += RTT / STEPS;
    int32_t can = (int32_t)(p->edges[i] - p->nxt);
    uint32_t n = can <= 0 ? 0 : (uint32_t)can < rate ? (uint32_t)can : rate;
    p->nxt += n;
    if (n) rcv_window_on_data(&p->w, p->nxt, p->now);
    uint32_t r = p->nxt - p->read < reads ? p->nxt - p->read : reads;
    p->read += r;
    uint32_t g = rcv_window_on_read(&p->w, r, MAX, p->budget, p->now);
    p->budget -= g;
    p->granted += g;
    p->last_edge = p->edges[i] = p->read + p->w.target;
  }
}

#define ANY UINT32_MAX

static void test_window_limited_reader_doubles_to_the_most(void **state) {
  (void)state;
  path p;
  path_init(&p, 12345, 0, UINT64_MAX); /* accepted: no handshake time */
  uint32_t seen[10];
  for (int r = 0; r < 10; r++) {
    round_trip(&p, ANY, ANY); /* the sender fills whatever window it has */
    seen[r] = p.w.target;
  }
  /* Timed from data to the byte a window beyond it: one round trip. */
  assert_int_equal(p.w.rtt_ms, RTT);
  assert_int_equal(p.w.target, MAX);
  assert_int_equal(p.granted, MAX - START);
  /* Grown by at most twice a round trip, not at once. */
  for (int r = 1; r < 10; r++) assert_true(seen[r] <= 2 * seen[r - 1]);
}

/* The path carries less than half the window per round trip: nothing to grow for. */
static void test_slow_path_never_grows(void **state) {
  (void)state;
  path p;
  path_init(&p, 0, RTT, UINT64_MAX); /* dialed: the handshake's round trip */
  for (int r = 0; r < 40; r++) round_trip(&p, 80 * 1024, ANY); /* 800 KB a round trip */
  assert_int_equal(p.w.target, START);
  /* 1.5 MB a round trip: the window follows, to twice that. */
  for (int r = 0; r < 40; r++) round_trip(&p, 150 * 1024, ANY);
  assert_in_range(p.w.target, 2 * 1500 * 1024 - 64 * 1024, 2 * 1536 * 1024);
}

/* Without a handshake time a slow path is timed long (the window takes several round trips to
 * fill): it may reach twice its start, never more. */
static void test_slow_path_accepted_grows_at_most_twice(void **state) {
  (void)state;
  path p;
  path_init(&p, 0, 0, UINT64_MAX);
  for (int r = 0; r < 60; r++) round_trip(&p, 30 * 1024, ANY); /* 300 KB a round trip */
  assert_true(p.w.target <= 2 * START + 64 * 1024);
}

/* The application reads 200 KB a round trip from a fast path: the window fills and stays nearly
 * closed; it never grows. */
static void test_slow_reader_never_grows(void **state) {
  (void)state;
  path p;
  path_init(&p, 0, RTT, UINT64_MAX);
  for (int r = 0; r < 40; r++) round_trip(&p, ANY, 20 * 1024);
  assert_int_equal(p.w.target, START);
  assert_int_equal(p.granted, 0);
}

static void test_budget_bounds_the_growth(void **state) {
  (void)state;
  path p;
  path_init(&p, 0, RTT, 512 * 1024);
  for (int r = 0; r < 10; r++) round_trip(&p, ANY, ANY);
  assert_int_equal(p.w.target, START + 512 * 1024);
  assert_int_equal(p.budget, 0);
  path_init(&p, 0, RTT, 0);
  for (int r = 0; r < 10; r++) round_trip(&p, ANY, ANY);
  assert_int_equal(p.w.target, START);
}

static void test_sequence_wrap(void **state) {
  (void)state;
  path p;
  path_init(&p, UINT32_MAX - 3 * MIB, 0, UINT64_MAX); /* wraps within the first rounds */
  for (int r = 0; r < 10; r++) round_trip(&p, ANY, ANY);
  assert_int_equal(p.w.rtt_ms, RTT);
  assert_int_equal(p.w.target, MAX);
}

/* Not managed (no window scaling): nothing is timed or grown. */
static void test_unmanaged_connection(void **state) {
  (void)state;
  rcv_window w = {0};
  rcv_window_on_data(&w, START, 1);
  rcv_window_on_data(&w, 2 * START, 2);
  assert_int_equal(rcv_window_on_read(&w, 100 * MIB, MAX, UINT64_MAX, 5000), 0);
  assert_int_equal(w.target, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_window_limited_reader_doubles_to_the_most),
      cmocka_unit_test(test_slow_path_never_grows),
      cmocka_unit_test(test_slow_path_accepted_grows_at_most_twice),
      cmocka_unit_test(test_slow_reader_never_grows),
      cmocka_unit_test(test_budget_bounds_the_growth),
      cmocka_unit_test(test_sequence_wrap),
      cmocka_unit_test(test_unmanaged_connection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
