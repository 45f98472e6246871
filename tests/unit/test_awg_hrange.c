/* Header ranges H1..H4 and parameter defaults: spec §7.2 and §12 cases 1-3. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "awg/awg_params.h"

static awg_hrange parse_ok(const char *text) {
  awg_hrange r = {99, 99};
  char err[256] = "";
  int rc = awg_hrange_parse(text, &r, err, sizeof err);
  if (rc != 0) fail_msg("\"%s\" rejected: %s", text, err);
  return r;
}

/* Parses a bad value; checks the output is untouched and the message holds `expect`. */
static void parse_bad(const char *text, const char *expect) {
  awg_hrange r = {99, 99};
  char err[256] = "";
  assert_int_equal(awg_hrange_parse(text, &r, err, sizeof err), -1);
  assert_int_equal(r.start, 99);
  assert_int_equal(r.end, 99);
  if (strstr(err, expect) == NULL)
    fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, expect);
}

/* Case 1. */
static void test_parse_valid(void **state) {
  awg_hrange r = parse_ok("123");
  assert_int_equal(r.start, 123);
  assert_int_equal(r.end, 123);
  r = parse_ok("123-456");
  assert_int_equal(r.start, 123);
  assert_int_equal(r.end, 456);
  r = parse_ok("007");
  assert_int_equal(r.start, 7);
  assert_int_equal(r.end, 7);
  r = parse_ok("0");
  assert_int_equal(r.start, 0);
  assert_int_equal(r.end, 0);
  r = parse_ok("4294967295");
  assert_int_equal(r.start, UINT32_MAX);
  r = parse_ok("0-4294967295");
  assert_int_equal(r.start, 0);
  assert_int_equal(r.end, UINT32_MAX);
  r = parse_ok("5-5");
  assert_int_equal(r.start, 5);
  assert_int_equal(r.end, 5);
  r = parse_ok("0004294967295");
  assert_int_equal(r.start, UINT32_MAX);
}

static void test_parse_invalid(void **state) {
  parse_bad("4294967296", "above the maximum 4294967295");
  parse_bad("99999999999999999999999", "above the maximum");
  parse_bad("1-4294967296", "range end \"4294967296\" is above");
  parse_bad("456-123", "\"456-123\": range end is below its start");
  parse_bad("1-2-3", "single '-'");
  parse_bad("", "empty value");
  parse_bad(NULL, "empty value");
  parse_bad("-5", "range start is missing");
  parse_bad("5-", "range end is missing");
  parse_bad("+5", "not an unsigned decimal number");
  parse_bad(" 5", "not an unsigned decimal number");
  parse_bad("5 ", "not an unsigned decimal number");
  parse_bad("0x10", "not an unsigned decimal number");
  parse_bad("1 - 2", "not an unsigned decimal number");
  parse_bad("abc", "\"abc\"");
}

static void test_parse_error_truncates_safely(void **state) {
  awg_hrange r;
  char err[8];
  memset(err, 'x', sizeof err);
  assert_int_equal(awg_hrange_parse("456-123", &r, err, sizeof err), -1);
  assert_int_equal(strlen(err), sizeof err - 1);
}

/* Case 2. */
static void test_format(void **state) {
  char buf[32];
  assert_int_equal(awg_hrange_format((awg_hrange){5, 5}, buf, sizeof buf), 1);
  assert_string_equal(buf, "5");
  awg_hrange_format((awg_hrange){5, 9}, buf, sizeof buf);
  assert_string_equal(buf, "5-9");
  awg_hrange_format((awg_hrange){0, UINT32_MAX}, buf, sizeof buf);
  assert_string_equal(buf, "0-4294967295");
  /* Round trip. */
  awg_hrange r = parse_ok("123456-123500");
  awg_hrange_format(r, buf, sizeof buf);
  assert_string_equal(buf, "123456-123500");
}

/* Case 2: a fresh device is plain WireGuard and prints h1=1 .. h4=4. */
static void test_defaults(void **state) {
  awg_params p;
  awg_params_init(&p);
  assert_true(awg_params_is_plain(&p));
  assert_int_equal(p.jc, 0);
  assert_int_equal(p.jmin, 0);
  assert_int_equal(p.jmax, 0);
  char buf[16];
  for (int k = 0; k < 4; k++) {
    assert_int_equal(p.s[k], 0);
    awg_hrange_format(p.h[k], buf, sizeof buf);
    char want[2] = {(char)('1' + k), '\0'};
    assert_string_equal(buf, want);
  }
  for (int k = 0; k < AWG_NUM_I; k++) assert_null(p.i[k]);
  awg_params_free(&p);
}

static void test_is_plain(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.jmin = 10; /* irrelevant while Jc = 0 */
  p.jmax = 20;
  assert_true(awg_params_is_plain(&p));
  p.jc = 1;
  assert_false(awg_params_is_plain(&p));
  awg_params_init(&p);
  p.s[3] = 1;
  assert_false(awg_params_is_plain(&p));
  awg_params_init(&p);
  p.h[1].end = 3;
  assert_false(awg_params_is_plain(&p));
  awg_params_init(&p);
  p.h[0] = (awg_hrange){2, 2};
  p.h[1] = (awg_hrange){1, 1};
  assert_false(awg_params_is_plain(&p));
}

/* Case 3. */
static void test_overlap(void **state) {
  assert_true(awg_hrange_overlap((awg_hrange){100, 200}, (awg_hrange){200, 300}));
  assert_true(awg_hrange_overlap((awg_hrange){200, 300}, (awg_hrange){100, 200}));
  assert_false(awg_hrange_overlap((awg_hrange){100, 199}, (awg_hrange){200, 300}));
  assert_false(awg_hrange_overlap((awg_hrange){200, 300}, (awg_hrange){100, 199}));
  assert_true(awg_hrange_overlap((awg_hrange){2, 2}, (awg_hrange){2, 2}));
  assert_true(awg_hrange_overlap((awg_hrange){0, UINT32_MAX}, (awg_hrange){7, 7}));
  assert_true(awg_hrange_overlap((awg_hrange){10, 20}, (awg_hrange){12, 13}));
  assert_false(awg_hrange_overlap((awg_hrange){0, 0}, (awg_hrange){1, UINT32_MAX}));
}

static void test_contains(void **state) {
  awg_hrange r = {10, 12};
  assert_false(awg_hrange_contains(r, 9));
  assert_true(awg_hrange_contains(r, 10));
  assert_true(awg_hrange_contains(r, 12));
  assert_false(awg_hrange_contains(r, 13));
  assert_true(awg_hrange_contains((awg_hrange){0, UINT32_MAX}, 0));
  assert_true(awg_hrange_contains((awg_hrange){0, UINT32_MAX}, UINT32_MAX));
  assert_true(awg_hrange_contains((awg_hrange){0, 0}, 0));
  assert_false(awg_hrange_contains((awg_hrange){0, 0}, 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid),
      cmocka_unit_test(test_parse_invalid),
      cmocka_unit_test(test_parse_error_truncates_safely),
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_is_plain),
      cmocka_unit_test(test_overlap),
      cmocka_unit_test(test_contains),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
