#include "stream/stream_throttle.h"

#include <stdbool.h>
#include <stdlib.h>

typedef struct {
  stream s; /* what the owner sees */
  stream *inner;
  uv_loop_t *loop;
  stream_throttle_cfg cfg;
  uv_timer_t timer;
  bool want_read; /* the owner asked to read */
  bool paused;    /* the bucket is in debt; the timer will resume */
  bool closing, inner_closed;
  uint64_t paused_at; /* uv_now, for cfg.wait_ms */
} throttle;

static uint64_t now_us(void) { return uv_hrtime() / 1000; }

static void sync_inner(throttle *t) {
  if (t->closing) return;
  if (t->want_read && !t->paused)
    stream_read_start(t->inner);
  else
    stream_read_stop(t->inner);
}

static void on_timer(uv_timer_t *h) {
  throttle *t = h->data;
  if (t->closing) return;
  uint64_t wait = tbucket_wait_us(t->cfg.bucket, now_us());
  if (wait) { /* another stream of the same bucket got there first */
    uv_timer_start(&t->timer, on_timer, wait / 1000 + 1, 0);
    return;
  }
  t->paused = false;
  if (t->cfg.wait_ms) *t->cfg.wait_ms += uv_now(t->loop) - t->paused_at;
  sync_inner(t);
}

static void inner_on_read(stream *in, const uint8_t *data, size_t len) {
  throttle *t = in->user;
  if (len) {
    uint64_t now = now_us();
    tbucket_take(t->cfg.bucket, len, now);
    uint64_t wait = tbucket_wait_us(t->cfg.bucket, now);
    if (wait && !t->paused) {
      t->paused = true;
      t->paused_at = uv_now(t->loop);
      if (t->cfg.waits) (*t->cfg.waits)++;
      stream_read_stop(t->inner);
      uv_timer_start(&t->timer, on_timer, wait / 1000 + 1, 0);
    }
  }
  t->s.on_read(&t->s, data, len); /* may call read_stop, write, even close */
}

static void inner_on_drain(stream *in) {
  throttle *t = in->user;
  if (t->s.on_drain && !t->closing) t->s.on_drain(&t->s);
}

static void inner_on_shutdown(stream *in) {
  throttle *t = in->user;
  if (t->s.on_shutdown && !t->closing) t->s.on_shutdown(&t->s);
}

static void inner_on_error(stream *in, int err) {
  throttle *t = in->user;
  if (t->s.on_error && !t->closing) t->s.on_error(&t->s, err);
}

static void on_timer_closed(uv_handle_t *h) {
  throttle *t = h->data;
  if (t->s.on_closed) t->s.on_closed(&t->s);
  if (t->cfg.release) t->cfg.release(t->cfg.ctx);
  free(t);
}

/* The inner stream is gone; the timer goes next, then the owner hears of it. */
static void inner_on_closed(stream *in) {
  throttle *t = in->user;
  t->inner_closed = true;
  uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

static void read_start(stream *s) {
  throttle *t = (throttle *)s;
  t->want_read = true;
  sync_inner(t);
}

static void read_stop(stream *s) {
  throttle *t = (throttle *)s;
  t->want_read = false;
  sync_inner(t);
}

static int write_(stream *s, const uint8_t *data, size_t len) {
  return stream_write(((throttle *)s)->inner, data, len);
}

static size_t write_queued(const stream *s) {
  return stream_write_queued(((const throttle *)s)->inner);
}

static void shutdown_(stream *s) { stream_shutdown(((throttle *)s)->inner); }

static void close_(stream *s) {
  throttle *t = (throttle *)s;
  if (t->closing) return;
  t->closing = true;
  uv_timer_stop(&t->timer);
  stream_close(t->inner);
}

static const stream_ops throttle_ops = {read_start, read_stop, write_,     write_queued,
                                        shutdown_,  close_,    "throttled"};

stream *stream_throttle_wrap(uv_loop_t *loop, stream *inner, const stream_throttle_cfg *cfg) {
  throttle *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->s.ops = &throttle_ops;
  t->inner = inner;
  t->loop = loop;
  t->cfg = *cfg;
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  inner->user = t;
  inner->on_read = inner_on_read;
  inner->on_drain = inner_on_drain;
  inner->on_shutdown = inner_on_shutdown;
  inner->on_error = inner_on_error;
  inner->on_closed = inner_on_closed;
  return &t->s;
}
