#include "stream/relay.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"

typedef struct {
  struct relay *r;
  stream *from, *to;
  bool eof;  /* from has delivered EOF, to has been asked to shut down */
  bool shut; /* to has finished its shutdown (all data handed over) */
  uint64_t bytes;
} relay_dir;

struct relay {
  relay_dir ab, ba; /* ab reads a, writes b */
  uv_timer_t idle;
  uint64_t idle_ms;
  uint64_t last_activity;
  uv_loop_t *loop;
  relay_done_cb done;
  void *ctx;
  relay_result result;
  int open_streams; /* 2 streams + the timer handle */
  bool ending;
};

static void end(struct relay *r);

static relay_dir *dir_reading(stream *s) {
  struct relay *r = ((relay_dir *)s->user)->r;
  return r->ab.from == s ? &r->ab : &r->ba;
}

static relay_dir *dir_writing(stream *s) {
  struct relay *r = ((relay_dir *)s->user)->r;
  return r->ab.to == s ? &r->ab : &r->ba;
}

static void on_read(stream *s, const uint8_t *data, size_t len) {
  relay_dir *d = dir_reading(s);
  struct relay *r = d->r;
  if (r->ending) return;
  r->last_activity = uv_now(r->loop);
  if (!len) {
    d->eof = true;
    stream_shutdown(d->to);
    return;
  }
  d->bytes += len;
  int rc = stream_write(d->to, data, len);
  if (rc) {
    if (!r->result.error) r->result.error = rc;
    end(r);
    return;
  }
  /* Backpressure: stop pulling from this side until the other side drains. */
  if (stream_write_queued(d->to) > STREAM_HIGH_WATER) stream_read_stop(d->from);
}

static void on_drain(stream *s) {
  relay_dir *d = dir_writing(s);
  if (!d->r->ending && !d->eof) stream_read_start(d->from);
}

/* Both directions are over once each side has sent EOF and the other has flushed it. */
static void on_shutdown(stream *s) {
  relay_dir *d = dir_writing(s);
  struct relay *r = d->r;
  d->shut = true;
  if (r->ab.shut && r->ba.shut) end(r);
}

static void on_error(stream *s, int err) {
  struct relay *r = ((relay_dir *)s->user)->r;
  if (!r->result.error) r->result.error = err;
  end(r);
}

static void maybe_done(struct relay *r) {
  if (--r->open_streams > 0) return;
  r->result.a_to_b = r->ab.bytes;
  r->result.b_to_a = r->ba.bytes;
  if (r->done) r->done(r->ctx, &r->result);
  free(r);
}

static void on_stream_closed(stream *s) { maybe_done(((relay_dir *)s->user)->r); }
static void on_timer_closed(uv_handle_t *h) { maybe_done(h->data); }

static void end(struct relay *r) {
  if (r->ending) return;
  r->ending = true;
  uv_timer_stop(&r->idle);
  uv_close((uv_handle_t *)&r->idle, on_timer_closed);
  stream_close(r->ab.from);
  stream_close(r->ba.from);
}

static void on_idle(uv_timer_t *t) {
  struct relay *r = t->data;
  uint64_t now = uv_now(r->loop), since = now - r->last_activity;
  if (since >= r->idle_ms) {
    r->result.idle_timeout = 1;
    end(r);
    return;
  }
  uv_timer_start(&r->idle, on_idle, r->idle_ms - since, 0);
}

static void attach(relay_dir *d, struct relay *r, stream *from, stream *to) {
  d->r = r;
  d->from = from;
  d->to = to;
  from->user = d;
  from->on_read = on_read;
  from->on_drain = on_drain;
  from->on_shutdown = on_shutdown;
  from->on_error = on_error;
  from->on_closed = on_stream_closed;
}

relay *relay_start(uv_loop_t *loop, stream *a, stream *b, uint64_t idle_ms, relay_done_cb done,
                   void *ctx) {
  struct relay *r = calloc(1, sizeof *r);
  if (!r) {
    stream_close(a);
    stream_close(b);
    return NULL;
  }
  r->loop = loop;
  r->done = done;
  r->ctx = ctx;
  r->idle_ms = idle_ms;
  r->open_streams = 3;
  r->last_activity = uv_now(loop);
  attach(&r->ab, r, a, b);
  attach(&r->ba, r, b, a);
  uv_timer_init(loop, &r->idle);
  r->idle.data = r;
  if (idle_ms) uv_timer_start(&r->idle, on_idle, idle_ms, 0);
  stream_read_start(a);
  stream_read_start(b);
  return r;
}

void relay_abort(relay *r) {
  if (!r->result.error) r->result.error = UV_ECANCELED;
  end(r);
}

void relay_log_result(const char *component, const char *event, const char *key, const char *id,
                      const relay_result *r) {
  if (!log_enabled(LOG_DEBUG)) return;
  char up[24], down[24];
  snprintf(up, sizeof up, "%llu", (unsigned long long)r->a_to_b);
  snprintf(down, sizeof down, "%llu", (unsigned long long)r->b_to_a);
  LOG_D(component, event, "bytes_up", up, "bytes_down", down, "error",
        r->error ? uv_err_name(r->error) : "none", "idle_timeout", r->idle_timeout ? "yes" : "no",
        key, id, NULL); /* a NULL key ends the fields there */
}
