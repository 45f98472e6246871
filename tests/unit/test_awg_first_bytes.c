/* Accidental labels (src/awg/first_bytes.c): the rules recognise real first packets of RTP,
 * RTCP, STUN, DTLS, QUIC, WireGuard and Skype/Teams, and 100,000 screened prefixes and junk
 * packets, as the sender draws them, pass none of them (unscreened random bytes do, ~1 in 200). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "awg/first_bytes.h"
#include "util/rng.h"

static void test_rules_recognise_real_first_packets(void **state) {
  uint8_t rtp[172] = {0x80, 0x00, 0x12, 0x34}; /* version 2, PCMU */
  assert_true(awg_first_bytes_match(rtp, sizeof rtp));
  uint8_t rtp_dyn[60] = {0x80, 0xE0}; /* marker bit, dynamic type 96 */
  assert_true(awg_first_bytes_match(rtp_dyn, sizeof rtp_dyn));
  uint8_t rtcp[28] = {0x81, 0xC8, 0x00, 0x06}; /* sender report */
  assert_true(awg_first_bytes_match(rtcp, sizeof rtcp));
  uint8_t stun[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
  assert_true(awg_first_bytes_match(stun, sizeof stun));
  uint8_t stun_classic[28] = {0x00, 0x01, 0x00, 0x08};
  assert_true(awg_first_bytes_match(stun_classic, sizeof stun_classic));
  uint8_t dtls[100] = {0x16, 0xFE, 0xFD};
  assert_true(awg_first_bytes_match(dtls, sizeof dtls));
  uint8_t quic[1200] = {0xC3, 0x00, 0x00, 0x00, 0x01};
  assert_true(awg_first_bytes_match(quic, sizeof quic));
  uint8_t wg[148] = {0x01, 0x00, 0x00, 0x00};
  assert_true(awg_first_bytes_match(wg, sizeof wg));
  uint8_t skype[60] = {0x0f, 0xb4, 0x02, 0x7c}; /* what nDPI took for Skype/Teams */
  assert_true(awg_first_bytes_match(skype, sizeof skype));
  uint8_t other[64] = {0x45, 0x17, 0x99, 0x02, 0x11};
  assert_false(awg_first_bytes_match(other, sizeof other));
}

/* Datagram lengths the sender makes: prefix + handshake message, junk of Jmin..Jmax. */
static void test_screened_bytes_match_nothing(void **state) {
  const rng_source *rng = rng_fast();
  uint8_t d[1500];
  size_t plain_hits = 0;
  for (int i = 0; i < 100000; i++) {
    size_t len = 20 + (size_t)(i % 1200);
    size_t prefix = 8 + (size_t)(i % 57); /* S1..S4 of 8..64 bytes */
    memset(d, 0, sizeof d);
    rng_bytes(rng, d, len);
    if (awg_first_bytes_match(d, len)) plain_hits++;
    awg_fill_screened(rng, d, prefix, len); /* an S prefix in front of the rest */
    assert_false(awg_first_bytes_match(d, len));
    awg_fill_screened(rng, d, len, len); /* a junk packet */
    assert_false(awg_first_bytes_match(d, len));
  }
  /* the screen has something to do: random bytes alone hit the rules now and then */
  assert_true(plain_hits > 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rules_recognise_real_first_packets),
      cmocka_unit_test(test_screened_bytes_match_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
