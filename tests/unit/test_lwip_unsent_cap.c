/* The unsent-queue cap (src/stream/lwip_unsent_cap.c): lwIP is handed what the open window will
 * send plus LWIP_UNSENT_AHEAD, less what already waits unsent, never more than its send buffer
 * takes; sequence numbers wrap, and a broken order never reads as a huge distance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stream/lwip_unsent_cap.h"

#define AHEAD LWIP_UNSENT_AHEAD
#define BIG ((size_t)1 << 20) /* a send buffer larger than any cap below */

/* A sender at sequence base with `flight` bytes in flight and `unsent` queued behind them. */
static lwip_send_seq at(uint32_t base, uint32_t flight, uint32_t unsent, uint32_t cwnd,
                        uint32_t snd_wnd) {
  lwip_send_seq s = {.lastack = base,
                     .snd_nxt = base + flight,
                     .snd_lbb = base + flight + unsent,
                     .cwnd = cwnd,
                     .snd_wnd = snd_wnd};
  return s;
}

static void test_idle_sender_gets_window_plus_ahead(void **state) {
  (void)state;
  lwip_send_seq s = at(1000, 0, 0, 40000, 500000);
  assert_int_equal(lwip_unsent_cap(&s, BIG), 40000 + AHEAD);
}

static void test_smaller_of_cwnd_and_peer_window(void **state) {
  (void)state;
  lwip_send_seq s = at(1000, 0, 0, 400000, 30000);
  assert_int_equal(lwip_unsent_cap(&s, BIG), 30000 + AHEAD);
}

static void test_flight_and_unsent_count_against_it(void **state) {
  (void)state;
  lwip_send_seq s = at(1000, 25000, 10000, 40000, 500000);
  /* open = 40000 - 25000 = 15000; 15000 + AHEAD - 10000 unsent */
  assert_int_equal(lwip_unsent_cap(&s, BIG), 15000 + AHEAD - 10000);
}

static void test_full_queue_takes_nothing(void **state) {
  (void)state;
  lwip_send_seq s = at(1000, 40000, AHEAD, 40000, 500000);
  assert_int_equal(lwip_unsent_cap(&s, BIG), 0);
  s = at(1000, 60000, 3 * AHEAD, 40000, 500000); /* cwnd cut below the flight after a loss */
  assert_int_equal(lwip_unsent_cap(&s, BIG), 0);
}

/* With no window at all (a zero window, or after an RTO) a stream still keeps AHEAD queued,
 * so there is always something whose ACK feeds the rest. */
static void test_zero_window_keeps_ahead(void **state) {
  (void)state;
  lwip_send_seq s = at(1000, 0, 0, 40000, 0);
  assert_int_equal(lwip_unsent_cap(&s, BIG), AHEAD);
  s = at(1000, 0, 100, 40000, 0);
  assert_int_equal(lwip_unsent_cap(&s, BIG), AHEAD - 100);
}

static void test_send_buffer_bounds_it(void **state) {
  (void)state;
  lwip_send_seq s = at(1000, 0, 0, 40000, 500000);
  assert_int_equal(lwip_unsent_cap(&s, 1234), 1234);
  assert_int_equal(lwip_unsent_cap(&s, 0), 0);
}

static void test_sequence_wraps(void **state) {
  (void)state;
  lwip_send_seq s = at(UINT32_MAX - 5000, 20000, 10000, 40000, 500000);
  assert_true(s.snd_lbb < s.lastack); /* the numbers did wrap */
  assert_int_equal(lwip_unsent_cap(&s, BIG), 20000 + AHEAD - 10000);
}

/* snd_nxt past snd_lbb, or lastack past snd_nxt, is not lwIP's order: read as zero, not 4 GB. */
static void test_broken_order_is_not_huge(void **state) {
  (void)state;
  lwip_send_seq s = {
      .lastack = 1000, .snd_nxt = 2000, .snd_lbb = 1500, .cwnd = 40000, .snd_wnd = 500000};
  assert_int_equal(lwip_unsent_cap(&s, BIG), 40000 - 1000 + AHEAD);
  s = (lwip_send_seq){
      .lastack = 3000, .snd_nxt = 2000, .snd_lbb = 2000, .cwnd = 40000, .snd_wnd = 500000};
  assert_int_equal(lwip_unsent_cap(&s, BIG), 40000 + AHEAD);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idle_sender_gets_window_plus_ahead),
      cmocka_unit_test(test_smaller_of_cwnd_and_peer_window),
      cmocka_unit_test(test_flight_and_unsent_count_against_it),
      cmocka_unit_test(test_full_queue_takes_nothing),
      cmocka_unit_test(test_zero_window_keeps_ahead),
      cmocka_unit_test(test_send_buffer_bounds_it),
      cmocka_unit_test(test_sequence_wraps),
      cmocka_unit_test(test_broken_order_is_not_huge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
