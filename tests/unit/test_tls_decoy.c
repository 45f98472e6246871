/* The TLS carrier's decoy web server (src/carrier/tls_decoy.c): nginx's answers for a site
 * directory and without one, partial and pipelined requests, garbage, and paths that try to
 * leave the directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "carrier/tls_decoy.h"

static tls_decoy_result ask(const char *root, const char *req, size_t *used, tls_decoy_reply *r) {
  return tls_decoy_answer(root, (const uint8_t *)req, strlen(req), used, 1700000000, r);
}

static bool has(const tls_decoy_reply *r, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; r->data && i + n <= r->len; i++)
    if (!memcmp(r->data + i, s, n)) return true;
  return false;
}

static void test_404_without_site(void **state) {
  (void)state;
  size_t used;
  tls_decoy_reply r;
  const char *req = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\nGET /x";
  assert_int_equal(ask(NULL, req, &used, &r), DECOY_ANSWER);
  assert_int_equal(used, strlen("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"));
  assert_int_equal(r.status, 404);
  assert_true(r.keep_alive);
  assert_true(has(&r, "HTTP/1.1 404 Not Found\r\nServer: nginx\r\n"));
  assert_true(has(&r, "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"));
  assert_true(has(&r, "<hr><center>nginx</center>"));
  free(r.data);
  assert_int_equal(ask(NULL, "GET /x", &used, &r), DECOY_NEED_MORE);
  assert_int_equal(ask(NULL, "HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n", &used, &r),
                   DECOY_ANSWER);
  assert_false(r.keep_alive);
  assert_false(has(&r, "<html>")); /* HEAD: no body */
  free(r.data);
  assert_int_equal(ask(NULL, "POST / HTTP/1.1\r\n\r\n", &used, &r), DECOY_ANSWER);
  assert_int_equal(r.status, 405);
  free(r.data);
}

static void test_garbage_is_400(void **state) {
  (void)state;
  size_t used;
  tls_decoy_reply r;
  const char *bad[] = {"\x16\x03\x01", "get / HTTP/1.1\r\n\r\n", "GET / SPDY/3\r\n\r\n",
                       "GETT/ HTTP/1.1\r\n\r\n", "ABCDEFGHIJKLMNOPQ"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(ask(NULL, bad[i], &used, &r), DECOY_BAD);
    assert_true(has(&r, "HTTP/1.1 400 Bad Request\r\n"));
    assert_true(has(&r, "Connection: close\r\n"));
    free(r.data);
  }
  /* A head that never ends is cut off at the bound. */
  char *big = malloc(TLS_DECOY_MAX_HEAD + 1);
  memset(big, 'a', TLS_DECOY_MAX_HEAD);
  memcpy(big, "GET /", 5);
  big[TLS_DECOY_MAX_HEAD] = '\0';
  assert_int_equal(ask(NULL, big, &used, &r), DECOY_BAD);
  free(r.data);
  free(big);
}

static void test_site(void **state) {
  (void)state;
  char dir[] = "/tmp/awg-decoy-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], secret[128];
  snprintf(path, sizeof path, "%s/index.html", dir);
  FILE *f = fopen(path, "w");
  fputs("<p>hello</p>", f);
  fclose(f);
  snprintf(secret, sizeof secret, "%s.secret", dir); /* next to the site, not in it */
  f = fopen(secret, "w");
  fputs("key", f);
  fclose(f);
  size_t used;
  tls_decoy_reply r;
  assert_int_equal(ask(dir, "GET / HTTP/1.1\r\n\r\n", &used, &r), DECOY_ANSWER);
  assert_int_equal(r.status, 200);
  assert_true(has(&r, "Content-Type: text/html\r\nContent-Length: 12\r\n"));
  assert_true(has(&r, "\r\n\r\n<p>hello</p>"));
  free(r.data);
  const char *outside[] = {"GET /../x HTTP/1.1\r\n\r\n", "GET /%2e%2e/x HTTP/1.1\r\n\r\n",
                           "GET /.secret HTTP/1.1\r\n\r\n", "GET index.html HTTP/1.1\r\n\r\n"};
  for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
    assert_int_equal(ask(dir, outside[i], &used, &r), DECOY_ANSWER);
    assert_int_equal(r.status, 404);
    assert_false(has(&r, "key"));
    free(r.data);
  }
  unlink(path);
  unlink(secret);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_404_without_site),
      cmocka_unit_test(test_garbage_is_400),
      cmocka_unit_test(test_site),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
