/* util/bytes.h (byte-order loads and stores) and util/addr_fmt.h (the one address formatter). */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "util/addr_fmt.h"
#include "util/sockaddr.h"
#include "util/bytes.h"

static void test_byte_order(void **state) {
  (void)state;
  const uint8_t b[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  assert_int_equal(be16_load(b), 0x0102);
  assert_int_equal(be32_load(b), 0x01020304);
  assert_true(be64_load(b) == 0x0102030405060708ull);
  assert_int_equal(le32_load(b), 0x04030201);
  assert_true(le64_load(b) == 0x0807060504030201ull);
  uint8_t o[8];
  be16_store(o, 0xA1B2);
  assert_memory_equal(o, "\xA1\xB2", 2);
  be32_store(o, 0xA1B2C3D4);
  assert_memory_equal(o, "\xA1\xB2\xC3\xD4", 4);
  be64_store(o, 0x0102030405060708ull);
  assert_memory_equal(o, b, 8);
  le32_store(o, 0x04030201);
  assert_memory_equal(o, b, 4);
  le64_store(o, 0x0807060504030201ull);
  assert_memory_equal(o, b, 8);
  /* Unaligned. */
  uint8_t u[9] = {0xFF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  assert_true(be64_load(u + 1) == 0x0102030405060708ull);
}

static void test_addr_format(void **state) {
  (void)state;
  char buf[ADDR_FMT_LEN];
  const uint8_t v4[4] = {192, 0, 2, 1};
  uint8_t v6[16];
  inet_pton(AF_INET6, "2001:db8::1", v6);
  addr_format(AF_INET, v4, 443, buf, sizeof buf);
  assert_string_equal(buf, "192.0.2.1:443");
  addr_format(AF_INET6, v6, 8080, buf, sizeof buf);
  assert_string_equal(buf, "[2001:db8::1]:8080");
  addr_format(0, NULL, 1, buf, sizeof buf);
  assert_string_equal(buf, "?:1");
  uint8_t v6max[16];
  memset(v6max, 0xFF, sizeof v6max);
  v6max[10] = 0xFE; /* no :: shortening, no IPv4 tail: the longest text */
  addr_format(AF_INET6, v6max, 65535, buf, sizeof buf);
  assert_int_equal(strlen(buf), strlen("[ffff:ffff:ffff:ffff:ffff:feff:ffff:ffff]:65535"));

  struct sockaddr_storage ss = {0};
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(51820);
  memcpy(&s6->sin6_addr, v6, 16);
  addr_format_sockaddr(&ss, buf, sizeof buf);
  assert_string_equal(buf, "[2001:db8::1]:51820");

  addr_format_host("example.org", 80, buf, sizeof buf);
  assert_string_equal(buf, "example.org:80");
  addr_format_host("::1", 1080, buf, sizeof buf);
  assert_string_equal(buf, "[::1]:1080");
  char small[6];
  addr_format_host("example.org", 80, small, sizeof small);
  assert_string_equal(small, "examp"); /* a prefix, terminated */
}

static void test_sockaddr(void **state) {
  (void)state;
  const uint8_t v4[4] = {192, 0, 2, 1}, v4b[4] = {192, 0, 2, 2};
  uint8_t v6[16];
  inet_pton(AF_INET6, "2001:db8::1", v6);
  struct sockaddr_storage a, b, c;
  assert_int_equal(sockaddr_make(&a, AF_INET, v4, 443), sizeof(struct sockaddr_in));
  assert_int_equal(sockaddr_len((struct sockaddr *)&a), sizeof(struct sockaddr_in));
  assert_int_equal(((struct sockaddr_in *)&a)->sin_port, htons(443));
  assert_int_equal(sockaddr_port((struct sockaddr *)&a), 443);
  sockaddr_set_port((struct sockaddr *)&a, 65535);
  assert_int_equal(sockaddr_port((struct sockaddr *)&a), 65535);
  size_t n;
  assert_memory_equal(sockaddr_ip((struct sockaddr *)&a, &n), v4, 4);
  assert_int_equal(n, 4);

  assert_int_equal(sockaddr_make(&b, AF_INET6, v6, 51820), sizeof(struct sockaddr_in6));
  assert_int_equal(sockaddr_port((struct sockaddr *)&b), 51820);
  assert_memory_equal(&((struct sockaddr_in6 *)&b)->sin6_addr, v6, 16);
  assert_false(sockaddr_same_host((struct sockaddr *)&a, (struct sockaddr *)&b));
  sockaddr_make(&c, AF_INET6, v6, 1); /* another port, the same host */
  assert_true(sockaddr_same_host((struct sockaddr *)&b, (struct sockaddr *)&c));
  sockaddr_make(&c, AF_INET, v4b, 443);
  assert_false(sockaddr_same_host((struct sockaddr *)&a, (struct sockaddr *)&c));

  sockaddr_make(&c, AF_INET6, NULL, 7); /* the wildcard */
  const uint8_t zero[16] = {0};
  assert_memory_equal(&((struct sockaddr_in6 *)&c)->sin6_addr, zero, 16);

  memset(&c, 0, sizeof c);
  c.ss_family = AF_UNIX; /* neither family: no port, no address, no length */
  assert_int_equal(sockaddr_port((struct sockaddr *)&c), 0);
  assert_null(sockaddr_ip((struct sockaddr *)&c, &n));
  assert_int_equal(n, 0);
  assert_int_equal(sockaddr_len((struct sockaddr *)&c), 0);
  assert_false(sockaddr_same_host((struct sockaddr *)&c, (struct sockaddr *)&c));
  sockaddr_set_port((struct sockaddr *)&c, 9);
  assert_int_equal(sockaddr_port((struct sockaddr *)&c), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_byte_order),
                                     cmocka_unit_test(test_addr_format),
                                     cmocka_unit_test(test_sockaddr)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
