/* The one's-complement sum (src/util/inet_sum.h) against a plain RFC 1071 loop over big-endian
 * words, at every alignment and length up to past a jumbo segment, with all-ones data (the
 * carries) and random data; and lwIP's entry (lwip_port_chksum) against the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdlib.h>

#include "util/inet_sum.h"

unsigned short lwip_port_chksum(const void *data, int len);

/* RFC 1071 as written: 16-bit big-endian words, an odd byte padded with zero, folded. */
static uint16_t reference(const uint8_t *p, size_t n) {
  uint32_t acc = 0;
  for (size_t i = 0; i + 1 < n; i += 2) acc += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) acc += (uint32_t)p[n - 1] << 8;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

/* Native-order sum as big-endian (RFC 1071's byte-order independence). Both ones-complement
 * zeros (0 and 0xffff) are the same number. */
static void assert_same_sum(uint16_t native, uint16_t ref) {
  uint16_t be = ntohs(native);
  if (be == 0xffff) be = 0;
  if (ref == 0xffff) ref = 0;
  assert_int_equal(be, ref);
}

static void check_all(const uint8_t *buf, size_t max) {
  for (size_t off = 0; off < 8; off++) {
    for (size_t n = 0; n + off <= max; n += n < 100 ? 1 : 37) {
      uint16_t ref = reference(buf + off, n);
      assert_same_sum(inet_sum_fold(inet_sum_add(0, buf + off, n)), ref);
      assert_same_sum(lwip_port_chksum(buf + off, (int)n), ref);
    }
  }
}

static void test_random_data(void **st) {
  (void)st;
  static uint8_t buf[9100];
  srand(7);
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rand();
  check_all(buf, sizeof buf);
}

static void test_all_ones_carry(void **st) {
  (void)st;
  static uint8_t buf[66000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0xff;
  assert_same_sum(inet_sum_fold(inet_sum_add(0, buf, sizeof buf)), reference(buf, sizeof buf));
  check_all(buf, 3000);
}

/* A checksum stored with memcpy makes the whole sum 0xffff, whatever the byte order. */
static void test_stored_checksum_verifies(void **st) {
  (void)st;
  uint8_t pkt[101];
  for (size_t i = 0; i < sizeof pkt; i++) pkt[i] = (uint8_t)(i * 31 + 5);
  pkt[10] = pkt[11] = 0;
  uint16_t ck = inet_sum_checksum(inet_sum_add(0, pkt, sizeof pkt));
  memcpy(pkt + 10, &ck, sizeof ck);
  assert_int_equal(reference(pkt, sizeof pkt), 0xffff);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_data),
      cmocka_unit_test(test_all_ones_carry),
      cmocka_unit_test(test_stored_checksum_verifies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
