/* SOCKS4/4a/5 wire formats (src/socks/socks_proto.h): incremental parsing (every prefix of a valid
 * message needs more, the whole message is consumed exactly, pipelined bytes are left alone),
 * errors at the first byte that shows them, and builder/parser round trips. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>

#include "socks/socks_proto.h"
#include "stream/dial_error.h"
#include <uv.h>

/* ---- message builder ---- */

typedef struct {
  uint8_t b[2048]; /* two of the longest message (520 bytes) and then some */
  size_t n;
} msg;

static void put(msg *m, const void *p, size_t n) {
  assert_true(m->n + n <= sizeof m->b);
  memcpy(m->b + m->n, p, n);
  m->n += n;
}

static void put_u8(msg *m, uint8_t v) { put(m, &v, 1); }

static void put_fill(msg *m, uint8_t v, size_t n) {
  for (size_t i = 0; i < n; i++) put_u8(m, v);
}

static void put_str(msg *m, const char *s) { put(m, s, strlen(s)); }

static msg msg_of(const uint8_t *p, size_t n) {
  msg m = {.n = 0};
  put(&m, p, n);
  return m;
}

/* MSG(5, 1, 0): a message from literal bytes. */
#define MSG(...) msg_of((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

/* ---- one signature for every incremental parser, so the generic checks below apply ---- */

typedef socks_status (*parse_fn)(const uint8_t *buf, size_t len, size_t *consumed);

static socks5_greeting g_greeting;
static socks5_userpass g_userpass;
static socks5_request g_req5;
static socks4_request g_req4;

static socks_status p_greeting(const uint8_t *b, size_t n, size_t *c) {
  return socks5_parse_greeting(b, n, &g_greeting, c);
}
static socks_status p_userpass(const uint8_t *b, size_t n, size_t *c) {
  return socks5_parse_userpass(b, n, &g_userpass, c);
}
static socks_status p_req5(const uint8_t *b, size_t n, size_t *c) {
  return socks5_parse_request(b, n, &g_req5, c);
}
static socks_status p_req4(const uint8_t *b, size_t n, size_t *c) {
  return socks4_parse_request(b, n, &g_req4, c);
}

/* Parses the first len bytes of m from an allocation of exactly len bytes, so that with
 * -DAWG_SANITIZE=ON any read past len is an ASan error rather than a silent pass. */
static socks_status parse_prefix(parse_fn f, const msg *m, size_t len, size_t *consumed) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, m->b, len);
  *consumed = 12345;
  socks_status st = f(copy, len, consumed);
  free(copy);
  return st;
}

/* m is a complete valid message: every proper prefix needs more, the whole is DONE with exact
 * consumption, and pipelined bytes after it (another copy of it, then junk) are not consumed. */
static void check_valid(parse_fn f, const msg *m) {
  size_t c;
  for (size_t i = 0; i < m->n; i++) {
    socks_status st = parse_prefix(f, m, i, &c);
    if (st != SOCKS_NEED_MORE) fail_msg("prefix %zu of %zu: status %d", i, m->n, st);
    assert_int_equal(c, 0);
  }
  assert_int_equal(parse_prefix(f, m, m->n, &c), SOCKS_DONE);
  assert_int_equal(c, m->n);
  msg piped = *m;
  put(&piped, m->b, m->n);
  put_fill(&piped, 0xEE, 7);
  assert_int_equal(parse_prefix(f, &piped, piped.n, &c), SOCKS_DONE);
  assert_int_equal(c, m->n);
}

/* m is invalid, first detectably so once bad_len bytes are present: shorter prefixes need more,
 * bad_len and all longer prefixes give err. */
static void check_error(parse_fn f, const msg *m, size_t bad_len, socks_status err) {
  size_t c;
  assert_true(bad_len <= m->n);
  for (size_t i = 0; i <= m->n; i++) {
    socks_status st = parse_prefix(f, m, i, &c);
    socks_status want = i < bad_len ? SOCKS_NEED_MORE : err;
    if (st != want) fail_msg("prefix %zu of %zu: status %d, want %d", i, m->n, st, want);
    assert_int_equal(c, 0);
  }
}

/* ---- address helpers ---- */

static socks_addr ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  socks_addr r = {.type = SOCKS_ADDR_IPV4, .port = port};
  r.ip[0] = a;
  r.ip[1] = b;
  r.ip[2] = c;
  r.ip[3] = d;
  return r;
}

static socks_addr ipv6(const char *bytes16, uint16_t port) {
  socks_addr r = {.type = SOCKS_ADDR_IPV6, .port = port};
  memcpy(r.ip, bytes16, 16);
  return r;
}

static socks_addr domain(const char *name, uint16_t port) {
  socks_addr r = {.type = SOCKS_ADDR_DOMAIN, .port = port};
  assert_true(strlen(name) < sizeof r.domain);
  strcpy(r.domain, name);
  return r;
}

static void assert_addr_equal(const socks_addr *a, const socks_addr *b) {
  assert_int_equal(a->type, b->type);
  assert_int_equal(a->port, b->port);
  if (a->type == SOCKS_ADDR_DOMAIN) {
    assert_string_equal(a->domain, b->domain);
  } else {
    assert_memory_equal(a->ip, b->ip, a->type == SOCKS_ADDR_IPV4 ? 4 : 16);
  }
}

static const char V6_DOC[16] = "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";
static const char V6_LOOP[16] = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";

/* A 255-byte host name: 63-byte labels of 'x' separated by dots. */
static const char *long_name(void) {
  static char name[256];
  memset(name, 'x', 255);
  name[63] = name[127] = name[191] = '.';
  name[255] = '\0';
  return name;
}

/* ---- SOCKS5 greeting ---- */

static void test_greeting_valid(void **state) {
  msg m = MSG(5, 1, 0x00);
  check_valid(p_greeting, &m);
  assert_true(g_greeting.offers_none);
  assert_false(g_greeting.offers_userpass);

  m = MSG(5, 2, 0x02, 0x00);
  check_valid(p_greeting, &m);
  assert_true(g_greeting.offers_none);
  assert_true(g_greeting.offers_userpass);

  m = MSG(5, 1, 0x02);
  check_valid(p_greeting, &m);
  assert_false(g_greeting.offers_none);
  assert_true(g_greeting.offers_userpass);

  m = MSG(5, 3, 0x01, 0x80, 0xFF);
  check_valid(p_greeting, &m);
  assert_false(g_greeting.offers_none);
  assert_false(g_greeting.offers_userpass);

  m = MSG(5, 255);
  for (int i = 0; i < 255; i++) put_u8(&m, (uint8_t)(254 - i)); /* 0x02 and 0x00 come last */
  check_valid(p_greeting, &m);
  assert_true(g_greeting.offers_none);
  assert_true(g_greeting.offers_userpass);
}

static void test_greeting_errors(void **state) {
  msg m = MSG(4, 1, 0x00);
  check_error(p_greeting, &m, 1, SOCKS_ERR_VERSION);
  m = MSG(0, 1, 0x00);
  check_error(p_greeting, &m, 1, SOCKS_ERR_VERSION);
  m = MSG(5, 0, 0x00); /* NMETHODS 0 */
  check_error(p_greeting, &m, 2, SOCKS_ERR_MALFORMED);
}

static void test_greeting_untouched_unless_done(void **state) {
  socks5_greeting g = {7, 7};
  size_t c = 99;
  const uint8_t b[] = {5, 2, 0};
  assert_int_equal(socks5_parse_greeting(b, sizeof b, &g, &c), SOCKS_NEED_MORE);
  assert_int_equal(g.offers_none, 7);
  assert_int_equal(g.offers_userpass, 7);
  assert_int_equal(c, 0);
  assert_int_equal(socks5_parse_greeting(b, 0, &g, &c), SOCKS_NEED_MORE);
}

/* ---- RFC 1929 ---- */

static void test_userpass_valid(void **state) {
  msg m = MSG(1, 4, 'u', 's', 'e', 'r', 6, 's', 'e', 'c', 'r', 'e', 't');
  check_valid(p_userpass, &m);
  assert_string_equal(g_userpass.user, "user");
  assert_string_equal(g_userpass.pass, "secret");

  m = MSG(1, 1, 'a', 0); /* empty password is accepted */
  check_valid(p_userpass, &m);
  assert_string_equal(g_userpass.user, "a");
  assert_string_equal(g_userpass.pass, "");

  m = MSG(1, 255); /* both at the maximum, bytes 0x01..0xFF */
  for (int i = 0; i < 255; i++) put_u8(&m, (uint8_t)(i + 1));
  put_u8(&m, 255);
  put_fill(&m, 'p', 255);
  check_valid(p_userpass, &m);
  assert_int_equal(strlen(g_userpass.user), 255);
  assert_int_equal((uint8_t)g_userpass.user[254], 0xFF);
  assert_int_equal(strlen(g_userpass.pass), 255);
}

static void test_userpass_errors(void **state) {
  msg m = MSG(5, 1, 'a', 1, 'b');
  check_error(p_userpass, &m, 1, SOCKS_ERR_VERSION);
  m = MSG(0, 1, 'a', 1, 'b');
  check_error(p_userpass, &m, 1, SOCKS_ERR_VERSION);
  m = MSG(1, 0, 1, 'b'); /* ULEN 0 */
  check_error(p_userpass, &m, 2, SOCKS_ERR_MALFORMED);
  m = MSG(1, 3, 'a', 0, 'c', 1, 'b'); /* NUL in the user name */
  check_error(p_userpass, &m, 4, SOCKS_ERR_MALFORMED);
  m = MSG(1, 1, 'a', 3, 'x', 'y', 0); /* NUL in the password, last byte */
  check_error(p_userpass, &m, 7, SOCKS_ERR_MALFORMED);
}

/* ---- SOCKS5 request ---- */

static void test_request_ipv4(void **state) {
  msg m = MSG(5, SOCKS_CMD_CONNECT, 0, 1, 10, 0, 0, 1, 0x1F, 0x90);
  check_valid(p_req5, &m);
  assert_int_equal(g_req5.cmd, SOCKS_CMD_CONNECT);
  socks_addr want = ipv4(10, 0, 0, 1, 8080);
  assert_addr_equal(&g_req5.addr, &want);
}

static void test_request_ipv6(void **state) {
  msg m = MSG(5, SOCKS_CMD_UDP_ASSOCIATE, 0, 4);
  put(&m, V6_DOC, 16);
  put_u8(&m, 0x00);
  put_u8(&m, 0x35);
  check_valid(p_req5, &m);
  assert_int_equal(g_req5.cmd, SOCKS_CMD_UDP_ASSOCIATE);
  socks_addr want = ipv6(V6_DOC, 53);
  assert_addr_equal(&g_req5.addr, &want);
}

static void test_request_domain(void **state) {
  msg m = MSG(5, SOCKS_CMD_CONNECT, 0, 3, 11);
  put_str(&m, "example.com");
  put_u8(&m, 0x01);
  put_u8(&m, 0xBB);
  check_valid(p_req5, &m);
  socks_addr want = domain("example.com", 443);
  assert_addr_equal(&g_req5.addr, &want);

  m = MSG(5, SOCKS_CMD_CONNECT, 0, 3, 255); /* the longest name */
  put_str(&m, long_name());
  put_u8(&m, 0xFF);
  put_u8(&m, 0xFF);
  check_valid(p_req5, &m);
  want = domain(long_name(), 65535);
  assert_addr_equal(&g_req5.addr, &want);
}

static void test_request_any_cmd_and_rsv(void **state) {
  const uint8_t cmds[] = {0, SOCKS_CMD_BIND, 4, 0x80, 0xFF};
  for (size_t i = 0; i < sizeof cmds; i++) {
    msg m = MSG(5, 0, 0xAB /* RSV ignored */, 1, 1, 2, 3, 4, 0, 80);
    m.b[1] = cmds[i];
    check_valid(p_req5, &m);
    assert_int_equal(g_req5.cmd, cmds[i]);
  }
}

static void test_request_errors(void **state) {
  msg m = MSG(4, 1, 0, 1, 1, 2, 3, 4, 0, 80);
  check_error(p_req5, &m, 1, SOCKS_ERR_VERSION);
  const uint8_t bad_atyp[] = {0, 2, 5, 0xFF};
  for (size_t i = 0; i < sizeof bad_atyp; i++) {
    m = MSG(5, 1, 0, 0, 1, 2, 3, 4, 0, 80);
    m.b[3] = bad_atyp[i];
    check_error(p_req5, &m, 4, SOCKS_ERR_ATYP);
  }
  m = MSG(5, 1, 0, 3, 0, 0, 80); /* zero-length domain */
  check_error(p_req5, &m, 5, SOCKS_ERR_MALFORMED);
  m = MSG(5, 1, 0, 3, 5, 'a', 'b', 0, 'c', 'd', 0, 80); /* NUL inside the domain */
  check_error(p_req5, &m, 8, SOCKS_ERR_MALFORMED);
}

static void test_request_untouched_unless_done(void **state) {
  socks5_request r;
  memset(&r, 0x5A, sizeof r);
  socks5_request before = r;
  size_t c;
  const uint8_t b[] = {5, 1, 0, 3, 4, 'a', 'b', 'c', 'd', 0};
  assert_int_equal(socks5_parse_request(b, sizeof b, &r, &c), SOCKS_NEED_MORE);
  assert_memory_equal(&r, &before, sizeof r);
}

/* ---- SOCKS4 / 4a ---- */

static void test_socks4_connect(void **state) {
  msg m = MSG(4, 1, 0x00, 0x50, 192, 0, 2, 7, 'b', 'o', 'b', 0);
  check_valid(p_req4, &m);
  assert_int_equal(g_req4.cmd, SOCKS_CMD_CONNECT);
  assert_string_equal(g_req4.user, "bob");
  socks_addr want = ipv4(192, 0, 2, 7, 80);
  assert_addr_equal(&g_req4.addr, &want);

  m = MSG(4, 2, 0x12, 0x34, 1, 2, 3, 4, 0); /* BIND, empty user id */
  check_valid(p_req4, &m);
  assert_int_equal(g_req4.cmd, SOCKS_CMD_BIND);
  assert_string_equal(g_req4.user, "");
  want = ipv4(1, 2, 3, 4, 0x1234);
  assert_addr_equal(&g_req4.addr, &want);
}

/* Only 0.0.0.x with x != 0 means 4a: other addresses are plain IPv4 and what follows the user
 * id is pipelined data. */
static void test_socks4_not_4a(void **state) {
  const uint8_t ips[][4] = {{0, 0, 0, 0}, {0, 0, 1, 1}, {1, 0, 0, 1}, {0, 1, 0, 0}};
  for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
    msg m = MSG(4, 1, 0, 80, 0, 0, 0, 0, 'u', 0);
    memcpy(m.b + 4, ips[i], 4);
    check_valid(p_req4, &m);
    assert_int_equal(g_req4.addr.type, SOCKS_ADDR_IPV4);
    assert_memory_equal(g_req4.addr.ip, ips[i], 4);
  }
}

static void test_socks4_user_id_bounds(void **state) {
  msg m = MSG(4, 1, 0, 80, 1, 2, 3, 4);
  put_fill(&m, 'u', 255);
  put_u8(&m, 0);
  check_valid(p_req4, &m);
  assert_int_equal(strlen(g_req4.user), 255);

  m = MSG(4, 1, 0, 80, 1, 2, 3, 4); /* 256 bytes and still no NUL */
  put_fill(&m, 'u', 256);
  put_u8(&m, 0);
  check_error(p_req4, &m, 8 + 256, SOCKS_ERR_TOO_LONG);

  m = MSG(4, 1, 0, 80, 1, 2, 3, 4, 'a', 'b'); /* truncated: waits for the NUL */
  size_t c;
  assert_int_equal(parse_prefix(p_req4, &m, m.n, &c), SOCKS_NEED_MORE);
}

static void test_socks4_errors(void **state) {
  msg m = MSG(5, 1, 0, 80, 1, 2, 3, 4, 0);
  check_error(p_req4, &m, 1, SOCKS_ERR_VERSION);
  const uint8_t bad_cd[] = {0, 3, 0x5A, 0xFF};
  for (size_t i = 0; i < sizeof bad_cd; i++) {
    m = MSG(4, 0, 0, 80, 1, 2, 3, 4, 0);
    m.b[1] = bad_cd[i];
    check_error(p_req4, &m, 2, SOCKS_ERR_COMMAND);
  }
}

static void test_socks4a(void **state) {
  msg m = MSG(4, 1, 0x01, 0xBB, 0, 0, 0, 1, 0);
  put_str(&m, "example.com");
  put_u8(&m, 0);
  check_valid(p_req4, &m);
  assert_string_equal(g_req4.user, "");
  socks_addr want = domain("example.com", 443);
  assert_addr_equal(&g_req4.addr, &want);

  m = MSG(4, 1, 0, 80, 0, 0, 0, 0xFF, 'a', 'l', 'i', 'c', 'e', 0, 'h', 0);
  check_valid(p_req4, &m);
  assert_string_equal(g_req4.user, "alice");
  want = domain("h", 80);
  assert_addr_equal(&g_req4.addr, &want);

  m = MSG(4, 1, 0, 80, 0, 0, 0, 9); /* both strings at the maximum */
  put_fill(&m, 'u', 255);
  put_u8(&m, 0);
  put_str(&m, long_name());
  put_u8(&m, 0);
  check_valid(p_req4, &m);
  want = domain(long_name(), 80);
  assert_addr_equal(&g_req4.addr, &want);
  assert_int_equal(strlen(g_req4.user), 255);
}

static void test_socks4a_errors(void **state) {
  msg m = MSG(4, 1, 0, 80, 0, 0, 0, 1, 'u', 0, 0); /* empty host name */
  check_error(p_req4, &m, 11, SOCKS_ERR_MALFORMED);

  m = MSG(4, 1, 0, 80, 0, 0, 0, 1, 'u', 0); /* 256-byte host name */
  put_fill(&m, 'h', 256);
  put_u8(&m, 0);
  check_error(p_req4, &m, 10 + 256, SOCKS_ERR_TOO_LONG);

  m = MSG(4, 1, 0, 80, 0, 0, 0, 1, 'u', 0, 'h', 'o'); /* truncated host name */
  size_t c;
  assert_int_equal(parse_prefix(p_req4, &m, m.n, &c), SOCKS_NEED_MORE);
}

/* ---- UDP ASSOCIATE header ---- */

static void check_udp_round_trip(const socks_addr *a, size_t want_len) {
  uint8_t dgram[262 + 5];
  size_t n = socks5_build_udp_header(a, dgram, 262);
  assert_int_equal(n, want_len);
  assert_int_equal(dgram[0], 0);
  assert_int_equal(dgram[1], 0);
  assert_int_equal(dgram[2], 0);
  memcpy(dgram + n, "hello", 5);

  uint8_t frag = 0xEE;
  socks_addr got;
  size_t hdr = 0;
  assert_int_equal(socks5_parse_udp(dgram, n + 5, &frag, &got, &hdr), SOCKS_DONE);
  assert_int_equal(hdr, n);
  assert_int_equal(frag, 0);
  assert_addr_equal(&got, a);
  /* A header alone (empty payload) is still a datagram; any cut inside it is malformed. */
  assert_int_equal(socks5_parse_udp(dgram, n, &frag, &got, &hdr), SOCKS_DONE);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(socks5_parse_udp(dgram, i, &frag, &got, &hdr), SOCKS_ERR_MALFORMED);
    assert_int_equal(hdr, 0);
  }
  /* Too little room: nothing written. */
  assert_int_equal(socks5_build_udp_header(a, dgram, n - 1), 0);
  assert_int_equal(socks5_build_udp_header(a, dgram, n), n);
}

static void test_udp_round_trips(void **state) {
  socks_addr a = ipv4(203, 0, 113, 9, 5353);
  check_udp_round_trip(&a, 10);
  a = ipv6(V6_DOC, 443);
  check_udp_round_trip(&a, 22);
  a = domain("example.org", 53);
  check_udp_round_trip(&a, 4 + 1 + 11 + 2);
  a = domain(long_name(), 1);
  check_udp_round_trip(&a, 262);
}

static void test_udp_parse_errors(void **state) {
  uint8_t frag;
  socks_addr a;
  size_t hdr;
  const uint8_t rsv[] = {0, 1, 0, 1, 1, 2, 3, 4, 0, 53, 'x'};
  assert_int_equal(socks5_parse_udp(rsv, sizeof rsv, &frag, &a, &hdr), SOCKS_ERR_MALFORMED);
  const uint8_t rsv2[] = {0x80, 0, 0, 1, 1, 2, 3, 4, 0, 53};
  assert_int_equal(socks5_parse_udp(rsv2, sizeof rsv2, &frag, &a, &hdr), SOCKS_ERR_MALFORMED);
  const uint8_t atyp[] = {0, 0, 0, 2, 1, 2, 3, 4, 0, 53};
  assert_int_equal(socks5_parse_udp(atyp, sizeof atyp, &frag, &a, &hdr), SOCKS_ERR_ATYP);
  const uint8_t empty_name[] = {0, 0, 0, 3, 0, 0, 53};
  assert_int_equal(socks5_parse_udp(empty_name, sizeof empty_name, &frag, &a, &hdr),
                   SOCKS_ERR_MALFORMED);
  const uint8_t nul_name[] = {0, 0, 0, 3, 2, 'a', 0, 0, 53};
  assert_int_equal(socks5_parse_udp(nul_name, sizeof nul_name, &frag, &a, &hdr),
                   SOCKS_ERR_MALFORMED);
  /* FRAG is reported, not judged: dropping fragments is the caller's policy. */
  const uint8_t frag3[] = {0, 0, 3, 1, 1, 2, 3, 4, 0, 53, 'x'};
  assert_int_equal(socks5_parse_udp(frag3, sizeof frag3, &frag, &a, &hdr), SOCKS_DONE);
  assert_int_equal(frag, 3);
  assert_int_equal(hdr, 10);
}

static void test_udp_build_invalid(void **state) {
  uint8_t out[300];
  socks_addr a = domain("", 53);
  assert_int_equal(socks5_build_udp_header(&a, out, sizeof out), 0);
  memset(a.domain, 'a', sizeof a.domain); /* no NUL: cannot be sent */
  assert_int_equal(socks5_build_udp_header(&a, out, sizeof out), 0);
  a.type = (socks_atyp)2;
  assert_int_equal(socks5_build_udp_header(&a, out, sizeof out), 0);
}

/* ---- replies ---- */

static void test_socks5_reply_default(void **state) {
  uint8_t out[262];
  const uint8_t want[] = {5, SOCKS5_REP_REFUSED, 0, 1, 0, 0, 0, 0, 0, 0};
  assert_int_equal(socks5_build_reply(SOCKS5_REP_REFUSED, NULL, out, sizeof out), sizeof want);
  assert_memory_equal(out, want, sizeof want);
  assert_int_equal(socks5_build_reply(0, NULL, out, 9), 0);
}

/* A reply has the request's layout (REP in CMD's place), so the request parser reads it back. */
static void check_reply_round_trip(const socks_addr *a, size_t want_len) {
  uint8_t out[262];
  size_t n = socks5_build_reply(SOCKS5_REP_SUCCEEDED, a, out, sizeof out);
  assert_int_equal(n, want_len);
  msg m = {.n = 0};
  put(&m, out, n);
  check_valid(p_req5, &m);
  assert_int_equal(g_req5.cmd, SOCKS5_REP_SUCCEEDED);
  assert_addr_equal(&g_req5.addr, a);
  assert_int_equal(socks5_build_reply(SOCKS5_REP_SUCCEEDED, a, out, n - 1), 0);
}

static void test_socks5_reply_round_trips(void **state) {
  socks_addr a = ipv4(10, 7, 0, 2, 40000);
  check_reply_round_trip(&a, 10);
  a = ipv6(V6_LOOP, 1080);
  check_reply_round_trip(&a, 22);
  a = domain("bnd.example", 8080);
  check_reply_round_trip(&a, 4 + 1 + 11 + 2);
  a = domain(long_name(), 8080);
  check_reply_round_trip(&a, 262);
}

static void test_socks4_reply(void **state) {
  uint8_t out[8];
  socks_addr a = ipv4(198, 51, 100, 1, 0x1F90);
  assert_int_equal(socks4_build_reply(SOCKS4_REP_GRANTED, &a, out), 8);
  const uint8_t want[] = {0, 0x5A, 0x1F, 0x90, 198, 51, 100, 1};
  assert_memory_equal(out, want, 8);

  const uint8_t zeros[] = {0, 0x5B, 0, 0, 0, 0, 0, 0};
  memset(out, 0xAA, sizeof out);
  assert_int_equal(socks4_build_reply(SOCKS4_REP_REJECTED, NULL, out), 8);
  assert_memory_equal(out, zeros, 8);
  a = ipv6(V6_DOC, 80);
  memset(out, 0xAA, sizeof out);
  assert_int_equal(socks4_build_reply(SOCKS4_REP_REJECTED, &a, out), 8);
  assert_memory_equal(out, zeros, 8);
  a = domain("x", 80);
  assert_int_equal(socks4_build_reply(SOCKS4_REP_REJECTED, &a, out), 8);
  assert_memory_equal(out, zeros, 8);
}

/* ---- names and formatting ---- */

static void test_rep_names(void **state) {
  const char *want[] = {
      "succeeded",           "general-failure",       "not-allowed",
      "network-unreachable", "host-unreachable",      "connection-refused",
      "ttl-expired",         "command-not-supported", "address-type-not-supported"};
  for (unsigned i = 0; i < 9; i++) assert_string_equal(socks5_rep_name((uint8_t)i), want[i]);
  assert_string_equal(socks5_rep_name(9), "unknown");
  assert_string_equal(socks5_rep_name(0x5A), "unknown");
  assert_string_equal(socks5_rep_name(0xFF), "unknown");
}

static void check_format(const socks_addr *a, const char *want) {
  char buf[1200];
  memset(buf, 'Z', sizeof buf);
  socks_addr_format(a, buf, sizeof buf);
  assert_string_equal(buf, want);
}

static void test_addr_format(void **state) {
  socks_addr a = ipv4(1, 2, 3, 4, 80);
  check_format(&a, "1.2.3.4:80");
  a = ipv4(255, 255, 255, 255, 65535);
  check_format(&a, "255.255.255.255:65535");
  a = ipv6(V6_LOOP, 443);
  check_format(&a, "[::1]:443");
  a = ipv6(V6_DOC, 53);
  check_format(&a, "[2001:db8::1]:53");
  a = domain("example.com", 443);
  check_format(&a, "example.com:443");
  /* Bytes that could forge a log line or a field are escaped, the backslash included. */
  a = domain("evil.com\n2024 INFO ok", 1);
  check_format(&a, "evil.com\\x0a2024\\x20INFO\\x20ok:1");
  a = domain("a\\x0a\x7f\xff\x01", 2);
  check_format(&a, "a\\x5cx0a\\x7f\\xff\\x01:2");
  a.type = (socks_atyp)9;
  check_format(&a, "?");
}

static void test_addr_format_truncation(void **state) {
  socks_addr a = domain("ab\ncd", 80);
  char buf[16];
  for (size_t len = 1; len <= sizeof buf; len++) {
    memset(buf, 'Z', sizeof buf);
    socks_addr_format(&a, buf, len);
    assert_true(strlen(buf) < len);
    /* Never half an escape: the output is a prefix of the full text at a token boundary. */
    const char *full = "ab\\x0acd:80";
    assert_memory_equal(buf, full, strlen(buf));
    size_t n = strlen(buf);
    assert_true(n <= 2 || n >= 6);
  }
  memset(a.domain, 'q', sizeof a.domain); /* unterminated: bounded by the array */
  char big[600];
  socks_addr_format(&a, big, sizeof big);
  assert_int_equal(strlen(big), 256 + 3);
  socks_addr_format(&a, buf, 0); /* no room: nothing written, no crash */
}

/* Connect failures map to the precise reply (issue: refused 0x05, unreachable 0x03/0x04, …):
 * the OS error becomes a dial error (src/stream/dial_error.c), the session turns that into the
 * reply. */
static void test_rep_for_uv(void **state) {
  (void)state;
  static const struct {
    int status;
    uint8_t rep;
  } cases[] = {{UV_ECONNREFUSED, 0x05}, {UV_ENETUNREACH, 0x03},
               {UV_EAFNOSUPPORT, 0x03}, {UV_EADDRNOTAVAIL, 0x03},
               {UV_EHOSTUNREACH, 0x04}, {UV_EACCES, 0x02},
               {UV_EPERM, 0x02},        {UV_ETIMEDOUT, 0x06},
               {UV_ECONNRESET, 0x01},   {UV_EIO, 0x01}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dial_error err = dial_error_from_uv(cases[i].status);
    assert_int_equal(socks5_rep_for_dial(err), cases[i].rep);
    assert_int_equal(socks4_rep_for_dial(err), SOCKS4_REP_REJECTED);
    assert_non_null(dial_error_reason(err));
  }
}

/* Every dial error has its reply; the ones without a SOCKS5 code of their own are the nearest. */
static void test_rep_for_dial(void **state) {
  (void)state;
  static const uint8_t want[DIAL_ERR_COUNT] = {[DIAL_OK] = 0x00,
                                               [DIAL_ERR_GENERAL] = 0x01,
                                               [DIAL_ERR_NOT_ALLOWED] = 0x02,
                                               [DIAL_ERR_NET_UNREACHABLE] = 0x03,
                                               [DIAL_ERR_HOST_UNREACHABLE] = 0x04,
                                               [DIAL_ERR_REFUSED] = 0x05,
                                               [DIAL_ERR_TIMEOUT] = 0x06,
                                               [DIAL_ERR_NAME_NOT_FOUND] = 0x04,
                                               [DIAL_ERR_TUNNEL_DOWN] = 0x01};
  for (int e = 0; e < DIAL_ERR_COUNT; e++) {
    assert_int_equal(socks5_rep_for_dial((dial_error)e), want[e]);
    assert_int_equal(socks4_rep_for_dial((dial_error)e),
                     e ? SOCKS4_REP_REJECTED : SOCKS4_REP_GRANTED);
    assert_string_not_equal(dial_error_name((dial_error)e), "unknown");
  }
  /* A value from the wire outside the enum is a general failure, never out of bounds. */
  assert_int_equal(socks5_rep_for_dial((dial_error)200), 0x01);
  assert_string_equal(dial_error_name((dial_error)200), "unknown");
  assert_string_equal(dial_error_name(DIAL_ERR_REFUSED), "refused");
  assert_string_equal(dial_error_name(DIAL_ERR_TUNNEL_DOWN), "tunnel-down");
}

static void test_dial_dest_round_trip(void **state) {
  (void)state;
  socks_addr in[3];
  memset(in, 0, sizeof in);
  in[0].type = SOCKS_ADDR_IPV4, in[0].port = 80, memcpy(in[0].ip, "\x0a\x00\x00\x01", 4);
  in[1].type = SOCKS_ADDR_IPV6, in[1].port = 443, memset(in[1].ip, 0xfe, 16);
  in[2].type = SOCKS_ADDR_DOMAIN, in[2].port = 8080;
  memset(in[2].domain, 'a', 255); /* the longest name */
  static const dial_dest_type types[3] = {DIAL_DEST_IPV4, DIAL_DEST_IPV6, DIAL_DEST_NAME};
  for (int i = 0; i < 3; i++) {
    dial_dest d;
    socks_addr_to_dial_dest(&in[i], &d);
    assert_int_equal(d.type, types[i]);
    assert_int_equal(d.port, in[i].port);
    assert_int_equal(d.flags, 0);
    if (i < 2)
      assert_memory_equal(d.ip, in[i].ip, i == 0 ? 4 : 16);
    else
      assert_string_equal(d.name, in[i].domain);
  }
  socks_addr over;
  memset(&over, 'x', sizeof over); /* an unterminated name stays bounded */
  over.type = SOCKS_ADDR_DOMAIN;
  dial_dest d;
  socks_addr_to_dial_dest(&over, &d);
  assert_int_equal(strlen(d.name), DIAL_NAME_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greeting_valid),
      cmocka_unit_test(test_greeting_errors),
      cmocka_unit_test(test_greeting_untouched_unless_done),
      cmocka_unit_test(test_userpass_valid),
      cmocka_unit_test(test_userpass_errors),
      cmocka_unit_test(test_request_ipv4),
      cmocka_unit_test(test_request_ipv6),
      cmocka_unit_test(test_request_domain),
      cmocka_unit_test(test_request_any_cmd_and_rsv),
      cmocka_unit_test(test_request_errors),
      cmocka_unit_test(test_request_untouched_unless_done),
      cmocka_unit_test(test_socks4_connect),
      cmocka_unit_test(test_socks4_not_4a),
      cmocka_unit_test(test_socks4_user_id_bounds),
      cmocka_unit_test(test_socks4_errors),
      cmocka_unit_test(test_socks4a),
      cmocka_unit_test(test_socks4a_errors),
      cmocka_unit_test(test_udp_round_trips),
      cmocka_unit_test(test_udp_parse_errors),
      cmocka_unit_test(test_udp_build_invalid),
      cmocka_unit_test(test_socks5_reply_default),
      cmocka_unit_test(test_socks5_reply_round_trips),
      cmocka_unit_test(test_socks4_reply),
      cmocka_unit_test(test_rep_names),
      cmocka_unit_test(test_addr_format),
      cmocka_unit_test(test_addr_format_truncation),
      cmocka_unit_test(test_rep_for_uv),
      cmocka_unit_test(test_rep_for_dial),
      cmocka_unit_test(test_dial_dest_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
