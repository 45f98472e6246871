/* I-packet tag templates: spec §6 and §12 cases 21-28, as changed by decisions #2, #3, #4, #6. */
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

#include "awg/itag.h"

/* ---- scripted RNG: returns the bytes of a script, in order, and fails the test when exhausted */

typedef struct {
  const uint8_t *bytes;
  size_t len, pos;
} script;

static void script_fill(void *ctx, uint8_t *buf, size_t n) {
  script *s = ctx;
  if (n > s->len - s->pos)
    fail_msg("RNG script exhausted (%zu of %zu used, %zu asked)", s->pos, s->len, n);
  memcpy(buf, s->bytes + s->pos, n);
  s->pos += n;
}

/* Bytes 0, 1, 2, ... (mod 256), endless: for tests where only the count matters. */
static void counting_fill(void *ctx, uint8_t *buf, size_t n) {
  size_t *next = ctx;
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(*next)++;
}

static void forbidden_fill(void *ctx, uint8_t *buf, size_t n) {
  fail_msg("template without random tags used the RNG");
}

/* ---- helpers ------------------------------------------------------------------------------ */

static awg_itemplate *compile_ok(const char *text) {
  awg_itemplate *t = (awg_itemplate *)0x1;
  char err[512] = "";
  if (awg_itemplate_compile(text, &t, err, sizeof err) != 0)
    fail_msg("\"%s\" rejected: %s", text, err);
  assert_non_null(t);
  assert_string_equal(awg_itemplate_text(t), text);
  return t;
}

/* Compiles a bad text; returns the message (static buffer) after checking it holds `expect`. */
static const char *compile_bad(const char *text, const char *expect) {
  static char err[1024];
  awg_itemplate *t = (awg_itemplate *)0x1;
  err[0] = '\0';
  assert_int_equal(awg_itemplate_compile(text, &t, err, sizeof err), -1);
  assert_null(t);
  if (strstr(err, expect) == NULL)
    fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err, expect);
  return err;
}

/* Renders t with the given RNG script; checks the size, that the whole script was used, and
 * returns the bytes in out. */
static size_t render_script(const awg_itemplate *t, const uint8_t *rb, size_t rb_len, uint8_t *out,
                            size_t cap) {
  script s = {rb, rb_len, 0};
  rng_source rng = {script_fill, &s};
  awg_render_ctx ctx = {&rng, 1700000000u, 0x01020304u};
  size_t n = awg_itemplate_render(t, &ctx, out, cap);
  assert_int_equal(n, awg_itemplate_size(t));
  assert_int_equal(s.pos, rb_len);
  return n;
}

/* Compiles, renders with no randomness allowed, and compares to the expected bytes. */
static void expect_fixed(const char *text, const uint8_t *want, size_t want_len) {
  awg_itemplate *t = compile_ok(text);
  uint8_t buf[64];
  rng_source rng = {forbidden_fill, NULL};
  awg_render_ctx ctx = {&rng, 1700000000u, 7};
  assert_int_equal(awg_itemplate_size(t), want_len);
  assert_int_equal(awg_itemplate_render(t, &ctx, buf, sizeof buf), want_len);
  if (want_len) assert_memory_equal(buf, want, want_len);
  awg_itemplate_free(t);
}

/* Only the size matters (random content). */
static void expect_size(const char *text, size_t want) {
  awg_itemplate *t = compile_ok(text);
  assert_int_equal(awg_itemplate_size(t), want);
  uint8_t *buf = test_malloc(want ? want : 1);
  size_t next = 0;
  rng_source rng = {counting_fill, &next};
  awg_render_ctx ctx = {&rng, 0, 0};
  assert_int_equal(awg_itemplate_render(t, &ctx, buf, want), want);
  test_free(buf);
  awg_itemplate_free(t);
}

/* ---- case 21: <b> ------------------------------------------------------------------------- */

static void test_b(void **state) {
  expect_fixed("<b 0xf6ab3267fa>", (const uint8_t[]){0xf6, 0xab, 0x32, 0x67, 0xfa}, 5);
  expect_fixed("<b F6AB>", (const uint8_t[]){0xf6, 0xab}, 2);
  expect_fixed("<b 0xAbCd>", (const uint8_t[]){0xab, 0xcd}, 2);
  expect_fixed("<b 00>", (const uint8_t[]){0x00}, 1);
  compile_bad("<b 0xABC>", "<b 0xABC>: odd number of hex digits (3)");
  compile_bad("<b 0x>", "<b 0x>: missing hex bytes");
  compile_bad("<b>", "<b>: missing hex bytes");
  compile_bad("<b 0X01>", "<b 0X01>: 'X' is not a hex digit (write the prefix as lowercase 0x)");
  compile_bad("<b 0xzz>", "<b 0xzz>: 'z' is not a hex digit");
  compile_bad("<b 0x0x01>", "'x' is not a hex digit"); /* only one prefix is stripped */
  compile_bad("<b 0x01\x01>", "'\\x01' is not a hex digit");
}

/* ---- case 22: random tags ----------------------------------------------------------------- */

static void test_r(void **state) {
  static const uint8_t rb[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  awg_itemplate *t = compile_ok("<r 10>");
  uint8_t out[16];
  assert_int_equal(render_script(t, rb, sizeof rb, out, sizeof out), 10);
  assert_memory_equal(out, rb, 10);
  awg_itemplate_free(t);

  /* A tag is present, so <r 0> is a set slot of 0 bytes (not unset). */
  t = compile_ok("<r 0>");
  assert_int_equal(awg_itemplate_size(t), 0);
  assert_int_equal(render_script(t, NULL, 0, out, 0), 0);
  awg_itemplate_free(t);

  compile_bad("<r>", "<r>: missing size; write e.g. <r 16>");
}

static void test_rc(void **state) {
  static const uint8_t rb[] = {0, 25, 26, 255};
  awg_itemplate *t = compile_ok("<rc 4>");
  uint8_t out[4];
  render_script(t, rb, sizeof rb, out, sizeof out);
  assert_memory_equal(out, "azAV", 4);
  awg_itemplate_free(t);

  /* All 256 byte values: ALPHA[b mod 52], a..z then A..Z. */
  uint8_t all[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  t = compile_ok("<rc 256>");
  uint8_t big[256];
  render_script(t, all, sizeof all, big, sizeof big);
  for (int i = 0; i < 256; i++) {
    int m = i % 52;
    assert_int_equal(big[i], m < 26 ? 'a' + m : 'A' + (m - 26));
  }
  awg_itemplate_free(t);
}

static void test_rd(void **state) {
  static const uint8_t rb[] = {0, 9, 255};
  awg_itemplate *t = compile_ok("<rd 3>");
  uint8_t out[3];
  render_script(t, rb, sizeof rb, out, sizeof out);
  assert_memory_equal(out, "095", 3);
  awg_itemplate_free(t);

  uint8_t all[256], big[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  t = compile_ok("<rd 256>");
  render_script(t, all, sizeof all, big, sizeof big);
  for (int i = 0; i < 256; i++) assert_int_equal(big[i], '0' + i % 10);
  awg_itemplate_free(t);
}

/* ---- case 23: <t>; decisions #2: <c> ------------------------------------------------------ */

static void test_t(void **state) {
  expect_fixed("<t>", (const uint8_t[]){0x65, 0x53, 0xf1, 0x00}, 4); /* 1700000000 */
  expect_fixed("<t ignored>", (const uint8_t[]){0x65, 0x53, 0xf1, 0x00}, 4);
}

static void test_c(void **state) {
  expect_fixed("<c>", (const uint8_t[]){0, 0, 0, 7}, 4);
  expect_fixed("<b 0x01><c>", (const uint8_t[]){0x01, 0, 0, 0, 7}, 5);
  awg_itemplate *t = compile_ok("<c>");
  awg_render_ctx ctx = {NULL, 0, 0xdeadbeef};
  uint8_t out[4];
  assert_int_equal(awg_itemplate_render(t, &ctx, out, sizeof out), 4);
  assert_memory_equal(out, ((const uint8_t[]){0xde, 0xad, 0xbe, 0xef}), 4);
  awg_itemplate_free(t);
}

/* ---- case 24: composite ------------------------------------------------------------------- */

static void test_composite(void **state) {
  static const uint8_t rb[] = {0, 1, 2, /* rc */ 10, 11, /* rd */ 0xa1, 0xa2, 0xa3, 0xa4 /* r */};
  static const uint8_t want[18] = {0xf6, 0xab, 0x32, 0x67, 0xfa, 0x65, 0x53, 0xf1, 0x00,
                                   'a',  'b',  'c',  '0',  '1',  0xa1, 0xa2, 0xa3, 0xa4};
  awg_itemplate *t = compile_ok("<b 0xf6ab3267fa><t><rc 3><rd 2><r 4>");
  assert_int_equal(awg_itemplate_size(t), 18);
  uint8_t out[32];
  render_script(t, rb, sizeof rb, out, sizeof out);
  assert_memory_equal(out, want, sizeof want);
  awg_itemplate_free(t);
}

/* ---- case 25 and decisions #3: lenient syntax, <d>, <ds>, <dz N> --------------------------- */

static void test_lenient(void **state) {
  expect_fixed("hello<b 0x01>world", (const uint8_t[]){0x01}, 1);
  expect_fixed("a>b<b 0x01>>c", (const uint8_t[]){0x01}, 1); /* stray '>' ignored */
  expect_size("<  r   3  >", 3);
  expect_size("<r 3 9>", 3);
  expect_size("<r\t3>", 3);
  expect_size("<\nr\r\n3\v\f>", 3);
  expect_size("<r\302\2403>", 3);     /* no-break space, as Go's strings.Fields */
  expect_size("<r\343\200\2003>", 3); /* ideographic space */
  expect_size("<r +5>", 5);           /* Atoi accepts a plus sign */
  expect_size("<r 007>", 7);
  expect_size("<r -0>", 0);
  expect_fixed("<dz 2>", (const uint8_t[]){0, 0}, 2);
  expect_fixed("<d><ds>", NULL, 0);
  expect_fixed("<d foo><ds bar>", NULL, 0);
  expect_fixed("<dz 0>", NULL, 0);
}

/* A tag with a zero-byte output still sets the slot (only a tagless text unsets it). */
static void test_zero_size_is_set(void **state) {
  awg_itemplate *t = compile_ok("<d>");
  assert_int_equal(awg_itemplate_size(t), 0);
  awg_itemplate_free(t);
}

/* ---- case 26: errors ---------------------------------------------------------------------- */

static void test_errors(void **state) {
  compile_bad("<x>", "unknown tag <x> (tag names are lowercase: b, r, rc, rd, t, c, d, ds, dz)");
  compile_bad("<B 0x01>", "unknown tag <B>"); /* names are case-sensitive */
  compile_bad("<T>", "unknown tag <T>");
  compile_bad("<<b 0x01>", "unknown tag <<b>");
  compile_bad("<>", "empty tag <>");
  compile_bad("<   >", "empty tag <>");
  compile_bad("<b 0x01", "missing '>' to close the tag starting \"<b 0x01\"");
  compile_bad("<b <0x01>", "'<' is not a hex digit");

  /* A valid tag does not rescue the text: it fails as a whole. */
  compile_bad("<b 0x01><q>", "unknown tag <q>");

  /* All errors are reported, in order, joined by "; ". */
  const char *err = compile_bad("<x><y 1>", "unknown tag <x>");
  const char *y = strstr(err, "unknown tag <y>");
  assert_non_null(y);
  assert_true(y > strstr(err, "unknown tag <x>"));
  assert_non_null(strstr(err, "); unknown tag <y>"));

  err = compile_bad("<x><r -1><b 0x0", "unknown tag <x>");
  assert_non_null(strstr(err, "<r -1>: the size cannot be negative"));
  assert_non_null(strstr(err, "missing '>'"));
}

static void test_error_quoting(void **state) {
  compile_bad("<\x01\xff>", "unknown tag <\\x01\\xff>");
  char text[200];
  memset(text, 'z', sizeof text);
  text[0] = '<';
  text[sizeof text - 2] = '>';
  text[sizeof text - 1] = '\0';
  const char *err = compile_bad(text, "unknown tag <zzzz");
  assert_non_null(strstr(err, "...>"));
  assert_true(strlen(err) < 150);
}

static void test_error_buffers(void **state) {
  awg_itemplate *t = (awg_itemplate *)0x1;
  assert_int_equal(awg_itemplate_compile("<x>", &t, NULL, 0), -1);
  assert_null(t);
  char err[16];
  memset(err, 'q', sizeof err);
  assert_int_equal(awg_itemplate_compile("<x><y><z><w>", &t, err, sizeof err), -1);
  assert_int_equal(strlen(err), sizeof err - 1);
  char one[1] = {'q'};
  assert_int_equal(awg_itemplate_compile("<x>", &t, one, sizeof one), -1);
  assert_int_equal(one[0], '\0');
}

/* ---- case 27 and decisions #6: no tag = unset --------------------------------------------- */

static void test_tagless_is_unset(void **state) {
  const char *texts[] = {"", "hello", "a > b", "   "};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    awg_itemplate *t = (awg_itemplate *)0x1;
    char err[64] = "junk";
    assert_int_equal(awg_itemplate_compile(texts[i], &t, err, sizeof err), 0);
    assert_null(t);
    assert_string_equal(err, "");
  }
  awg_itemplate *t = (awg_itemplate *)0x1;
  assert_int_equal(awg_itemplate_compile(NULL, &t, NULL, 0), 0);
  assert_null(t);
  assert_int_equal(awg_itemplate_size(NULL), 0);
  awg_itemplate_free(NULL);
}

/* ---- case 28 and decisions #4: negative and oversized sizes ------------------------------- */

static void test_sizes_rejected(void **state) {
  compile_bad("<r -5>", "<r -5>: the size cannot be negative");
  compile_bad("<rc -1>", "<rc -1>: the size cannot be negative");
  compile_bad("<rd -1>", "<rd -1>: the size cannot be negative");
  compile_bad("<dz -1>", "<dz -1>: the size cannot be negative");
  compile_bad("<r abc>", "<r abc>: the size is not a decimal number");
  compile_bad("<r 5x>", "<r 5x>: the size is not a decimal number");
  compile_bad("<r 0x10>", "the size is not a decimal number");
  compile_bad("<r ->", "the size is not a decimal number");
  compile_bad("<r +>", "the size is not a decimal number");
  compile_bad("<rc>", "<rc>: missing size; write e.g. <rc 16>");
  compile_bad("<r 65536>", "<r 65536>: the size is above the 65535-byte datagram limit");
  compile_bad("<dz 99999999999999999999999>", "the size is above the 65535-byte");
  compile_bad("<r -99999999999999999999999>", "the size cannot be negative");
}

static void test_total_size_limit(void **state) {
  expect_size("<r 65535>", 65535);
  expect_size("<r 65531><t>", 65535);
  compile_bad("<r 40000><dz 40000>", "<dz 40000> makes the packet 80000 bytes, above the 65535");
  /* Reported once, for the tag that crossed the limit. */
  const char *err = compile_bad("<r 65535><t><c><r 9>", "<t> makes the packet 65539 bytes");
  assert_null(strstr(err, "<c>"));
  assert_null(strstr(err, "<r 9>"));
}

static void test_render_cap(void **state) {
  awg_itemplate *t = compile_ok("<b 0x0102>");
  uint8_t buf[2] = {0xee, 0xee};
  awg_render_ctx ctx = {NULL, 0, 0};
  assert_int_equal(awg_itemplate_render(t, &ctx, buf, 1), 0);
  assert_int_equal(buf[0], 0xee);
  assert_int_equal(awg_itemplate_render(NULL, &ctx, buf, 2), 0);
  awg_itemplate_free(t);
}

/* Fresh random bytes on every rendering (case 20: each retry gets new I bytes). */
static void test_fresh_per_render(void **state) {
  awg_itemplate *t = compile_ok("<r 4>");
  size_t next = 0;
  rng_source rng = {counting_fill, &next};
  awg_render_ctx ctx = {&rng, 0, 0};
  uint8_t a[4], b[4];
  awg_itemplate_render(t, &ctx, a, sizeof a);
  awg_itemplate_render(t, &ctx, b, sizeof b);
  assert_memory_not_equal(a, b, 4);
  awg_itemplate_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b),
      cmocka_unit_test(test_r),
      cmocka_unit_test(test_rc),
      cmocka_unit_test(test_rd),
      cmocka_unit_test(test_t),
      cmocka_unit_test(test_c),
      cmocka_unit_test(test_composite),
      cmocka_unit_test(test_lenient),
      cmocka_unit_test(test_zero_size_is_set),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_error_quoting),
      cmocka_unit_test(test_error_buffers),
      cmocka_unit_test(test_tagless_is_unset),
      cmocka_unit_test(test_sizes_rejected),
      cmocka_unit_test(test_total_size_limit),
      cmocka_unit_test(test_render_cap),
      cmocka_unit_test(test_fresh_per_render),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
