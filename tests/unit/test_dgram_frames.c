/* Length-framed datagrams over a byte stream (src/device/dgram_frames.c): frames whole in one
 * read, split across reads at every byte, bad lengths, and a callback that stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "device/dgram_frames.h"

typedef struct {
  size_t n;
  size_t len[64];
  uint8_t data[64][300];
  size_t stop_after; /* 0: never */
} sink;

static bool on_frame(void *ctx, uint8_t *frame, size_t len) {
  sink *s = ctx;
  assert_true(s->n < 64 && len <= 300);
  s->len[s->n] = len;
  memcpy(s->data[s->n], frame, len);
  frame[0] ^= 0xFF; /* writable in place */
  s->n++;
  return !(s->stop_after && s->n == s->stop_after);
}

/* Three frames (1, 200 and 37 bytes) back to back. */
static size_t build(uint8_t *out) {
  static const size_t lens[3] = {1, 200, 37};
  size_t off = 0;
  for (size_t f = 0; f < 3; f++) {
    dgram_frame_header(out + off, lens[f]);
    off += DGRAM_FRAME_HEADER;
    for (size_t i = 0; i < lens[f]; i++) out[off++] = (uint8_t)(f * 50 + i);
  }
  return off;
}

static void check(const sink *s) {
  static const size_t lens[3] = {1, 200, 37};
  assert_int_equal(s->n, 3);
  for (size_t f = 0; f < 3; f++) {
    assert_int_equal(s->len[f], lens[f]);
    for (size_t i = 0; i < lens[f]; i++) assert_int_equal(s->data[f][i], (uint8_t)(f * 50 + i));
  }
}

static void test_whole_and_every_split(void **state) {
  (void)state;
  uint8_t stream[300], copy[300];
  size_t n = build(stream);
  for (size_t cut = 0; cut <= n; cut++) {
    for (size_t cut2 = cut; cut2 <= n; cut2 += 7) {
      dgram_frame_reader r;
      assert_int_equal(dgram_frame_reader_init(&r, 1500), 0);
      sink s = {0};
      memcpy(copy, stream, n);
      assert_int_equal(dgram_frames_feed(&r, copy, cut, on_frame, &s), DGRAM_FRAMES_OK);
      assert_int_equal(dgram_frames_feed(&r, copy + cut, cut2 - cut, on_frame, &s),
                       DGRAM_FRAMES_OK);
      assert_int_equal(dgram_frames_feed(&r, copy + cut2, n - cut2, on_frame, &s), DGRAM_FRAMES_OK);
      check(&s);
      assert_int_equal(r.frames, 3);
      assert_int_equal(r.have, 0);
      dgram_frame_reader_free(&r);
    }
  }
}

static void test_bad_lengths(void **state) {
  (void)state;
  dgram_frame_reader r;
  assert_int_equal(dgram_frame_reader_init(&r, 100), 0);
  sink s = {0};
  uint8_t zero[4] = {0, 0, 1, 2};
  assert_int_equal(dgram_frames_feed(&r, zero, sizeof zero, on_frame, &s), DGRAM_FRAMES_BAD_LENGTH);
  dgram_frame_reader_free(&r);
  /* Too long, the header split across two reads. */
  assert_int_equal(dgram_frame_reader_init(&r, 100), 0);
  uint8_t a[1] = {0}, b[3] = {101, 9, 9};
  assert_int_equal(dgram_frames_feed(&r, a, 1, on_frame, &s), DGRAM_FRAMES_OK);
  assert_int_equal(dgram_frames_feed(&r, b, 3, on_frame, &s), DGRAM_FRAMES_BAD_LENGTH);
  assert_int_equal(s.n, 0);
  dgram_frame_reader_free(&r);
  assert_int_equal(dgram_frame_reader_init(&r, 0), -1);
  assert_int_equal(dgram_frame_reader_init(&r, DGRAM_FRAME_MAX + 1), -1);
}

static void test_stop(void **state) {
  (void)state;
  uint8_t stream[300];
  size_t n = build(stream);
  dgram_frame_reader r;
  assert_int_equal(dgram_frame_reader_init(&r, 1500), 0);
  sink s = {.stop_after = 2};
  assert_int_equal(dgram_frames_feed(&r, stream, n, on_frame, &s), DGRAM_FRAMES_STOPPED);
  assert_int_equal(s.n, 2);
  dgram_frame_reader_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whole_and_every_split),
      cmocka_unit_test(test_bad_lengths),
      cmocka_unit_test(test_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
