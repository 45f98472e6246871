/* lwIP's heap (lwip_port/lwip_mem.c): blocks come back from the free lists, every block is
 * aligned and usable at its full size, what is kept is bounded, calloc zeroes and refuses an
 * overflowing product. Under AddressSanitizer the lists are bypassed (nothing is kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lwip_mem.h"
#include "util/asan.h"

static void test_reuses_and_aligns(void **st) {
  (void)st;
  size_t sizes[] = {1, 100, 256, 257, 1500, 1600, 2048, 2049, 65536};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    uint8_t *a = lwip_mem_malloc(sizes[i]);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 8, 0);
    memset(a, 0xab, sizes[i]); /* the whole block is ours */
    lwip_mem_free(a);
    uint8_t *b = lwip_mem_malloc(sizes[i]);
    assert_non_null(b);
#if !AWG_ASAN
    if (sizes[i] <= 2048) assert_ptr_equal(a, b); /* the freed block came back */
#endif
    lwip_mem_free(b);
  }
}

static void test_keeps_a_bounded_number(void **st) {
  (void)st;
  enum { N = LWIP_MEM_KEEP + 50 };
  static void *blocks[N];
  size_t before = lwip_mem_kept();
  (void)before; /* unused when passing through */
  for (size_t i = 0; i < N; i++) blocks[i] = lwip_mem_malloc(1600);
  for (size_t i = 0; i < N; i++) lwip_mem_free(blocks[i]);
#if AWG_ASAN
  assert_int_equal(lwip_mem_kept(), 0);
#else
  assert_true(lwip_mem_kept() <= before + LWIP_MEM_KEEP);
  assert_true(lwip_mem_kept() >= LWIP_MEM_KEEP); /* the 2 KiB list is full */
#endif
}

static void test_calloc_zeroes(void **st) {
  (void)st;
  uint8_t *a = lwip_mem_malloc(512);
  memset(a, 0xff, 512);
  lwip_mem_free(a);
  uint8_t *z = lwip_mem_calloc(64, 8); /* likely the same block again: must be zeroed */
  assert_non_null(z);
  for (size_t i = 0; i < 512; i++) assert_int_equal(z[i], 0);
  lwip_mem_free(z);
  assert_null(lwip_mem_calloc(SIZE_MAX / 2, 4));
#if !AWG_ASAN /* ASan's malloc aborts on an impossible size instead */
  assert_null(lwip_mem_malloc(SIZE_MAX - 4));
#endif
  lwip_mem_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reuses_and_aligns),
      cmocka_unit_test(test_keeps_a_bounded_number),
      cmocka_unit_test(test_calloc_zeroes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
