/* The cap on lwIP's TIME_WAIT list (ipstack_trim_time_wait in src/device/ipstack.c): the newest
 * `keep` PCBs stay in their order, older ones are freed (ASan/LeakSanitizer check that each is
 * freed once), and a PCB a stream still holds is never freed whatever its age. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "device/ipstack.h"
#include "lwip/init.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#define N 40

static struct tcp_pcb *pcbs[N];

/* A list of N TIME_WAIT PCBs, pcbs[0] at its head (the newest). */
static struct tcp_pcb *make_list(void) {
  struct tcp_pcb *head = NULL;
  for (int i = N - 1; i >= 0; i--) {
    pcbs[i] = tcp_new();
    assert_non_null(pcbs[i]);
    pcbs[i]->state = TIME_WAIT;
    pcbs[i]->next = head;
    head = pcbs[i];
  }
  return head;
}

static size_t length(const struct tcp_pcb *p) {
  size_t n = 0;
  for (; p; p = p->next) n++;
  return n;
}

static void free_list(struct tcp_pcb *p) {
  while (p) {
    struct tcp_pcb *next = p->next;
    tcp_free(p);
    p = next;
  }
}

static void test_keeps_the_newest(void **state) {
  (void)state;
  struct tcp_pcb *list = make_list();
  ipstack_trim_time_wait(&list, 10);
  assert_int_equal(length(list), 10);
  struct tcp_pcb *p = list;
  for (int i = 0; i < 10; i++, p = p->next) assert_ptr_equal(p, pcbs[i]);
  free_list(list);
}

static void test_short_list_untouched(void **state) {
  (void)state;
  struct tcp_pcb *list = make_list();
  ipstack_trim_time_wait(&list, N);
  assert_int_equal(length(list), N);
  ipstack_trim_time_wait(&list, N + 5);
  assert_int_equal(length(list), N);
  struct tcp_pcb *empty = NULL;
  ipstack_trim_time_wait(&empty, 3);
  assert_null(empty);
  free_list(list);
}

static void test_held_ones_stay(void **state) {
  (void)state;
  struct tcp_pcb *list = make_list();
  int owner;
  pcbs[25]->callback_arg = &owner;
  pcbs[N - 1]->callback_arg = &owner; /* the oldest */
  ipstack_trim_time_wait(&list, 5);
  assert_int_equal(length(list), 7);
  struct tcp_pcb *p = list;
  for (int i = 0; i < 5; i++, p = p->next) assert_ptr_equal(p, pcbs[i]);
  assert_ptr_equal(p, pcbs[25]);
  assert_ptr_equal(p->next, pcbs[N - 1]);
  assert_null(p->next->next);
  free_list(list);
}

int main(void) {
  lwip_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keeps_the_newest),
      cmocka_unit_test(test_short_list_untouched),
      cmocka_unit_test(test_held_ones_stay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
