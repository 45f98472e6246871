/* The window floor's model (src/device/tcp_bw_floor.c): the floor is twice the best delivery
 * rate of the last BW_ROUNDS rounds times the lowest RTT; it ignores a round of loss (no drop),
 * follows a real rate drop once the old rounds age out, and needs an RTT sample to say
 * anything; a queue in front of the sender (not one on the ACKs' way back) turns it off and
 * shrinks the window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device/tcp_bw_floor.h"

#define MSS 1328

/* Feeds `ms` milliseconds of ACKs at `bytes_per_ms`, one ACK per ms with an RTT sample of rtt;
 * returns the last floor. */
static uint32_t run(tcp_bw_model *m, uint32_t *now, uint32_t ms, uint32_t bytes_per_ms,
                    uint32_t rtt) {
  uint32_t floor = 0;
  for (uint32_t i = 0; i < ms; i++) {
    (*now)++;
    floor = tcp_bw_floor_update(m, bytes_per_ms, rtt, *now * 1000u, MSS);
  }
  return floor;
}

static void test_nothing_without_rtt(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  for (uint32_t t = 1; t < 100; t++)
    assert_int_equal(tcp_bw_floor_update(&m, 10000, UINT32_MAX, t * 1000u, MSS), 0);
}

static void test_floor_is_twice_bdp(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  /* 10 MB/s = 10000 bytes per ms, RTT 10 ms: BDP 100 kB, floor 200 kB */
  uint32_t floor = run(&m, &now, 200, 10000, 10);
  assert_in_range(floor, 190000, 210000);
}

static void test_loss_round_does_not_lower_it(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  uint32_t before = run(&m, &now, 200, 10000, 10);
  /* two rounds in loss recovery: the cumulative ACK stands still */
  uint32_t during = run(&m, &now, 20, 0, UINT32_MAX);
  assert_int_equal(during, before);
}

static void test_follows_a_real_drop(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  run(&m, &now, 200, 10000, 10);
  /* the bottleneck now gives 1 MB/s: after BW_ROUNDS rounds the old rate is forgotten */
  uint32_t floor = run(&m, &now, (BW_ROUNDS + 2) * 10, 1000, 10);
  assert_in_range(floor, 19000, 21000);
}

static void test_min_rtt_and_its_window(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  run(&m, &now, 100, 10000, 10);
  /* jitter: RTT samples of 24 ms (under 10 + 15) do not raise the floor's RTT within the
   * window */
  uint32_t floor = run(&m, &now, 100, 10000, 24);
  assert_in_range(floor, 190000, 210000);
  /* after BW_MIN_RTT_WINDOW_MS without a lower sample, the newer RTT takes over */
  floor = run(&m, &now, BW_MIN_RTT_WINDOW_MS + 100, 10000, 24);
  assert_in_range(floor, 460000, 500000);
}

/* A standing queue (every RTT sample of a round 30 ms above a 10 ms path): no floor, so that
 * lwIP's own window answers the queue's losses; once a round drains, the floor is back, unless
 * the tunnel has judged losses on the path congestion (then not while that verdict holds). */
static void test_standing_queue_turns_it_off(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  assert_in_range(run(&m, &now, 200, 10000, 10), 190000, 210000);
  assert_int_equal(run(&m, &now, 30, 10000, 40), 0);
  assert_true(m.queued);
  /* one quiet sample per round is enough: the queue is not standing */
  uint32_t floor = 0;
  for (int i = 0; i < 50; i++) {
    now++;
    floor = tcp_bw_floor_update(&m, 10000, i % 10 == 0 ? 11 : 40, now * 1000u, MSS);
  }
  assert_false(m.queued);
  assert_in_range(floor, 190000, 210000);
  /* a round without RTT samples keeps the last verdict */
  assert_int_equal(run(&m, &now, 30, 10000, 40), 0);
  assert_int_equal(run(&m, &now, 30, 10000, UINT32_MAX), 0);
  assert_true(m.queued);
  /* the tunnel's congestion verdict: no floor even on a quiet path */
  m.congested = 1;
  assert_int_equal(run(&m, &now, 100, 10000, 10), 0);
  assert_false(m.queued);
  m.congested = 0;
  assert_in_range(run(&m, &now, 100, 10000, 10), 190000, 210000);
}

/* Feeds ms of ACKs like run(), each with a reverse one-way delay of rev ms (peer clock offset
 * 123456789). */
static uint32_t run_rev(tcp_bw_model *m, uint32_t *now, uint32_t ms, uint32_t rtt, uint32_t rev) {
  uint32_t floor = 0;
  for (uint32_t i = 0; i < ms; i++) {
    (*now)++;
    tcp_bw_reverse_delay(m, rev - 123456789u, *now * 1000u);
    floor = tcp_bw_floor_update(m, 10000, rtt, *now * 1000u, MSS);
  }
  return floor;
}

/* The RTT rises by 30 ms because the ACKs queue on their way back (the reverse delay rises as
 * much): no queue in front of this sender, the floor stays. The same rise with a steady
 * reverse delay is a forward queue. */
static void test_reverse_queue_is_not_ours(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  assert_in_range(run_rev(&m, &now, 200, 10, 5), 190000, 210000);
  assert_in_range(run_rev(&m, &now, 100, 40, 35), 190000, 210000);
  assert_false(m.queued);
  assert_int_equal(run_rev(&m, &now, 100, 40, 5), 0);
  assert_true(m.queued);
}

/* When the lowest RTT ages out of its window, the lowest sample of the window's later part takes
 * over, not the first sample after it (which a standing queue inflates). */
static void test_min_rtt_ages_to_a_recent_low(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  run(&m, &now, 100, 10000, 10);
  run(&m, &now, BW_MIN_RTT_WINDOW_MS / 2, 10000, 24);
  run(&m, &now, 10, 10000, 12); /* a recent low */
  run(&m, &now, BW_MIN_RTT_WINDOW_MS / 2, 10000, 24);
  assert_int_equal(m.min_rtt_ms, 12);
}

/* The congestion state: set by the tunnel's verdict, kept while rounds see the queue standing,
 * dropped BW_QUEUE_HOLD_MS after the last of either. */
static void test_congestion_state(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t t = 1000000;
  tcp_bw_congestion_update(&m, false, t);
  assert_false(m.congested);
  tcp_bw_congestion_update(&m, true, t);
  assert_true(m.congested);
  m.queued = 1; /* the queue keeps standing: the state is renewed */
  tcp_bw_congestion_update(&m, false, t + 8000000);
  m.queued = 0;
  tcp_bw_congestion_update(&m, false, t + 8000000 + BW_QUEUE_HOLD_MS * 1000u - 1000);
  assert_true(m.congested);
  tcp_bw_congestion_update(&m, false, t + 8000000 + BW_QUEUE_HOLD_MS * 1000u + 1000);
  assert_false(m.congested);
  m.queued = 1; /* a standing queue alone (no verdict) is not congestion */
  tcp_bw_congestion_update(&m, false, t + 30000000);
  assert_false(m.congested);
}

/* The window while a queue stands on a path the tunnel judged congested: one segment less per
 * round, from what is in flight when that is below the window; never below 4 segments (nor
 * raised to them); unchanged otherwise (mid-round, no queue, or a queue without congestion
 * losses, which may be the tunnel's own repair holding packets back). */
static void test_queue_window(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  m.queued = 1;
  m.congested = 1;
  m.round_ended = 1;
  assert_int_equal(tcp_bw_queue_window(&m, 50 * MSS, 60 * MSS, MSS), 49 * MSS);
  assert_int_equal(tcp_bw_queue_window(&m, 50 * MSS, 30 * MSS, MSS), 29 * MSS);
  assert_int_equal(tcp_bw_queue_window(&m, 50 * MSS, 2 * MSS, MSS), 4 * MSS);
  assert_int_equal(tcp_bw_queue_window(&m, 3 * MSS, 3 * MSS, MSS), 3 * MSS);
  m.round_ended = 0;
  assert_int_equal(tcp_bw_queue_window(&m, 50 * MSS, 60 * MSS, MSS), 50 * MSS);
  m.round_ended = 1;
  m.congested = 0;
  assert_int_equal(tcp_bw_queue_window(&m, 50 * MSS, 60 * MSS, MSS), 50 * MSS);
  m.congested = 1;
  m.queued = 0;
  assert_int_equal(tcp_bw_queue_window(&m, 50 * MSS, 60 * MSS, MSS), 50 * MSS);
}

/* ACKs in bursts (two 10 us apart every 2 ms, 20 kB each pair: 10 MB/s, RTT 2 ms) across
 * millisecond ticks: the round is timed in microseconds, so pairs that straddle a tick do not
 * count twice in one round (the floor stays near twice 10 kB/ms x 2 ms = 40 kB). */
static void test_bursts_do_not_inflate_the_rate(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t floor = 0;
  for (uint32_t k = 1; k <= 200; k++) {
    uint32_t t = k * 2000u - 5;
    floor = tcp_bw_floor_update(&m, 10000, 2, t, MSS);
    floor = tcp_bw_floor_update(&m, 10000, 2, t + 10, MSS);
  }
  assert_in_range(floor, 35000, 45000);
}

static void test_bounds(void **state) {
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  /* a trickle: at least 4 segments */
  assert_int_equal(run(&m, &now, 50, 10, 5), 4 * MSS);
  /* a round trip below 2 ms (0 or 1 tick of the timestamps): no floor at all */
  memset(&m, 0, sizeof m);
  assert_int_equal(run(&m, &now, 100, 100000, 1), 0);
  memset(&m, 0, sizeof m);
  assert_int_equal(run(&m, &now, 100, 100000, 0), 0);
  memset(&m, 0, sizeof m);
  /* absurd rates are capped */
  assert_true(run(&m, &now, 500, 4000000, 200) <= 8u * 1024 * 1024);
}

/* The send buffer: 1 MB until the floor asks for more, then twice the floor, capped. At 2 % loss
 * and 10 ms a stream measured ~50 MB/s: floor 2 x 50 kB/ms x 10 ms = 1 MB, buffer 2 MB. */
static void test_send_buffer(void **state) {
  const uint32_t start = 1u << 20, max = 4u << 20;
  assert_int_equal(tcp_bw_send_buffer(0, start, max), start);
  assert_int_equal(tcp_bw_send_buffer(300000, start, max), start);
  assert_int_equal(tcp_bw_send_buffer(1000000, start, max), 2000000);
  assert_int_equal(tcp_bw_send_buffer(3000000, start, max), max);
  assert_int_equal(tcp_bw_send_buffer(UINT32_MAX, start, max), max);
  /* from the model: a 10 ms path at 50 MB/s */
  tcp_bw_model m;
  memset(&m, 0, sizeof m);
  uint32_t now = 1000;
  uint32_t floor = run(&m, &now, 300, 50000, 10);
  assert_in_range(tcp_bw_send_buffer(floor, start, max), 1900000, 2100000);
  /* a local path (RTT under 2 ms) keeps the start */
  memset(&m, 0, sizeof m);
  floor = run(&m, &now, 300, 400000, 1);
  assert_int_equal(tcp_bw_send_buffer(floor, start, max), start);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nothing_without_rtt),
      cmocka_unit_test(test_bursts_do_not_inflate_the_rate),
      cmocka_unit_test(test_floor_is_twice_bdp),
      cmocka_unit_test(test_loss_round_does_not_lower_it),
      cmocka_unit_test(test_follows_a_real_drop),
      cmocka_unit_test(test_min_rtt_and_its_window),
      cmocka_unit_test(test_standing_queue_turns_it_off),
      cmocka_unit_test(test_reverse_queue_is_not_ours),
      cmocka_unit_test(test_min_rtt_ages_to_a_recent_low),
      cmocka_unit_test(test_queue_window),
      cmocka_unit_test(test_congestion_state),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_send_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
