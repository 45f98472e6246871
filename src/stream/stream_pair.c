#include "stream/stream_pair.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (64 * 1024) /* bytes per on_read, as a socket read would give */
#define CHUNKS_PER_TURN 4 /* per direction and loop turn, so both directions progress */
#define FIRST_ALLOC 4096

typedef struct {
  uint8_t *buf;
  size_t head, len, alloc;
} byte_queue;

typedef struct pair pair;

typedef struct {
  stream s; /* first: what the owner sees */
  pair *p;
  byte_queue out; /* written here, not yet delivered to the peer (its window comes first) */
  bool reading;
  bool shut, shut_done; /* shutdown asked; on_shutdown has run */
  bool eof_seen;        /* this end has been given EOF */
  bool over_high;       /* write_queued went above STREAM_HIGH_WATER; on_drain is owed */
  bool aborted;         /* this end went away without a clean close: its bytes are dropped */
  bool closed, closed_done;
  int err; /* an error to report (0 = none) */
  bool err_done;
} end;

struct pair {
  uv_idle_t idle; /* runs the deliveries and callbacks while any are due */
  end e[2];
  size_t window;
  int live;  /* ends whose on_closed has not run yet */
  bool dead; /* the idle handle is closing: the pair is going */
  uint8_t scratch[CHUNK];
};

/* ---- byte queue ------------------------------------------------------------------------- */

static int queue_append(byte_queue *q, const uint8_t *data, size_t n) {
  if (q->head + q->len + n > q->alloc && q->head) {
    memmove(q->buf, q->buf + q->head, q->len);
    q->head = 0;
  }
  if (q->len + n > q->alloc) {
    size_t want = q->alloc ? q->alloc : FIRST_ALLOC;
    while (want < q->len + n) want *= 2;
    uint8_t *nb = realloc(q->buf, want);
    if (!nb) return UV_ENOMEM;
    q->buf = nb;
    q->alloc = want;
  }
  memcpy(q->buf + q->head + q->len, data, n);
  q->len += n;
  return 0;
}

static void queue_consume(byte_queue *q, size_t n) {
  q->head += n;
  q->len -= n;
  if (!q->len) q->head = 0;
}

static void queue_clear(byte_queue *q) {
  free(q->buf);
  memset(q, 0, sizeof *q);
}

/* ---- state ------------------------------------------------------------------------------ */

static end *peer_of(end *e) { return &e->p->e[e == &e->p->e[0] ? 1 : 0]; }

/* Bytes beyond what the peer's receive window holds: still "in the transport's queue". */
static size_t queued(const end *e) {
  return e->out.len > e->p->window ? e->out.len - e->p->window : 0;
}

/* Whether e may still get callbacks other than on_closed. */
static bool open_end(const end *e) { return !e->closed && !e->err_done; }

static bool can_receive(const end *e) { return open_end(e) && !e->err && e->reading; }

static bool eof_due(const end *from, const end *to) {
  return from->shut && !from->aborted && !from->out.len && !to->eof_seen;
}

static bool work_due(const pair *p) {
  for (int i = 0; i < 2; i++) {
    const end *x = &p->e[i], *y = &p->e[1 - i];
    if (x->closed && !x->closed_done) return true;
    if (!open_end(x)) continue;
    if (x->err) return true;
    if (x->over_high && queued(x) <= STREAM_LOW_WATER) return true;
    if (x->shut && !x->shut_done && !queued(x)) return true;
    if (can_receive(y) && (x->out.len || eof_due(x, y))) return true;
  }
  return false;
}

static void on_idle(uv_idle_t *h);

static void kick(pair *p) {
  if (!p->dead) uv_idle_start(&p->idle, on_idle);
}

/* e went away without a clean close (or failed): nothing more travels either way, and the peer,
 * if still there, hears of it as a reset. */
static void abort_end(end *e) {
  end *y = peer_of(e);
  e->aborted = true;
  queue_clear(&e->out);
  queue_clear(&y->out);
  if (!y->closed && !y->err && !y->err_done) y->err = UV_ECONNRESET;
}

/* ---- the loop side ---------------------------------------------------------------------- */

/* x's on_drain, as soon as its queue has fallen to the low-water mark. */
static void drain_if_due(end *x) {
  if (!open_end(x) || x->err || !x->over_high || queued(x) > STREAM_LOW_WATER) return;
  x->over_high = false;
  if (x->s.on_drain) x->s.on_drain(&x->s);
}

/* Hands x's bytes (then its EOF) to y while y reads; x hears on_drain right after the chunk that
 * brought its queue down. The chunk is copied out of the queue first: on_read may write, close or
 * stop anything. */
static void deliver(pair *p, end *x, end *y) {
  for (int n = 0; n < CHUNKS_PER_TURN && can_receive(y) && x->out.len; n++) {
    size_t k = x->out.len < CHUNK ? x->out.len : CHUNK;
    memcpy(p->scratch, x->out.buf + x->out.head, k);
    queue_consume(&x->out, k);
    y->s.on_read(&y->s, p->scratch, k);
    drain_if_due(x);
  }
  if (can_receive(y) && eof_due(x, y)) {
    y->eof_seen = true;
    y->s.on_read(&y->s, NULL, 0);
  }
}

/* The callbacks owed to e itself, at most one kind per turn and end; on_closed is the last. */
static void notify(pair *p, end *e) {
  if (e->closed) {
    if (e->closed_done) return;
    e->closed_done = true;
    p->live--;
    if (e->s.on_closed) e->s.on_closed(&e->s);
    return;
  }
  if (e->err_done) return;
  if (e->err) {
    e->err_done = true;
    e->reading = false;
    if (e->s.on_error) e->s.on_error(&e->s, e->err);
    return;
  }
  drain_if_due(e);
  if (!open_end(e) || e->err) return;
  if (e->shut && !e->shut_done && !queued(e)) {
    e->shut_done = true;
    if (e->s.on_shutdown) e->s.on_shutdown(&e->s);
  }
}

static void on_pair_closed(uv_handle_t *h) {
  pair *p = h->data;
  queue_clear(&p->e[0].out);
  queue_clear(&p->e[1].out);
  free(p);
}

static void on_idle(uv_idle_t *h) {
  pair *p = h->data;
  deliver(p, &p->e[0], &p->e[1]);
  deliver(p, &p->e[1], &p->e[0]);
  notify(p, &p->e[0]);
  notify(p, &p->e[1]);
  if (!p->live) {
    p->dead = true;
    uv_close((uv_handle_t *)&p->idle, on_pair_closed);
  } else if (!work_due(p)) {
    uv_idle_stop(&p->idle);
  }
}

/* ---- stream ops ------------------------------------------------------------------------- */

static void read_start(stream *s) {
  end *e = (end *)s;
  if (e->closed || e->reading) return;
  e->reading = true;
  kick(e->p);
}

static void read_stop(stream *s) { ((end *)s)->reading = false; }

static int write_(stream *s, const uint8_t *data, size_t len) {
  end *e = (end *)s;
  if (e->closed || e->shut) return UV_EPIPE;
  if (e->err_done || e->aborted) return e->err ? e->err : UV_EPIPE;
  if (!len) return 0;
  end *y = peer_of(e);
  if (y->closed) { /* written into a closed connection: the answer is a reset */
    if (!e->err) e->err = UV_ECONNRESET;
    kick(e->p);
    return 0;
  }
  int rc = queue_append(&e->out, data, len);
  if (rc) return rc;
  if (queued(e) > STREAM_HIGH_WATER) e->over_high = true;
  kick(e->p);
  return 0;
}

static size_t write_queued(const stream *s) { return queued((const end *)s); }

static void shutdown_(stream *s) {
  end *e = (end *)s;
  if (e->shut || e->closed) return;
  e->shut = true;
  kick(e->p);
}

static void close_(stream *s) {
  end *e = (end *)s;
  if (e->closed) return;
  e->closed = true;
  e->reading = false;
  end *y = peer_of(e);
  /* Clean only when everything was said (shutdown done) and heard (nothing left unread). */
  if (!e->aborted && !(e->shut_done && !y->out.len)) abort_end(e);
  kick(e->p);
}

static const stream_ops pair_ops = {read_start, read_stop, write_, write_queued,
                                    shutdown_,  close_,    "pair"};

int stream_pair_new(uv_loop_t *loop, size_t window, stream **a, stream **b) {
  pair *p = calloc(1, sizeof *p);
  if (!p) return UV_ENOMEM;
  p->window = window ? window : STREAM_PAIR_DEFAULT_WINDOW;
  p->live = 2;
  uv_idle_init(loop, &p->idle);
  p->idle.data = p;
  for (int i = 0; i < 2; i++) p->e[i].s.ops = &pair_ops, p->e[i].p = p;
  *a = &p->e[0].s;
  *b = &p->e[1].s;
  return 0;
}

void stream_pair_fail(stream *s, int err) {
  end *e = (end *)s;
  if (e->closed || e->err_done || e->err) return;
  e->err = err;
  abort_end(e);
  kick(e->p);
}
