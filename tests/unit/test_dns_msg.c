/* DNS message building and parsing (src/dns/dns_msg.c), the ordinary cases: queries checked byte
 * for byte, name validity, and well-formed responses built by hand (tests/unit/support/
 * dns_msg_fixture.h) carrying answers: A/AAAA, CNAME chains, compression, the answer cap. Negative
 * answers, mismatches and hostile responses: test_dns_msg_failures.c. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <sys/socket.h>

#include "dns/dns_msg.h"
#include "dns_msg_fixture.h"

/* ---- queries ------------------------------------------------------------------------------ */

static void test_query_example_com(void **state) {
  /* clang-format off */
  static const uint8_t expect[] = {
      0xab, 0xcd,             /* ID */
      0x01, 0x00,             /* flags: RD */
      0x00, 0x01, 0x00, 0x00, /* QDCOUNT 1, ANCOUNT 0 */
      0x00, 0x00, 0x00, 0x00, /* NSCOUNT 0, ARCOUNT 0 */
      7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
      0x00, 0x01,             /* QTYPE A */
      0x00, 0x01,             /* QCLASS IN */
  };
  /* clang-format on */
  uint8_t out[512];
  assert_int_equal(dns_build_query(0xabcd, "example.com", DNS_TYPE_A, out, sizeof out),
                   sizeof expect);
  assert_memory_equal(out, expect, sizeof expect);

  /* A trailing dot changes nothing; AAAA changes only QTYPE. */
  memset(out, 0, sizeof out);
  assert_int_equal(dns_build_query(0xabcd, "example.com.", DNS_TYPE_A, out, sizeof out),
                   sizeof expect);
  assert_memory_equal(out, expect, sizeof expect);
  assert_int_equal(dns_build_query(0xabcd, "example.com", DNS_TYPE_AAAA, out, sizeof out),
                   sizeof expect);
  assert_memory_equal(out, expect, sizeof expect - 3);
  assert_int_equal(out[sizeof expect - 3], 28);
}

static void test_query_capacity(void **state) {
  uint8_t out[29];
  assert_int_equal(dns_build_query(1, "example.com", DNS_TYPE_A, out, 29), 29);
  assert_true(dns_build_query(1, "example.com", DNS_TYPE_A, out, 28) < 0);
  assert_true(dns_build_query(1, "example.com", DNS_TYPE_A, NULL, 0) < 0);
  /* Case and odd-but-accepted bytes are sent as given. */
  uint8_t big[300];
  int n = dns_build_query(2, "_Srv-x.My~Host", DNS_TYPE_A, big, sizeof big);
  assert_int_equal(n, 12 + 1 + 6 + 1 + 7 + 1 + 4);
  assert_memory_equal(big + 12, "\x06_Srv-x\x07My~Host\x00", 16);
}

/* A name of n_labels labels of `len` bytes each (single letter repeated), optional final dot. */
static const char *labels_of(char *buf, int n_labels, int len, int last_len, int dot) {
  char *p = buf;
  for (int i = 0; i < n_labels; i++) {
    int l = i == n_labels - 1 ? last_len : len;
    memset(p, 'a' + i, (size_t)l);
    p += l;
    if (i < n_labels - 1 || dot) *p++ = '.';
  }
  *p = '\0';
  return buf;
}

static void test_name_validity(void **state) {
  static const char *const bad[] = {
      "",    ".",    "..",    ".example.com",         "example..com", "example.com..",
      "a b", "a\tb", "a\x7f", "\xc3\xa9t\xc3\xa9.fr", "exa\x01mple",  "a.b.c. ",
  };
  uint8_t out[300];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (dns_name_valid(bad[i])) fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(dns_build_query(1, bad[i], DNS_TYPE_A, out, sizeof out), DNS_ERR_NAME);
  }
  assert_false(dns_name_valid(NULL));
  assert_int_equal(dns_build_query(1, NULL, DNS_TYPE_A, out, sizeof out), DNS_ERR_NAME);

  static const char *const good[] = {
      "a",      "a.", "localhost", "_dmarc.example.com", "x--y.example", "internal!name*.corp",
      "1.2.3.4"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (!dns_name_valid(good[i])) fail_msg("\"%s\" rejected", good[i]);

  char buf[400];
  assert_true(dns_name_valid(labels_of(buf, 1, 63, 63, 0)));
  assert_false(dns_name_valid(labels_of(buf, 1, 64, 64, 0)));
  assert_false(dns_name_valid(labels_of(buf, 2, 3, 64, 1)));
  /* 63+63+63+61 bytes in four labels: 253 characters, 255 bytes encoded, the limit. */
  assert_true(dns_name_valid(labels_of(buf, 4, 63, 61, 0)));
  assert_int_equal(strlen(buf), 253);
  assert_int_equal(dns_build_query(1, buf, DNS_TYPE_A, out, sizeof out), 12 + 255 + 4);
  assert_true(dns_name_valid(labels_of(buf, 4, 63, 61, 1)));
  assert_false(dns_name_valid(labels_of(buf, 4, 63, 62, 0)));
  assert_false(dns_name_valid(labels_of(buf, 4, 63, 62, 1)));
}

/* ---- positive answers --------------------------------------------------------------------- */

static void test_single_a(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 300, 93, 184, 216, 34);
  dm_set_counts(&m, 1, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  dm_assert_a(&r.a[0], 93, 184, 216, 34, 300);
  assert_int_equal(r.ttl, 300);
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);

  /* Trailing bytes beyond what the counts describe are ignored. */
  dm_put32(&m, 0xdeadbeef);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
}

static void test_aaaa(void **state) {
  static const uint8_t ip6[16] = {0x26, 0x06, 0x28, 0x00, 0x02, 0x20, 0,    1,
                                  0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46};
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_AAAA);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, DNS_TYPE_AAAA, 86400);
  dm_put_bytes(&m, ip6, 16);
  dm_rr_end(&m, at);
  /* An A record in an AAAA answer is not ours. */
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 5, 1, 2, 3, 4);
  dm_set_counts(&m, 2, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_AAAA, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.a[0].family, AF_INET6);
  assert_memory_equal(r.a[0].addr, ip6, 16);
  assert_int_equal(r.a[0].ttl, 86400);
  assert_int_equal(r.ttl, 86400);
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_AAAA);
  /* Asked for A instead: the question does not match. */
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_multiple_answers_min_ttl(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  static const uint32_t ttls[] = {3600, 120, 0x80000001u /* top bit: 0 */, 7200};
  for (int i = 0; i < 3; i++) {
    dm_put_ptr(&m, DM_QNAME_OFF);
    dm_a_rr(&m, ttls[i], 10, 0, 0, (uint8_t)(i + 1));
  }
  dm_set_counts(&m, 3, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 3);
  dm_assert_a(&r.a[0], 10, 0, 0, 1, 3600);
  dm_assert_a(&r.a[1], 10, 0, 0, 2, 120);
  dm_assert_a(&r.a[2], 10, 0, 0, 3, 0);
  assert_int_equal(r.ttl, 0);

  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  for (int i = 0; i < 2; i++) {
    dm_put_ptr(&m, DM_QNAME_OFF);
    dm_a_rr(&m, ttls[i == 0 ? 3 : 1], 10, 0, 0, (uint8_t)(i + 1));
  }
  dm_set_counts(&m, 2, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.ttl, 120);
}

static void test_answer_cap(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  for (int i = 0; i < DNS_MAX_ANSWERS + 4; i++) {
    dm_put_ptr(&m, DM_QNAME_OFF);
    /* The ignored extras have the smallest TTL: it must not leak into min_ttl. */
    dm_a_rr(&m, i < DNS_MAX_ANSWERS ? 100u + (uint32_t)i : 1u, 10, 0, 1, (uint8_t)i);
  }
  dm_set_counts(&m, DNS_MAX_ANSWERS + 4, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, DNS_MAX_ANSWERS);
  for (int i = 0; i < DNS_MAX_ANSWERS; i++) dm_assert_a(&r.a[i], 10, 0, 1, (uint8_t)i, 100u + i);
  assert_int_equal(r.ttl, 100);
}

/* example.com CNAME www.example.com (compressed), www CNAME edge.cdn.net, edge A x2; plus an
 * unrelated A record that must be ignored. */
static void test_cname_chain(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, DM_T_CNAME, 600);
  size_t www = dm_put_labels(&m, "www");
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_rr_end(&m, at);
  dm_put_ptr(&m, www);
  size_t edge = dm_cname_rr(&m, 50, "edge.cdn.net");
  dm_put_ptr(&m, edge);
  dm_a_rr(&m, 300, 198, 51, 100, 1);
  dm_put_name(&m, "other.org");
  dm_a_rr(&m, 1, 203, 0, 113, 9);
  dm_put_ptr(&m, edge);
  dm_a_rr(&m, 200, 198, 51, 100, 2);
  dm_set_counts(&m, 5, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 2);
  dm_assert_a(&r.a[0], 198, 51, 100, 1, 300);
  dm_assert_a(&r.a[1], 198, 51, 100, 2, 200);
  assert_int_equal(r.ttl, 50); /* the second CNAME is the shortest-lived link */
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);
}

/* The chain may be listed in any order: target's A first, then the CNAMEs backwards. */
static void test_cname_out_of_order(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  size_t c2 = dm_put_name(&m, "c2.test");
  dm_a_rr(&m, 30, 192, 0, 2, 7);
  size_t c1 = dm_put_name(&m, "c1.test");
  size_t at = dm_rr_head(&m, DM_T_CNAME, 40);
  dm_put_ptr(&m, c2);
  dm_rr_end(&m, at);
  dm_put_ptr(&m, DM_QNAME_OFF);
  at = dm_rr_head(&m, DM_T_CNAME, 20);
  dm_put_ptr(&m, c1);
  dm_rr_end(&m, at);
  dm_set_counts(&m, 3, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  dm_assert_a(&r.a[0], 192, 0, 2, 7, 30);
  assert_int_equal(r.ttl, 20);
}

/* q -> n1 -> ... -> n<links>, with an A record on the last name. */
static void build_chain(dm_msgbuf *m, int links) {
  dm_begin(m, DM_FLAGS_OK, DNS_TYPE_A);
  size_t owner = DM_QNAME_OFF;
  char name[32];
  for (int i = 1; i <= links; i++) {
    dm_put_ptr(m, owner);
    snprintf(name, sizeof name, "n%d.test", i);
    owner = dm_cname_rr(m, 1000, name);
  }
  dm_put_ptr(m, owner);
  dm_a_rr(m, 500, 192, 0, 2, 1);
  dm_set_counts(m, (uint16_t)(links + 1), 0, 0);
}

static void test_cname_limit(void **state) {
  dm_msgbuf m;
  dm_result r;
  build_chain(&m, 8);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ttl, 500);
  build_chain(&m, 9);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_SERVFAIL);
}

static void test_cname_loop(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t loop = dm_cname_rr(&m, 90, "loop.test");
  dm_put_ptr(&m, loop);
  size_t at = dm_rr_head(&m, DM_T_CNAME, 80);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_rr_end(&m, at);
  dm_set_counts(&m, 2, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 60); /* no SOA: the default, below both CNAME TTLs */
}

/* Owners written with a suffix pointer (into the middle of the question name), a pointer to a
 * pointer, and a different case. */
static void test_compression_forms(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  size_t first = m.n;
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 10, 10, 0, 0, 1);
  dm_put_ptr(&m, first); /* -> a pointer -> the question */
  dm_a_rr(&m, 10, 10, 0, 0, 2);
  dm_put_labels(&m, "EXAMPLE");
  dm_put_ptr(&m, DM_QNAME_OFF + 8); /* "com" inside the question name */
  dm_a_rr(&m, 10, 10, 0, 0, 3);
  dm_put_name(&m, "Example.CoM");
  dm_a_rr(&m, 10, 10, 0, 0, 4);
  dm_set_counts(&m, 4, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 4);
  for (int i = 0; i < 4; i++) dm_assert_a(&r.a[i], 10, 0, 0, (uint8_t)(i + 1), 10);
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);
}

/* Pointers carry 14 bits of offset: one to a name beyond offset 255. */
static void test_far_pointer(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, 16 /* TXT */, 10);
  uint8_t filler[256];
  memset(filler, 'f', sizeof filler);
  filler[0] = 255; /* one 255-byte character-string */
  dm_put_bytes(&m, filler, sizeof filler);
  dm_rr_end(&m, at);
  size_t far = dm_put_name(&m, "example.com");
  assert_true(far > 0xff);
  dm_a_rr(&m, 10, 10, 0, 0, 1);
  dm_put_ptr(&m, far);
  dm_a_rr(&m, 10, 10, 0, 0, 2);
  dm_set_counts(&m, 3, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 2);
  dm_assert_a(&r.a[1], 10, 0, 0, 2, 10);
}

static void test_question_case_and_dot(void **state) {
  dm_msgbuf m;
  dm_begin_q(&m, DM_FLAGS_OK, "ExAmPlE.COM", DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 10, 1, 1, 1, 1);
  dm_set_counts(&m, 1, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse_len(&m, m.n, "example.com.", DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(dm_parse_len(&m, m.n, "EXAMPLE.com", DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
}

static void test_longest_name(void **state) {
  char name[300];
  labels_of(name, 4, 63, 61, 0);
  dm_msgbuf m;
  dm_begin_q(&m, DM_FLAGS_OK, name, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set_counts(&m, 1, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse_len(&m, m.n, name, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  dm_assert_prefixes_malformed(&m, name, DNS_TYPE_A);
}

/* Additional records (an EDNS OPT here) are walked but not used. */
static void test_additional_ignored(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 77, 1, 2, 3, 4);
  dm_put8(&m, 0); /* OPT: root owner, type 41, CLASS = UDP size, no options */
  dm_put16(&m, 41);
  dm_put16(&m, 1232);
  dm_put32(&m, 0);
  dm_put16(&m, 0);
  dm_set_counts(&m, 1, 0, 1);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ttl, 77);
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_query_example_com),
      cmocka_unit_test(test_query_capacity),
      cmocka_unit_test(test_name_validity),
      cmocka_unit_test(test_single_a),
      cmocka_unit_test(test_aaaa),
      cmocka_unit_test(test_multiple_answers_min_ttl),
      cmocka_unit_test(test_answer_cap),
      cmocka_unit_test(test_cname_chain),
      cmocka_unit_test(test_cname_out_of_order),
      cmocka_unit_test(test_cname_limit),
      cmocka_unit_test(test_cname_loop),
      cmocka_unit_test(test_compression_forms),
      cmocka_unit_test(test_far_pointer),
      cmocka_unit_test(test_question_case_and_dot),
      cmocka_unit_test(test_longest_name),
      cmocka_unit_test(test_additional_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
