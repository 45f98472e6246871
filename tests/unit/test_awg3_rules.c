/* AmneziaWG 3.x rules that the captures cannot pin down (awg3-obfuscation.md): value syntax,
 * S >= 12 with header protection, content padding range and MTU cap, random-trailer bounds,
 * classification order and trailers, timing-range draws, MaxHandshakeAttempts, and the config
 * keys with their file:line errors. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "awg/awg3_mask.h"
#include "awg/awg3_pad.h"
#include "config/config.h"
#include "det_rng.h"
#include "wg/timers.h"

#define SEC WG_NS_PER_SEC

static void test_value_syntax(void **state) {
  awg3_range r;
  bool b;
  char err[256];
  assert_int_equal(awg3_range_parse("10-100", 65535, &r, err, sizeof err), 0);
  assert_true(r.lo == 10 && r.hi == 100);
  assert_int_equal(awg3_range_parse("7", 65535, &r, err, sizeof err), 0);
  assert_true(r.lo == 7 && r.hi == 7);
  assert_int_equal(awg3_range_parse("0-0", 65535, &r, err, sizeof err), 0);
  assert_false(awg3_range_is_set(r));
  const char *bad[] = {"10-5", "1-2-3", "", "-3", "+5", "1-70000", "a-b", "(off)"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(awg3_range_parse(bad[i], 65535, &r, err, sizeof err), -1);
  assert_int_equal(awg3_bool_parse("ON", &b, err, sizeof err), 0);
  assert_true(b);
  assert_int_equal(awg3_bool_parse("2", &b, err, sizeof err), 0);
  assert_true(b);
  assert_int_equal(awg3_bool_parse("off", &b, err, sizeof err), 0);
  assert_false(b);
  assert_int_equal(awg3_bool_parse("yes", &b, err, sizeof err), -1);
}

static void test_s_at_least_12(void **state) {
  awg3_params p;
  char err[256];
  uint32_t s[4] = {12, 12, 12, 11};
  awg3_params_init(&p);
  assert_int_equal(awg3_params_validate(&p, s, err, sizeof err), 0); /* off: no rule */
  p.header_protection = true;
  assert_int_equal(awg3_params_validate(&p, s, err, sizeof err), -1);
  assert_non_null(strstr(err, "S4 = 11"));
  s[3] = 12;
  assert_int_equal(awg3_params_validate(&p, s, err, sizeof err), 0);
}

static void test_content_padding(void **state) {
  awg_params p;
  det_rng rng;
  size_t padded;
  awg_params_init(&p);
  det_rng_init(&rng, 3);
  assert_false(awg3_transport_padded_len(&p, 36, 1400, 500, &rng.rng, &padded)); /* off */
  p.v3.content_padding = (awg3_range){10, 100};
  size_t lo = SIZE_MAX, hi = 0, odd = 0;
  for (int i = 0; i < 5000; i++) {
    assert_true(awg3_transport_padded_len(&p, 36, 1400, 500, &rng.rng, &padded));
    size_t add = padded - 36;
    lo = add < lo ? add : lo;
    hi = add > hi ? add : hi;
    odd += padded % 16 != 0;
  }
  assert_true(lo == 10 && hi == 100 && odd > 0);
  for (int i = 0; i < 1000; i++) {
    assert_true(awg3_transport_padded_len(&p, 1368, 1400, 500, &rng.rng, &padded));
    assert_true(padded >= 1368 + 10 && padded <= 1400); /* capped at the MTU (spec R30) */
    assert_true(awg3_transport_padded_len(&p, 1400, 1400, 500, &rng.rng, &padded));
    assert_int_equal(padded, 1400);
  }
  awg_params_free(&p);
}

static void test_trailers(void **state) {
  awg_params p;
  det_rng rng;
  size_t padded;
  awg_params_init(&p);
  det_rng_init(&rng, 4);
  p.s[0] = 15, p.s[3] = 23;
  assert_int_equal(awg3_trailer_len(&p.v3, 163, 500, 65536, &rng.rng), 0); /* off */
  p.v3.random_trailers = true;
  size_t hi = 0;
  for (int i = 0; i < 5000; i++) {
    size_t t = awg3_trailer_len(&p.v3, 163, 500, 65536, &rng.rng);
    assert_true(163 + t <= 499); /* spec R38 */
    hi = t > hi ? t : hi;
    /* data trailer (CPA off): datagram below the window (spec R41) */
    assert_true(awg3_transport_padded_len(&p, 84, 1400, 500, &rng.rng, &padded));
    assert_true(23 + 32 + padded <= 499);
  }
  assert_true(hi > 300);
  assert_int_equal(awg3_trailer_len(&p.v3, 500, 500, 65536, &rng.rng), 0); /* W <= base */
  assert_true(awg3_transport_padded_len(&p, 1028, 1400, 500, &rng.rng, &padded));
  assert_int_equal(padded, 1028);
  assert_int_equal(awg3_window_after_send(500, 1083), 1083);
  awg_params_free(&p);
}

/* Classification with trailers and the mask (spec R23, T7): handshake classes first. */
static void test_classify_trailers(void **state) {
  awg_params p;
  uint8_t d[600] = {0};
  const uint8_t *msg;
  size_t len;
  awg_params_init(&p);
  p.s[0] = 15, p.s[1] = 18, p.s[2] = 20, p.s[3] = 23;
  p.h[0] = (awg_hrange){100, 200};
  p.h[3] = (awg_hrange){400, 500};
  d[15] = 150; /* an init type, unmasked (no HP) */
  p.v3.random_trailers = true;
  assert_int_equal(awg3_classify(&p, d, 15 + 148 + 57, &msg, &len, NULL), AWG_MSG_INIT);
  assert_int_equal(len, 148);
  assert_ptr_equal(msg, d + 15);
  p.v3.random_trailers = false;
  assert_int_equal(awg3_classify(&p, d, 15 + 148 + 57, &msg, &len, NULL), AWG_MSG_UNKNOWN);
  /* Transport needs S4 + 32 under AWG 3.x rules. */
  memset(d, 0, sizeof d);
  d[23] = 0x90, d[24] = 1; /* 400 */
  p.v3.random_trailers = true;
  assert_int_equal(awg3_classify(&p, d, 23 + 31, &msg, &len, NULL), AWG_MSG_UNKNOWN);
  assert_int_equal(awg3_classify(&p, d, 23 + 32, &msg, &len, NULL), AWG_MSG_TRANSPORT);
  awg_params_free(&p);
}

/* Timing ranges: each arming draws from the range; MaxHandshakeAttempts M gives M + 2
 * initiations in all (spec R48, R53). */
static void test_timing_ranges(void **state) {
  wg_tunables tun;
  det_rng rng;
  wg_timers t;
  uint64_t d, lo = UINT64_MAX, hi = 0;
  wg_tunables_default(&tun);
  tun.rekey_timeout = 5 * SEC, tun.rekey_timeout_max = 7 * SEC;
  det_rng_init(&rng, 9);
  wg_timers_init(&t, &tun, &rng.rng, 0);
  for (int i = 0; i < 2000; i++) {
    wg_timers_handshake_initiated(&t, 0, false);
    assert_true(wg_timers_next_deadline(&t, &d));
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  assert_true(lo >= 5 * SEC && lo < 5 * SEC + 333 * WG_NS_PER_MS);
  assert_true(hi > 7 * SEC && hi <= 7 * SEC + 333 * WG_NS_PER_MS);
  /* The rate limit takes the range's start. */
  wg_timers_handshake_sent(&t, 0);
  assert_false(wg_timers_may_send_handshake(&t, 5 * SEC - 1));
  assert_true(wg_timers_may_send_handshake(&t, 5 * SEC));
  /* MaxHandshakeAttempts 3: first initiation + 4 retries, then give up. */
  tun.max_retries_min = tun.max_retries_max = 3;
  wg_timers_init(&t, &tun, &rng.rng, 0);
  uint64_t now = 0;
  int initiations = 1;
  wg_timers_handshake_initiated(&t, now, false);
  for (;;) {
    assert_true(wg_timers_next_deadline(&t, &now));
    unsigned acts = wg_timers_expire(&t, now);
    if (acts & WG_ACT_HANDSHAKE_FAILED) break;
    assert_true(acts & WG_ACT_RETRANSMIT);
    initiations++;
    wg_timers_handshake_initiated(&t, now, true);
  }
  assert_int_equal(initiations, 5);
  /* Persistent keepalive range 15-18 */
  wg_tunables_default(&tun);
  wg_timers_init(&t, &tun, &rng.rng, 15 * SEC);
  wg_timers_set_persistent_max(&t, 18 * SEC);
  lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < 500; i++) {
    wg_timers_traversal(&t, 0);
    assert_true(wg_timers_next_deadline(&t, &d));
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  assert_true(lo == 15 * SEC && hi == 18 * SEC);
}

static int load_text(const char *text, diag_list *d, app_config *c) {
  config_init(c);
  return config_load_buffer(c, text, strlen(text), "t.conf", d);
}

#define IFACE     \
  "[Interface]\n" \
  "PrivateKey = aALScq1UUlZ4ar8rgM5uB2Fdo+qVCLxxNRxpPvmSGHA=\nAddress = 10.8.0.2/32\n"

static void expect_error(const char *text, int line, const char *needle) {
  diag_list d = {0};
  app_config c;
  assert_int_not_equal(load_text(text, &d, &c), 0);
  bool found = false;
  for (size_t i = 0; i < d.n; i++)
    if (d.items[i].kind == DIAG_ERROR && d.items[i].line == line && strstr(d.items[i].msg, needle))
      found = true;
  if (!found) {
    diag_list_print(&d, "t.conf", stderr);
    fail_msg("no error at line %d containing '%s'", line, needle);
  }
  diag_list_free(&d);
  config_free(&c);
}

static void test_config_keys(void **state) {
  diag_list d = {0};
  app_config c;
  int rc = load_text(IFACE
                     "S1 = 12\nS2 = 13\nS3 = 14\nS4 = 15\n"
                     "HeaderProtectionKey = OIcXEdGZOmb/Z2nMwtfCxLUYBbe1hH4YjQHOC0uk33c=\n"
                     "ContentPaddingAddition = 10-100\nRandomTrailers = on\nDisableCookies = 1\n"
                     "RekeyAfterTime = 100-120\nRekeyTimeout = 5-7\nRejectAfterTime = 170-180\n"
                     "KeepaliveTimeout = 8-10\nMaxHandshakeAttempts = 3-5\n",
                     &d, &c);
  if (rc) diag_list_print(&d, "t.conf", stderr);
  assert_int_equal(rc, 0);
  const awg3_params *v3 = &c.awg.v3;
  assert_true(v3->header_protection && v3->random_trailers && v3->disable_cookies);
  assert_true(v3->content_padding.lo == 10 && v3->content_padding.hi == 100);
  assert_true(v3->rekey_timeout.lo == 5 && v3->rekey_timeout.hi == 7);
  assert_true(v3->max_handshake_attempts.lo == 3 && v3->max_handshake_attempts.hi == 5);
  assert_false(awg_params_is_plain(&c.awg));
  diag_list_free(&d);
  config_free(&c);
  /* An all-zero key is "off", as amneziawg reads it. */
  load_text(IFACE "HeaderProtectionKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", &d, &c);
  assert_false(c.awg.v3.header_protection);
  assert_true(awg_params_is_plain(&c.awg));
  diag_list_free(&d);
  config_free(&c);
  expect_error(IFACE
               "S1 = 12\nS2 = 12\nS3 = 5\nS4 = 12\n"
               "HeaderProtectionKey = OIcXEdGZOmb/Z2nMwtfCxLUYBbe1hH4YjQHOC0uk33c=\n",
               6, "S3 = 5");
  expect_error(IFACE "HeaderProtectionKey = OIcXEdGZOmb/Z2nMwtfCxLUYBbe1hH4YjQHOC0uk33c=\n", 4,
               "S1 = 0");
  expect_error(IFACE "HeaderProtectionKey = not-base64\n", 4, "base64");
  expect_error(IFACE "ContentPaddingAddition = 100-10\n", 4, "below the start");
  expect_error(IFACE "RandomTrailers = maybe\n", 4, "on/off");
  expect_error(IFACE "RekeyTimeout = 0-5\n", 4, "starts at 0");
  expect_error(IFACE "MaxHandshakeAttempts = 5000\n", 4, "maximum");
  expect_error(IFACE
               "\n[Peer]\nPublicKey = rE/pULA/YLvAJT8cLCE9wbA7hdptmGF0K/HoyT9JI2o=\n"
               "AllowedIPs = 10.0.0.2/32\nPersistentKeepalive = 20-10\n",
               8, "below the start");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_value_syntax),      cmocka_unit_test(test_s_at_least_12),
      cmocka_unit_test(test_content_padding),   cmocka_unit_test(test_trailers),
      cmocka_unit_test(test_classify_trailers), cmocka_unit_test(test_timing_ranges),
      cmocka_unit_test(test_config_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
