/* End-of-turn hooks (src/util/loop_turn.h): phases run in order (DELIVER, STACK, SEND) whatever
 * the order of queuing, hooks of one phase in the order queued, a hook queued while the hooks run
 * (even into an earlier phase) still runs in the same turn, a hook runs once however often it is
 * queued, cancel removes it, a queued hook does not let the loop sleep, stop drops what is queued,
 * and without a started instance a hook runs at once. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <uv.h>

#include "util/loop_turn.h"

/* A hook that records its name in a shared log when it runs, and may queue another. */
typedef struct {
  turn_hook h; /* first, so the hook is the test object */
  char name;
  turn_hook *then; /* queued from inside this hook's run */
} test_hook;

static char run_log[64];
static size_t run_n;

static void record(turn_hook *h) {
  test_hook *t = (test_hook *)h;
  if (run_n < sizeof run_log - 1) run_log[run_n++] = t->name;
  run_log[run_n] = '\0';
  if (t->then) loop_turn_want(t->then);
}

static test_hook make_hook(char name, loop_turn_phase phase) {
  test_hook t;
  memset(&t, 0, sizeof t);
  t.h.run = record;
  t.h.phase = phase;
  t.name = name;
  return t;
}

static uv_loop_t loop;

static int setup(void **state) {
  (void)state;
  run_n = 0;
  run_log[0] = '\0';
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(loop_turn_start(&loop), 0);
  assert_int_equal(loop_turn_start(&loop), 0); /* idempotent */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  loop_turn_stop();
  uv_run(&loop, UV_RUN_DEFAULT); /* the handles close */
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

/* One loop iteration: the turn's I/O (none here), then the check that runs the hooks. */
static void one_turn(void) { uv_run(&loop, UV_RUN_NOWAIT); }

static void test_phase_order(void **state) {
  (void)state;
  test_hook send = make_hook('S', LOOP_TURN_SEND), stack = make_hook('K', LOOP_TURN_STACK);
  test_hook d1 = make_hook('1', LOOP_TURN_DELIVER), d2 = make_hook('2', LOOP_TURN_DELIVER);
  loop_turn_want(&send.h);
  loop_turn_want(&d1.h);
  loop_turn_want(&stack.h);
  loop_turn_want(&d2.h);
  loop_turn_want(&d1.h); /* again: still once, and keeps its place */
  assert_string_equal(run_log, "");
  one_turn();
  assert_string_equal(run_log, "12KS");
  assert_false(d1.h.queued);
  one_turn();
  assert_string_equal(run_log, "12KS"); /* nothing runs twice */
}

/* A SEND hook queues a DELIVER hook, which queues a STACK hook, which queues a SEND hook: all of
 * them run in this same turn, each after the hook that queued it. */
static void test_queued_during_run_same_turn(void **state) {
  (void)state;
  test_hook send = make_hook('S', LOOP_TURN_SEND), deliver = make_hook('D', LOOP_TURN_DELIVER);
  test_hook stack = make_hook('K', LOOP_TURN_STACK), send2 = make_hook('s', LOOP_TURN_SEND);
  send.then = &deliver.h;
  deliver.then = &stack.h;
  stack.then = &send2.h;
  loop_turn_want(&send.h);
  one_turn();
  assert_string_equal(run_log, "SDKs");
  /* Hooks of later phases still waiting when a hook queues one of an earlier phase: the earlier
   * one goes first. */
  test_hook k = make_hook('k', LOOP_TURN_STACK), d = make_hook('d', LOOP_TURN_DELIVER);
  test_hook last = make_hook('z', LOOP_TURN_SEND);
  k.then = &d.h;
  loop_turn_want(&last.h);
  loop_turn_want(&k.h);
  one_turn();
  assert_string_equal(run_log, "SDKskdz");
}

static void test_cancel(void **state) {
  (void)state;
  test_hook a = make_hook('a', LOOP_TURN_STACK), b = make_hook('b', LOOP_TURN_STACK);
  test_hook c = make_hook('c', LOOP_TURN_STACK), x = make_hook('x', LOOP_TURN_SEND);
  loop_turn_want(&a.h);
  loop_turn_want(&b.h);
  loop_turn_cancel(&b.h); /* the tail: the next one queued must still be found */
  assert_false(b.h.queued);
  loop_turn_want(&c.h);
  loop_turn_want(&x.h);
  loop_turn_cancel(&x.h); /* the only one of its phase */
  loop_turn_cancel(&x.h); /* not queued: nothing happens */
  one_turn();
  assert_string_equal(run_log, "ac");
  /* Cancelled, then queued again: runs. */
  loop_turn_want(&b.h);
  loop_turn_cancel(&b.h);
  loop_turn_want(&b.h);
  one_turn();
  assert_string_equal(run_log, "acb");
}

static void on_guard(uv_timer_t *t) { *(int *)t->data = 1; }

/* A queued hook keeps the loop from sleeping: a blocking iteration returns at once. */
static void test_queued_hook_does_not_wait_for_io(void **state) {
  (void)state;
  int fired = 0;
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  guard.data = &fired;
  uv_timer_start(&guard, on_guard, 5000, 0);
  test_hook a = make_hook('a', LOOP_TURN_DELIVER);
  loop_turn_want(&a.h);
  uv_run(&loop, UV_RUN_ONCE);
  assert_string_equal(run_log, "a");
  assert_int_equal(fired, 0);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

/* Hooks queued by hooks run in the same check and leave nothing behind: the next iteration may
 * sleep until its timer (uv_backend_timeout is 0 while an idle handle is active, and each such
 * turn cost one more epoll_wait). */
static void test_turn_ends_idle(void **state) {
  (void)state;
  uv_timer_t guard;
  int fired = 0;
  uv_timer_init(&loop, &guard);
  guard.data = &fired;
  uv_timer_start(&guard, on_guard, 5000, 0);
  test_hook stack = make_hook('K', LOOP_TURN_STACK), send = make_hook('S', LOOP_TURN_SEND);
  stack.then = &send.h;
  loop_turn_want(&stack.h);
  int queued_timeout = uv_backend_timeout(&loop); /* queued: the loop must not sleep */
  one_turn();
  int after = uv_backend_timeout(&loop);
  /* the timer on this stack frame goes before any assertion can leave it */
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(queued_timeout, 0);
  assert_string_equal(run_log, "KS");
  assert_true(after > 1000);
}

static void test_stop_drops_queued(void **state) {
  (void)state;
  test_hook a = make_hook('a', LOOP_TURN_DELIVER);
  loop_turn_want(&a.h);
  loop_turn_stop();
  assert_false(a.h.queued);
  one_turn();
  assert_string_equal(run_log, "");
}

/* Without a started instance (a unit test of some other module) a hook runs at once. */
static void test_without_instance_runs_at_once(void **state) {
  (void)state;
  test_hook a = make_hook('a', LOOP_TURN_SEND);
  loop_turn_want(&a.h);
  assert_string_equal(run_log, "a");
  loop_turn_cancel(&a.h); /* harmless */
  assert_string_equal(run_log, "a");
}

static int setup_plain(void **state) {
  (void)state;
  run_n = 0;
  run_log[0] = '\0';
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_phase_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queued_during_run_same_turn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queued_hook_does_not_wait_for_io, setup, teardown),
      cmocka_unit_test_setup_teardown(test_turn_ends_idle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_drops_queued, setup, teardown),
      cmocka_unit_test_setup(test_without_instance_runs_at_once, setup_plain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
