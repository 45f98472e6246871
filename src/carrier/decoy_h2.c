/* The decoy over HTTP/2 (decoy_h2.h), on nghttp2's server session. */
#include "carrier/decoy_h2.h"

#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier/tls_decoy.h"
#include "config/config.h"

#define MAX_HEADERS 16 /* an nginx answer has 6 to 8 */

struct decoy_h2 {
  nghttp2_session *ng;
  uv_timer_t pump; /* while the client reads slowly: may we send more? */
  const decoy_h2_io *io;
  void *ctx;
  char root[CFG_PATH_MAX + 1];
  size_t pending;            /* answer bytes not yet framed, all streams */
  struct h2_stream *streams; /* every open stream's state (nghttp2_session_del frees none) */
  bool over;                 /* io.close called, or freed: no more output */
};

/* One request and, once answered, its body being sent. */
typedef struct h2_stream {
  struct h2_stream *prev, *next;
  char method[16];
  char path[TLS_DECOY_MAX_HEAD];
  char authority[256];
  bool too_long;        /* a field did not fit: answered as nginx answers a bad request */
  uint8_t *answer;      /* tls_decoy_answer's HTTP/1.1 reply (owned) */
  size_t body_off, len; /* the body within it */
} h2_stream;

static void stream_free(decoy_h2 *d, h2_stream *st) {
  if (st->prev)
    st->prev->next = st->next;
  else
    d->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  free(st->answer);
  free(st);
}

static void copy_field(char *dst, size_t cap, const uint8_t *v, size_t n, bool *too_long) {
  if (n >= cap) {
    *too_long = true;
    n = cap - 1;
  }
  memcpy(dst, v, n);
  dst[n] = 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user) {
  decoy_h2 *d = user;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  h2_stream *st = calloc(1, sizeof *st);
  if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
  st->next = d->streams;
  if (d->streams) d->streams->prev = st;
  d->streams = st;
  nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
  return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user) {
  (void)flags, (void)user;
  h2_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
  if (!st || f->hd.type != NGHTTP2_HEADERS) return 0;
  if (namelen == 7 && !memcmp(name, ":method", 7))
    copy_field(st->method, sizeof st->method, value, valuelen, &st->too_long);
  else if (namelen == 5 && !memcmp(name, ":path", 5))
    copy_field(st->path, sizeof st->path, value, valuelen, &st->too_long);
  else if (namelen == 10 && !memcmp(name, ":authority", 10))
    copy_field(st->authority, sizeof st->authority, value, valuelen, &st->too_long);
  return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user) {
  (void)ng, (void)id;
  decoy_h2 *d = user;
  h2_stream *st = src->ptr;
  size_t n = st->len - st->body_off < length ? st->len - st->body_off : length;
  memcpy(buf, st->answer + st->body_off, n);
  st->body_off += n;
  d->pending -= n;
  if (st->body_off == st->len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* tls_decoy_answer's HTTP/1.1 reply as an HTTP/2 response: the status, the headers (lower
 * case, without the connection-specific ones HTTP/2 forbids) and the body, if any. */
static int submit_answer(decoy_h2 *d, int32_t id, h2_stream *st, bool head) {
  char *a = (char *)st->answer;
  char *end = strstr(a, "\r\n\r\n");
  char *sp = strchr(a, ' ');
  if (!end || !sp || sp > end) return -1;
  char status[4] = {sp[1], sp[2], sp[3], 0};
  nghttp2_nv nv[MAX_HEADERS + 1];
  size_t n = 0;
  nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
  for (char *line = strstr(a, "\r\n") + 2; line < end && n < MAX_HEADERS + 1;) {
    char *eol = strstr(line, "\r\n"), *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon) {
      for (char *c = line; c < colon; c++) *c = (char)tolower((unsigned char)*c);
      size_t nlen = (size_t)(colon - line);
      char *v = colon + 1;
      while (*v == ' ') v++;
      bool skip = (nlen == 10 && !memcmp(line, "connection", 10)) ||
                  (nlen == 10 && !memcmp(line, "keep-alive", 10)) ||
                  (nlen == 17 && !memcmp(line, "transfer-encoding", 17));
      if (!skip)
        nv[n++] = (nghttp2_nv){(uint8_t *)line, (uint8_t *)v, nlen, (size_t)(eol - v),
                               NGHTTP2_NV_FLAG_NONE};
    }
    line = eol + 2;
  }
  st->body_off = (size_t)(end + 4 - a);
  if (head) st->len = st->body_off;
  d->pending += st->len - st->body_off;
  nghttp2_data_provider body = {.source.ptr = st, .read_callback = read_body};
  return nghttp2_submit_response(d->ng, id, nv, n, st->len > st->body_off ? &body : NULL);
}

static int answer(decoy_h2 *d, int32_t id, h2_stream *st) {
  if (d->pending > DECOY_H2_MAX_PENDING)
    return nghttp2_submit_rst_stream(d->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
  char req[TLS_DECOY_MAX_HEAD + 512];
  int len =
      snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n",
               st->too_long ? "BAD" : st->method, st->path[0] ? st->path : "/", st->authority);
  if (len < 0 || (size_t)len >= sizeof req)
    len = snprintf(req, sizeof req, "BAD / HTTP/1.1\r\n\r\n");
  size_t used = 0;
  tls_decoy_reply r = {0};
  tls_decoy_answer(d->root, (const uint8_t *)req, (size_t)len, &used, (long long)time(NULL), &r);
  if (!r.data)
    return nghttp2_submit_rst_stream(d->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  r.data = realloc(r.data, r.len + 1); /* a terminator for the header scan */
  if (!r.data) return NGHTTP2_ERR_CALLBACK_FAILURE;
  r.data[r.len] = 0;
  st->answer = r.data;
  st->len = r.len;
  return submit_answer(d, id, st, !strcmp(st->method, "HEAD")) == 0 ? 0
                                                                    : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user) {
  decoy_h2 *d = user;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
      !(f->hd.flags & NGHTTP2_FLAG_END_HEADERS))
    return 0;
  h2_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
  return st && !st->answer ? answer(d, f->hd.stream_id, st) : 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user) {
  (void)code;
  decoy_h2 *d = user;
  h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
  if (!st) return 0;
  if (st->answer) d->pending -= st->len - st->body_off; /* reset before it was all sent */
  stream_free(d, st);
  nghttp2_session_set_stream_user_data(ng, id, NULL);
  return 0;
}

static void finish(decoy_h2 *d) {
  if (d->over) return;
  d->over = true;
  uv_timer_stop(&d->pump);
  d->io->close(d->ctx);
}

static void pump(decoy_h2 *d);

static void on_pump(uv_timer_t *t) {
  decoy_h2 *d = t->data;
  if (d->io->queued(d->ctx) > DECOY_H2_PAUSE) return;
  uv_timer_stop(t);
  pump(d);
}

/* Frames what nghttp2 has to send while the client keeps up; over when neither side has more. */
static void pump(decoy_h2 *d) {
  while (!d->over && nghttp2_session_want_write(d->ng)) {
    if (d->io->queued(d->ctx) > DECOY_H2_PAUSE) {
      uv_timer_start(&d->pump, on_pump, DECOY_H2_POLL_MS, DECOY_H2_POLL_MS);
      break;
    }
    const uint8_t *out;
    ssize_t n = nghttp2_session_mem_send(d->ng, &out);
    if (n < 0) return finish(d);
    if (n == 0) break;
    d->io->write(d->ctx, out, (size_t)n);
  }
  if (!d->over && !nghttp2_session_want_read(d->ng) && !nghttp2_session_want_write(d->ng))
    finish(d);
}

decoy_h2 *decoy_h2_start(uv_loop_t *loop, const char *root, const decoy_h2_io *io, void *ctx) {
  decoy_h2 *d = calloc(1, sizeof *d);
  nghttp2_session_callbacks *cbs = NULL;
  if (!d || nghttp2_session_callbacks_new(&cbs) != 0) {
    free(d);
    return NULL;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  int rc = nghttp2_session_server_new(&d->ng, cbs, d);
  nghttp2_session_callbacks_del(cbs);
  /* nginx's opening: its SETTINGS, then a connection window opened to 2^31 - 1. */
  nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 128},
                                  {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65536},
                                  {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16777215}};
  if (rc == 0) rc = nghttp2_submit_settings(d->ng, NGHTTP2_FLAG_NONE, set, 3);
  if (rc == 0) rc = nghttp2_submit_window_update(d->ng, NGHTTP2_FLAG_NONE, 0, 2147418112);
  if (rc != 0) {
    if (d->ng) nghttp2_session_del(d->ng);
    free(d);
    return NULL;
  }
  snprintf(d->root, sizeof d->root, "%s", root ? root : "");
  d->io = io;
  d->ctx = ctx;
  uv_timer_init(loop, &d->pump);
  d->pump.data = d;
  return d;
}

void decoy_h2_feed(decoy_h2 *d, const uint8_t *data, size_t len) {
  if (d->over) return;
  ssize_t n = nghttp2_session_mem_recv(d->ng, data, len);
  if (n < 0) nghttp2_session_terminate_session(d->ng, NGHTTP2_PROTOCOL_ERROR); /* then GOAWAY */
  pump(d);
}

static void on_pump_closed(uv_handle_t *h) { free(h->data); }

void decoy_h2_free(decoy_h2 *d) {
  if (!d) return;
  d->over = true;
  nghttp2_session_del(d->ng);
  while (d->streams) stream_free(d, d->streams);
  uv_close((uv_handle_t *)&d->pump, on_pump_closed);
}
