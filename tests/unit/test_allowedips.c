#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "device/allowedips.h"

static int A, B, C, D;

static void v4(const char *s, uint8_t out[4]) { assert_int_equal(inet_pton(AF_INET, s, out), 1); }
static void v6(const char *s, uint8_t out[16]) { assert_int_equal(inet_pton(AF_INET6, s, out), 1); }

static void *look4(allowedips *t, const char *s) {
  uint8_t a[4];
  v4(s, a);
  return allowedips_lookup(t, AF_INET, a);
}
static void *look6(allowedips *t, const char *s) {
  uint8_t a[16];
  v6(s, a);
  return allowedips_lookup(t, AF_INET6, a);
}

static void test_longest_prefix_v4(void **st) {
  allowedips t;
  allowedips_init(&t);
  uint8_t a[4];
  v4("0.0.0.0", a);
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 0, &A), 0);
  v4("10.0.0.0", a);
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 8, &B), 0);
  v4("10.1.2.0", a);
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 24, &C), 0);
  v4("10.1.2.3", a);
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 32, &D), 0);
  assert_ptr_equal(look4(&t, "8.8.8.8"), &A);
  assert_ptr_equal(look4(&t, "10.9.9.9"), &B);
  assert_ptr_equal(look4(&t, "10.1.2.4"), &C);
  assert_ptr_equal(look4(&t, "10.1.2.3"), &D);
  assert_null(look6(&t, "::1"));
  allowedips_remove_value(&t, &C);
  assert_ptr_equal(look4(&t, "10.1.2.4"), &B);
  assert_ptr_equal(look4(&t, "10.1.2.3"), &D);
  assert_int_equal(t.count, 3);
  allowedips_free(&t);
}

static void test_host_bits_ignored_and_replace(void **st) {
  allowedips t;
  allowedips_init(&t);
  uint8_t a[4];
  v4("192.168.1.77", a); /* host bits set: only the first 16 bits count */
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 16, &A), 0);
  assert_ptr_equal(look4(&t, "192.168.200.1"), &A);
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 16, &B), 0);
  assert_ptr_equal(look4(&t, "192.168.200.1"), &B);
  assert_int_equal(t.count, 1);
  assert_null(look4(&t, "192.169.0.1"));
  assert_int_equal(allowedips_insert(&t, AF_INET, a, 33, &B), -1);
  allowedips_free(&t);
}

static void test_v6(void **st) {
  allowedips t;
  allowedips_init(&t);
  uint8_t a[16];
  v6("::", a);
  assert_int_equal(allowedips_insert(&t, AF_INET6, a, 0, &A), 0);
  v6("fd00::", a);
  assert_int_equal(allowedips_insert(&t, AF_INET6, a, 64, &B), 0);
  v6("fd00::2", a);
  assert_int_equal(allowedips_insert(&t, AF_INET6, a, 128, &C), 0);
  assert_ptr_equal(look6(&t, "2001:db8::1"), &A);
  assert_ptr_equal(look6(&t, "fd00::3"), &B);
  assert_ptr_equal(look6(&t, "fd00::2"), &C);
  assert_null(look4(&t, "1.2.3.4"));
  allowedips_remove_value(&t, &A);
  assert_null(look6(&t, "2001:db8::1"));
  allowedips_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_longest_prefix_v4),
      cmocka_unit_test(test_host_bits_ignored_and_replace),
      cmocka_unit_test(test_v6),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
