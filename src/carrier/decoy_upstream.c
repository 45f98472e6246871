/* The decoy's pass-through to a real web server (decoy_upstream.h). */
#include "carrier/decoy_upstream.h"

#include <stdlib.h>
#include <string.h>

#define READ_BUF (64 * 1024)

struct decoy_upstream {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_timer_t poll; /* while paused: has the prober drained what it was sent? */
  const decoy_upstream_cbs *cbs;
  void *ctx;
  bool connected, over; /* over: on_end called or close asked; no more calls */
  unsigned handles;     /* open libuv handles; freed at 0 */
  uint8_t *early;       /* the prober's bytes before the connect completed */
  size_t n_early;
  size_t queued; /* bytes in uv_write requests not yet done */
  uint8_t rbuf[READ_BUF];
};

typedef struct {
  uv_write_t req;
  decoy_upstream *u;
  size_t len;
  uint8_t data[];
} up_write;

static void on_handle_closed(uv_handle_t *h) {
  decoy_upstream *u = h->data;
  if (--u->handles == 0) {
    free(u->early);
    free(u);
  }
}

static void shut(decoy_upstream *u) {
  u->over = true;
  uv_close((uv_handle_t *)&u->poll, on_handle_closed);
  uv_close((uv_handle_t *)&u->tcp, on_handle_closed);
}

static void end(decoy_upstream *u, bool connected) {
  if (u->over) return;
  u->over = true; /* before the callback: it may not call us back */
  u->cbs->on_end(u->ctx, connected);
  shut(u);
}

static void on_written(uv_write_t *req, int status) {
  up_write *w = (up_write *)req;
  decoy_upstream *u = w->u;
  u->queued -= w->len;
  free(w);
  if (status < 0) end(u, true);
}

static int send_bytes(decoy_upstream *u, const uint8_t *data, size_t len) {
  up_write *w = malloc(sizeof *w + len);
  if (!w) return -1;
  w->u = u;
  w->len = len;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&u->tcp, &b, 1, on_written) != 0) {
    free(w);
    return -1;
  }
  u->queued += len;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  decoy_upstream *u = h->data;
  *buf = uv_buf_init((char *)u->rbuf, sizeof u->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_poll(uv_timer_t *t) {
  decoy_upstream *u = t->data;
  if (u->over || u->cbs->queued(u->ctx) > DECOY_UPSTREAM_PAUSE) return;
  uv_timer_stop(&u->poll);
  if (uv_read_start((uv_stream_t *)&u->tcp, on_alloc, on_read) != 0) end(u, true);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  decoy_upstream *u = st->data;
  if (u->over || nread == 0) return;
  if (nread < 0) return end(u, true); /* EOF or error: the site is done with this client */
  u->cbs->on_data(u->ctx, (const uint8_t *)buf->base, (size_t)nread);
  if (!u->over && u->cbs->queued(u->ctx) > DECOY_UPSTREAM_PAUSE) {
    uv_read_stop(st); /* the prober reads slowly: hold the site, as a proxy's buffers would */
    uv_timer_start(&u->poll, on_poll, DECOY_UPSTREAM_POLL_MS, DECOY_UPSTREAM_POLL_MS);
  }
}

static void on_connected(uv_connect_t *req, int status) {
  decoy_upstream *u = req->data;
  if (u->over) return; /* closed meanwhile (status UV_ECANCELED) */
  if (status < 0) return end(u, false);
  u->connected = true;
  int rc = u->n_early ? send_bytes(u, u->early, u->n_early) : 0;
  free(u->early);
  u->early = NULL, u->n_early = 0;
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&u->tcp, on_alloc, on_read);
  if (rc != 0) end(u, true);
}

decoy_upstream *decoy_upstream_start(uv_loop_t *loop, const struct sockaddr *to,
                                     const uint8_t *first, size_t n, const decoy_upstream_cbs *cbs,
                                     void *ctx) {
  decoy_upstream *u = calloc(1, sizeof *u);
  if (!u || (n && !(u->early = malloc(n)))) {
    free(u);
    return NULL;
  }
  if (n) memcpy(u->early, first, n);
  u->n_early = n;
  u->cbs = cbs;
  u->ctx = ctx;
  uv_tcp_init(loop, &u->tcp);
  uv_timer_init(loop, &u->poll);
  u->tcp.data = u->poll.data = u->connect.data = u;
  u->handles = 2;
  uv_tcp_nodelay(&u->tcp, 1);
  if (uv_tcp_connect(&u->connect, &u->tcp, to, on_connected) != 0) {
    shut(u);
    return NULL;
  }
  return u;
}

int decoy_upstream_write(decoy_upstream *u, const uint8_t *data, size_t len) {
  if (u->over) return -1;
  if (u->queued + u->n_early + len > DECOY_UPSTREAM_MAX_QUEUED) return -1;
  if (u->connected) return send_bytes(u, data, len);
  uint8_t *p = realloc(u->early, u->n_early + len);
  if (!p) return -1;
  memcpy(p + u->n_early, data, len);
  u->early = p;
  u->n_early += len;
  return 0;
}

void decoy_upstream_close(decoy_upstream *u) {
  if (!u->over) shut(u);
}
