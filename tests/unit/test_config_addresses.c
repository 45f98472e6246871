/* The config's address parsers, called directly: cfg_parse_cidr (prefixes, host bits cleared)
 * and cfg_parse_hostport (IP or host name and port, formatting round trip), plus Address lines,
 * which keep their host bits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>

#include "config/config.h"
#include "config_fixture.h"

#define PRIV_A "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="

/* ---- cfg_parse_cidr ------------------------------------------------------------------------- */

static void cidr_ok(const char *in, const char *want, int family) {
  cfg_cidr c;
  char err[256] = "";
  if (cfg_parse_cidr(in, &c, err, sizeof err) != 0) fail_msg("'%s' rejected: %s", in, err);
  assert_int_equal(c.family, family);
  cfx_assert_cidr(&c, want);
}

static void cidr_bad(const char *in, const char *part) {
  cfg_cidr c;
  char err[256] = "";
  if (cfg_parse_cidr(in, &c, err, sizeof err) == 0) fail_msg("'%s' accepted", in);
  if (!strstr(err, part)) fail_msg("'%s': message \"%s\" lacks \"%s\"", in, err, part);
}

static void test_parse_cidr(void **state) {
  cidr_ok("10.1.2.3/8", "10.0.0.0/8", AF_INET);
  cidr_ok("10.1.2.3/32", "10.1.2.3/32", AF_INET);
  cidr_ok("10.1.2.3", "10.1.2.3/32", AF_INET); /* no prefix: a host */
  cidr_ok("10.1.2.255/31", "10.1.2.254/31", AF_INET);
  cidr_ok("10.1.2.255/25", "10.1.2.128/25", AF_INET);
  cidr_ok("255.255.255.255/1", "128.0.0.0/1", AF_INET);
  cidr_ok("1.2.3.4/0", "0.0.0.0/0", AF_INET);
  cidr_ok("0.0.0.0/0", "0.0.0.0/0", AF_INET);
  cidr_ok("1.2.3.4/008", "1.0.0.0/8", AF_INET);
  cidr_ok("::/0", "::/0", AF_INET6);
  cidr_ok("::1", "::1/128", AF_INET6);
  cidr_ok("fd00::1234:5678/64", "fd00::/64", AF_INET6);
  cidr_ok("fd00:ffff::/17", "fd00:8000::/17", AF_INET6);
  cidr_ok("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/127",
          "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe/127", AF_INET6);
  cidr_ok("::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128", AF_INET6);

  cidr_bad("", "is not an IPv4 or IPv6 address");
  cidr_bad("/8", "is not an IPv4 or IPv6 address");
  cidr_bad("1.2.3", "'1.2.3' is not an IPv4 or IPv6 address");
  cidr_bad("1.2.3.256/8", "is not an IPv4");
  cidr_bad("example.com/8", "is not an IPv4");
  cidr_bad(" 1.2.3.4/8", "is not an IPv4");
  cidr_bad("1.2.3.4/", "prefix length in '1.2.3.4/': is empty");
  cidr_bad("1.2.3.4/33", "33 is out of range; allowed: 0 to 32");
  cidr_bad("1.2.3.4/-1", "is not a whole number");
  cidr_bad("1.2.3.4/+8", "is not a whole number");
  cidr_bad("1.2.3.4/8/8", "is not a whole number");
  cidr_bad("1.2.3.4/ 8", "is not a whole number");
  cidr_bad("1.2.3.4/99999999999999999999999", "too large");
  cidr_bad("::/129", "129 is out of range; allowed: 0 to 128");
  cidr_bad("fe80::1%eth0/64", "is not an IPv4 or IPv6 address");
  cidr_bad("1111:2222:3333:4444:5555:6666:7777:8888:9999/64", "is not an IPv4");
  cidr_bad("0000000000000000000000000000000000000000000000000000000000000000000/1", "too long");
}

static void test_parse_address_keeps_host(void **state) {
  /* Address lines go through the same parser without masking; check via a config. */
  cfx_loaded L;
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.1.2.3/8, fd00::5/64\n");
  cfx_assert_cidr(&L.c.addresses[0], "10.1.2.3/8");
  cfx_assert_cidr(&L.c.addresses[1], "fd00::5/64");
  cfx_unload(&L);
}

/* ---- cfg_parse_hostport --------------------------------------------------------------------- */

static void hp_ok(const char *in, const char *host, uint16_t port, bool is_ip) {
  cfg_hostport h;
  char err[256] = "";
  if (cfg_parse_hostport(in, &h, err, sizeof err) != 0) fail_msg("'%s' rejected: %s", in, err);
  cfx_assert_hostport(&h, host, port, is_ip);
  /* Formatting gives back a parseable form. */
  char buf[300];
  cfg_format_hostport(&h, buf, sizeof buf);
  cfg_hostport again;
  if (cfg_parse_hostport(buf, &again, err, sizeof err) != 0)
    fail_msg("'%s' formatted as '%s', which is rejected: %s", in, buf, err);
  cfx_assert_hostport(&again, host, port, is_ip);
}

static void hp_bad(const char *in, const char *part) {
  cfg_hostport h;
  char err[256] = "";
  if (cfg_parse_hostport(in, &h, err, sizeof err) == 0) fail_msg("'%s' accepted", in);
  if (!strstr(err, part)) fail_msg("'%s': message \"%s\" lacks \"%s\"", in, err, part);
}

static void test_parse_hostport(void **state) {
  hp_ok("192.0.2.1:51820", "192.0.2.1", 51820, true);
  hp_ok("0.0.0.0:1", "0.0.0.0", 1, true);
  hp_ok("[2001:db8::1]:443", "2001:db8::1", 443, true);
  hp_ok("[::1]:65535", "::1", 65535, true);
  hp_ok("[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80, true);
  hp_ok("vpn.example.com:51820", "vpn.example.com", 51820, false);
  hp_ok("localhost:1080", "localhost", 1080, false);
  hp_ok("my-host_1.example:8", "my-host_1.example", 8, false);
  hp_ok("example.com.:53", "example.com.", 53, false);
  hp_ok("1host.example:53", "1host.example", 53, false);
  hp_ok("192.0.2.1:00080", "192.0.2.1", 80, true);

  hp_bad("", "has no port");
  hp_bad("vpn.example.com", "'vpn.example.com' has no port");
  hp_bad("vpn.example.com:", "port in 'vpn.example.com:': is empty");
  hp_bad(":51820", "has an empty or overlong host");
  hp_bad("host:0", "0 is out of range; allowed: 1 to 65535");
  hp_bad("host:65536", "65536 is out of range");
  hp_bad("host:-1", "is not a whole number");
  hp_bad("host:80a", "is not a whole number");
  hp_bad("host: 80", "is not a whole number");
  hp_bad("2001:db8::1:51820", "put an IPv6 address in brackets");
  hp_bad("::1", "put an IPv6 address in brackets");
  hp_bad("[2001:db8::1]", "an IPv6 endpoint is written [address]:port");
  hp_bad("[2001:db8::1]51820", "an IPv6 endpoint is written [address]:port");
  hp_bad("[2001:db8::1:51820", "an IPv6 endpoint is written [address]:port");
  hp_bad("[]:80", "has an empty or overlong host");
  hp_bad("[192.0.2.1]:80", "'192.0.2.1' in brackets is not an IPv6 address");
  hp_bad("[vpn.example.com]:80", "in brackets is not an IPv6 address");
  hp_bad("[::1]:0", "0 is out of range");
  hp_bad("vpn..example.com:80", "is neither an IP address nor a valid host name");
  hp_bad(".example.com:80", "nor a valid host name");
  hp_bad("host name:80", "nor a valid host name");
  hp_bad("h\xc3\xa9llo.example:80", "nor a valid host name");
  hp_bad("192.0.2.300:80", "'192.0.2.300' is neither an IP address nor a valid host name");
  hp_bad("1.2.3:80", "nor a valid host name");
  hp_bad("12345:80", "nor a valid host name");

  char label[80], host63[80], overlong[300];
  memset(label, 'a', 64);
  snprintf(label + 64, sizeof label - 64, ".com:80");
  hp_bad(label, "nor a valid host name"); /* a 64-character label */
  memset(label, 'a', 63);
  snprintf(label + 63, sizeof label - 63, ".com:80");
  memset(host63, 'a', 63);
  snprintf(host63 + 63, sizeof host63 - 63, ".com");
  hp_ok(label, host63, 80, false); /* 63 is the maximum */
  memset(overlong, 'a', 254);
  for (int i = 50; i < 254; i += 50) overlong[i] = '.';
  snprintf(overlong + 254, sizeof overlong - 254, ":80");
  hp_bad(overlong, "has an empty or overlong host");
  overlong[253] = ':';
  snprintf(overlong + 254, sizeof overlong - 254, "80");
  cfg_hostport h;
  char err[256];
  assert_int_equal(cfg_parse_hostport(overlong, &h, err, sizeof err), 0); /* 253 is the maximum */
  assert_int_equal(strlen(h.host), 253);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_cidr),
      cmocka_unit_test(test_parse_address_keeps_host),
      cmocka_unit_test(test_parse_hostport),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
