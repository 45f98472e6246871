/* The JSON reader behind `awgproxy ctl` (src/observe/json.h): values, escapes and UTF-8, strictness
 * (RFC 8259 only), nesting limit, and round trips of what the control API writes. */
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

#include "observe/buf.h"
#include "observe/json.h"

static json_value *parse(const char *s) {
  char err[128];
  return json_parse(s, strlen(s), err, sizeof err);
}

static void test_document(void **state) {
  json_value *v = parse(
      " {\"state\":\"up\",\"n\":-12.5e1,\"ok\":true,\"no\":false,\"x\":null,"
      "\"peers\":[{\"peer\":\"f+2up9Y6\",\"last_handshake\":1700000000.123}],"
      "\"empty\":{},\"list\":[]} \n");
  assert_non_null(v);
  assert_int_equal(v->type, JSON_OBJECT);
  assert_string_equal(json_get_string(v, "state", NULL), "up");
  assert_true(json_get_number(v, "n", 0) == -125);
  assert_true(json_get_bool(v, "ok", false));
  assert_false(json_get_bool(v, "no", true));
  assert_int_equal(json_get(v, "x")->type, JSON_NULL);
  assert_null(json_get(v, "missing"));
  assert_string_equal(json_get_string(v, "n", "dflt"), "dflt"); /* wrong type: fallback */
  const json_value *peers = json_get(v, "peers");
  assert_int_equal(peers->type, JSON_ARRAY);
  assert_int_equal(peers->n, 1);
  assert_string_equal(json_get_string(&peers->items[0], "peer", NULL), "f+2up9Y6");
  assert_true(json_get_number(&peers->items[0], "last_handshake", 0) == 1700000000.123);
  assert_int_equal(json_get(v, "empty")->n, 0);
  assert_int_equal(json_get(v, "list")->type, JSON_ARRAY);
  assert_null(json_get(peers, "peer")); /* not an object */
  json_free(v);
}

static void test_strings(void **state) {
  json_value *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"");
  assert_non_null(v);
  assert_string_equal(v->string, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  json_free(v);
  /* What the control API writes comes back unchanged. */
  const char *raw = "quote\" back\\ nl\n ctl\x01 del\x7f utf8 \xc3\xa9";
  obs_buf b;
  obs_buf_init(&b);
  obs_buf_json_string(&b, raw);
  v = json_parse(b.data, b.len, NULL, 0);
  assert_non_null(v);
  assert_string_equal(v->string, raw);
  json_free(v);
  obs_buf_free(&b);
}

static void test_rejects(void **state) {
  static const char *const bad[] = {
      "",
      "   ",
      "{",
      "}",
      "[1,]",
      "{\"a\":1,}",
      "{a:1}",
      "{\"a\" 1}",
      "[1 2]",
      "01",
      "1.",
      ".5",
      "1e",
      "-",
      "+1",
      "tru",
      "nul",
      "\"abc",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\ud83d\"",
      "\"\\ude00\"",
      "\"\\u0000\"",
      "\"a\nb\"",
      "[1] [2]",
      "{} x",
      "'a'",
      "NaN",
      "Infinity",
      "\"\\",
      "[\"\\u00\"]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[128] = "";
    json_value *v = json_parse(bad[i], strlen(bad[i]), err, sizeof err);
    if (v) fail_msg("accepted %s", bad[i]);
    assert_true(strlen(err) > 0);
  }
}

static void test_depth(void **state) {
  char deep[2 * JSON_MAX_DEPTH + 3];
  size_t n = 0;
  for (int i = 0; i < JSON_MAX_DEPTH; i++) deep[n++] = '[';
  for (int i = 0; i < JSON_MAX_DEPTH; i++) deep[n++] = ']';
  json_value *v = json_parse(deep, n, NULL, 0);
  assert_non_null(v);
  json_free(v);
  n = 0;
  for (int i = 0; i <= JSON_MAX_DEPTH; i++) deep[n++] = '[';
  for (int i = 0; i <= JSON_MAX_DEPTH; i++) deep[n++] = ']';
  assert_null(json_parse(deep, n, NULL, 0));
}

static void test_not_nul_terminated(void **state) {
  /* The length bounds the input: "123" then garbage that must not be read as digits. */
  const char text[] = {'1', '2', '3', '4'};
  json_value *v = json_parse(text, 3, NULL, 0);
  assert_non_null(v);
  assert_true(v->number == 123);
  json_free(v);
}

static void test_many_members(void **state) {
  obs_buf b;
  obs_buf_init(&b);
  obs_buf_puts(&b, "{");
  for (int i = 0; i < 1000; i++) obs_buf_printf(&b, "%s\"k%d\":[%d]", i ? "," : "", i, i);
  obs_buf_puts(&b, "}");
  json_value *v = json_parse(b.data, b.len, NULL, 0);
  assert_non_null(v);
  assert_int_equal(v->n, 1000);
  assert_true(json_get(v, "k999")->items[0].number == 999);
  json_free(v);
  obs_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_document),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_not_nul_terminated),
      cmocka_unit_test(test_many_members),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
