/* Loss repair (src/device/tunnel_repair.c, tunnel_reorder.c with repair on): the control
 * messages round-trip and hostile ones are refused; the sender's ring gives back exactly what was
 * sent, a bounded number of times; the receiver asks for a missing counter after a short grace,
 * asks again, counts what the resend filled, and gives a gap up only after its last try. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "device/tunnel_reorder.h"
#include "device/tunnel_repair.h"

#define MS 1000000ull

static void test_messages_round_trip(void **state) {
  uint8_t m[TUN_CTL_MAX + 16];
  tun_ctl_msg got;
  size_t n = tun_ctl_hello(m, true, false);
  assert_true(tun_ctl_is(m, n));
  assert_int_equal(tun_ctl_parse(m, n, &got), 0);
  assert_int_equal(got.type, TUN_CTL_HELLO);
  assert_true(got.flags & TUN_CTL_HELLO_REPLY);
  assert_false(got.flags & TUN_CTL_HELLO_UNCHECKED);
  n = tun_ctl_hello(m, false, true); /* a server's: it does not verify inner checksums */
  assert_int_equal(tun_ctl_parse(m, n, &got), 0);
  assert_false(got.flags & TUN_CTL_HELLO_REPLY);
  assert_true(got.flags & TUN_CTL_HELLO_UNCHECKED);
  assert_true(got.flags & TUN_CTL_HELLO_FEC);
  tun_nack_run runs[TUN_NACK_MAX_RUNS];
  for (size_t i = 0; i < TUN_NACK_MAX_RUNS; i++) runs[i] = (tun_nack_run){1000000007ull * i, 1 + i};
  n = tun_ctl_runs(m, TUN_CTL_NACK, 0xA1B2C3D4u, runs, TUN_NACK_MAX_RUNS);
  assert_int_equal(n, 8 + 10 * TUN_NACK_MAX_RUNS);
  memset(m + n, 0, 16); /* WireGuard's zero padding behind it is fine */
  assert_int_equal(tun_ctl_parse(m, n + 16, &got), 0);
  assert_int_equal(got.index, 0xA1B2C3D4u);
  assert_int_equal(got.n_runs, TUN_NACK_MAX_RUNS);
  for (size_t i = 0; i < TUN_NACK_MAX_RUNS; i++) {
    assert_int_equal(got.runs[i].first, runs[i].first);
    assert_int_equal(got.runs[i].count, runs[i].count);
  }
}

static void test_hostile_messages_refused(void **state) {
  uint8_t m[TUN_CTL_MAX];
  tun_ctl_msg got;
  tun_nack_run run = {5, 3};
  size_t n = tun_ctl_runs(m, TUN_CTL_NACK, 1, &run, 1);
  assert_int_equal(tun_ctl_parse(m, n - 1, &got), -1); /* truncated */
  m[2] = 2;
  assert_int_equal(tun_ctl_parse(m, n, &got), -1); /* claims more runs than it has */
  m[2] = 0;
  assert_int_equal(tun_ctl_parse(m, n, &got), -1); /* no runs */
  m[2] = 1;
  m[16] = 0, m[17] = 0;
  assert_int_equal(tun_ctl_parse(m, n, &got), -1); /* empty run */
  m[16] = 0x01, m[17] = 0x01;
  assert_int_equal(tun_ctl_parse(m, n, &got), -1); /* run longer than 256 */
  memset(m + 8, 0xff, 8);
  m[16] = 0, m[17] = 2;
  assert_int_equal(tun_ctl_parse(m, n, &got), -1); /* counter overflow */
  uint8_t other[4] = {0xF7, TUN_CTL_VERSION, 0, 0};
  assert_int_equal(tun_ctl_parse(other, 4, &got), -1); /* unknown type */
  uint8_t v2[4] = {TUN_CTL_HELLO, 2, 0, 0};
  assert_int_equal(tun_ctl_parse(v2, 4, &got), -1); /* unknown version */
  uint8_t ip[1] = {0x45};
  assert_false(tun_ctl_is(ip, 1));
}

static void test_ring_gives_back_what_was_sent(void **state) {
  tun_repair_ring r = {0};
  uint8_t wire[100] = {0};
  size_t len;
  assert_false(tun_repair_ring_store(&r, 7, 1, wire, 10, 0)); /* off: nothing kept */
  assert_null(tun_repair_ring_take(&r, 7, 1, &len));
  assert_int_equal(tun_repair_ring_enable(&r, 64), 0);
  for (uint64_t c = 0; c < TUN_REPAIR_RING + 10; c++) {
    memset(wire, (int)(c & 0xff), sizeof wire);
    assert_true(tun_repair_ring_store(&r, 7, c, wire, 20 + c % 40, 0));
  }
  assert_null(tun_repair_ring_take(&r, 7, 5, &len)); /* overwritten by a newer one */
  assert_null(tun_repair_ring_take(&r, 8, TUN_REPAIR_RING + 5, &len)); /* other keypair */
  const uint8_t *d = tun_repair_ring_take(&r, 7, TUN_REPAIR_RING + 5, &len);
  assert_non_null(d);
  assert_int_equal(len, 20 + (TUN_REPAIR_RING + 5) % 40);
  assert_int_equal(d[0], (TUN_REPAIR_RING + 5) & 0xff);
  for (int i = 1; i < TUN_REPAIR_MAX_RESENDS; i++)
    assert_non_null(tun_repair_ring_take(&r, 7, TUN_REPAIR_RING + 5, &len));
  assert_null(tun_repair_ring_take(&r, 7, TUN_REPAIR_RING + 5, &len)); /* resent enough */
  assert_false(tun_repair_ring_store(&r, 7, 999999, wire, 65, 0));     /* too long to keep */
  assert_null(tun_repair_ring_take(&r, 7, 999999, &len));
  tun_repair_ring_free(&r);
}

/* The ring keeps TUN_REPAIR_RING_COVER_MS of sending (no round trip known): a fast sender's ring
 * grows (keeping what it holds), a slow one's stays small. */
static void test_ring_grows_with_the_rate(void **state) {
  (void)state;
  tun_repair_ring r = {0};
  uint8_t wire[64];
  size_t len;
  assert_int_equal(tun_repair_ring_enable(&r, 64), 0);
  uint64_t c = 0;
  for (; c < 20 * TUN_REPAIR_RING; c++) { /* 10 datagrams per ms: 1024 last 102 ms... */
    memset(wire, (int)(c & 0xff), sizeof wire);
    tun_repair_ring_store(&r, 7, c, wire, 40, (uint32_t)(1000 + c / 10));
  }
  assert_int_equal(r.n, TUN_REPAIR_RING); /* ...longer than the cover: no growth */
  for (uint64_t end = c + 20 * TUN_REPAIR_RING; c < end; c++) { /* 100 per ms: 10 ms a turn */
    memset(wire, (int)(c & 0xff), sizeof wire);
    tun_repair_ring_store(&r, 7, c, wire, 40, (uint32_t)(1000 + c / 100));
  }
  assert_int_equal(r.n, TUN_REPAIR_RING_MAX);
  /* Everything of the last TUN_REPAIR_RING_MAX is there, byte for byte. */
  const uint8_t *d = tun_repair_ring_take(&r, 7, c - TUN_REPAIR_RING_MAX, &len);
  assert_non_null(d);
  assert_int_equal(len, 40);
  assert_int_equal(d[39], (c - TUN_REPAIR_RING_MAX) & 0xff);
  assert_null(tun_repair_ring_take(&r, 7, c - TUN_REPAIR_RING_MAX - 1, &len));
  tun_repair_ring_free(&r);
}

/* The cover follows the path's round trip: a server abroad (150 ms) needs 470 ms of sending kept,
 * and a ring told so grows where one with the 80 ms of an unknown path does not (10 datagrams a
 * ms: 1,024 last 102 ms). */
static void test_cover_follows_the_round_trip(void **state) {
  (void)state;
  assert_int_equal(tun_repair_cover_ms(0), TUN_REPAIR_RING_COVER_MS);
  assert_int_equal(tun_repair_cover_ms(10000000), TUN_REPAIR_RING_COVER_MS);
  assert_int_equal(tun_repair_cover_ms(150000000), 470);
  assert_int_equal(tun_repair_cover_ms(10000000000ull), TUN_REPAIR_COVER_MAX_MS);
  tun_repair_ring r = {0};
  uint8_t wire[64] = {0};
  assert_int_equal(tun_repair_ring_enable(&r, 64), 0);
  r.cover_ms = tun_repair_cover_ms(150000000);
  for (uint64_t c = 0; c < 20 * TUN_REPAIR_RING; c++)
    tun_repair_ring_store(&r, 7, c, wire, 40, (uint32_t)(1000 + c / 10));
  assert_int_equal(r.n, 8 * TUN_REPAIR_RING); /* 8,192 cover 819 ms; 4,096 only 410 */
  tun_repair_ring_free(&r);
}

static void test_giveup_round_trips_and_ring_remembers_when(void **state) {
  uint8_t m[TUN_CTL_MAX];
  tun_ctl_msg got;
  tun_nack_run runs[2] = {{40, 3}, {90, 256}};
  size_t n = tun_ctl_runs(m, TUN_CTL_GIVEUP, 0x01020304u, runs, 2);
  assert_true(tun_ctl_is(m, n));
  assert_int_equal(tun_ctl_parse(m, n, &got), 0);
  assert_int_equal(got.type, TUN_CTL_GIVEUP);
  assert_int_equal(got.index, 0x01020304u);
  assert_int_equal(got.n_runs, 2);
  assert_int_equal(got.runs[1].first, 90);
  assert_int_equal(got.runs[1].count, 256);

  tun_repair_ring r = {0};
  uint8_t wire[32] = {0};
  assert_null(tun_repair_ring_find(&r, 7, 1)); /* off */
  assert_int_equal(tun_repair_ring_enable(&r, 64), 0);
  tun_repair_ring_store(&r, 7, 1, wire, 10, 0xFFFFFFF0u);
  const tun_repair_slot *s = tun_repair_ring_find(&r, 7, 1);
  assert_non_null(s);
  assert_int_equal(s->sent_ms, 0xFFFFFFF0u);
  assert_int_equal(s->resends, 0);
  assert_null(tun_repair_ring_find(&r, 8, 1));                   /* another keypair */
  assert_null(tun_repair_ring_find(&r, 7, 1 + TUN_REPAIR_RING)); /* not that counter */
  size_t len;
  assert_non_null(tun_repair_ring_take(&r, 7, 1, &len));
  assert_int_equal(tun_repair_ring_find(&r, 7, 1)->resends, 1);
  tun_repair_ring_free(&r);
}

/* Random loss comes back in about a round trip; a loss at a full queue comes back after the
 * queue's delay as well. Single late NACKs are not a queue. */
static void test_loss_delay_tells_queue_from_random_loss(void **state) {
  tun_loss_delay d = {0};
  uint32_t now = 1000;
  /* A 12 ms path (handshake): NACKs after 13-20 ms are random loss, and so is a lone late one
   * (a busy loop): its effect on the average fades. */
  for (int i = 0; i < 20; i++) assert_false(tun_loss_delay_congested(&d, 13 + i % 8, now += 5, 12));
  assert_false(tun_loss_delay_congested(&d, 60, now += 5, 12));
  for (int i = 0; i < 10; i++) assert_false(tun_loss_delay_congested(&d, 14, now += 5, 12));
  /* A standing queue of 50 ms: congestion within a few NACKs, for as long as it stands. */
  bool seen = false;
  for (int i = 0; i < 4; i++) seen = tun_loss_delay_congested(&d, 62, now += 5, 12);
  assert_true(seen);
  for (int i = 0; i < 20; i++) assert_true(tun_loss_delay_congested(&d, 110, now += 5, 12));
  assert_int_equal(d.min_ms, 13); /* a queue never lowers the baseline */
  /* It drains: repaired again once the average is back near the path's round trip. */
  for (int i = 0; i < 12; i++) tun_loss_delay_congested(&d, 14, now += 5, 12);
  assert_false(tun_loss_delay_congested(&d, 14, now += 5, 12));

  /* The first losses already behind a queue (slow start overshooting): the handshake's round
   * trip keeps them from becoming the baseline. */
  tun_loss_delay fresh = {0};
  assert_true(tun_loss_delay_congested(&fresh, 80, 5, 12));
  /* Without a handshake figure the first sample is the baseline, until a quieter one comes. */
  tun_loss_delay blind = {0};
  assert_false(tun_loss_delay_congested(&blind, 80, 5, 0));
  for (int i = 0; i < 10; i++) tun_loss_delay_congested(&blind, 10, 6, 0);
  assert_int_equal(blind.min_ms, 10);
  bool queued = false;
  for (int i = 0; i < 4; i++) queued = tun_loss_delay_congested(&blind, 80, 7, 0);
  assert_true(queued);
  /* A long path: the margin grows with it (200 ms of RTT; 150 ms more is jitter, not a queue). */
  tun_loss_delay far = {0};
  assert_false(tun_loss_delay_congested(&far, 210, 5, 200));
  for (int i = 0; i < 10; i++) assert_false(tun_loss_delay_congested(&far, 350, 6, 200));
  for (int i = 0; i < 10; i++) queued = tun_loss_delay_congested(&far, 600, 7, 200);
  assert_true(queued);
  /* A NACK for what was sent before an outage measures no queue: left out of the average. */
  tun_loss_delay outage = {0};
  assert_false(tun_loss_delay_congested(&outage, 14, 5, 12));
  assert_false(tun_loss_delay_congested(&outage, 30000, 30005, 12));
  assert_int_equal(outage.smooth_ms, 14);
  assert_false(tun_loss_delay_congested(&outage, 15, 30006, 12));
  /* The baseline follows the path after the window: a route that became slower for good. */
  tun_loss_delay moved = {0};
  assert_false(tun_loss_delay_congested(&moved, 10, 0, 0));
  for (int i = 0; i < 10; i++) queued = tun_loss_delay_congested(&moved, 60, 100, 0);
  assert_true(queued);
  assert_false(tun_loss_delay_congested(&moved, 60, 100 + TUN_LOSS_DELAY_WINDOW_MS + 1, 0));
  assert_int_equal(moved.min_ms, 60);
}

static uint64_t delivered[64];
static size_t n_delivered;
static tun_nack_run asked[64];
static size_t n_asked;

static void sink(void *ctx, const uint8_t *pkt, size_t len) {
  memcpy(&delivered[n_delivered++], pkt, 8);
}

static void on_nack(void *ctx, uint32_t kp, const tun_nack_run *runs, size_t n) {
  assert_int_equal(kp, 3);
  for (size_t i = 0; i < n; i++) asked[n_asked++] = runs[i];
}

static void in(tun_reorder *r, uint64_t c, uint64_t now) {
  tun_reorder_input(r, 3, c, (const uint8_t *)&c, 8, now);
}

static void test_receiver_stops_waiting_on_giveup(void **state) {
  tun_reorder r;
  tun_reorder_init(&r, 8, sink, on_nack, NULL);
  tun_reorder_set_rtt(&r, 10 * MS);
  tun_reorder_set_repair(&r, true);
  n_delivered = n_asked = 0;
  in(&r, 0, 0);
  in(&r, 3, 1 * MS); /* 1 and 2 missing */
  in(&r, 4, 1 * MS);
  in(&r, 7, 1 * MS); /* 5 and 6 missing */
  tun_reorder_expire(&r, 3 * MS);
  assert_int_equal(n_asked, 2);
  tun_nack_run other = {1, 2};
  tun_reorder_abandon(&r, 4, &other, 1); /* another keypair's: ignored */
  assert_int_equal(n_delivered, 1);
  tun_nack_run gone[2] = {{0, 2}, {6, 1}}; /* 0 was delivered: only 1 is given up */
  tun_reorder_abandon(&r, 3, gone, 2);
  assert_int_equal(n_delivered, 1); /* 2 is still missing: 3 and 4 wait */
  assert_int_equal(r.gaps_given_up, 2);
  in(&r, 2, 4 * MS); /* the resend of 2: out with 3 and 4; 7 waits for 5 */
  assert_int_equal(n_delivered, 4);
  assert_int_equal(delivered[1], 2);
  assert_int_equal(delivered[3], 4);
  in(&r, 6, 4 * MS); /* 6 was given up but was only late: it goes on after all */
  assert_int_equal(n_delivered, 4);
  tun_nack_run five = {5, 1};
  tun_reorder_abandon(&r, 3, &five, 1); /* 5 gone too: 6 and 7 follow at once, nothing held */
  assert_int_equal(n_delivered, 6);
  assert_int_equal(delivered[4], 6);
  assert_int_equal(delivered[5], 7);
  assert_int_equal(r.held, 0);
  assert_int_equal(r.deadline, 0);
  in(&r, 8, 5 * MS); /* and the stream goes on */
  assert_int_equal(n_delivered, 7);
  tun_reorder_free(&r);
}

static void test_receiver_asks_retries_and_gives_up(void **state) {
  tun_reorder r;
  tun_reorder_init(&r, 8, sink, on_nack, NULL);
  tun_reorder_set_rtt(&r, 10 * MS); /* grace 1.25 ms, retry 17 ms */
  tun_reorder_set_repair(&r, true);
  n_delivered = n_asked = 0;
  in(&r, 0, 0);
  in(&r, 3, 1 * MS); /* 1 and 2 missing */
  in(&r, 4, 1 * MS);
  tun_reorder_expire(&r, 2 * MS); /* before the grace: nothing asked */
  assert_int_equal(n_asked, 0);
  tun_reorder_expire(&r, 3 * MS);
  assert_int_equal(n_asked, 1);
  assert_int_equal(asked[0].first, 1);
  assert_int_equal(asked[0].count, 2);
  in(&r, 1, 14 * MS); /* the resend of 1: 0, 1 out; 3, 4 wait for 2 */
  assert_int_equal(n_delivered, 2);
  assert_int_equal(r.repaired, 1);
  tun_reorder_expire(&r, 19 * MS); /* 2 asked again at 3 + 17 ms */
  assert_int_equal(n_asked, 1);
  tun_reorder_expire(&r, 20 * MS);
  assert_int_equal(n_asked, 2);
  assert_int_equal(asked[1].first, 2);
  assert_int_equal(asked[1].count, 1);
  tun_reorder_expire(&r, 38 * MS); /* third and last try (the resend of 1 made the RTT 10.1 ms) */
  assert_int_equal(n_asked, 3);
  tun_reorder_expire(&r, 55 * MS); /* not yet given up: 1 + 1.25 + 3 * 17 + 2 ms */
  assert_int_equal(n_delivered, 2);
  tun_reorder_expire(&r, 56 * MS);
  assert_int_equal(n_delivered, 4);
  assert_int_equal(delivered[2], 3);
  assert_int_equal(delivered[3], 4);
  assert_int_equal(r.gaps_given_up, 1);
  assert_int_equal(r.deadline, 0);
  assert_int_equal(n_asked, 3); /* nothing asked after giving up */
  tun_reorder_free(&r);
}

static void test_without_repair_nothing_is_asked(void **state) {
  tun_reorder r;
  tun_reorder_init(&r, 8, sink, on_nack, NULL);
  n_delivered = n_asked = 0;
  in(&r, 0, 0);
  in(&r, 2, 0);
  tun_reorder_expire(&r, 9 * MS);
  tun_reorder_expire(&r, 10 * MS); /* the 10 ms default hold */
  assert_int_equal(n_asked, 0);
  assert_int_equal(n_delivered, 2);
  tun_reorder_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_messages_round_trip),
      cmocka_unit_test(test_hostile_messages_refused),
      cmocka_unit_test(test_ring_gives_back_what_was_sent),
      cmocka_unit_test(test_ring_grows_with_the_rate),
      cmocka_unit_test(test_cover_follows_the_round_trip),
      cmocka_unit_test(test_giveup_round_trips_and_ring_remembers_when),
      cmocka_unit_test(test_loss_delay_tells_queue_from_random_loss),
      cmocka_unit_test(test_receiver_stops_waiting_on_giveup),
      cmocka_unit_test(test_receiver_asks_retries_and_gives_up),
      cmocka_unit_test(test_without_repair_nothing_is_asked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
