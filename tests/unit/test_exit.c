/* The exit's pure parts: the destination policy and the DNS responder's messages. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "exit/exit_dns.h"
#include "exit/exit_policy.h"

static exit_verdict check(const exit_policy *p, const char *s) {
  uint8_t a[16];
  int fam = strchr(s, ':') ? AF_INET6 : AF_INET;
  assert_int_equal(inet_pton(fam, s, a), 1);
  return exit_policy_check(p, fam, a);
}

static void tunnel_net(cfg_cidr *c, const char *s, uint8_t prefix) {
  memset(c, 0, sizeof *c);
  c->family = strchr(s, ':') ? AF_INET6 : AF_INET;
  assert_int_equal(inet_pton(c->family, s, c->addr), 1);
  c->prefix = prefix;
}

static void test_policy_default_deny(void **st) {
  exit_policy p;
  cfg_cidr t[2];
  tunnel_net(&t[0], "10.88.0.1", 24);
  tunnel_net(&t[1], "fd88::1", 64);
  exit_policy_init(&p, false, t, 2);
  static const struct {
    const char *addr;
    exit_verdict v;
  } cases[] = {
      {"198.51.100.80", EXIT_ALLOW},
      {"1.1.1.1", EXIT_ALLOW},
      {"8.8.8.8", EXIT_ALLOW},
      {"0.0.0.0", EXIT_DENY_UNSPECIFIED},
      {"0.1.2.3", EXIT_DENY_UNSPECIFIED},
      {"127.0.0.1", EXIT_DENY_LOOPBACK},
      {"127.255.1.1", EXIT_DENY_LOOPBACK},
      {"169.254.169.254", EXIT_DENY_LINKLOCAL},
      {"10.0.0.1", EXIT_DENY_PRIVATE},
      {"172.16.0.1", EXIT_DENY_PRIVATE},
      {"172.31.255.255", EXIT_DENY_PRIVATE},
      {"172.32.0.1", EXIT_ALLOW},
      {"172.15.0.1", EXIT_ALLOW},
      {"192.168.1.1", EXIT_DENY_PRIVATE},
      {"192.169.1.1", EXIT_ALLOW},
      {"100.64.0.1", EXIT_DENY_SHARED},
      {"100.127.255.255", EXIT_DENY_SHARED},
      {"100.128.0.1", EXIT_ALLOW},
      {"100.63.255.255", EXIT_ALLOW},
      {"224.0.0.1", EXIT_DENY_MULTICAST},
      {"239.255.255.250", EXIT_DENY_MULTICAST},
      {"240.0.0.1", EXIT_DENY_RESERVED},
      {"255.255.255.255", EXIT_DENY_RESERVED},
      {"10.88.0.1", EXIT_DENY_OWN},
      {"10.88.0.77", EXIT_DENY_OWN},
      {"2001:db8::1", EXIT_ALLOW},
      {"2606:4700::1111", EXIT_ALLOW},
      {"::", EXIT_DENY_UNSPECIFIED},
      {"::1", EXIT_DENY_LOOPBACK},
      {"fe80::1", EXIT_DENY_LINKLOCAL},
      {"febf::1", EXIT_DENY_LINKLOCAL},
      {"fec0::1", EXIT_DENY_LINKLOCAL},
      {"fc00::1", EXIT_DENY_PRIVATE},
      {"fdff::1", EXIT_DENY_PRIVATE},
      {"fd88::1", EXIT_DENY_OWN},
      {"fd88::1234", EXIT_DENY_OWN},
      {"ff02::1", EXIT_DENY_MULTICAST},
      {"::ffff:127.0.0.1", EXIT_DENY_LOOPBACK},
      {"::ffff:192.168.0.1", EXIT_DENY_PRIVATE},
      {"::ffff:1.1.1.1", EXIT_ALLOW},
      {"::1.2.3.4", EXIT_DENY_RESERVED},
      {"64:ff9b::a00:1", EXIT_DENY_PRIVATE},
      {"64:ff9b::101:101", EXIT_ALLOW},
      {"2002:7f00:1::1", EXIT_DENY_LOOPBACK},
      {"2002:808:808::1", EXIT_ALLOW},
      {"100::1", EXIT_DENY_RESERVED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    exit_verdict v = check(&p, cases[i].addr);
    if (v != cases[i].v)
      fail_msg("%s: got %s, want %s", cases[i].addr, exit_verdict_str(v),
               exit_verdict_str(cases[i].v));
  }
}

static void test_policy_allow_private_and_host(void **st) {
  exit_policy p;
  cfg_cidr t;
  tunnel_net(&t, "10.88.0.1", 24);
  exit_policy_init(&p, true, &t, 1);
  assert_int_equal(check(&p, "10.0.0.1"), EXIT_ALLOW);
  assert_int_equal(check(&p, "192.168.1.1"), EXIT_ALLOW);
  assert_int_equal(check(&p, "fd00::1"), EXIT_ALLOW);
  /* the rest stays denied */
  assert_int_equal(check(&p, "10.88.0.9"), EXIT_DENY_OWN);
  assert_int_equal(check(&p, "100.64.1.1"), EXIT_DENY_SHARED);
  assert_int_equal(check(&p, "127.0.0.1"), EXIT_DENY_LOOPBACK);
  assert_int_equal(check(&p, "169.254.1.1"), EXIT_DENY_LINKLOCAL);
  /* host addresses are exact and replaceable */
  uint8_t a[16];
  inet_pton(AF_INET, "203.0.113.7", a);
  exit_policy_add_host(&p, AF_INET, a);
  inet_pton(AF_INET6, "2001:db8::7", a);
  exit_policy_add_host(&p, AF_INET6, a);
  assert_int_equal(check(&p, "203.0.113.7"), EXIT_DENY_OWN);
  assert_int_equal(check(&p, "203.0.113.8"), EXIT_ALLOW);
  assert_int_equal(check(&p, "2001:db8::7"), EXIT_DENY_OWN);
  assert_int_equal(check(&p, "::ffff:203.0.113.7"), EXIT_DENY_OWN);
  exit_policy_clear_host(&p);
  assert_int_equal(check(&p, "203.0.113.7"), EXIT_ALLOW);
  assert_int_equal(check(&p, "10.88.0.9"), EXIT_DENY_OWN); /* the tunnel stays */
  for (int i = 0; i < 1000; i++) {                         /* capacity is bounded */
    uint8_t b[4] = {1, 2, (uint8_t)(i >> 8), (uint8_t)i};
    exit_policy_add_host(&p, AF_INET, b);
  }
  assert_true(p.n_own <= EXIT_POLICY_MAX_OWN);
}

/* ---- DNS ---- */

static size_t query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype, uint16_t flags) {
  size_t o = 12;
  memset(out, 0, 12);
  out[0] = (uint8_t)(id >> 8), out[1] = (uint8_t)id;
  out[2] = (uint8_t)(flags >> 8), out[3] = (uint8_t)flags;
  out[5] = 1;
  while (*name) {
    const char *dot = strchr(name, '.');
    size_t l = dot ? (size_t)(dot - name) : strlen(name);
    out[o++] = (uint8_t)l;
    memcpy(out + o, name, l);
    o += l;
    name += l + (dot ? 1 : 0);
  }
  out[o++] = 0;
  out[o++] = (uint8_t)(qtype >> 8), out[o++] = (uint8_t)qtype;
  out[o++] = 0, out[o++] = 1;
  return o;
}

static void test_dns_parse_and_answer(void **st) {
  uint8_t q[512], r[EXIT_DNS_MAX_MSG];
  size_t n = query(q, 0xBEEF, "target.test", EXIT_DNS_TYPE_A, 0x0100);
  exit_dns_query dq;
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_NOERROR);
  assert_string_equal(dq.name, "target.test");
  assert_int_equal(dq.qtype, EXIT_DNS_TYPE_A);
  assert_int_equal(dq.qend, n);
  uint8_t addrs[2][16] = {{198, 51, 100, 80}, {198, 51, 100, 81}};
  size_t len = exit_dns_build_response(q, &dq, EXIT_DNS_NOERROR, (const uint8_t(*)[16])addrs, 2, 30,
                                       r, sizeof r);
  assert_int_equal(len, n + 2 * 16);
  assert_int_equal(r[0], 0xBE);
  assert_int_equal(r[1], 0xEF);
  assert_int_equal(r[2], 0x81); /* QR, RD */
  assert_int_equal(r[3], 0x80); /* RA, NOERROR */
  assert_int_equal(r[5], 1);    /* QDCOUNT */
  assert_int_equal(r[7], 2);    /* ANCOUNT */
  assert_memory_equal(r + 12, q + 12, n - 12);
  const uint8_t rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 198, 51, 100, 80};
  assert_memory_equal(r + n, rr, sizeof rr);
  assert_int_equal(r[n + 16 + 15], 81);
}

static void test_dns_aaaa_nodata_nxdomain(void **st) {
  uint8_t q[512], r[EXIT_DNS_MAX_MSG];
  size_t n = query(q, 7, "v6.example", EXIT_DNS_TYPE_AAAA, 0);
  exit_dns_query dq;
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_NOERROR);
  uint8_t a[20][16];
  memset(a, 0x20, sizeof a);
  size_t len = exit_dns_build_response(q, &dq, EXIT_DNS_NOERROR, (const uint8_t(*)[16])a, 20, 30, r,
                                       sizeof r);
  assert_true(len <= EXIT_DNS_MAX_MSG);
  assert_int_equal(r[7], (len - n) / 28); /* as many as fit in 512 bytes */
  assert_true(r[7] >= 10);
  len = exit_dns_build_response(q, &dq, EXIT_DNS_NOERROR, NULL, 0, 30, r, sizeof r);
  assert_int_equal(len, n); /* NODATA */
  assert_int_equal(r[3] & 0xF, 0);
  assert_int_equal(r[7], 0);
  len = exit_dns_build_response(q, &dq, EXIT_DNS_NXDOMAIN, NULL, 0, 30, r, sizeof r);
  assert_int_equal(len, n);
  assert_int_equal(r[3] & 0xF, EXIT_DNS_NXDOMAIN);
}

static void test_dns_rejects(void **st) {
  uint8_t q[600];
  exit_dns_query dq;
  size_t n = query(q, 1, "a.b", EXIT_DNS_TYPE_A, 0x8000); /* a response */
  assert_int_equal(exit_dns_parse_query(q, n, &dq), -1);
  assert_int_equal(exit_dns_parse_query(q, 11, &dq), -1); /* shorter than a header */
  n = query(q, 1, "a.b", EXIT_DNS_TYPE_A, 0x2800);        /* opcode 5 (UPDATE) */
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_NOTIMP);
  n = query(q, 1, "a.b", EXIT_DNS_TYPE_A, 0);
  q[5] = 2; /* two questions */
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_FORMERR);
  q[5] = 1;
  assert_int_equal(exit_dns_parse_query(q, n - 1, &dq), EXIT_DNS_FORMERR); /* truncated */
  n = query(q, 1, "a.b", EXIT_DNS_TYPE_A, 0);
  q[n - 1] = 3; /* class CHAOS */
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_REFUSED);
  n = query(q, 1, "a b.c", EXIT_DNS_TYPE_A, 0); /* a space inside a label */
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_REFUSED);
  n = query(q, 1, "x.y", EXIT_DNS_TYPE_A, 0);
  q[12] = 0xC0; /* a compression pointer in a query */
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_FORMERR);
  /* a name longer than 253 characters */
  char longname[300];
  memset(longname, 'a', sizeof longname);
  for (int i = 63; i < 299; i += 64) longname[i] = '.';
  longname[299] = 0;
  n = query(q, 1, longname, EXIT_DNS_TYPE_A, 0);
  assert_int_equal(exit_dns_parse_query(q, n, &dq), EXIT_DNS_FORMERR);
  /* every truncation of a valid query is handled */
  n = query(q, 1, "www.example.com", EXIT_DNS_TYPE_AAAA, 0);
  for (size_t l = 0; l < n; l++) {
    int rc = exit_dns_parse_query(q, l, &dq);
    assert_true(rc == -1 || rc == EXIT_DNS_FORMERR);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_default_deny),
      cmocka_unit_test(test_policy_allow_private_and_host),
      cmocka_unit_test(test_dns_parse_and_answer),
      cmocka_unit_test(test_dns_aaaa_nodata_nxdomain),
      cmocka_unit_test(test_dns_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
