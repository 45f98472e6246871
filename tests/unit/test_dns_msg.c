/* DNS message building and parsing (src/dns/dns_msg.c): queries checked byte for byte, responses
 * built by hand here, hostile ones included (bad pointers, lying counts, truncation). */
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

#include <stdlib.h>
#include <sys/socket.h>

#include "dns/dns_msg.h"

#define ID 0x1234
#define FLAGS_OK 0x8180 /* QR, RD, RA; NOERROR */
#define QNAME_OFF 12    /* where the question name starts in every response built here */
#define T_CNAME 5
#define T_SOA 6

/* ---- a tiny message writer ---------------------------------------------------------------- */

typedef struct {
  uint8_t b[4096];
  size_t n;
} msgbuf;

static void put8(msgbuf *m, uint8_t v) {
  assert_true(m->n < sizeof m->b);
  m->b[m->n++] = v;
}

static void put16(msgbuf *m, uint16_t v) {
  put8(m, (uint8_t)(v >> 8));
  put8(m, (uint8_t)v);
}

static void put32(msgbuf *m, uint32_t v) {
  put16(m, (uint16_t)(v >> 16));
  put16(m, (uint16_t)v);
}

static void put_bytes(msgbuf *m, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++) put8(m, ((const uint8_t *)p)[i]);
}

/* The labels of a dotted name, without the root: follow with put8(m, 0) or put_ptr. */
static size_t put_labels(msgbuf *m, const char *dotted) {
  size_t at = m->n;
  while (*dotted) {
    size_t n = strcspn(dotted, ".");
    put8(m, (uint8_t)n);
    put_bytes(m, dotted, n);
    dotted += n;
    if (*dotted == '.') dotted++;
  }
  return at;
}

/* A whole uncompressed name; returns its offset (a target for later pointers). */
static size_t put_name(msgbuf *m, const char *dotted) {
  size_t at = put_labels(m, dotted);
  put8(m, 0);
  return at;
}

static void put_ptr(msgbuf *m, size_t target) { put16(m, (uint16_t)(0xc000 | target)); }

static void set16(msgbuf *m, size_t at, uint16_t v) {
  m->b[at] = (uint8_t)(v >> 8);
  m->b[at + 1] = (uint8_t)v;
}

static void set_counts(msgbuf *m, uint16_t an, uint16_t ns, uint16_t ar) {
  set16(m, 6, an);
  set16(m, 8, ns);
  set16(m, 10, ar);
}

/* Header and question for (qname, qtype); the section counts start at 0. */
static void begin_q(msgbuf *m, uint16_t flags, const char *qname, uint16_t qtype) {
  m->n = 0;
  put16(m, ID);
  put16(m, flags);
  put16(m, 1);
  put16(m, 0);
  put16(m, 0);
  put16(m, 0);
  put_name(m, qname);
  put16(m, qtype);
  put16(m, 1);
}

static void begin(msgbuf *m, uint16_t flags, uint16_t qtype) {
  begin_q(m, flags, "example.com", qtype);
}

/* TYPE, CLASS IN, TTL and a placeholder RDLENGTH (after the owner); returns where RDLENGTH is. */
static size_t rr_head(msgbuf *m, uint16_t type, uint32_t ttl) {
  put16(m, type);
  put16(m, 1);
  put32(m, ttl);
  size_t at = m->n;
  put16(m, 0);
  return at;
}

static void rr_end(msgbuf *m, size_t rdlen_at) {
  set16(m, rdlen_at, (uint16_t)(m->n - rdlen_at - 2));
}

static void a_rr(msgbuf *m, uint32_t ttl, uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  size_t at = rr_head(m, DNS_TYPE_A, ttl);
  const uint8_t ip[4] = {a, b, c, d};
  put_bytes(m, ip, 4);
  rr_end(m, at);
}

/* A CNAME whose target is written uncompressed; returns the target's offset. */
static size_t cname_rr(msgbuf *m, uint32_t ttl, const char *target) {
  size_t at = rr_head(m, T_CNAME, ttl);
  size_t name_at = put_name(m, target);
  rr_end(m, at);
  return name_at;
}

/* example.com SOA ns1.example.com hostmaster.example.com, with the given TTL and MINIMUM;
 * returns where its RDLENGTH is. */
static size_t soa_rr(msgbuf *m, uint32_t ttl, uint32_t minimum) {
  put_ptr(m, QNAME_OFF);
  size_t at = rr_head(m, T_SOA, ttl);
  put_labels(m, "ns1");
  put_ptr(m, QNAME_OFF);
  put_labels(m, "hostmaster");
  put_ptr(m, QNAME_OFF);
  put32(m, 2024010101);
  put32(m, 7200);
  put32(m, 900);
  put32(m, 1209600);
  put32(m, minimum);
  rr_end(m, at);
  return at;
}

/* ---- parsing helpers ---------------------------------------------------------------------- */

typedef struct {
  dns_answer a[DNS_MAX_ANSWERS];
  size_t n;
  uint32_t ttl;
} result;

/* Parses exactly len bytes from a heap copy of that size, so ASan sees any overread. */
static dns_status parse_len(const msgbuf *m, size_t len, const char *name, uint16_t qtype,
                            result *r) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, m->b, len);
  memset(r, 0xa5, sizeof *r);
  dns_status st = dns_parse_response(copy, len, ID, name, qtype, r->a, &r->n, &r->ttl);
  free(copy);
  if (st != DNS_OK) assert_int_equal(r->n, 0);
  return st;
}

static dns_status parse(const msgbuf *m, uint16_t qtype, result *r) {
  return parse_len(m, m->n, "example.com", qtype, r);
}

static void assert_a(const dns_answer *a, uint8_t w, uint8_t x, uint8_t y, uint8_t z,
                     uint32_t ttl) {
  const uint8_t ip[4] = {w, x, y, z};
  assert_int_equal(a->family, AF_INET);
  assert_memory_equal(a->addr, ip, 4);
  assert_int_equal(a->ttl, ttl);
}

/* Every proper prefix of a valid message is malformed (the counts promise more), never a crash. */
static void assert_prefixes_malformed(const msgbuf *m, const char *name, uint16_t qtype) {
  result r;
  for (size_t len = 0; len < m->n; len++) {
    dns_status st = parse_len(m, len, name, qtype, &r);
    if (st != DNS_ERR_MALFORMED) fail_msg("prefix of %zu/%zu bytes gave %d", len, m->n, st);
  }
}

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
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 300, 93, 184, 216, 34);
  set_counts(&m, 1, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_a(&r.a[0], 93, 184, 216, 34, 300);
  assert_int_equal(r.ttl, 300);
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);

  /* Trailing bytes beyond what the counts describe are ignored. */
  put32(&m, 0xdeadbeef);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
}

static void test_aaaa(void **state) {
  static const uint8_t ip6[16] = {0x26, 0x06, 0x28, 0x00, 0x02, 0x20, 0,    1,
                                  0x02, 0x48, 0x18, 0x93, 0x25, 0xc8, 0x19, 0x46};
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_AAAA);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, DNS_TYPE_AAAA, 86400);
  put_bytes(&m, ip6, 16);
  rr_end(&m, at);
  /* An A record in an AAAA answer is not ours. */
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 5, 1, 2, 3, 4);
  set_counts(&m, 2, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_AAAA, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.a[0].family, AF_INET6);
  assert_memory_equal(r.a[0].addr, ip6, 16);
  assert_int_equal(r.a[0].ttl, 86400);
  assert_int_equal(r.ttl, 86400);
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_AAAA);
  /* Asked for A instead: the question does not match. */
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_multiple_answers_min_ttl(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  static const uint32_t ttls[] = {3600, 120, 0x80000001u /* top bit: 0 */, 7200};
  for (int i = 0; i < 3; i++) {
    put_ptr(&m, QNAME_OFF);
    a_rr(&m, ttls[i], 10, 0, 0, (uint8_t)(i + 1));
  }
  set_counts(&m, 3, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 3);
  assert_a(&r.a[0], 10, 0, 0, 1, 3600);
  assert_a(&r.a[1], 10, 0, 0, 2, 120);
  assert_a(&r.a[2], 10, 0, 0, 3, 0);
  assert_int_equal(r.ttl, 0);

  begin(&m, FLAGS_OK, DNS_TYPE_A);
  for (int i = 0; i < 2; i++) {
    put_ptr(&m, QNAME_OFF);
    a_rr(&m, ttls[i == 0 ? 3 : 1], 10, 0, 0, (uint8_t)(i + 1));
  }
  set_counts(&m, 2, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.ttl, 120);
}

static void test_answer_cap(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  for (int i = 0; i < DNS_MAX_ANSWERS + 4; i++) {
    put_ptr(&m, QNAME_OFF);
    /* The ignored extras have the smallest TTL: it must not leak into min_ttl. */
    a_rr(&m, i < DNS_MAX_ANSWERS ? 100u + (uint32_t)i : 1u, 10, 0, 1, (uint8_t)i);
  }
  set_counts(&m, DNS_MAX_ANSWERS + 4, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, DNS_MAX_ANSWERS);
  for (int i = 0; i < DNS_MAX_ANSWERS; i++) assert_a(&r.a[i], 10, 0, 1, (uint8_t)i, 100u + i);
  assert_int_equal(r.ttl, 100);
}

/* example.com CNAME www.example.com (compressed), www CNAME edge.cdn.net, edge A x2; plus an
 * unrelated A record that must be ignored. */
static void test_cname_chain(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, T_CNAME, 600);
  size_t www = put_labels(&m, "www");
  put_ptr(&m, QNAME_OFF);
  rr_end(&m, at);
  put_ptr(&m, www);
  size_t edge = cname_rr(&m, 50, "edge.cdn.net");
  put_ptr(&m, edge);
  a_rr(&m, 300, 198, 51, 100, 1);
  put_name(&m, "other.org");
  a_rr(&m, 1, 203, 0, 113, 9);
  put_ptr(&m, edge);
  a_rr(&m, 200, 198, 51, 100, 2);
  set_counts(&m, 5, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 2);
  assert_a(&r.a[0], 198, 51, 100, 1, 300);
  assert_a(&r.a[1], 198, 51, 100, 2, 200);
  assert_int_equal(r.ttl, 50); /* the second CNAME is the shortest-lived link */
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);
}

/* The chain may be listed in any order: target's A first, then the CNAMEs backwards. */
static void test_cname_out_of_order(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  size_t c2 = put_name(&m, "c2.test");
  a_rr(&m, 30, 192, 0, 2, 7);
  size_t c1 = put_name(&m, "c1.test");
  size_t at = rr_head(&m, T_CNAME, 40);
  put_ptr(&m, c2);
  rr_end(&m, at);
  put_ptr(&m, QNAME_OFF);
  at = rr_head(&m, T_CNAME, 20);
  put_ptr(&m, c1);
  rr_end(&m, at);
  set_counts(&m, 3, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_a(&r.a[0], 192, 0, 2, 7, 30);
  assert_int_equal(r.ttl, 20);
}

/* q -> n1 -> ... -> n<links>, with an A record on the last name. */
static void build_chain(msgbuf *m, int links) {
  begin(m, FLAGS_OK, DNS_TYPE_A);
  size_t owner = QNAME_OFF;
  char name[32];
  for (int i = 1; i <= links; i++) {
    put_ptr(m, owner);
    snprintf(name, sizeof name, "n%d.test", i);
    owner = cname_rr(m, 1000, name);
  }
  put_ptr(m, owner);
  a_rr(m, 500, 192, 0, 2, 1);
  set_counts(m, (uint16_t)(links + 1), 0, 0);
}

static void test_cname_limit(void **state) {
  msgbuf m;
  result r;
  build_chain(&m, 8);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ttl, 500);
  build_chain(&m, 9);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_SERVFAIL);
}

static void test_cname_loop(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t loop = cname_rr(&m, 90, "loop.test");
  put_ptr(&m, loop);
  size_t at = rr_head(&m, T_CNAME, 80);
  put_ptr(&m, QNAME_OFF);
  rr_end(&m, at);
  set_counts(&m, 2, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 60); /* no SOA: the default, below both CNAME TTLs */
}

/* Owners written with a suffix pointer (into the middle of the question name), a pointer to a
 * pointer, and a different case. */
static void test_compression_forms(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  size_t first = m.n;
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 10, 10, 0, 0, 1);
  put_ptr(&m, first); /* -> a pointer -> the question */
  a_rr(&m, 10, 10, 0, 0, 2);
  put_labels(&m, "EXAMPLE");
  put_ptr(&m, QNAME_OFF + 8); /* "com" inside the question name */
  a_rr(&m, 10, 10, 0, 0, 3);
  put_name(&m, "Example.CoM");
  a_rr(&m, 10, 10, 0, 0, 4);
  set_counts(&m, 4, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 4);
  for (int i = 0; i < 4; i++) assert_a(&r.a[i], 10, 0, 0, (uint8_t)(i + 1), 10);
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);
}

/* Pointers carry 14 bits of offset: one to a name beyond offset 255. */
static void test_far_pointer(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, 16 /* TXT */, 10);
  uint8_t filler[256];
  memset(filler, 'f', sizeof filler);
  filler[0] = 255; /* one 255-byte character-string */
  put_bytes(&m, filler, sizeof filler);
  rr_end(&m, at);
  size_t far = put_name(&m, "example.com");
  assert_true(far > 0xff);
  a_rr(&m, 10, 10, 0, 0, 1);
  put_ptr(&m, far);
  a_rr(&m, 10, 10, 0, 0, 2);
  set_counts(&m, 3, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 2);
  assert_a(&r.a[1], 10, 0, 0, 2, 10);
}

static void test_question_case_and_dot(void **state) {
  msgbuf m;
  begin_q(&m, FLAGS_OK, "ExAmPlE.COM", DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 10, 1, 1, 1, 1);
  set_counts(&m, 1, 0, 0);
  result r;
  assert_int_equal(parse_len(&m, m.n, "example.com.", DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(parse_len(&m, m.n, "EXAMPLE.com", DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
}

static void test_longest_name(void **state) {
  char name[300];
  labels_of(name, 4, 63, 61, 0);
  msgbuf m;
  begin_q(&m, FLAGS_OK, name, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 10, 1, 2, 3, 4);
  set_counts(&m, 1, 0, 0);
  result r;
  assert_int_equal(parse_len(&m, m.n, name, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_prefixes_malformed(&m, name, DNS_TYPE_A);
}

/* Additional records (an EDNS OPT here) are walked but not used. */
static void test_additional_ignored(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 77, 1, 2, 3, 4);
  put8(&m, 0); /* OPT: root owner, type 41, CLASS = UDP size, no options */
  put16(&m, 41);
  put16(&m, 1232);
  put32(&m, 0);
  put16(&m, 0);
  set_counts(&m, 1, 0, 1);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.ttl, 77);
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);
}

/* ---- negative answers and errors ---------------------------------------------------------- */

static void test_nxdomain(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK | 3, DNS_TYPE_A);
  soa_rr(&m, 900, 300);
  set_counts(&m, 0, 1, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_NXDOMAIN);
  assert_int_equal(r.ttl, 300);
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);

  /* Without the question an NXDOMAIN cannot be tied to our name. */
  begin(&m, FLAGS_OK | 3, DNS_TYPE_A);
  set16(&m, 4, 0);
  m.n = 12;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_servfail(void **state) {
  msgbuf m;
  result r;
  for (uint16_t rcode = 1; rcode < 16; rcode++) {
    if (rcode == 3) continue;
    begin(&m, FLAGS_OK | rcode, DNS_TYPE_A);
    assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_SERVFAIL);
    /* Some servers drop the question from failures. */
    set16(&m, 4, 0);
    m.n = 12;
    assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_SERVFAIL);
  }
  /* A failure for someone else's question is not ours. */
  begin_q(&m, FLAGS_OK | 2, "example.net", DNS_TYPE_A);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_nodata_with_soa(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK, DNS_TYPE_AAAA);
  soa_rr(&m, 3600, 300);
  set_counts(&m, 0, 1, 0);
  assert_int_equal(parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 300);
  assert_prefixes_malformed(&m, "example.com", DNS_TYPE_AAAA);

  begin(&m, FLAGS_OK, DNS_TYPE_AAAA);
  soa_rr(&m, 100, 300); /* the SOA's own TTL is smaller */
  set_counts(&m, 0, 1, 0);
  assert_int_equal(parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 100);

  /* Several SOAs: the smallest value wins, wherever it is. */
  begin(&m, FLAGS_OK, DNS_TYPE_AAAA);
  soa_rr(&m, 3600, 30);
  soa_rr(&m, 3600, 300);
  set_counts(&m, 0, 2, 0);
  assert_int_equal(parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 30);

  /* A CNAME to a name without AAAA: the negative TTL is capped by the CNAME. */
  begin(&m, FLAGS_OK, DNS_TYPE_AAAA);
  put_ptr(&m, QNAME_OFF);
  cname_rr(&m, 45, "v4only.example.net");
  soa_rr(&m, 3600, 300);
  set_counts(&m, 1, 1, 0);
  assert_int_equal(parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 45);
}

static void test_nodata_without_soa(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 60);
  /* Records of another type or class, or for another owner, are no answer. */
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, 16 /* TXT */, 10);
  put_bytes(&m, "\x02hi", 3);
  rr_end(&m, at);
  put_ptr(&m, QNAME_OFF);
  put16(&m, DNS_TYPE_A);
  put16(&m, 3); /* CH: its A RDATA is not 4 bytes, and must not be judged as IN */
  put32(&m, 10);
  put16(&m, 6);
  put_bytes(&m, "\x01x\xc0\x0c\x12\x34", 6);
  put_name(&m, "example.org");
  a_rr(&m, 10, 1, 2, 3, 4);
  set_counts(&m, 3, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 60);
}

static void test_truncated_bit(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK | 0x0200, DNS_TYPE_A);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_TRUNCATED);
  m.n = 12; /* even with the rest cut off */
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_TRUNCATED);
}

static void test_header_mismatch(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 10, 1, 2, 3, 4);
  set_counts(&m, 1, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);

  set16(&m, 0, ID + 1);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  set16(&m, 0, ID);
  set16(&m, 2, 0x0100); /* QR=0: our own query reflected */
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  set16(&m, 2, FLAGS_OK | 0x1000); /* OPCODE 2 */
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  set16(&m, 2, FLAGS_OK);
  set16(&m, 4, 2);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  set16(&m, 4, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_question_mismatch(void **state) {
  msgbuf m;
  result r;
  begin_q(&m, FLAGS_OK, "example.org", DNS_TYPE_A);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  begin_q(&m, FLAGS_OK, "www.example.com", DNS_TYPE_A);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  begin_q(&m, FLAGS_OK, "example.com", DNS_TYPE_AAAA);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  set16(&m, m.n - 2, 3); /* QCLASS CH */
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_bad_arguments(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  assert_int_equal(parse_len(&m, m.n, "bad..name", DNS_TYPE_A, &r), DNS_ERR_NAME);
  assert_int_equal(parse_len(&m, m.n, "", DNS_TYPE_A, &r), DNS_ERR_NAME);
  assert_int_equal(parse(&m, T_CNAME, &r), DNS_ERR_MISMATCH);
  assert_int_equal(dns_parse_response(NULL, 0, ID, "example.com", DNS_TYPE_A, r.a, &r.n, &r.ttl),
                   DNS_ERR_MALFORMED);
}

/* ---- malformed ---------------------------------------------------------------------------- */

/* A response whose single answer has owner bytes `owner` (n bytes) and an A record. */
static dns_status parse_owner(const void *owner, size_t n) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_bytes(&m, owner, n);
  a_rr(&m, 10, 1, 2, 3, 4);
  set_counts(&m, 1, 0, 0);
  result r;
  return parse(&m, DNS_TYPE_A, &r);
}

static void test_bad_pointers(void **state) {
  /* The answer owner starts at offset 29 (12 + 13 + 4). */
  assert_int_equal(parse_owner("\xc0\x0c", 2), DNS_OK);
  assert_int_equal(parse_owner("\xc0\x1d", 2), DNS_ERR_MALFORMED);      /* to itself */
  assert_int_equal(parse_owner("\x01x\xc0\x1d", 4), DNS_ERR_MALFORMED); /* loop via a label */
  assert_int_equal(parse_owner("\xc0\x1f", 2), DNS_ERR_MALFORMED);      /* forward */
  assert_int_equal(parse_owner("\xc0\xff", 2), DNS_ERR_MALFORMED);      /* far forward */
  assert_int_equal(parse_owner("\xff\xff", 2), DNS_ERR_MALFORMED);
  /* Into the header: offset 4 holds 00 01 (QDCOUNT), which would read as the root name. */
  assert_int_equal(parse_owner("\xc0\x04", 2), DNS_ERR_MALFORMED);
  /* Label types 01 and 10 (RFC 6891 §5, RFC 2673): not lengths 64 and 128, even when that many
   * bytes and a root label follow. */
  uint8_t odd[1 + 128 + 1] = {0};
  memset(odd + 1, 'q', 128);
  odd[0] = 0x40;
  assert_int_equal(parse_owner(odd, 1 + 64 + 1), DNS_ERR_MALFORMED);
  odd[0] = 0x80;
  assert_int_equal(parse_owner(odd, 1 + 128 + 1), DNS_ERR_MALFORMED);

  /* A real pointer cycle, stored in a TXT record's RDATA at R (offset 41): R holds a pointer to
   * R+2 and R+2 a pointer back to R. The next owner enters the cycle at R+2. */
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, 16 /* TXT */, 10);
  size_t cycle = m.n;
  assert_int_equal(cycle, 41);
  put_ptr(&m, cycle + 2);
  put_ptr(&m, cycle);
  rr_end(&m, at);
  put_ptr(&m, cycle + 2);
  a_rr(&m, 10, 1, 2, 3, 4);
  set_counts(&m, 2, 0, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
}

/* Names stacked from labels on pointers: three 63-byte labels on example.com (13 bytes) make
 * 205 bytes; a fourth label of 49 bytes makes 255 (the limit), of 50 bytes 256. */
static dns_status parse_stacked(size_t last_label) {
  char label[64];
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  size_t prev = QNAME_OFF;
  for (int i = 0; i < 4; i++) {
    size_t n = i < 3 ? 63 : last_label;
    memset(label, 'z', n);
    label[n] = '\0';
    size_t at = put_labels(&m, label);
    put_ptr(&m, prev);
    prev = at;
    a_rr(&m, 10, 1, 2, 3, 4);
  }
  set_counts(&m, 0, 0, 4); /* additional records: only their framing matters */
  result r;
  return parse(&m, DNS_TYPE_A, &r);
}

static void test_name_too_long_via_pointers(void **state) {
  assert_int_equal(parse_stacked(49), DNS_ERR_NODATA);
  assert_int_equal(parse_stacked(50), DNS_ERR_MALFORMED);
  assert_int_equal(parse_stacked(63), DNS_ERR_MALFORMED);
}

static void test_bad_rdlength(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, DNS_TYPE_A, 10);
  put_bytes(&m, "\x01\x02\x03\x04\x05", 5);
  rr_end(&m, at);
  set_counts(&m, 1, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);

  begin(&m, FLAGS_OK, DNS_TYPE_AAAA);
  put_ptr(&m, QNAME_OFF);
  at = rr_head(&m, DNS_TYPE_AAAA, 10);
  put_bytes(&m, "\x01\x02\x03\x04", 4);
  rr_end(&m, at);
  set_counts(&m, 1, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_MALFORMED);

  /* RDLENGTH running past the end of the message. */
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 10, 1, 2, 3, 4);
  set16(&m, m.n - 6, 0xffff);
  set_counts(&m, 1, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);

  /* A CNAME whose target does not fill its RDATA. */
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  at = rr_head(&m, T_CNAME, 10);
  put_name(&m, "x.test");
  put8(&m, 0);
  rr_end(&m, at);
  set_counts(&m, 1, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
}

static void test_bad_soa(void **state) {
  msgbuf m;
  result r;
  for (int delta = -1; delta <= 1; delta += 2) {
    begin(&m, FLAGS_OK, DNS_TYPE_A);
    size_t at = soa_rr(&m, 3600, 300);
    size_t rdlen = m.n - at - 2;
    if (delta < 0) {
      m.n--; /* MINIMUM one byte short */
    } else {
      put8(&m, 0); /* one byte too many */
    }
    set16(&m, at, (uint16_t)(rdlen + (size_t)delta));
    set_counts(&m, 0, 1, 0);
    assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  }
}

static void test_lying_counts(void **state) {
  msgbuf m;
  result r;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  a_rr(&m, 10, 1, 2, 3, 4);
  set_counts(&m, 2, 0, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  set_counts(&m, 1, 1, 0);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  set_counts(&m, 1, 0, 0xffff);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  set_counts(&m, 0xffff, 0xffff, 0xffff);
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
}

/* Every single-byte change of a valid response: any status, no crash, answers consistent. */
static void test_byte_flips(void **state) {
  msgbuf m;
  begin(&m, FLAGS_OK, DNS_TYPE_A);
  put_ptr(&m, QNAME_OFF);
  size_t at = rr_head(&m, T_CNAME, 600);
  size_t www = put_labels(&m, "www");
  put_ptr(&m, QNAME_OFF);
  rr_end(&m, at);
  put_ptr(&m, www);
  a_rr(&m, 300, 198, 51, 100, 1);
  soa_rr(&m, 3600, 300);
  set_counts(&m, 2, 1, 0);
  result r;
  assert_int_equal(parse(&m, DNS_TYPE_A, &r), DNS_OK);
  static const uint8_t values[] = {0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xff};
  for (size_t i = 0; i < m.n; i++) {
    uint8_t saved = m.b[i];
    for (size_t v = 0; v < sizeof values; v++) {
      m.b[i] = values[v];
      dns_status st = parse(&m, DNS_TYPE_A, &r);
      if (st == DNS_OK) {
        assert_true(r.n >= 1 && r.n <= DNS_MAX_ANSWERS);
        assert_true(r.ttl <= r.a[0].ttl);
      }
    }
    m.b[i] = saved;
  }
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
      cmocka_unit_test(test_nxdomain),
      cmocka_unit_test(test_servfail),
      cmocka_unit_test(test_nodata_with_soa),
      cmocka_unit_test(test_nodata_without_soa),
      cmocka_unit_test(test_truncated_bit),
      cmocka_unit_test(test_header_mismatch),
      cmocka_unit_test(test_question_mismatch),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_bad_pointers),
      cmocka_unit_test(test_name_too_long_via_pointers),
      cmocka_unit_test(test_bad_rdlength),
      cmocka_unit_test(test_bad_soa),
      cmocka_unit_test(test_lying_counts),
      cmocka_unit_test(test_byte_flips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
