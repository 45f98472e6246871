/* Transport counter replay window (src/wg/replay): in order, reordered within the window,
 * duplicates, too old, jumps ahead, and the REJECT_AFTER_MESSAGES limit. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "wg/replay.h"
#include "wg/tunables.h"

#define LIMIT WG_REJECT_AFTER_MESSAGES

static bool accept(wg_replay *r, uint64_t c) {
  bool would = wg_replay_check(r, c, LIMIT);
  bool did = wg_replay_update(r, c, LIMIT);
  assert_int_equal(would, did); /* check predicts update */
  return did;
}

static void test_in_order(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  for (uint64_t c = 0; c < 30000; c++) assert_true(accept(&r, c));
  assert_false(accept(&r, 29999));
  assert_false(accept(&r, 0));
}

static void test_duplicates(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  assert_true(accept(&r, 0));
  assert_false(accept(&r, 0));
  assert_true(accept(&r, 5));
  assert_false(accept(&r, 5));
  assert_true(accept(&r, 3));
  assert_false(accept(&r, 3));
}

static void test_out_of_order_within_window(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  const uint64_t top = WG_REPLAY_WINDOW + 1000;
  assert_true(accept(&r, top));
  /* Everything less than WG_REPLAY_WINDOW behind the top is still acceptable, once. */
  for (uint64_t c = top - WG_REPLAY_WINDOW + 1; c < top; c += 7) assert_true(accept(&r, c));
  for (uint64_t c = top - WG_REPLAY_WINDOW + 1; c < top; c += 7) assert_false(accept(&r, c));
  /* Reverse order, one at a time. */
  wg_replay_init(&r);
  for (uint64_t c = 100; c-- > 0;) assert_true(accept(&r, c));
}

static void test_too_old(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  const uint64_t top = WG_REPLAY_WINDOW + 3000;
  assert_true(accept(&r, top));
  assert_false(accept(&r, top - WG_REPLAY_WINDOW));
  assert_false(accept(&r, 0));
  assert_true(accept(&r, top - WG_REPLAY_WINDOW + 1));
  /* As Linux's WireGuard and wireguard-go: 8,128 behind the top are still taken. */
  assert_int_equal(WG_REPLAY_WINDOW, 8128);
}

static void test_jump_ahead(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  for (uint64_t c = 0; c < 64; c++) assert_true(accept(&r, c));
  /* A jump larger than the ring clears it: counters just behind the new top are fresh. */
  uint64_t top = 1000000;
  assert_true(accept(&r, top));
  for (uint64_t c = top - 100; c < top; c++) assert_true(accept(&r, c));
  assert_false(accept(&r, 63));
  /* A small jump that recycles words keeps the still-valid bits. */
  assert_true(accept(&r, top + 130));
  assert_false(accept(&r, top - 50));
  assert_true(accept(&r, top + 129));
  /* Words of the ring reused after moving exactly one ring length ahead. */
  uint64_t far = top + WG_REPLAY_BITS;
  assert_true(accept(&r, far));
  assert_true(accept(&r, far - 64));
  assert_false(accept(&r, far - WG_REPLAY_WINDOW));
}

static void test_first_counter_anywhere(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  assert_true(accept(&r, 123456789));
  assert_true(accept(&r, 123456789 - 1));
}

static void test_limit(void **state) {
  wg_replay r;
  wg_replay_init(&r);
  assert_false(accept(&r, LIMIT));
  assert_false(accept(&r, UINT64_MAX));
  assert_true(accept(&r, LIMIT - 1));
  assert_false(accept(&r, LIMIT - 1));
  assert_true(accept(&r, LIMIT - 2));
  /* A smaller limit (tunable) is honoured. */
  wg_replay_init(&r);
  assert_true(wg_replay_update(&r, 9, 10));
  assert_false(wg_replay_update(&r, 10, 10));
  assert_int_equal(LIMIT, UINT64_C(18446744073709543423)); /* 2^64 - 2^13 - 1 */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_out_of_order_within_window),
      cmocka_unit_test(test_too_old),
      cmocka_unit_test(test_jump_ahead),
      cmocka_unit_test(test_first_counter_anywhere),
      cmocka_unit_test(test_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
