/* A peer's exit rules: the [Peer] keys as the loader parses them (rules, domain patterns,
 * bandwidths, caps, with their error messages) and the verdicts exit_rules_check gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "config/config.h"
#include "exit/exit_rules.h"

#define PRIV_A "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
#define PUB_B "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="

#define HEAD                                                                                  \
  "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.1/24\n\n[Peer]\nPublicKey = " PUB_B \
  "\nAllowedIPs = 10.0.0.2/32\n"

typedef struct {
  app_config c;
  diag_list d;
} loaded;

static const cfg_peer *load_peer(loaded *L, const char *extra) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", HEAD, extra);
  memset(&L->d, 0, sizeof L->d);
  config_init(&L->c);
  int rc = config_load_buffer(&L->c, text, strlen(text), "t.conf", &L->d);
  for (size_t i = 0; i < L->d.n; i++)
    print_message("  %d: %s\n", L->d.items[i].line, L->d.items[i].msg);
  assert_int_equal(rc, 0);
  assert_int_equal(L->c.n_peers, 1);
  return &L->c.peers[0];
}

static void unload(loaded *L) {
  config_free(&L->c);
  diag_list_free(&L->d);
}

static exit_rule_verdict v(const cfg_peer *p, const char *ip, uint16_t port, const char *name) {
  uint8_t a[16] = {0};
  int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
  assert_int_equal(inet_pton(fam, ip, a), 1);
  return exit_rules_check(p, fam, a, port, name, false);
}

static void test_no_rules_allows_everything(void **st) {
  loaded L;
  const cfg_peer *p = load_peer(&L, "");
  assert_false(exit_rules_allow_list_mode(p));
  assert_int_equal(v(p, "198.51.100.80", 80, NULL), EXIT_RULE_ALLOW);
  assert_int_equal(exit_rules_check_name(p, "example.com"), EXIT_RULE_ALLOW);
  assert_int_equal(p->max_connections, 0);
  assert_int_equal(L.c.server_max_connections, CFG_DEFAULT_MAX_CONNECTIONS);
  assert_int_equal(L.c.server_peer_max_connections, CFG_DEFAULT_PEER_MAX_CONNECTIONS);
  assert_int_equal(L.c.server_max_sessions, 0);
  unload(&L);
}

static void test_deny_rules_and_ports(void **st) {
  loaded L;
  const cfg_peer *p = load_peer(&L,
                                "ExitDeny = 203.0.113.0/24, 198.51.100.80:25\n"
                                "ExitDeny = [2001:db8::/32]:8000-8999, *:6667\n");
  assert_int_equal(p->n_exit_deny, 4);
  assert_int_equal(v(p, "203.0.113.7", 443, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "203.0.113.7", 0, NULL), EXIT_RULE_DENY); /* ICMP too: no ports */
  assert_int_equal(v(p, "198.51.100.80", 25, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "198.51.100.80", 26, NULL), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "198.51.100.80", 0, NULL), EXIT_RULE_ALLOW); /* ping: a port rule */
  assert_int_equal(v(p, "2001:db8::1", 8000, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "2001:db8::1", 8999, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "2001:db8::1", 9000, NULL), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "2001:db9::1", 8000, NULL), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "192.0.2.1", 6667, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "2001:db9::1", 6667, NULL), EXIT_RULE_DENY);
  /* IPv6 forms that carry the IPv4 address are judged as it. */
  assert_int_equal(v(p, "::ffff:203.0.113.9", 80, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "64:ff9b::203.0.113.9", 80, NULL), EXIT_RULE_DENY);
  assert_int_equal(v(p, "2002:cb00:7109::1", 80, NULL), EXIT_RULE_DENY);
  unload(&L);
}

static void test_allow_list_mode(void **st) {
  loaded L;
  const cfg_peer *p =
      load_peer(&L, "ExitAllow = 198.51.100.0/24, *:443\nExitDeny = 198.51.100.66\n");
  assert_true(exit_rules_allow_list_mode(p));
  assert_int_equal(v(p, "198.51.100.80", 80, NULL), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "198.51.100.66", 80, NULL), EXIT_RULE_DENY); /* deny beats allow */
  assert_int_equal(v(p, "192.0.2.9", 443, NULL), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "192.0.2.9", 80, NULL), EXIT_RULE_NOT_ALLOWED);
  assert_int_equal(v(p, "192.0.2.9", 0, NULL), EXIT_RULE_NOT_ALLOWED);
  /* Without ExitAllowDomain, names resolve; addresses decide. */
  assert_int_equal(exit_rules_check_name(p, "anything.example"), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "192.0.2.9", 80, "anything.example"), EXIT_RULE_NOT_ALLOWED);
  unload(&L);
}

static void test_domains(void **st) {
  loaded L;
  const cfg_peer *p = load_peer(&L,
                                "ExitAllowDomain = Example.COM., *.example.org\n"
                                "ExitDenyDomain = bad.example.org\n");
  assert_string_equal(p->allow_domains[0].name, "example.com");
  assert_false(p->allow_domains[0].suffix);
  assert_true(p->allow_domains[1].suffix);
  assert_string_equal(p->allow_domains[1].name, "example.org");
  assert_int_equal(exit_rules_check_name(p, "example.com"), EXIT_RULE_ALLOW);
  assert_int_equal(exit_rules_check_name(p, "EXAMPLE.com."), EXIT_RULE_ALLOW);
  assert_int_equal(exit_rules_check_name(p, "www.example.com"), EXIT_RULE_NOT_ALLOWED);
  assert_int_equal(exit_rules_check_name(p, "a.b.example.org"), EXIT_RULE_ALLOW);
  assert_int_equal(exit_rules_check_name(p, "example.org"), EXIT_RULE_NOT_ALLOWED);
  assert_int_equal(exit_rules_check_name(p, "xexample.org"), EXIT_RULE_NOT_ALLOWED);
  assert_int_equal(exit_rules_check_name(p, "bad.example.org"), EXIT_RULE_DENY_DOMAIN);
  /* Flows: a name allows the address; an address learned from DNS for an allowed name too. */
  assert_int_equal(v(p, "192.0.2.9", 80, "www.example.org"), EXIT_RULE_ALLOW);
  assert_int_equal(v(p, "192.0.2.9", 80, "bad.example.org"), EXIT_RULE_DENY_DOMAIN);
  assert_int_equal(v(p, "192.0.2.9", 80, NULL), EXIT_RULE_NOT_ALLOWED);
  uint8_t a[4] = {192, 0, 2, 9};
  assert_int_equal(exit_rules_check(p, AF_INET, a, 80, NULL, true), EXIT_RULE_ALLOW);
  unload(&L);
}

static void test_limits_and_caps(void **st) {
  loaded L;
  const cfg_peer *p = load_peer(&L,
                                "MaxConnections = 20\nUploadLimit = 16mbit\nDownloadLimit = 2MB/s\n"
                                "\n[Server]\nMaxConnections = 100\nMaxConnectionsPerPeer = 10\n"
                                "MaxSessions = 50\n");
  assert_int_equal(p->max_connections, 20);
  assert_int_equal(p->upload_limit, 2000000);
  assert_int_equal(p->download_limit, 2000000);
  assert_int_equal(L.c.server_max_connections, 100);
  assert_int_equal(L.c.server_peer_max_connections, 10);
  assert_int_equal(L.c.server_max_sessions, 50);
  unload(&L);
}

static void test_rate_parser(void **st) {
  uint64_t r;
  char err[300];
  static const struct {
    const char *s;
    uint64_t want;
  } ok[] = {{"off", 0},          {"0", 0},
            {"8kbit", 1000},     {"10mbit", 1250000},
            {"10MBIT", 1250000}, {"1gbit", 125000000},
            {"5KB/s", 5000},     {"5kB/s", 5000},
            {"2MB/s", 2000000},  {"3GB/s", 3000000000ULL},
            {"20 mbit", 2500000}};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    assert_int_equal(cfg_parse_rate(ok[i].s, &r, err, sizeof err), 0);
    assert_int_equal(r, ok[i].want);
  }
  static const struct {
    const char *s, *msg;
  } bad[] = {
      {"2000000", "has no unit"},   {"2Mb/s", "ambiguous"},           {"2mb", "ambiguous"},
      {"2MB", "ambiguous"},         {"2Mbps", "ambiguous"},           {"1.5mbit", "whole number"},
      {"-1mbit", "whole number"},   {"mbit", "whole number"},         {"7kbit", "out of range"},
      {"2000gbit", "out of range"}, {"99999999999gbit", "too large"}, {"", "whole number"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    assert_int_equal(cfg_parse_rate(bad[i].s, &r, err, sizeof err), -1);
    if (!strstr(err, bad[i].msg)) fail_msg("'%s': '%s' lacks '%s'", bad[i].s, err, bad[i].msg);
  }
  char buf[32];
  cfg_format_rate(2000000, buf, sizeof buf);
  assert_string_equal(buf, "2MB/s");
  cfg_format_rate(1500, buf, sizeof buf);
  assert_string_equal(buf, "12kbit");
}

static void test_rule_parser_errors(void **st) {
  cfg_exit_rule r;
  cfg_domain_rule d;
  char err[300];
  static const struct {
    const char *s, *msg;
  } bad[] = {
      {"203.0.113.0/33", "prefix length"},
      {"203.0.113.0/24:0", "out of range"},
      {"203.0.113.0/24:70000", "out of range"},
      {"203.0.113.0/24:90-80", "backwards"},
      {"203.0.113.0/24:", "PORT or LO-HI"},
      {"[2001:db8::/32]", "[2001:db8::/32]:443"},
      {"[10.0.0.0/8]:80", "only IPv6"},
      {"nonsense", "not an IPv4 or IPv6"},
      {"*:x", "not a whole number"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    assert_int_equal(cfg_parse_exit_rule(bad[i].s, &r, err, sizeof err), -1);
    if (!strstr(err, bad[i].msg)) fail_msg("'%s': '%s' lacks '%s'", bad[i].s, err, bad[i].msg);
  }
  char buf[96];
  assert_int_equal(cfg_parse_exit_rule("2001:db8::1/32", &r, err, sizeof err), 0);
  cfg_format_exit_rule(&r, buf, sizeof buf);
  assert_string_equal(buf, "2001:db8::/32");
  assert_int_equal(cfg_parse_exit_rule("[2001:db8::/32]:80-90", &r, err, sizeof err), 0);
  cfg_format_exit_rule(&r, buf, sizeof buf);
  assert_string_equal(buf, "[2001:db8::/32]:80-90");
  assert_int_equal(cfg_parse_exit_rule("*:443", &r, err, sizeof err), 0);
  cfg_format_exit_rule(&r, buf, sizeof buf);
  assert_string_equal(buf, "*:443");
  assert_int_equal(cfg_parse_exit_rule("192.0.2.7", &r, err, sizeof err), 0);
  cfg_format_exit_rule(&r, buf, sizeof buf);
  assert_string_equal(buf, "192.0.2.7/32");
  static const char *const bad_dom[] = {"*example.com", "ex ample.com",   "a..b", ".", "*.", "",
                                        "a/b",          "*.*.example.com"};
  for (size_t i = 0; i < sizeof bad_dom / sizeof *bad_dom; i++)
    assert_int_equal(cfg_parse_domain_rule(bad_dom[i], &d, err, sizeof err), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_rules_allows_everything),
      cmocka_unit_test(test_deny_rules_and_ports),
      cmocka_unit_test(test_allow_list_mode),
      cmocka_unit_test(test_domains),
      cmocka_unit_test(test_limits_and_caps),
      cmocka_unit_test(test_rate_parser),
      cmocka_unit_test(test_rule_parser_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
