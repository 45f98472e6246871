#include "stream/stream_uv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define READ_CHUNK (64 * 1024)

struct uv_stream_impl {
  stream s;
  uv_tcp_t *tcp;
  size_t queued;
  bool reading, closing, shut, shut_done, over_high;
};

/* One read buffer for every libuv stream: the loop is single-threaded and on_read consumers copy
 * what they keep, so thousands of idle connections do not each pin 64 KB. */
static char shared_rbuf[READ_CHUNK];

typedef struct {
  uv_write_t req;
  uv_stream_impl *u;
  size_t len;
  char data[];
} write_req;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  *buf = uv_buf_init(shared_rbuf, sizeof shared_rbuf);
}

/* A reset that arrives after data can come out of libuv as UV_EOF: on POLLHUP after a short read
 * it reports the end without reading again, and the kernel's pending error stays unread. The
 * socket's SO_ERROR tells a reset from a FIN. */
static int pending_error(uv_stream_t *h) {
  uv_os_fd_t fd;
  int err = 0;
  socklen_t len = sizeof err;
  if (uv_fileno((uv_handle_t *)h, &fd) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
    return 0;
  return err ? uv_translate_sys_error(err) : 0;
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  uv_stream_impl *u = h->data;
  if (n == UV_EOF) {
    int err = pending_error(h);
    if (err) n = err;
  }
  if (n == UV_EOF) {
    uv_read_stop(h);
    u->reading = false;
    u->s.on_read(&u->s, NULL, 0);
  } else if (n < 0) {
    uv_read_stop(h);
    u->reading = false;
    if (u->s.on_error) u->s.on_error(&u->s, (int)n);
  } else if (n > 0) {
    u->s.on_read(&u->s, (const uint8_t *)buf->base, (size_t)n);
  }
}

static void read_start(stream *s) {
  uv_stream_impl *u = (uv_stream_impl *)s;
  if (u->reading || u->closing) return;
  if (uv_read_start((uv_stream_t *)u->tcp, on_alloc, on_read) == 0) u->reading = true;
}

static void read_stop(stream *s) {
  uv_stream_impl *u = (uv_stream_impl *)s;
  if (!u->reading) return;
  uv_read_stop((uv_stream_t *)u->tcp);
  u->reading = false;
}

static void on_written(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  uv_stream_impl *u = w->u;
  u->queued -= w->len;
  free(w);
  if (u->closing) return;
  if (status < 0) {
    if (u->s.on_error) u->s.on_error(&u->s, status);
    return;
  }
  if (u->over_high && u->queued <= STREAM_LOW_WATER) {
    u->over_high = false;
    if (u->s.on_drain) u->s.on_drain(&u->s);
  }
}

static int write_(stream *s, const uint8_t *data, size_t len) {
  uv_stream_impl *u = (uv_stream_impl *)s;
  if (u->closing || u->shut) return UV_EPIPE;
  if (!len) return 0;
  /* Try the socket first: most writes complete at once and need no copy. */
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int n = u->queued ? UV_EAGAIN : uv_try_write((uv_stream_t *)u->tcp, &b, 1);
  if (n == (int)len) return 0;
  if (n < 0 && n != UV_EAGAIN) return n;
  size_t done = n > 0 ? (size_t)n : 0;
  write_req *w = malloc(sizeof *w + len - done);
  if (!w) return UV_ENOMEM;
  memcpy(w->data, data + done, len - done);
  w->u = u;
  w->len = len - done;
  b = uv_buf_init(w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)u->tcp, &b, 1, on_written);
  if (rc) {
    free(w);
    return rc;
  }
  u->queued += w->len;
  if (u->queued > STREAM_HIGH_WATER) u->over_high = true;
  return 0;
}

static size_t write_queued(const stream *s) { return ((const uv_stream_impl *)s)->queued; }

static void on_shutdown(uv_shutdown_t *req, int status) {
  uv_stream_impl *u = req->data;
  free(req);
  if (u->closing) return;
  if (status < 0) {
    if (u->s.on_error) u->s.on_error(&u->s, status);
  } else {
    u->shut_done = true;
    if (u->s.on_shutdown) u->s.on_shutdown(&u->s);
  }
}

static void shutdown_(stream *s) {
  uv_stream_impl *u = (uv_stream_impl *)s;
  if (u->shut || u->closing) return;
  u->shut = true;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req) return;
  req->data = u;
  int rc = uv_shutdown(req, (uv_stream_t *)u->tcp, on_shutdown);
  if (rc) {
    free(req);
    if (u->s.on_error) u->s.on_error(&u->s, rc);
  }
}

static void on_closed(uv_handle_t *h) {
  uv_stream_impl *u = h->data;
  free(u->tcp);
  if (u->s.on_closed) u->s.on_closed(&u->s);
  free(u);
}

/* A stream closed before its shutdown completed was cut short (the relay's other side failed,
 * or it timed out): the application gets a reset rather than a FIN, so that a truncated download
 * or upload never looks complete. (uv_tcp_close_reset refuses while a shutdown is pending.) */
static void close_(stream *s) {
  uv_stream_impl *u = (uv_stream_impl *)s;
  if (u->closing) return;
  u->closing = true;
  uv_os_fd_t fd;
  if (!u->shut_done && uv_fileno((uv_handle_t *)u->tcp, &fd) == 0) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, (const void *)&lg, sizeof lg);
  }
  uv_close((uv_handle_t *)u->tcp, on_closed);
}

static const stream_ops uv_ops = {read_start, read_stop, write_, write_queued,
                                  shutdown_,  close_,    "tcp"};

stream *stream_uv_wrap(uv_tcp_t *tcp) {
  uv_stream_impl *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->s.ops = &uv_ops;
  u->tcp = tcp;
  tcp->data = u;
  return &u->s;
}
