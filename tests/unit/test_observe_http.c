/* The HTTP/1.1 request parser of the metrics and control endpoints (src/observe/http.h): what a
 * valid request yields, that every strict prefix needs more, that bytes after the request are left
 * alone, each error status, and the size limits. */
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

#include "observe/http.h"

static http_parse_status parse(const char *s, http_request *r) {
  return http_parse_request(s, strlen(s), r);
}

/* Every strict prefix of a complete request needs more; the whole is DONE. */
static void check_prefixes(const char *s) {
  http_request r;
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) {
    http_parse_status st = http_parse_request(s, i, &r);
    if (st != HTTP_NEED_MORE) fail_msg("prefix %zu of %s: status %d", i, s, st);
  }
  assert_int_equal(http_parse_request(s, n, &r), HTTP_DONE);
  assert_int_equal(r.total_len, n);
}

static void test_simple_get(void **state) {
  http_request r;
  const char *req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nAccept: */*\r\n\r\n";
  assert_int_equal(parse(req, &r), HTTP_DONE);
  assert_string_equal(r.method, "GET");
  assert_string_equal(r.path, "/metrics");
  assert_int_equal(r.version_minor, 1);
  assert_int_equal(r.content_length, 0);
  assert_int_equal(r.head_len, strlen(req));
  check_prefixes(req);
}

static void test_query_and_bare_lf(void **state) {
  http_request r;
  assert_int_equal(parse("GET /metrics?name[]=x&y HTTP/1.0\n\n", &r), HTTP_DONE);
  assert_string_equal(r.path, "/metrics");
  assert_int_equal(r.version_minor, 0);
  assert_int_equal(parse("GET /a#frag HTTP/1.1\r\n\r\n", &r), HTTP_DONE);
  assert_string_equal(r.path, "/a");
  check_prefixes("GET / HTTP/1.1\nHost: x\n\n");
}

static void test_body(void **state) {
  http_request r;
  const char *req = "POST /reload HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  check_prefixes(req);
  assert_int_equal(parse(req, &r), HTTP_DONE);
  assert_string_equal(r.method, "POST");
  assert_int_equal(r.content_length, 5);
  assert_int_equal(r.total_len, strlen(req));
  assert_memory_equal(req + r.head_len, "hello", 5);
  /* Pipelined bytes after the request do not change the answer. */
  char more[200];
  snprintf(more, sizeof more, "%sGET / HTTP/1.1\r\n\r\n", req);
  assert_int_equal(parse(more, &r), HTTP_DONE);
  assert_int_equal(r.total_len, strlen(req));
  /* Header names are case-insensitive, values may have optional whitespace. */
  assert_int_equal(parse("POST / HTTP/1.1\r\ncOnTeNt-LeNgTh:\t 0 \r\n\r\n", &r), HTTP_DONE);
  /* Repeated identical lengths are fine, differing ones are not. */
  assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", &r),
                   HTTP_DONE);
  assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", &r),
                   HTTP_ERROR);
  assert_int_equal(r.error, 400);
}

typedef struct {
  const char *req;
  int status;
} bad_case;

static void test_errors(void **state) {
  static const bad_case cases[] = {
      {"GET\r\n", 400},                        /* no target */
      {" GET / HTTP/1.1\r\n\r\n", 400},        /* leading space */
      {"GET  / HTTP/1.1\r\n\r\n", 400},        /* two spaces */
      {"G(T / HTTP/1.1\r\n\r\n", 400},         /* not a token */
      {"GET metrics HTTP/1.1\r\n\r\n", 400},   /* not origin-form */
      {"GET http://x/ HTTP/1.1\r\n\r\n", 400}, /* absolute-form is not served */
      {"GET /a\x01 HTTP/1.1\r\n\r\n", 400},    /* control byte in target */
      {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400}, /* raw non-ASCII in target */
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / HTTP/1.x\r\n\r\n", 400},
      {"GET / HTTP/1.11\r\n\r\n", 400},
      {"GET / http/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\rX\n\r\n", 400},            /* CR without LF */
      {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400}, /* space before colon */
      {"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400}, /* obsolete line folding */
      {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\rX", 400},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 8193\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", 501}, /* method longer than we know */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    http_request r;
    const char *s = cases[i].req;
    http_parse_status st = http_parse_request(s, strlen(s), &r);
    if (st != HTTP_ERROR || r.error != cases[i].status)
      fail_msg("case %zu (%s): status %d error %d, want error %d", i, s, st, r.error,
               cases[i].status);
    assert_non_null(r.reason);
  }
  /* A NUL inside a header value (not expressible in the table above). */
  static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
  http_request r;
  assert_int_equal(http_parse_request(nul, sizeof nul - 1, &r), HTTP_ERROR);
  assert_int_equal(r.error, 400);
}

static void test_errors_are_early_and_sticky(void **state) {
  /* The answer comes at the first byte that shows the problem and stays with more input. */
  const char *s = "GET /x HTTP/3";
  http_request r;
  assert_int_equal(http_parse_request(s, 11, &r), HTTP_NEED_MORE); /* "GET /x HTTP" */
  assert_int_equal(http_parse_request(s, 12, &r), HTTP_NEED_MORE); /* "GET /x HTTP/" */
  assert_int_equal(http_parse_request(s, 13, &r), HTTP_ERROR);
  assert_int_equal(r.error, 505);
  assert_int_equal(parse("GET /x HTTP/3.0\r\n\r\nmore", &r), HTTP_ERROR);
  assert_int_equal(r.error, 505);
}

static void test_limits(void **state) {
  size_t big = HTTP_MAX_REQUEST + 100;
  char *buf = malloc(big + 1);
  http_request r;
  /* A target of exactly HTTP_MAX_TARGET bytes is fine, one more is 414. */
  size_t n = (size_t)snprintf(buf, big, "GET /");
  memset(buf + n, 'a', HTTP_MAX_TARGET - 1);
  n += HTTP_MAX_TARGET - 1;
  n += (size_t)snprintf(buf + n, big - n, " HTTP/1.1\r\n\r\n");
  assert_int_equal(http_parse_request(buf, n, &r), HTTP_DONE);
  assert_int_equal(strlen(r.path), HTTP_MAX_TARGET);
  n = (size_t)snprintf(buf, big, "GET /");
  memset(buf + n, 'a', HTTP_MAX_TARGET);
  n += HTTP_MAX_TARGET;
  assert_int_equal(http_parse_request(buf, n, &r), HTTP_ERROR);
  assert_int_equal(r.error, 414);

  /* Headers: 8 KiB in all, decided at the limit even if the bytes stop there. */
  n = (size_t)snprintf(buf, big, "GET / HTTP/1.1\r\nX: ");
  memset(buf + n, 'v', big - n);
  assert_int_equal(http_parse_request(buf, HTTP_MAX_REQUEST - 1, &r), HTTP_NEED_MORE);
  assert_int_equal(http_parse_request(buf, HTTP_MAX_REQUEST, &r), HTTP_ERROR);
  assert_int_equal(r.error, 431);
  assert_int_equal(http_parse_request(buf, big, &r), HTTP_ERROR);
  assert_int_equal(r.error, 431);

  /* A request of exactly HTTP_MAX_REQUEST bytes (head + body) is accepted. */
  const char *head = "POST /reload HTTP/1.1\r\nContent-Length: ";
  char len_text[16];
  size_t hl = strlen(head) + 4 + 4; /* 4 digits + "\r\n\r\n" */
  snprintf(len_text, sizeof len_text, "%zu", (size_t)HTTP_MAX_REQUEST - hl);
  assert_int_equal(strlen(len_text), 4);
  n = (size_t)snprintf(buf, big, "%s%s\r\n\r\n", head, len_text);
  memset(buf + n, 'b', HTTP_MAX_REQUEST - n);
  assert_int_equal(http_parse_request(buf, HTTP_MAX_REQUEST, &r), HTTP_DONE);
  assert_int_equal(r.total_len, HTTP_MAX_REQUEST);
  /* One byte more body is 413. */
  snprintf(len_text, sizeof len_text, "%zu", (size_t)HTTP_MAX_REQUEST - hl + 1);
  n = (size_t)snprintf(buf, big, "%s%s\r\n\r\n", head, len_text);
  assert_int_equal(http_parse_request(buf, n, &r), HTTP_ERROR);
  assert_int_equal(r.error, 413);

  /* Too many header lines. */
  n = (size_t)snprintf(buf, big, "GET / HTTP/1.1\r\n");
  for (int i = 0; i <= HTTP_MAX_HEADERS; i++) n += (size_t)snprintf(buf + n, big - n, "A: b\r\n");
  assert_int_equal(http_parse_request(buf, n, &r), HTTP_ERROR);
  assert_int_equal(r.error, 431);
  free(buf);
}

static void test_status_text(void **state) {
  assert_string_equal(http_status_text(200), "OK");
  assert_string_equal(http_status_text(404), "Not Found");
  assert_string_equal(http_status_text(501), "Not Implemented");
  assert_string_equal(http_status_text(299), "Unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simple_get),
      cmocka_unit_test(test_query_and_bare_lf),
      cmocka_unit_test(test_body),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_errors_are_early_and_sticky),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_status_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
