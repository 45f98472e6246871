#include "util/loop_turn.h"

#include <stdlib.h>

#include "util/batch_clock.h"

typedef struct {
  uv_check_t check; /* runs after the turn's I/O callbacks */
  uv_idle_t idle;   /* keeps the loop from sleeping while a hook waits for the check */
  turn_hook *queue[LOOP_TURN_PHASES];
  turn_hook *tail[LOOP_TURN_PHASES];
  bool running; /* in run_queued: what is queued now runs before it returns */
  int closing;
} loop_turn;

static _Thread_local loop_turn *tl_turn;

static void on_idle(uv_idle_t *h) { (void)h; }

/* The hooks seal and send what the turn produced (lwIP's output, QUIC's write pass): like a
 * received batch they read the clock once, here once per phase (util/batch_clock.h; the reads
 * per datagram sent were 3 % of an upload's CPU), afresh for each phase because a QUIC write pass
 * dates its packets and its timer from it after the deliveries took their time. What was held
 * before is given back at the end. */
static void run_queued(loop_turn *lt) {
  int last = -1;
  uint64_t held_before = 0;
  for (;;) {
    int phase = 0;
    while (phase < LOOP_TURN_PHASES && !lt->queue[phase]) phase++;
    if (phase == LOOP_TURN_PHASES) break;
    if (phase != last) {
      uint64_t before = batch_clock_hold();
      if (last < 0) held_before = before;
      last = phase;
    }
    turn_hook *h = lt->queue[phase];
    lt->queue[phase] = h->next;
    if (!h->next) lt->tail[phase] = NULL;
    h->queued = false;
    h->next = NULL;
    h->run(h);
  }
  if (last >= 0) batch_clock_release(held_before);
}

static void on_check(uv_check_t *c) {
  loop_turn *lt = c->data;
  uv_idle_stop(&lt->idle);
  lt->running = true;
  run_queued(lt);
  lt->running = false;
}

int loop_turn_start(uv_loop_t *loop) {
  if (tl_turn) return 0;
  loop_turn *lt = calloc(1, sizeof *lt);
  if (!lt) return UV_ENOMEM;
  uv_check_init(loop, &lt->check);
  lt->check.data = lt;
  uv_check_start(&lt->check, on_check);
  uv_unref((uv_handle_t *)&lt->check);
  uv_idle_init(loop, &lt->idle);
  lt->idle.data = lt;
  tl_turn = lt;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  loop_turn *lt = h->data;
  if (++lt->closing == 2) free(lt);
}

void loop_turn_stop(void) {
  loop_turn *lt = tl_turn;
  if (!lt) return;
  tl_turn = NULL;
  for (int p = 0; p < LOOP_TURN_PHASES; p++) {
    for (turn_hook *h = lt->queue[p], *n; h; h = n) n = h->next, h->queued = false, h->next = NULL;
    lt->queue[p] = lt->tail[p] = NULL;
  }
  uv_close((uv_handle_t *)&lt->check, on_closed);
  uv_close((uv_handle_t *)&lt->idle, on_closed);
}

void loop_turn_want(turn_hook *h) {
  loop_turn *lt = tl_turn;
  if (!lt) {
    h->run(h);
    return;
  }
  if (h->queued) return;
  h->queued = true;
  /* Appended, so hooks of one phase run in the order they were queued. */
  h->next = NULL;
  if (lt->tail[h->phase])
    lt->tail[h->phase]->next = h;
  else
    lt->queue[h->phase] = h;
  lt->tail[h->phase] = h;
  /* Queued from the hooks themselves (a write pass queuing the send), it runs in this check:
   * an idle handle left active would make the next turn poll once more without waiting, an
   * extra epoll_wait after every turn that sent anything. */
  if (!lt->running) uv_idle_start(&lt->idle, on_idle);
}

void loop_turn_cancel(turn_hook *h) {
  loop_turn *lt = tl_turn;
  if (!lt || !h->queued) return;
  turn_hook *prev = NULL;
  for (turn_hook **pp = &lt->queue[h->phase]; *pp; prev = *pp, pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      if (lt->tail[h->phase] == h) lt->tail[h->phase] = prev;
      break;
    }
  }
  h->queued = false;
  h->next = NULL;
}
