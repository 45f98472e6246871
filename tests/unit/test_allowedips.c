#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

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

/* The cached lookup answers as the walk does, through inserts, replacements and removals that
 * happen between lookups of the same addresses (a stale cached answer would show). Addresses come
 * from a small pool so that most lookups hit the cache; v4 and v6 addresses share first bytes. */
static void test_cached_agrees_with_walk(void **st) {
  (void)st;
  allowedips t;
  allowedips_init(&t);
  static int vals[8];
  uint8_t pool[48][16];
  srand(7);
  for (int i = 0; i < 48; i++)
    for (int k = 0; k < 16; k++) pool[i][k] = (uint8_t)(k < 2 ? 10 : rand() % 4);
  size_t hits_possible = 0;
  for (int round = 0; round < 300; round++) {
    int op = rand() % 3, fam = rand() % 2 ? AF_INET : AF_INET6;
    const uint8_t *a = pool[rand() % 48];
    if (op == 0 || op == 1) {
      unsigned maxbits = fam == AF_INET ? 32 : 128;
      uint8_t prefix = (uint8_t)(8 + rand() % (maxbits - 7));
      assert_int_equal(allowedips_insert(&t, fam, a, prefix, &vals[rand() % 8]), 0);
    } else {
      allowedips_remove_value(&t, &vals[rand() % 8]);
    }
    for (int q = 0; q < 96; q++) {
      int f = q % 2 ? AF_INET : AF_INET6;
      const uint8_t *x = pool[q / 2];
      void *walk = allowedips_lookup(&t, f, x);
      assert_ptr_equal(allowedips_lookup_cached(&t, f, x), walk);
      assert_ptr_equal(allowedips_lookup_cached(&t, f, x), walk); /* now from the cache */
      hits_possible++;
    }
  }
  assert_true(hits_possible > 0);
  allowedips_free(&t);
}

/* An IPv4 address and an IPv6 address with the same first four bytes are different keys. */
static void test_cached_families_apart(void **st) {
  (void)st;
  allowedips t;
  allowedips_init(&t);
  uint8_t a4[4], a6[16] = {0};
  v4("10.1.2.3", a4);
  memcpy(a6, a4, 4);
  assert_int_equal(allowedips_insert(&t, AF_INET, a4, 32, &A), 0);
  assert_int_equal(allowedips_insert(&t, AF_INET6, a6, 128, &B), 0);
  assert_ptr_equal(allowedips_lookup_cached(&t, AF_INET, a4), &A);
  assert_ptr_equal(allowedips_lookup_cached(&t, AF_INET6, a6), &B);
  assert_ptr_equal(allowedips_lookup_cached(&t, AF_INET, a4), &A);
  allowedips_remove_value(&t, &A);
  assert_null(allowedips_lookup_cached(&t, AF_INET, a4));
  assert_ptr_equal(allowedips_lookup_cached(&t, AF_INET6, a6), &B);
  allowedips_free(&t);
  assert_null(allowedips_lookup_cached(&t, AF_INET6, a6)); /* free empties the cache too */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_longest_prefix_v4),
      cmocka_unit_test(test_host_bits_ignored_and_replace),
      cmocka_unit_test(test_v6),
      cmocka_unit_test(test_cached_agrees_with_walk),
      cmocka_unit_test(test_cached_families_apart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
