/* The tunnel's reorder buffer (src/device/tunnel_reorder.c): packets come out in counter order,
 * gaps are waited for until the hold time runs out, and nothing is lost or duplicated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device/tunnel_reorder.h"

static uint64_t out[65536];
static size_t n_out;

static void sink(void *ctx, const uint8_t *pkt, size_t len) {
  (void)ctx;
  assert_int_equal(len, 8);
  uint64_t v;
  memcpy(&v, pkt, 8);
  out[n_out++] = v;
}

static void in(tun_reorder *r, uint32_t kp, uint64_t c, uint64_t now) {
  tun_reorder_input(r, kp, c, (const uint8_t *)&c, sizeof c, now);
}

#define MS 1000000ull

static void setup(tun_reorder *r) {
  tun_reorder_init(r, 64, sink, NULL, NULL);
  n_out = 0;
}

static void test_in_order_passes_at_once(void **state) {
  tun_reorder r;
  setup(&r);
  for (uint64_t c = 0; c < 1000; c++) in(&r, 1, c, 0);
  assert_int_equal(n_out, 1000);
  for (uint64_t c = 0; c < 1000; c++) assert_int_equal(out[c], c);
  assert_null(r.pool); /* no memory without a gap */
  tun_reorder_free(&r);
}

static void test_gap_filled_in_time(void **state) {
  tun_reorder r;
  setup(&r);
  in(&r, 1, 0, 0);
  in(&r, 1, 2, 1 * MS);
  in(&r, 1, 3, 1 * MS);
  assert_int_equal(n_out, 1); /* 2 and 3 wait for 1 */
  assert_int_not_equal(r.deadline, 0);
  in(&r, 1, 1, 3 * MS);
  assert_int_equal(n_out, 4);
  for (uint64_t c = 0; c < 4; c++) assert_int_equal(out[c], c);
  assert_int_equal(r.deadline, 0);
  assert_int_equal(r.gaps_given_up, 0);
  tun_reorder_free(&r);
}

static void test_gap_given_up_after_hold(void **state) {
  tun_reorder r;
  setup(&r);
  tun_reorder_set_rtt(&r, 5 * MS);
  in(&r, 1, 0, 0);
  in(&r, 1, 2, 1 * MS);
  in(&r, 1, 5, 2 * MS);
  tun_reorder_expire(&r, 5 * MS); /* not yet: held at 1 ms + 5 ms */
  assert_int_equal(n_out, 1);
  tun_reorder_expire(&r, 6 * MS); /* each gap waits its own hold: 1 (missing since 1 ms) */
  assert_int_equal(n_out, 2);
  assert_int_equal(out[1], 2);
  assert_int_equal(r.gaps_given_up, 1);
  tun_reorder_expire(&r, 7 * MS); /* then 3 and 4 (missing since 2 ms) */
  assert_int_equal(n_out, 3);
  assert_int_equal(out[2], 5);
  assert_int_equal(r.gaps_given_up, 3);
  in(&r, 1, 1, 7 * MS); /* late: delivered as it comes */
  in(&r, 1, 6, 7 * MS);
  assert_int_equal(n_out, 5);
  assert_int_equal(out[3], 1);
  assert_int_equal(out[4], 6);
  tun_reorder_free(&r);
}

static void test_new_keypair_releases_and_restarts(void **state) {
  tun_reorder r;
  setup(&r);
  in(&r, 1, 10, 0);
  in(&r, 1, 12, 0);
  in(&r, 2, 0, 0); /* counters restart with the new keypair */
  assert_int_equal(n_out, 3);
  assert_int_equal(out[1], 12);
  assert_int_equal(out[2], 0);
  in(&r, 2, 1, 0);
  assert_int_equal(n_out, 4);
  tun_reorder_free(&r);
}

static void test_far_ahead_and_empty_counters(void **state) {
  tun_reorder r;
  setup(&r);
  in(&r, 1, 0, 0);
  in(&r, 1, 2, 0);
  in(&r, 1, 1 + TUN_REORDER_SLOTS + 5, 0); /* beyond what can be held: the gaps are given up */
  assert_int_equal(n_out, 3);
  assert_int_equal(out[1], 2);
  /* a keepalive (no packet) takes its counter and fills a gap */
  uint64_t base = 2 + TUN_REORDER_SLOTS + 5;
  in(&r, 1, base + 1, 0);
  assert_int_equal(n_out, 3);
  tun_reorder_input(&r, 1, base, NULL, 0, 0);
  assert_int_equal(n_out, 4);
  assert_int_equal(out[3], base + 1);
  /* a duplicate of a held packet is held once */
  in(&r, 1, base + 3, 0);
  in(&r, 1, base + 3, 0);
  in(&r, 1, base + 2, 0);
  assert_int_equal(n_out, 6);
  tun_reorder_free(&r);
}

static void no_nack(void *ctx, uint32_t keypair, const tun_nack_run *runs, size_t n) {
  (void)ctx, (void)keypair, (void)runs, (void)n;
}

/* Packets at per_ms a ms into r (repair on), one in `every` missing and filled fill_ms later,
 * counters 0..total; the fills still due come in at the end. *given_up_warm and *out_warm: the
 * gaps given up and the packets out by counter warm (the window has grown by then). */
typedef struct {
  uint64_t per_ms, every, fill_ms, total, warm;
} hole_pattern;

static void run_holes(tun_reorder *r, const hole_pattern *h, size_t *given_up_warm,
                      size_t *out_warm) {
  static uint64_t late[2000];
  size_t n_late = 0, next_late = 0;
  n_out = 0;
  for (uint64_t c = 0; c < h->total; c++) {
    uint64_t now = 1000 * MS + c * MS / h->per_ms;
    while (next_late < n_late &&
           late[next_late] * MS / h->per_ms + h->fill_ms * MS <= c * MS / h->per_ms)
      in(r, 1, late[next_late++], now);
    if (c % h->every == h->every / 2 && n_late < 2000) {
      late[n_late++] = c;
      continue;
    }
    in(r, 1, c, now);
    tun_reorder_expire(r, now);
    if (c == h->warm) *given_up_warm = r->gaps_given_up, *out_warm = n_out;
  }
  uint64_t end = 1000 * MS + h->total * MS / h->per_ms + h->fill_ms * MS;
  while (next_late < n_late) in(r, 1, late[next_late++], end);
}

/* With repair, a fast peer's holes take a round trip or more to fill: the window grows until it
 * covers tun_repair_cover_ms (80 ms here: no round trip known) of its packets, keeping what it
 * holds, and nothing is given up once it has. 100 packets per ms, one missing in 50 and filled 20
 * ms later. */
static void test_window_grows_with_the_rate(void **state) {
  (void)state;
  tun_reorder r;
  tun_reorder_init(&r, 64, sink, no_nack, NULL);
  tun_reorder_set_repair(&r, true);
  const hole_pattern h = {.per_ms = 100, .every = 50, .fill_ms = 20, .total = 60000, .warm = 20000};
  size_t given_up_warm = 0, out_warm = 0;
  run_holes(&r, &h, &given_up_warm, &out_warm);
  assert_true(r.nslots >= 4096);
  assert_int_equal(r.gaps_given_up, given_up_warm); /* none once grown */
  for (size_t i = out_warm + 1; i < n_out; i++)     /* in order, none twice */
    if (out[i] <= out[i - 1])
      fail_msg("out[%zu] = %llu after %llu (given up while warming: %zu)", i,
               (unsigned long long)out[i], (unsigned long long)out[i - 1], given_up_warm);
  tun_reorder_free(&r);
}

static void test_random_permutation_in_window(void **state) {
  tun_reorder r;
  setup(&r);
  uint64_t order[2000];
  for (uint64_t i = 0; i < 2000; i++) order[i] = i;
  uint32_t x = 99;
  /* Counter 0 comes first (it starts the keypair's sequence); the rest is shuffled within
   * blocks of 20. */
  for (int i = 1; i + 20 <= 2000; i += 20)
    for (int k = 19; k > 0; k--) {
      x = x * 1103515245u + 12345u;
      int j = (int)(x % (uint32_t)(k + 1));
      uint64_t t = order[i + k];
      order[i + k] = order[i + j];
      order[i + j] = t;
    }
  for (int i = 0; i < 2000; i++) in(&r, 7, order[i], 0);
  assert_int_equal(n_out, 2000);
  for (uint64_t c = 0; c < 2000; c++) assert_int_equal(out[c], c);
  tun_reorder_free(&r);
}

/* A path abroad (150 ms of round trip): a hole is filled 300 ms after its neighbours came (a
 * resend asked for twice), at 10 packets a ms. The window must hold 3,000 packets behind the
 * hole: it grows to cover three round trips, where the 80 ms of an unknown path (1,024 slots,
 * 102 ms at this rate) would give the holes up. Returns the gaps given up once warm. */
static size_t long_path_gaps_given_up(uint64_t rtt_ns, size_t *slots) {
  tun_reorder r;
  tun_reorder_init(&r, 64, sink, no_nack, NULL);
  tun_reorder_set_repair(&r, true);
  if (rtt_ns) tun_reorder_set_rtt(&r, rtt_ns);
  const hole_pattern h = {
      .per_ms = 10, .every = 100, .fill_ms = 300, .total = 40000, .warm = 20000};
  size_t given_up_warm = 0, out_warm = 0;
  run_holes(&r, &h, &given_up_warm, &out_warm);
  *slots = r.nslots;
  size_t after_warm = r.gaps_given_up - given_up_warm;
  tun_reorder_free(&r);
  return after_warm;
}

static void test_window_covers_a_long_path(void **state) {
  (void)state;
  size_t slots = 0;
  assert_int_equal(long_path_gaps_given_up(150 * MS, &slots), 0);
  assert_true(slots >= 4096);
  assert_true(long_path_gaps_given_up(0, &slots) > 0); /* the round trip is what made it */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order_passes_at_once),
      cmocka_unit_test(test_gap_filled_in_time),
      cmocka_unit_test(test_gap_given_up_after_hold),
      cmocka_unit_test(test_new_keypair_releases_and_restarts),
      cmocka_unit_test(test_far_ahead_and_empty_counters),
      cmocka_unit_test(test_random_permutation_in_window),
      cmocka_unit_test(test_window_grows_with_the_rate),
      cmocka_unit_test(test_window_covers_a_long_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
