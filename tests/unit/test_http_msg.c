/* The HTTP proxy's message heads and body framing (src/http/http_msg.h): the scanner's limits and
 * incremental answers, request targets (origin, absolute, authority), the refusals that guard
 * against request smuggling, hop-by-hop headers, the rewrites for the next hop, and chunked
 * bodies followed to their end with pipelined bytes left alone. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>

#include "http/http_msg.h"

static hmsg_status scan(const char *s, size_t *start, size_t *end, int *status) {
  hmsg_scanner sc;
  hmsg_scan_init(&sc);
  const char *why;
  hmsg_status st = hmsg_scan(&sc, (const uint8_t *)s, strlen(s), end, status, &why);
  *start = sc.start;
  return st;
}

static int parse(const char *s, hreq *r) {
  size_t start, end;
  int status;
  assert_int_equal(scan(s, &start, &end, &status), HMSG_DONE);
  return hreq_parse((const uint8_t *)s + start, end - start, r);
}

static void test_scan_incremental_and_limits(void **state) {
  (void)state;
  const char *req = "\r\nGET http://a/ HTTP/1.1\r\nX: 1\r\n\r\nNEXT";
  hmsg_scanner sc;
  hmsg_scan_init(&sc);
  size_t end = 0;
  int status;
  const char *why;
  size_t total = strlen(req) - 4;
  for (size_t n = 0; n < total; n++)
    assert_int_equal(hmsg_scan(&sc, (const uint8_t *)req, n, &end, &status, &why), HMSG_NEED_MORE);
  assert_int_equal(hmsg_scan(&sc, (const uint8_t *)req, strlen(req), &end, &status, &why),
                   HMSG_DONE);
  assert_int_equal(end, total);  /* pipelined bytes are not part of the head */
  assert_int_equal(sc.start, 2); /* the leading empty line is skipped */

  /* a 9 KB request line: 414 as soon as the line passes 8 KB, not at its end */
  char *big = malloc(20000);
  memset(big, 'a', 20000);
  memcpy(big, "GET http://a/", 13);
  hmsg_scan_init(&sc);
  assert_int_equal(hmsg_scan(&sc, (const uint8_t *)big, HMSG_MAX_LINE + 1, &end, &status, &why),
                   HMSG_ERROR);
  assert_int_equal(status, 414);
  /* a long header line: 431 */
  size_t n = (size_t)snprintf(big, 20000, "GET http://a/ HTTP/1.1\r\nX: ");
  memset(big + n, 'b', 20000 - n);
  hmsg_scan_init(&sc);
  assert_int_equal(hmsg_scan(&sc, (const uint8_t *)big, 20000, &end, &status, &why), HMSG_ERROR);
  assert_int_equal(status, 431);
  /* 101 header lines: 431 */
  n = (size_t)snprintf(big, 20000, "GET http://a/ HTTP/1.1\r\n");
  for (int i = 0; i < 101; i++) n += (size_t)snprintf(big + n, 20000 - n, "X%d: v\r\n", i);
  hmsg_scan_init(&sc);
  assert_int_equal(hmsg_scan(&sc, (const uint8_t *)big, n, &end, &status, &why), HMSG_ERROR);
  assert_int_equal(status, 431);
  /* a head over 16 KB made of acceptable lines: 431 */
  n = (size_t)snprintf(big, 20000, "GET http://a/ HTTP/1.1\r\n");
  for (int i = 0; i < 3; i++) {
    n += (size_t)snprintf(big + n, 20000 - n, "X%d: ", i);
    memset(big + n, 'c', 6000);
    n += 6000;
    n += (size_t)snprintf(big + n, 20000 - n, "\r\n");
  }
  hmsg_scan_init(&sc);
  assert_int_equal(hmsg_scan(&sc, (const uint8_t *)big, n, &end, &status, &why), HMSG_ERROR);
  assert_int_equal(status, 431);
  free(big);
}

static void test_request_targets(void **state) {
  (void)state;
  hreq r;
  assert_int_equal(parse("GET http://Example.COM:8080/p?q=1#frag HTTP/1.1\r\n\r\n", &r), 0);
  assert_int_equal(r.form, HREQ_ABSOLUTE);
  assert_string_equal(r.host, "example.com");
  assert_int_equal(r.port, 8080);
  assert_int_equal(r.path_len, 6); /* "/p?q=1", the fragment dropped */
  assert_int_equal(parse("GET http://[2001:db8::1]/ HTTP/1.0\r\n\r\n", &r), 0);
  assert_true(r.host_ipv6);
  assert_string_equal(r.host, "2001:db8::1");
  assert_int_equal(r.port, 80);
  assert_true(r.close); /* HTTP/1.0 without keep-alive */
  assert_int_equal(parse("CONNECT target.test:443 HTTP/1.1\r\nHost: target.test\r\n\r\n", &r), 0);
  assert_int_equal(r.form, HREQ_AUTHORITY);
  assert_int_equal(r.port, 443);
  assert_int_equal(parse("GET /proxy.pac HTTP/1.1\r\n\r\n", &r), 0);
  assert_int_equal(r.form, HREQ_ORIGIN);

  static const struct {
    const char *req;
    int status;
  } bad[] = {
      {"CONNECT target.test HTTP/1.1\r\n\r\n", 400},
      {"GET https://a/ HTTP/1.1\r\n\r\n", 400},
      {"GET http://user:pw@a/ HTTP/1.1\r\n\r\n", 400},
      {"GET http://a:99999/ HTTP/1.1\r\n\r\n", 400},
      {"GET http://a b/ HTTP/1.1\r\n\r\n", 400},
      {"GET http://a/ HTTP/2.0\r\n\r\n", 505},
      {"GET http://a/ HTTP/1.1\r\nX : 1\r\n\r\n", 400},
      {"GET http://a/ HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n", 400},
      {"GET http://a/ HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST http://a/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&r, 0, sizeof r);
    assert_int_equal(parse(bad[i].req, &r), -1);
    assert_int_equal(r.status, bad[i].status);
    assert_non_null(r.reason);
  }
}

static void test_request_rewrite_drops_hop_by_hop(void **state) {
  (void)state;
  const char *req =
      "POST http://t.test:8080?x=1 HTTP/1.1\r\nHost: other\r\nProxy-Authorization: Basic eA==\r\n"
      "Proxy-Connection: keep-alive\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\n"
      "Keep-Alive: 5\r\nUpgrade: h2c\r\nX-Keep: yes\r\nTransfer-Encoding: chunked\r\n\r\n";
  hreq r;
  assert_int_equal(parse(req, &r), 0);
  assert_true(r.close);
  assert_int_equal(r.auth, 1);
  assert_int_equal(r.body, HBODY_CHUNKED);
  uint8_t out[1024];
  size_t n = hreq_rewrite(&r, (const uint8_t *)req, strlen(req), out, sizeof out);
  out[n] = 0;
  assert_string_equal((char *)out,
                      "POST /?x=1 HTTP/1.1\r\nHost: t.test:8080\r\nX-Keep: yes\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n");
  assert_int_equal(hreq_rewrite(&r, (const uint8_t *)req, strlen(req), out, 20), 0);
}

static void test_responses(void **state) {
  (void)state;
  static const struct {
    const char *head;
    bool head_request;
    hbody_kind body;
    bool close;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, HBODY_LENGTH, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", false,
       HBODY_CHUNKED, false},
      {"HTTP/1.1 200 OK\r\n\r\n", false, HBODY_CLOSE, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, HBODY_NONE, false},
      {"HTTP/1.1 204 No Content\r\n\r\n", false, HBODY_NONE, false},
      {"HTTP/1.1 304 Not Modified\r\n\r\n", false, HBODY_NONE, false},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, HBODY_NONE, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, HBODY_LENGTH, true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", false,
       HBODY_LENGTH, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n", false, HBODY_LENGTH,
       true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hresp r;
    assert_int_equal(hresp_parse((const uint8_t *)cases[i].head, strlen(cases[i].head),
                                 cases[i].head_request, &r),
                     0);
    assert_int_equal(r.body, cases[i].body);
    assert_int_equal(r.close, cases[i].close);
  }
  const char *h = "HTTP/1.1 200 OK\r\nKeep-Alive: 5\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
  hresp r;
  assert_int_equal(hresp_parse((const uint8_t *)h, strlen(h), false, &r), 0);
  uint8_t out[512];
  size_t n = hresp_rewrite(&r, (const uint8_t *)h, strlen(h), false, 1, out, sizeof out);
  out[n] = 0;
  assert_string_equal((char *)out, "HTTP/1.1 200 OK\r\nX-B: 2\r\nConnection: close\r\n\r\n");
  n = hresp_rewrite(&r, (const uint8_t *)h, strlen(h), true, 0, out, sizeof out);
  out[n] = 0;
  assert_string_equal((char *)out, "HTTP/1.1 200 OK\r\nX-B: 2\r\nConnection: keep-alive\r\n\r\n");
  assert_int_equal(hresp_parse((const uint8_t *)"HTTP/1.1 2x0 OK\r\n\r\n", 19, false, &r), -1);
}

static void test_chunked_bodies(void **state) {
  (void)state;
  const char *body =
      "5;name=v\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: 1\r\n\r\nGET";
  size_t len = strlen(body) - 3;
  for (size_t split = 0; split <= len; split++) { /* any split point: the same end */
    hbody b;
    hbody_init(&b, HBODY_CHUNKED, 0);
    const char *why = NULL;
    long k1 = hbody_feed(&b, (const uint8_t *)body, split, &why);
    long k2 = hbody_feed(&b, (const uint8_t *)body + split, strlen(body) - split, &why);
    assert_int_equal(k1, split);
    assert_int_equal((size_t)(k1 + k2), len); /* "GET" (the next request) is left alone */
    assert_true(b.done);
  }
  static const char *const bad[] = {"x\r\n", "5\r\nhelloX\r\n", "10000000000000000\r\n", "5\rX",
                                    "0\r\nT: 1\r\n\rX"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hbody b;
    hbody_init(&b, HBODY_CHUNKED, 0);
    const char *why = NULL;
    assert_int_equal(hbody_feed(&b, (const uint8_t *)bad[i], strlen(bad[i]), &why), -1);
    assert_non_null(why);
  }
  hbody b;
  hbody_init(&b, HBODY_LENGTH, 4);
  const char *why;
  assert_int_equal(hbody_feed(&b, (const uint8_t *)"abcdef", 6, &why), 4);
  assert_true(b.done);
  hbody_init(&b, HBODY_LENGTH, 0);
  assert_true(b.done);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scan_incremental_and_limits),
      cmocka_unit_test(test_request_targets),
      cmocka_unit_test(test_request_rewrite_drops_hop_by_hop),
      cmocka_unit_test(test_responses),
      cmocka_unit_test(test_chunked_bodies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
