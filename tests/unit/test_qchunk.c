/* QUIC stream chunks (src/quic/qchunk.c): appends keep every byte in order across chunk
 * boundaries, and chunks of the two bulk sizes are kept for reuse up to a bound, others not.
 * Under ASan every chunk goes back to malloc, and the tests say so. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <stdlib.h>

#include "quic/qchunk.h"
#include "util/asan.h"

#define KEEPS (!AWG_ASAN) /* under ASan every chunk goes back to malloc */

static void test_append_in_order(void **state) {
  (void)state;
  enum { N = 200000 };
  uint8_t *src = malloc(N);
  assert_non_null(src);
  for (size_t i = 0; i < N; i++) src[i] = (uint8_t)(i * 7 + i / 251);
  qchunk *head = NULL, *tail = NULL;
  size_t off = 0, step = 1;
  while (off < N) {
    size_t k = step < N - off ? step : N - off;
    assert_int_equal(qchunk_append(&head, &tail, src + off, k, QCHUNK_MIN, QCHUNK_SIZE), k);
    off += k;
    step = step * 3 + 1; /* small appends, then bulk ones */
  }
  size_t at = 0, chunks = 0;
  for (qchunk *c = head; c; c = c->next) {
    assert_true(c->len <= c->cap);
    assert_true(c->cap <= QCHUNK_SIZE);
    assert_memory_equal(c->data, src + at, c->len);
    at += c->len;
    chunks++;
    if (!c->next) assert_ptr_equal(c, tail);
  }
  assert_int_equal(at, N);
  assert_true(chunks >= N / QCHUNK_SIZE);
  qchunk_free_list(head);
  free(src);
}

static void test_bulk_chunks_reused_up_to_a_bound(void **state) {
  (void)state;
  size_t before = qchunk_kept();
  qchunk *c[40];
  for (int i = 0; i < 40; i++) {
    c[i] = qchunk_new(QCHUNK_RCV_BURST);
    assert_non_null(c[i]);
    assert_int_equal(c[i]->len, 0);
    assert_int_equal(c[i]->cap, QCHUNK_RCV_BURST);
    c[i]->len = c[i]->cap; /* used */
    c[i]->next = c[(i + 1) % 40];
  }
  for (int i = 0; i < 40; i++) qchunk_free(c[i]);
  size_t kept = qchunk_kept() - before;
  assert_int_equal(kept, KEEPS ? 16 : 0);
  /* The next one comes from the kept ones, clean. */
  qchunk *again = qchunk_new(QCHUNK_RCV_BURST);
  assert_non_null(again);
  assert_int_equal(again->len, 0);
  assert_null(again->next);
  assert_int_equal(again->cap, QCHUNK_RCV_BURST);
  bool from_kept = false;
  for (int i = 0; i < 40; i++) from_kept |= again == c[i];
  if (KEEPS) assert_true(from_kept);
  assert_int_equal(qchunk_kept() - before, KEEPS ? 15 : 0);
  memset(again->data, 0xab, again->cap); /* the whole capacity is usable */
  qchunk_free(again);
}

static void test_other_sizes_not_kept(void **state) {
  (void)state;
  size_t before = qchunk_kept();
  qchunk *a = qchunk_new(1234), *b = qchunk_new(QCHUNK_MIN);
  assert_non_null(a);
  assert_non_null(b);
  qchunk_free(a);
  qchunk_free(b);
  qchunk_free(NULL);
  assert_int_equal(qchunk_kept(), before);
}

static void test_send_size_kept_separately(void **state) {
  (void)state;
  qchunk *r = qchunk_new(QCHUNK_RCV_BURST), *s = qchunk_new(QCHUNK_SIZE);
  assert_non_null(r);
  assert_non_null(s);
  qchunk_free(r);
  qchunk_free(s);
  /* A send-size request never gets a receive-size chunk, nor the other way round. */
  qchunk *s2 = qchunk_new(QCHUNK_SIZE), *r2 = qchunk_new(QCHUNK_RCV_BURST);
  assert_int_equal(s2->cap, QCHUNK_SIZE);
  assert_int_equal(r2->cap, QCHUNK_RCV_BURST);
  if (KEEPS) {
    assert_ptr_equal(s2, s);
    assert_ptr_equal(r2, r);
  }
  qchunk_free(s2);
  qchunk_free(r2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_in_order),
      cmocka_unit_test(test_bulk_chunks_reused_up_to_a_bound),
      cmocka_unit_test(test_other_sizes_not_kept),
      cmocka_unit_test(test_send_size_kept_separately),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
