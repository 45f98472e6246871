/* WireGuard timers and rekey rules (src/wg/timers, peer) driven with injected time: handshake
 * retransmission and give-up, passive keepalive, "no reply" new handshake, key zeroing,
 * persistent keepalive, rekey/reject after time and messages, last-minute rekey, the
 * REKEY_TIMEOUT rate limit, jitter bounds, and fast tunables. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "det_rng.h"
#include "wg/messages.h"
#include "wg/timers.h"
#include "wg_pair.h"

#define SEC WG_NS_PER_SEC
#define MS WG_NS_PER_MS

static const char DATA[] = "0123456789abcdef0123456789";

static uint64_t deadline(const wg_peer *p) {
  uint64_t d = 0;
  assert_true(wg_peer_next_deadline(p, &d));
  return d;
}

static void test_jitter_bounds(void **state) {
  wg_tunables tun;
  det_rng rng;
  wg_timers t;
  uint64_t d, lo = UINT64_MAX, hi = 0;
  wg_tunables_default(&tun);
  det_rng_init(&rng, 5);
  wg_timers_init(&t, &tun, &rng.rng, 0);
  assert_false(wg_timers_next_deadline(&t, &d));
  for (int i = 0; i < 2000; i++) {
    wg_timers_handshake_initiated(&t, 0, false);
    assert_true(wg_timers_next_deadline(&t, &d));
    assert_true(d >= 5 * SEC && d <= 5 * SEC + 333 * MS);
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  assert_true(hi - lo > 300 * MS); /* the jitter is actually spread */
  wg_timers_stop(&t);
  assert_false(wg_timers_next_deadline(&t, &d));
}

/* No response: retransmit every REKEY_TIMEOUT(+jitter), 20 attempts in all, then give up and
 * schedule key zeroing. */
static void test_retransmit_and_give_up(void **state) {
  wg_pair p;
  uint8_t init[148];
  unsigned acts;
  int sent = 1, failed = 0;
  wg_pair_init(&p, NULL, NULL);
  uint64_t start = p.now;
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  while (!failed) {
    uint64_t d = deadline(&p.a_b);
    assert_true(d >= p.now + 5 * SEC && d <= p.now + 5 * SEC + 333 * MS);
    assert_int_equal(wg_peer_poll(&p.a_b, d - 1), 0);
    p.now = d;
    acts = wg_peer_poll(&p.a_b, p.now);
    if (acts & WG_ACT_HANDSHAKE_FAILED) {
      failed = 1;
    } else {
      assert_int_equal(acts, WG_ACT_RETRANSMIT);
      assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, true, init), WG_OK);
      sent++;
    }
  }
  assert_int_equal(sent, 20);
  assert_true(p.now - start >= 100 * SEC && p.now - start <= 100 * SEC + 20 * 333 * MS);
  /* Key material is zeroed 3 * REJECT_AFTER_TIME after giving up. */
  assert_int_equal(deadline(&p.a_b), p.now + 540 * SEC);
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 540 * SEC), WG_ACT_ZERO_KEYS);
  assert_int_equal(p.a_b.hs.state, WG_HS_ZEROED);
  wg_pair_free(&p);
}

static void test_rate_limit(void **state) {
  wg_pair p;
  uint8_t init[148];
  wg_pair_init(&p, NULL, NULL);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now + 5 * SEC - 1, p.wall, false, init),
                   WG_ERR_RATE_LIMITED);
  assert_int_equal(
      wg_peer_create_initiation(&p.a_b, 1, p.now + 5 * SEC, p.wall + 5 * SEC, false, init), WG_OK);
  wg_pair_free(&p);
}

static void test_complete_cancels_retransmit(void **state) {
  wg_pair p;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  assert_false(p.a_b.timers.armed[WG_TIMER_RETRANSMIT]);
  assert_int_equal(p.a_b.timers.handshake_attempts, 0);
  /* Only key zeroing remains armed on the initiator. */
  assert_int_equal(deadline(&p.a_b), p.now + 540 * SEC);
  wg_pair_free(&p);
}

/* B gets data and sends nothing back for KEEPALIVE_TIMEOUT: it must send a keepalive. */
static void test_passive_keepalive(void **state) {
  wg_pair p;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, sizeof DATA, p.now), WG_OK);
  assert_int_equal(deadline(&p.b_a), p.now + 10 * SEC);
  assert_int_equal(wg_peer_poll(&p.b_a, p.now + 10 * SEC - 1), 0);
  assert_int_equal(wg_peer_poll(&p.b_a, p.now + 10 * SEC), WG_ACT_SEND_KEEPALIVE);
  /* If B answers with anything, no keepalive is due. */
  p.now += 20 * SEC;
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, sizeof DATA, p.now), WG_OK);
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, DATA, 5, p.now + SEC), WG_OK);
  assert_int_equal(wg_peer_poll(&p.b_a, p.now + 10 * SEC), 0);
  /* Data arriving while the timer runs asks for one more keepalive period afterwards. */
  p.now += 20 * SEC;
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, sizeof DATA, p.now), WG_OK);
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, 3, p.now + SEC), WG_OK);
  assert_int_equal(wg_peer_poll(&p.b_a, p.now + 10 * SEC), WG_ACT_SEND_KEEPALIVE);
  assert_int_equal(deadline(&p.b_a), p.now + 20 * SEC);
  wg_pair_free(&p);
}

/* A sends data and hears nothing for KEEPALIVE + REKEY_TIMEOUT (+jitter): new handshake. */
static void test_new_handshake_after_silence(void **state) {
  wg_pair p;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, sizeof DATA, p.now), WG_OK);
  uint64_t d = deadline(&p.a_b);
  assert_true(d >= p.now + 15 * SEC && d <= p.now + 15 * SEC + 333 * MS);
  assert_int_equal(wg_peer_poll(&p.a_b, d), WG_ACT_INITIATE);
  /* With a reply in time, nothing happens. */
  p.now = d + SEC;
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, sizeof DATA, p.now), WG_OK);
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, NULL, 0, p.now + 3 * SEC), WG_OK);
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 16 * SEC), 0);
  wg_pair_free(&p);
}

static void test_zero_keys(void **state) {
  wg_pair p;
  uint8_t buf[64];
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  wg_keypair *kp = p.a_b.current;
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 540 * SEC), WG_ACT_ZERO_KEYS);
  assert_null(p.a_b.current);
  assert_false(kp->live);
  /* The keyed contexts are freed (their key material wiped by the backend). */
  assert_null(kp->send_aead);
  assert_null(kp->recv_aead);
  assert_int_equal(p.a.index.count, 0);
  assert_int_equal(wg_peer_encrypt(&p.a_b, 4, buf, 0, 0, p.now + 540 * SEC), WG_ERR_NO_SESSION);
  wg_pair_free(&p);
}

static void test_persistent_keepalive(void **state) {
  wg_pair p;
  wg_pair_init(&p, NULL, NULL);
  wg_timers_set_persistent(&p.a_b.timers, 25 * SEC, p.now);
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 25 * SEC), WG_ACT_SEND_KEEPALIVE);
  wg_pair_handshake(&p, true);
  /* Every authenticated packet either way pushes it back (a keepalive here, so that no passive
   * keepalive is due). */
  p.now += 20 * SEC;
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, NULL, 0, p.now), WG_OK);
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 25 * SEC - 1) & WG_ACT_SEND_KEEPALIVE, 0);
  assert_true(wg_peer_poll(&p.a_b, p.now + 25 * SEC) & WG_ACT_SEND_KEEPALIVE);
  wg_timers_set_persistent(&p.a_b.timers, 0, p.now);
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 100 * SEC) & WG_ACT_SEND_KEEPALIVE, 0);
  wg_pair_free(&p);
}

/* Only the initiator rekeys after REKEY_AFTER_TIME; nobody sends after REJECT_AFTER_TIME. */
static void test_rekey_and_reject_after_time(void **state) {
  wg_pair p;
  uint8_t buf[128], old[128];
  size_t n, pt_len;
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  uint64_t born = p.now;
  n = wg_pair_seal(&p.a_b, 4, DATA, 5, born + 119 * SEC, old, sizeof old);
  assert_int_equal(wg_peer_poll(&p.a_b, born + 119 * SEC) & WG_ACT_INITIATE, 0);
  wg_pair_seal(&p.a_b, 4, DATA, 5, born + 120 * SEC, buf, sizeof buf);
  assert_true(wg_peer_poll(&p.a_b, born + 120 * SEC) & WG_ACT_INITIATE);
  wg_pair_seal(&p.b_a, 4, DATA, 5, born + 120 * SEC, buf, sizeof buf);
  assert_int_equal(wg_peer_poll(&p.b_a, born + 120 * SEC) & WG_ACT_INITIATE, 0);
  /* At 180 s the session is dead both ways. */
  assert_int_equal(wg_peer_encrypt(&p.b_a, 4, buf, 0, 0, born + 180 * SEC), WG_ERR_NO_SESSION);
  assert_true(wg_peer_poll(&p.b_a, born + 180 * SEC) & WG_ACT_INITIATE);
  assert_int_equal(wg_device_decrypt(&p.b, old, n, born + 180 * SEC, &got, &pt_len),
                   WG_ERR_EXPIRED);
  wg_pair_free(&p);
}

/* The initiator receiving on a session near REJECT_AFTER_TIME - KEEPALIVE - REKEY_TIMEOUT
 * starts a new handshake, once. */
static void test_last_minute_rekey(void **state) {
  wg_pair p;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  uint64_t born = p.now;
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, DATA, 4, born + 164 * SEC), WG_OK);
  assert_int_equal(wg_peer_poll(&p.a_b, born + 164 * SEC) & WG_ACT_INITIATE, 0);
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, DATA, 4, born + 165 * SEC), WG_OK);
  assert_true(wg_peer_poll(&p.a_b, born + 165 * SEC) & WG_ACT_INITIATE);
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, DATA, 4, born + 166 * SEC), WG_OK);
  assert_int_equal(wg_peer_poll(&p.a_b, born + 166 * SEC) & WG_ACT_INITIATE, 0);
  /* The responder does not. */
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, 4, born + 170 * SEC), WG_OK);
  assert_int_equal(wg_peer_poll(&p.b_a, born + 170 * SEC) & WG_ACT_INITIATE, 0);
  wg_pair_free(&p);
}

static void test_rekey_and_reject_after_messages(void **state) {
  wg_tunables tun;
  wg_pair p;
  uint8_t buf[64];
  wg_tunables_default(&tun);
  tun.rekey_after_messages = 5;
  tun.reject_after_messages = 10;
  wg_pair_init(&p, NULL, &tun);
  wg_pair_handshake(&p, true); /* the confirming keepalive used counter 0 */
  for (int i = 1; i < 5; i++) wg_pair_seal(&p.a_b, 4, NULL, 0, p.now, buf, sizeof buf);
  assert_int_equal(wg_peer_poll(&p.a_b, p.now) & WG_ACT_INITIATE, 0);
  wg_pair_seal(&p.a_b, 4, NULL, 0, p.now, buf, sizeof buf); /* counter 5 */
  wg_pair_seal(&p.a_b, 4, NULL, 0, p.now, buf, sizeof buf); /* counter 6 > 5 */
  assert_true(wg_peer_poll(&p.a_b, p.now) & WG_ACT_INITIATE);
  /* Rekeying on messages applies to the responder too. */
  for (int i = 0; i < 7; i++) wg_pair_seal(&p.b_a, 4, NULL, 0, p.now, buf, sizeof buf);
  assert_true(wg_peer_poll(&p.b_a, p.now) & WG_ACT_INITIATE);
  for (int i = 7; i < 10; i++) wg_pair_seal(&p.a_b, 4, NULL, 0, p.now, buf, sizeof buf);
  assert_false(wg_peer_can_send(&p.a_b, p.now));
  assert_int_equal(wg_peer_encrypt(&p.a_b, 4, buf, 0, 0, p.now), WG_ERR_NO_SESSION);
  wg_pair_free(&p);
}

/* All constants scaled down (as integration tests do): the same machine runs in milliseconds. */
static void test_fast_tunables(void **state) {
  wg_tunables tun;
  wg_pair p;
  uint8_t init[148];
  wg_tunables_default(&tun);
  tun.rekey_after_time = 1200 * MS;
  tun.reject_after_time = 1800 * MS;
  tun.rekey_attempt_time = 900 * MS;
  tun.rekey_timeout = 50 * MS;
  tun.rekey_jitter_max = 3 * MS;
  tun.keepalive_timeout = 100 * MS;
  tun.initiation_min_interval = 0;
  assert_int_equal(wg_tunables_max_handshake_retries(&tun), 18);
  wg_pair_init(&p, NULL, &tun);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  uint64_t d = deadline(&p.a_b);
  assert_true(d >= p.now + 50 * MS && d <= p.now + 53 * MS);
  assert_int_equal(wg_peer_poll(&p.a_b, d), WG_ACT_RETRANSMIT);
  p.now = d;
  p.wall += SEC;
  wg_pair_handshake(&p, true);
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, DATA, 8, p.now), WG_OK);
  assert_int_equal(wg_peer_poll(&p.b_a, p.now + 100 * MS), WG_ACT_SEND_KEEPALIVE);
  wg_pair_seal(&p.a_b, 4, NULL, 0, p.now + 1200 * MS, init, sizeof init);
  assert_true(wg_peer_poll(&p.a_b, p.now + 1200 * MS) & WG_ACT_INITIATE);
  assert_false(wg_peer_can_send(&p.a_b, p.now + 1800 * MS));
  assert_int_equal(wg_peer_poll(&p.a_b, p.now + 5400 * MS) & WG_ACT_ZERO_KEYS, WG_ACT_ZERO_KEYS);
  wg_pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jitter_bounds),
      cmocka_unit_test(test_retransmit_and_give_up),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_complete_cancels_retransmit),
      cmocka_unit_test(test_passive_keepalive),
      cmocka_unit_test(test_new_handshake_after_silence),
      cmocka_unit_test(test_zero_keys),
      cmocka_unit_test(test_persistent_keepalive),
      cmocka_unit_test(test_rekey_and_reject_after_time),
      cmocka_unit_test(test_last_minute_rekey),
      cmocka_unit_test(test_rekey_and_reject_after_messages),
      cmocka_unit_test(test_fast_tunables),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
