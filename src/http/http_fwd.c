/* Forwarding an absolute-URI request (http_proxy.h): the rewritten head and the body go up the
 * upstream stream (dialed through the tunnel, or kept from the previous request to the same
 * host:port), the response comes back with its head rewritten and its body followed to its end
 * (http_msg.h hbody), both directions with flow control: a side stops being read while the other
 * side's write queue is above STREAM_HIGH_WATER. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "stream/dial_error.h"
#include "util/log.h"

#define RBUF_MAX (HMSG_MAX_HEAD + 66 * 1024) /* a response head plus one read */

static void finish(hp_conn *c) {
  uv_timer_stop(&c->timer);
  if (!c->req_done || c->client_eof) c->keep_alive = false;
  if (!c->keep_alive) return hp_linger(c); /* flushed, then closed */
  hp_next_request(c);
}

static void response_done(hp_conn *c) {
  c->resp_done = true;
  /* Reused for the next request to the same host:port only when both messages ended cleanly
   * and the origin keeps the connection: an HTTP/1.0 request went up as 1.0 without
   * keep-alive (that token is hop-by-hop), so the origin closes after answering it. */
  c->up_usable = !c->resp_close && c->req_done && c->client_minor == 1;
  finish(c);
}

/* The upstream failed: a 502 while nothing of the response went out, else the connection ends
 * (the client sees a truncated response, as from the origin itself). */
static void upstream_fail(hp_conn *c, int status, const char *why) {
  c->up_usable = false;
  if (!c->resp_started) return hp_reply(c, status, why, NULL);
  LOG_I(HP_COMP, "response_truncated", "sid", c->sid, "reason", why, NULL);
  hp_end(c);
}

static void body_bytes(hp_conn *c, const uint8_t *d, size_t n) {
  const char *why = NULL;
  long k = hbody_feed(&c->respb, d, n, &why);
  if (k < 0) return upstream_fail(c, 502, why);
  if (k) stream_write(c->client, d, (size_t)k);
  if (c->respb.done) {
    if ((size_t)k < n) c->resp_close = true; /* bytes after the response: not reusable */
    return response_done(c);
  }
  hp_update_reading(c);
}

static bool rbuf_append(hp_conn *c, const uint8_t *d, size_t n) {
  if (c->rlen + n > RBUF_MAX) return false;
  if (c->rlen + n > c->rcap) {
    size_t cap = c->rcap ? c->rcap : 4096;
    while (cap < c->rlen + n) cap *= 2;
    if (cap > RBUF_MAX) cap = RBUF_MAX;
    uint8_t *b = realloc(c->rbuf, cap);
    if (!b) return false;
    c->rbuf = b;
    c->rcap = cap;
  }
  memcpy(c->rbuf + c->rlen, d, n);
  c->rlen += n;
  return true;
}

/* A complete response head at rbuf[start..end): passed on rewritten; true when it was a 1xx
 * (another head follows). */
static int pass_head(hp_conn *c, size_t start, size_t end) {
  hresp r;
  if (hresp_parse(c->rbuf + start, end - start, c->head_request, &r) != 0)
    return upstream_fail(c, 502, r.reason), -1;
  if (r.status == 101)
    return upstream_fail(c, 502, "the server switched protocols (Upgrade is not forwarded)"), -1;
  if (r.body == HBODY_CHUNKED && c->client_minor == 0)
    return upstream_fail(c, 502, "chunked response to an HTTP/1.0 request"), -1;
  if (r.status >= 200) {
    c->keep_alive = c->keep_alive && !c->client_eof && r.body != HBODY_CLOSE;
    c->resp_close = r.close;
    hbody_init(&c->respb, r.body, r.content_length);
  }
  size_t cap = end - start + HMSG_REWRITE_EXTRA;
  uint8_t *out = malloc(cap);
  size_t n = out ? hresp_rewrite(&r, c->rbuf + start, end - start, c->keep_alive, c->client_minor,
                                 out, cap)
                 : 0;
  if (!n) return free(out), upstream_fail(c, 502, "out of memory"), -1;
  stream_write(c->client, out, n);
  free(out);
  c->resp_started = true;
  return r.status < 200;
}

static void head_bytes(hp_conn *c, const uint8_t *d, size_t n) {
  free(c->out); /* the origin answers: no retry from here on */
  c->out = NULL;
  if (!rbuf_append(c, d, n)) return upstream_fail(c, 502, "response head larger than 16 KB");
  for (;;) {
    size_t end;
    int status;
    const char *why;
    hmsg_status st = hmsg_scan(&c->rscan, c->rbuf, c->rlen, &end, &status, &why);
    if (st == HMSG_NEED_MORE) return hp_update_reading(c);
    if (st == HMSG_ERROR) return upstream_fail(c, 502, "response head too large or malformed");
    int interim = pass_head(c, c->rscan.start, end);
    if (interim < 0) return;
    memmove(c->rbuf, c->rbuf + end, c->rlen - end);
    c->rlen -= end;
    hmsg_scan_init(&c->rscan);
    if (interim) continue; /* 100 Continue & co: the final head follows */
    c->resp_head_done = true;
    uint8_t *rest = c->rbuf;
    size_t rest_len = c->rlen;
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    body_bytes(c, rest, rest_len);
    free(rest);
    return;
  }
}

/* A kept stream the origin had closed meanwhile (its keep-alive timeout crossing our request):
 * nothing came back, so a request without a body goes once more on a new stream, as browsers
 * do. Dialed from the loop: the stale stream is closed there, not inside its own callback. */
static bool retry_stale(hp_conn *c) {
  if (!c->reused || c->retried || c->resp_started || c->rlen || !c->out ||
      c->reqb.kind != HBODY_NONE)
    return false;
  LOG_D(HP_COMP, "retry", "sid", c->sid, "reason", "kept stream closed by the server", NULL);
  c->retried = c->redial = true;
  c->up_usable = c->u_reading = false;
  c->st = HC_DIAL;
  uv_timer_stop(&c->timer);
  hp_defer(c);
  return true;
}

static void on_up_read(stream *s, const uint8_t *d, size_t n) {
  hp_conn *c = s->user;
  if (c->st == HC_CLOSING) return;
  if (c->st != HC_FWD || c->resp_done) { /* an idle upstream spoke or closed: not reusable */
    c->up_usable = false;
    return hp_update_reading(c);
  }
  c->last_activity = uv_now(c->px->loop);
  if (n && !c->resp_head_done) return head_bytes(c, d, n);
  if (n) return body_bytes(c, d, n);
  c->resp_close = true;
  c->u_reading = false;
  if (c->resp_head_done && c->respb.kind == HBODY_CLOSE) return response_done(c);
  if (retry_stale(c)) return;
  upstream_fail(c, 502, "the server closed the connection before the response ended");
}

static void on_up_error(stream *s, int err) {
  hp_conn *c = s->user;
  if (c->st == HC_CLOSING) return;
  c->u_reading = false;
  if (c->st != HC_FWD || c->resp_done) {
    c->up_usable = false;
    return;
  }
  if (retry_stale(c)) return;
  upstream_fail(c, hp_status_for_dial(dial_error_from_uv(err)), uv_strerror(err));
}

static void on_up_drain(stream *s) {
  hp_conn *c = s->user;
  if (c->st != HC_CLOSING) hp_update_reading(c);
}

static void on_idle(uv_timer_t *t) {
  hp_conn *c = t->data;
  if (c->st != HC_FWD) return;
  uint64_t now = uv_now(c->px->loop), since = now - c->last_activity;
  if (since < c->px->idle_ms) {
    uv_timer_start(&c->timer, on_idle, c->px->idle_ms - since, 0);
    return;
  }
  upstream_fail(c, 504, "no data from the server within [Socks] IdleTimeout");
}

void hp_fwd_pump_client(hp_conn *c) {
  while (!c->req_done && c->in_len) {
    const char *why = NULL;
    long k = hbody_feed(&c->reqb, c->in, c->in_len, &why);
    if (k < 0) {
      if (!c->resp_started) return hp_reply(c, 400, why, NULL);
      return hp_end(c);
    }
    if (k) stream_write(c->up, c->in, (size_t)k);
    hp_consume(c, (size_t)k);
    c->last_activity = uv_now(c->px->loop);
    c->req_done = c->reqb.done;
  }
  if (c->req_done && c->resp_done) return finish(c);
  hp_update_reading(c);
}

/* The rewritten head stays in c->out until the origin answers (for retry_stale). */
static void send_request(hp_conn *c) {
  c->st = HC_FWD;
  c->up_usable = false; /* busy */
  stream_write(c->up, c->out, c->out_len);
  hmsg_scan_init(&c->rscan);
  c->last_activity = uv_now(c->px->loop);
  if (c->px->idle_ms) uv_timer_start(&c->timer, on_idle, c->px->idle_ms, 0);
  hp_fwd_pump_client(c);
}

static void on_dialed(void *ctx, stream *s, dial_error err, const char *reason) {
  hp_conn *c = ctx;
  c->req = NULL;
  if (!s) {
    char why[400];
    snprintf(why, sizeof why, "%s (%s:%u)", reason, c->up_host, c->up_port);
    return hp_reply(c, hp_status_for_dial(err), why, NULL);
  }
  c->up = s;
  c->reused = false;
  c->open++;
  obs_stream_opened(OBS_STREAM_HTTP_TCP);
  s->user = c;
  s->on_read = on_up_read;
  s->on_error = on_up_error;
  s->on_drain = on_up_drain;
  s->on_shutdown = NULL;
  s->on_closed = hp_stream_closed;
  send_request(c);
}

/* A new upstream stream to up_host:up_port (rq's host and port, which are copies). */
static void dial(hp_conn *c) {
  hp_close_up(c); /* another host:port, or not reusable */
  dial_dest dd;
  hp_dial_dest(&c->rq, &dd);
  c->st = HC_DIAL;
  hp_update_reading(c);
  c->req = dialer_start(HP_DIALER(c), &dd, on_dialed, c);
  if (!c->req) hp_reply(c, 503, "out of memory", NULL);
}

void hp_fwd_begin(hp_conn *c) {
  hreq *r = &c->rq;
  size_t cap = c->head_end + HMSG_REWRITE_EXTRA;
  free(c->out);
  c->out = malloc(cap);
  c->out_len = c->out ? hreq_rewrite(r, c->in, c->head_end, c->out, cap) : 0;
  if (!c->out_len) return hp_reply(c, 503, "out of memory", NULL);
  hp_consume(c, c->head_end); /* from here r's offsets are stale; host and method are copies */
  hbody_init(&c->reqb, r->body, r->content_length);
  c->req_done = c->reqb.done;
  c->keep_alive = !r->close;
  c->client_minor = r->minor;
  c->resp_done = c->resp_head_done = c->resp_started = c->resp_close = false;
  c->retried = c->redial = false;
  free(c->rbuf);
  c->rbuf = NULL;
  c->rlen = c->rcap = 0;
  if (c->up && c->up_usable && c->up_port == r->port && strcmp(c->up_host, r->host) == 0) {
    c->reused = true;
    return send_request(c);
  }
  snprintf(c->up_host, sizeof c->up_host, "%s", r->host);
  c->up_port = r->port;
  dial(c);
}

void hp_fwd_redial(hp_conn *c) {
  c->redial = false;
  dial(c);
}
