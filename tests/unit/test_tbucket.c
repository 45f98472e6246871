/* The token bucket (src/util/tbucket.c) with injected time: rate, burst, debt and waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/tbucket.h"

#define S 1000000ULL /* one second in microseconds */

static void test_starts_full_and_caps_at_burst(void **st) {
  tbucket b;
  tbucket_init(&b, 1000, 5000, 0);
  assert_true(tbucket_try_take(&b, 5000, 0));
  assert_false(tbucket_try_take(&b, 1, 0));
  /* An hour idle still leaves only the burst. */
  assert_true(tbucket_try_take(&b, 5000, 3600 * S));
  assert_false(tbucket_try_take(&b, 100, 3600 * S));
}

static void test_refills_at_rate(void **st) {
  tbucket b;
  tbucket_init(&b, 2000000, 200000, 0); /* 2 MB/s, burst 200 KB */
  assert_true(tbucket_try_take(&b, 200000, 0));
  assert_false(tbucket_try_take(&b, 1000, 0));
  assert_false(tbucket_try_take(&b, 1001, 500)); /* 500 us = 1000 bytes */
  assert_true(tbucket_try_take(&b, 1000, 500));
  assert_true(tbucket_try_take(&b, 20000, 500 + 10000)); /* 10 ms = 20000 bytes */
}

static void test_debt_and_wait(void **st) {
  tbucket b;
  tbucket_init(&b, 1000000, 16384, 0);
  assert_int_equal(tbucket_wait_us(&b, 0), 0);
  tbucket_take(&b, 16384 + 65536, 0); /* read a chunk beyond the balance: 65536 in debt */
  uint64_t w = tbucket_wait_us(&b, 0);
  assert_true(w >= 65536 && w <= 65540); /* 65.536 ms at 1 MB/s */
  assert_true(tbucket_wait_us(&b, 30000) > 0);
  assert_int_equal(tbucket_wait_us(&b, w), 0);
}

/* Over a long run with reads of any size, what passes matches rate * time + burst. */
static void test_long_run_average(void **st) {
  tbucket b;
  const uint64_t rate = 2000000, burst = tbucket_default_burst(rate);
  tbucket_init(&b, rate, burst, 0);
  uint64_t now = 0, passed = 0;
  while (now < 10 * S) {
    uint64_t w = tbucket_wait_us(&b, now);
    if (w) {
      now += w;
      continue;
    }
    uint64_t chunk = 1 + (now * 7919) % 65536;
    tbucket_take(&b, chunk, now);
    passed += chunk;
  }
  assert_true(passed >= rate * 10);
  assert_true(passed <= rate * 10 + burst + 65536);
}

static void test_unlimited_and_changes(void **st) {
  tbucket b;
  tbucket_init(&b, 0, 0, 0);
  assert_true(tbucket_try_take(&b, 1 << 30, 0));
  tbucket_take(&b, 1 << 30, 0);
  assert_int_equal(tbucket_wait_us(&b, 0), 0);
  /* A limit set later applies; the balance never exceeds the new burst. */
  tbucket_set(&b, 1000, 2000, 10 * S);
  assert_true(tbucket_try_take(&b, 2000, 10 * S));
  assert_false(tbucket_try_take(&b, 10, 10 * S));
  tbucket_set(&b, 0, 0, 10 * S);
  assert_true(tbucket_try_take(&b, 1 << 20, 10 * S));
  /* A datagram larger than the burst passes only from a full bucket. */
  tbucket_init(&b, 1000, 16384, 0);
  assert_true(tbucket_try_take(&b, 60000, 0));
  assert_false(tbucket_try_take(&b, 60000, 1 * S));
  /* A clock going backwards adds nothing. */
  tbucket_init(&b, 1000, 1000, 5 * S);
  tbucket_take(&b, 1000, 5 * S);
  assert_false(tbucket_try_take(&b, 1, 4 * S));
  assert_int_equal(tbucket_default_burst(1000), 16384);
  assert_int_equal(tbucket_default_burst(10000000), 5000000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_starts_full_and_caps_at_burst),
      cmocka_unit_test(test_refills_at_rate),
      cmocka_unit_test(test_debt_and_wait),
      cmocka_unit_test(test_long_run_average),
      cmocka_unit_test(test_unlimited_and_changes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
