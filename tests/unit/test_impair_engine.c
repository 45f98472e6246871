/* The impairment relay's pipeline (tests/impair/impair_engine.c) and its setting names
 * (impair_settings.c) with injected time: exact delays, rate-limiter departures, queue and pool
 * bounds, held datagrams meeting a blackhole, seeds. The relay's sockets are tested end to end
 * in tests/integration/test_impair_relay.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "impair_engine.h"
#include "impair_settings.h"

#define MS 1000000ull
#define T0 (1000 * MS) /* a start time well above the burst allowance */

struct capture {
  struct engine *e;
  unsigned n;
  uint32_t seq[4096];
  int dir[4096];
  uint32_t len[4096];
  int held[4096];
};

static void capture_emit(void *ctx, int dir, const uint8_t *data, uint32_t len, int32_t slot) {
  struct capture *c = ctx;
  uint32_t seq = 0;
  if (len >= 4) memcpy(&seq, data, 4);
  if (c->n < 4096) {
    c->seq[c->n] = seq;
    c->dir[c->n] = dir;
    c->len[c->n] = len;
    c->held[c->n] = slot >= 0;
    c->n++;
  }
  c->e->cnt[dir].forwarded++;
  engine_release(c->e, slot); /* the emitter owns the slot: give it back at once */
}

static struct engine eng;
static struct capture cap;

static void setup_engine(int32_t n_small, int32_t n_big, uint64_t seed) {
  memset(&cap, 0, sizeof cap);
  cap.e = &eng;
  assert_int_equal(engine_init(&eng, n_small, n_big, seed, capture_emit, &cap), 0);
}

static void input(int dir, uint32_t seq, uint32_t len, uint64_t now) {
  static uint8_t buf[DGRAM_MAX];
  memcpy(buf, &seq, 4);
  engine_input(&eng, dir, buf, len, now);
}

static void set(const char *name, const char *value) {
  char err[128];
  assert_int_equal(impair_setting_apply(eng.set, name, value, err, sizeof err), 0);
}

static void assert_identity(int dir) {
  const struct impair_counters *c = &eng.cnt[dir];
  assert_int_equal(c->received + c->duplicated,
                   c->forwarded + impair_dropped_total(c) + eng.held[dir]);
}

static void test_passthrough_is_immediate(void **st) {
  setup_engine(8, 2, 1);
  for (uint32_t i = 0; i < 100; i++) input(DIR_UP, i, 100, T0);
  assert_int_equal(cap.n, 100);
  for (unsigned i = 0; i < 100; i++) {
    assert_int_equal(cap.seq[i], i);
    assert_false(cap.held[i]); /* sent from the caller's buffer, no copy */
  }
  assert_int_equal(engine_next_due(&eng), UINT64_MAX);
  assert_identity(DIR_UP);
  engine_free(&eng);
}

static void test_delay_is_exact_and_ordered(void **st) {
  setup_engine(64, 4, 1);
  set("up.delay_ms", "10");
  for (uint32_t i = 0; i < 5; i++) input(DIR_UP, i, 100, T0 + i * 1000);
  assert_int_equal(engine_next_due(&eng), T0 + 10 * MS);
  engine_run(&eng, T0 + 10 * MS - IMPAIR_SLACK_NS - 1);
  assert_int_equal(cap.n, 0);
  engine_run(&eng, T0 + 10 * MS + 4000);
  assert_int_equal(cap.n, 5);
  for (unsigned i = 0; i < 5; i++) assert_int_equal(cap.seq[i], i);
  assert_int_equal(eng.cnt[DIR_UP].delayed, 5);
  assert_identity(DIR_UP);
  engine_free(&eng);
}

static void test_jitter_stays_in_its_window(void **st) {
  setup_engine(2048, 16, 7);
  set("down.delay", "10");
  set("down.jitter", "5");
  for (uint32_t i = 0; i < 1000; i++) input(DIR_DOWN, i, 100, T0);
  engine_run(&eng, T0 + 5 * MS - IMPAIR_SLACK_NS - 1);
  assert_int_equal(cap.n, 0);
  engine_run(&eng, T0 + 10 * MS);
  assert_in_range(cap.n, 300, 700); /* about half before the mean */
  engine_run(&eng, T0 + 15 * MS);
  assert_int_equal(cap.n, 1000);
  assert_identity(DIR_DOWN);
  engine_free(&eng);
}

static void test_rate_limiter_departures(void **st) {
  setup_engine(256, 4, 1);
  set("up.rate", "1M"); /* 1000-byte datagrams: one per ms */
  set("up.queue", "1000000");
  for (uint32_t i = 0; i < 100; i++) input(DIR_UP, i, 1000, T0);
  assert_int_equal(cap.n, 1); /* an idle link sends the first at once */
  for (uint64_t k = 1; k < 100; k++) {
    engine_run(&eng, T0 + k * MS - IMPAIR_SLACK_NS - 1);
    assert_int_equal(cap.n, k);
    engine_run(&eng, T0 + k * MS);
    assert_int_equal(cap.n, k + 1);
  }
  /* A late wake-up sends what the link would have sent meanwhile: the rate holds. */
  for (uint32_t i = 0; i < 10; i++) input(DIR_UP, 100 + i, 1000, T0 + 100 * MS);
  engine_run(&eng, T0 + 108 * MS);
  assert_int_equal(cap.n, 109);
  for (unsigned i = 0; i < cap.n; i++) assert_int_equal(cap.seq[i], i);
  engine_free(&eng);
}

static void test_queue_tail_drop(void **st) {
  setup_engine(256, 4, 1);
  set("up.rate", "1000");
  set("up.queue", "3000");
  for (uint32_t i = 0; i < 10; i++) input(DIR_UP, i, 1000, T0);
  assert_int_equal(cap.n, 1);
  assert_int_equal(eng.held[DIR_UP], 3);
  assert_int_equal(eng.cnt[DIR_UP].dropped_queue, 6);
  set("up.rate", "0"); /* lifted: the queue goes at the next run */
  engine_run(&eng, T0 + 1);
  assert_int_equal(cap.n, 4);
  assert_int_equal(cap.seq[3], 3);
  assert_identity(DIR_UP);
  engine_free(&eng);
}

static void test_pool_is_bounded(void **st) {
  setup_engine(4, 2, 1);
  set("both.delay_ms", "1");
  for (uint32_t i = 0; i < 10; i++) input(DIR_UP, i, 100, T0);
  input(DIR_DOWN, 99, 5000, T0);         /* a big one: no big slot left either */
  assert_int_equal(eng.held[DIR_UP], 6); /* 4 small, then the 2 big slots */
  assert_int_equal(eng.cnt[DIR_UP].dropped_pool, 4);
  assert_int_equal(eng.cnt[DIR_DOWN].dropped_pool, 1);
  engine_run(&eng, T0 + 2 * MS);
  assert_int_equal(cap.n, 6);
  input(DIR_DOWN, 100, DGRAM_MAX, T0 + 2 * MS); /* slots came back */
  engine_run(&eng, T0 + 4 * MS);
  assert_int_equal(cap.n, 7);
  assert_int_equal(cap.len[6], DGRAM_MAX);
  assert_identity(DIR_UP);
  assert_identity(DIR_DOWN);
  engine_free(&eng);
}

static void test_blackhole_mtu_loss_dup_reorder(void **st) {
  setup_engine(64, 4, 1);
  set("up.delay_ms", "5");
  input(DIR_UP, 1, 100, T0);
  set("up.blackhole", "on"); /* held ones are dropped when they would leave */
  input(DIR_UP, 2, 100, T0);
  engine_run(&eng, T0 + 6 * MS);
  assert_int_equal(cap.n, 0);
  assert_int_equal(eng.cnt[DIR_UP].dropped_blackhole, 2);
  set("up.blackhole", "off");
  set("up.delay_ms", "0");
  set("up.mtu", "1200");
  input(DIR_UP, 3, 1200, T0);
  input(DIR_UP, 4, 1201, T0);
  assert_int_equal(eng.cnt[DIR_UP].dropped_mtu, 1);
  set("up.loss", "1");
  input(DIR_UP, 5, 10, T0);
  set("up.loss", "0");
  set("up.dup", "1");
  input(DIR_UP, 6, 10, T0);
  set("up.dup", "0");
  set("up.reorder", "1");
  set("up.reorder_ms", "2");
  input(DIR_UP, 7, 10, T0);
  input(DIR_DOWN, 8, 10, T0); /* the other direction is not affected */
  assert_int_equal(cap.n, 4);
  engine_run(&eng, T0 + 2 * MS);
  uint32_t want[] = {3, 6, 6, 8, 7};
  assert_int_equal(cap.n, 5);
  for (unsigned i = 0; i < 5; i++) assert_int_equal(cap.seq[i], want[i]);
  assert_int_equal(eng.cnt[DIR_UP].dropped_loss, 1);
  assert_int_equal(eng.cnt[DIR_UP].duplicated, 1);
  assert_int_equal(eng.cnt[DIR_UP].reordered, 1);
  assert_identity(DIR_UP);
  assert_identity(DIR_DOWN);
  engine_free(&eng);
}

static void loss_pattern(uint64_t seed, uint8_t *out, unsigned n) {
  setup_engine(8, 2, seed);
  set("up.loss", "0.5");
  for (unsigned i = 0; i < n; i++) {
    unsigned before = cap.n;
    input(DIR_UP, i, 10, T0);
    out[i] = cap.n > before;
  }
  engine_free(&eng);
}

static void test_seed_reproduces(void **st) {
  uint8_t a[256], b[256], c[256];
  loss_pattern(42, a, 256);
  loss_pattern(42, b, 256);
  loss_pattern(43, c, 256);
  assert_memory_equal(a, b, 256);
  assert_memory_not_equal(a, c, 256);
}

static void test_setting_names(void **st) {
  struct impair_settings s[DIR_COUNT];
  char err[128];
  impair_settings_default(&s[0]);
  impair_settings_default(&s[1]);
  assert_int_equal(impair_setting_apply(s, "both.rate", "2.5k", err, sizeof err), 0);
  assert_int_equal(s[DIR_UP].rate_bps, 2500);
  assert_int_equal(s[DIR_DOWN].rate_bps, 2500);
  assert_int_equal(impair_setting_apply(s, "down.delay_ms", "0.5", err, sizeof err), 0);
  assert_int_equal(s[DIR_DOWN].delay_ns, 500000);
  const char *bad[][2] = {{"up.loss", "1.01"}, {"up.loss", "nan"},     {"up.loss", "inf"},
                          {"up.loss", ""},     {"up.loss", " 0.1"},    {"up.mtu", "65536"},
                          {"up.mtu", "-1"},    {"up.rate", "1T"},      {"up.blackhole", "2"},
                          {"upx.loss", "0"},   {"up.", "0"},           {"up", "0"},
                          {"up.loss", NULL},   {"both.delay", "1e300"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(impair_setting_apply(s, bad[i][0], bad[i][1], err, sizeof err), -1);
  assert_int_equal(s[DIR_UP].loss, 0); /* nothing changed */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_passthrough_is_immediate),
      cmocka_unit_test(test_delay_is_exact_and_ordered),
      cmocka_unit_test(test_jitter_stays_in_its_window),
      cmocka_unit_test(test_rate_limiter_departures),
      cmocka_unit_test(test_queue_tail_drop),
      cmocka_unit_test(test_pool_is_bounded),
      cmocka_unit_test(test_blackhole_mtu_loss_dup_reorder),
      cmocka_unit_test(test_seed_reproduces),
      cmocka_unit_test(test_setting_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
