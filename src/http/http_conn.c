/* One client connection of the HTTP proxy: reads request heads (http_msg.h), checks
 * Proxy-Authorization, serves the PAC file, runs CONNECT up to the relay and hands absolute-URI
 * requests to http_fwd.c; answers every failure with its status and closes. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "socks/socks_users.h"
#include "stream/dial_error.h"
#include "util/log.h"

#define LINGER_MS 1000 /* after our final answer, for the client to close first */
#define IN_MAX (HMSG_MAX_HEAD + 66 * 1024) /* a head plus one read */

/* ---- lifetime --------------------------------------------------------------------------- */

static void maybe_free(hp_conn *c) {
  if (c->open || c->work_pending || c->relay) return;
  http_proxy *px = c->px;
  list_remove(&c->link);
  px->n_conns--;
  sodium_memzero(c->pass, sizeof c->pass);
  sodium_memzero(c->cred, sizeof c->cred);
  free(c->in);
  free(c->out);
  free(c->rbuf);
  free(c);
  hp_conn_freed(px);
}

static void on_handle_closed(uv_handle_t *h) {
  hp_conn *c = h->data;
  c->open--;
  maybe_free(c);
}

void hp_stream_closed(stream *s) {
  hp_conn *c = s->user;
  c->open--;
  maybe_free(c);
}

static void close_retiring(hp_conn *c) {
  if (c->retiring) stream_close(c->retiring), c->retiring = NULL;
}

static void on_retiring_read(stream *s, const uint8_t *d, size_t n) {
  (void)d;
  hp_conn *c = s->user;
  if (!n) close_retiring(c); /* the origin closed in turn: both FINs, a clean end */
}

static void on_retiring_error(stream *s, int err) {
  (void)err;
  close_retiring(s->user);
}

/* An idle upstream (both messages complete) ends as a client's would, with a FIN, and is closed
 * once the origin answers with its own; a busy one, or any while stopping, is reset. */
void hp_close_up(hp_conn *c) {
  if (!c->up) return;
  stream *up = c->up;
  bool idle = c->up_usable && !c->px->stopping;
  c->up = NULL;
  c->u_reading = c->up_usable = false;
  obs_stream_closed(OBS_STREAM_HTTP_TCP);
  if (!idle) return stream_close(up);
  close_retiring(c); /* at most one at a time */
  c->retiring = up;
  up->on_read = on_retiring_read;
  up->on_error = on_retiring_error;
  up->on_drain = NULL;
  up->on_shutdown = NULL;
  stream_shutdown(up);
  stream_read_start(up);
}

void hp_close_now(hp_conn *c) {
  if (c->px->stopping) close_retiring(c); /* while the transports still exist */
  if (c->st == HC_CLOSING && uv_is_closing((uv_handle_t *)&c->timer)) return;
  c->st = HC_CLOSING;
  if (c->req) dial_cancel(c->req), c->req = NULL;
  if (c->client) stream_close(c->client), c->client = NULL;
  hp_close_up(c);
  if (c->relay) relay_abort(c->relay); /* its done callback clears c->relay */
  if (!uv_is_closing((uv_handle_t *)&c->timer)) {
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->defer, on_handle_closed);
  }
}

static void on_defer(uv_timer_t *t) {
  hp_conn *c = t->data;
  if (c->st == HC_CLOSING) return hp_close_now(c);
  if (c->redial) return hp_fwd_redial(c);
  hp_process(c);
}

void hp_defer(hp_conn *c) { uv_timer_start(&c->defer, on_defer, 0, 0); }

void hp_end(hp_conn *c) {
  if (c->st == HC_CLOSING) return;
  c->st = HC_CLOSING;
  if (c->req) dial_cancel(c->req), c->req = NULL;
  if (c->client && c->c_reading) stream_read_stop(c->client), c->c_reading = false;
  if (c->up && c->u_reading) stream_read_stop(c->up), c->u_reading = false;
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->defer, on_defer, 0, 0);
}

/* ---- reading ---------------------------------------------------------------------------- */

void hp_update_reading(hp_conn *c) {
  bool want_c = false, want_u = false;
  if (c->client && !c->client_eof) {
    switch (c->st) {
      case HC_HEAD:
      case HC_REPLY:
        want_c = true;
        break;
      case HC_FWD:
        want_c = !c->req_done ? !c->up || stream_write_queued(c->up) <= STREAM_HIGH_WATER
                              : c->in_len < HMSG_MAX_HEAD;
        break;
      default:
        break;
    }
  }
  if (c->up) {
    if (c->st == HC_FWD)
      want_u = !c->resp_done && (!c->client || stream_write_queued(c->client) <= STREAM_HIGH_WATER);
    else
      want_u = c->up_usable && c->st != HC_CLOSING; /* an idle upstream: notice it closing */
  }
  if (want_c != c->c_reading) {
    c->c_reading = want_c;
    want_c ? stream_read_start(c->client) : stream_read_stop(c->client);
  }
  if (want_u != c->u_reading) {
    c->u_reading = want_u;
    want_u ? stream_read_start(c->up) : stream_read_stop(c->up);
  }
}

void hp_consume(hp_conn *c, size_t n) {
  if (!n) return;
  memmove(c->in, c->in + n, c->in_len - n);
  c->in_len -= n;
  if (!c->in_len) { /* idle keep-alive connections hold no buffer */
    free(c->in);
    c->in = NULL;
    c->in_cap = 0;
  }
}

static bool in_append(hp_conn *c, const uint8_t *d, size_t n) {
  if (c->in_len + n > IN_MAX) return false;
  if (c->in_len + n > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 4096;
    while (cap < c->in_len + n) cap *= 2;
    if (cap > IN_MAX) cap = IN_MAX;
    uint8_t *b = realloc(c->in, cap);
    if (!b) return false;
    c->in = b;
    c->in_cap = cap;
  }
  memcpy(c->in + c->in_len, d, n);
  c->in_len += n;
  return true;
}

static void start_head_timer(hp_conn *c);

static void on_client_read(stream *s, const uint8_t *d, size_t n) {
  hp_conn *c = s->user;
  if (c->st == HC_CLOSING) return;
  if (!n) {
    c->client_eof = true;
    c->c_reading = false;
    /* before a complete request, or after our reply: nothing more to do; while forwarding, the
     * response still goes out (a client may half-close after its request) */
    if (c->st != HC_FWD || !c->req_done) return hp_end(c);
    c->keep_alive = false;
    return;
  }
  if (c->st == HC_REPLY) return; /* after our final answer: discarded */
  if (!in_append(c, d, n)) return hp_end(c);
  if (c->st == HC_HEAD && !c->head_timing) start_head_timer(c); /* a next request begins */
  hp_process(c);
}

static void on_client_error(stream *s, int err) {
  (void)err;
  hp_end(s->user);
}

static void on_client_drain(stream *s) {
  hp_conn *c = s->user;
  if (c->st != HC_CLOSING) hp_update_reading(c);
}

/* ---- replies ---------------------------------------------------------------------------- */

static const char *status_text(int st) {
  switch (st) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

static void on_linger(uv_timer_t *t) { hp_end(t->data); }

void hp_linger(hp_conn *c) {
  /* Half-close once flushed, then close when the client does or LINGER_MS have passed:
   * closing at once could reset the connection before the answer arrives. */
  if (c->req) dial_cancel(c->req), c->req = NULL;
  c->up_usable = false; /* closed with the connection (maybe inside its own callback now) */
  c->st = HC_REPLY;
  uv_timer_start(&c->timer, on_linger, LINGER_MS, 0);
  stream_shutdown(c->client);
  hp_update_reading(c);
}

void hp_reply(hp_conn *c, int status, const char *why, const char *extra) {
  if (c->st == HC_CLOSING || c->st == HC_REPLY || !c->client) return;
  char body[600], head[1024];
  int bl = snprintf(body, sizeof body, "%d %s: %s\n", status, status_text(status), why);
  if (bl < 0 || (size_t)bl >= sizeof body) bl = (int)sizeof body - 1, body[bl - 1] = '\n';
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n%s\r\n",
                    status, status_text(status), bl, extra ? extra : "");
  if (hl > 0 && (size_t)hl < sizeof head)
    stream_write(c->client, (const uint8_t *)head, (size_t)hl);
  if (!c->head_request) stream_write(c->client, (const uint8_t *)body, (size_t)bl);
  char code[8];
  snprintf(code, sizeof code, "%d", status);
  LOG_I(HP_COMP, "request_failed", "sid", c->sid, "status", code, "reason", why, NULL);
  hp_linger(c);
}

int hp_status_for_dial(dial_error err) {
  switch (err) {
    case DIAL_ERR_NOT_ALLOWED:
      return 403;
    case DIAL_ERR_TIMEOUT:
      return 504;
    case DIAL_ERR_TUNNEL_DOWN:
      return 503;
    default: /* refused, unreachable, no such name, anything else */
      return 502;
  }
}

void hp_dial_dest(const hreq *r, dial_dest *out) {
  memset(out, 0, sizeof *out);
  out->port = r->port;
  if (inet_pton(AF_INET6, r->host, out->ip) == 1) {
    out->type = DIAL_DEST_IPV6;
  } else if (inet_pton(AF_INET, r->host, out->ip) == 1) {
    out->type = DIAL_DEST_IPV4;
  } else {
    out->type = DIAL_DEST_NAME; /* resolved through the tunnel by the dialer, never here */
    snprintf(out->name, sizeof out->name, "%s", r->host);
  }
}

/* ---- CONNECT ---------------------------------------------------------------------------- */

static void on_relay_done(void *ctx, const relay_result *r) {
  (void)r;
  hp_conn *c = ctx;
  obs_stream_closed(OBS_STREAM_HTTP_TCP);
  c->relay = NULL;
  hp_close_now(c); /* the timers */
  maybe_free(c);
}

static void on_connect_dialed(void *ctx, stream *remote, dial_error err, const char *reason) {
  hp_conn *c = ctx;
  c->req = NULL;
  char why[400];
  snprintf(why, sizeof why, "%s (%s:%u)", reason, c->rq.host, c->rq.port);
  if (!remote) return hp_reply(c, hp_status_for_dial(err), why, NULL);
  static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  stream_write(c->client, (const uint8_t *)ok, sizeof ok - 1);
  if (c->in_len) stream_write(remote, c->in, c->in_len); /* sent ahead, e.g. a TLS hello */
  hp_consume(c, c->in_len);
  LOG_D(HP_COMP, "connected", "sid", c->sid, "dst", why, NULL);
  stream *client = c->client;
  c->client = NULL;
  c->open--; /* the relay owns the client stream now */
  if (c->c_reading) stream_read_stop(client), c->c_reading = false;
  uv_timer_stop(&c->timer);
  c->st = HC_RELAY;
  obs_stream_opened(OBS_STREAM_HTTP_TCP);
  c->relay = relay_start(c->px->loop, client, remote, c->px->idle_ms, on_relay_done, c);
  if (!c->relay) {
    obs_stream_closed(OBS_STREAM_HTTP_TCP);
    hp_end(c);
  }
}

static void start_connect(hp_conn *c) {
  hp_close_up(c); /* an idle stream of earlier forwarded requests: the relay takes over */
  hp_consume(c, c->head_end);
  dial_dest dd;
  hp_dial_dest(&c->rq, &dd);
  c->st = HC_DIAL;
  hp_update_reading(c);
  c->req = dialer_start(HP_DIALER(c), &dd, on_connect_dialed, c);
  if (!c->req) hp_reply(c, 503, "out of memory", NULL);
}

/* ---- the PAC file ----------------------------------------------------------------------- */

static void serve_pac(hp_conn *c) {
  char body[1200], head[256];
  size_t bl = hp_pac(c->px, &c->local, body, sizeof body);
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    bl);
  stream_write(c->client, (const uint8_t *)head, (size_t)hl);
  if (!c->head_request) stream_write(c->client, (const uint8_t *)body, bl);
  LOG_D(HP_COMP, "pac_served", "sid", c->sid, NULL);
  hp_linger(c);
}

/* ---- authentication --------------------------------------------------------------------- */

static void dispatch_authed(hp_conn *c);

static void auth_work(uv_work_t *w) {
  hp_conn *c = w->data;
  c->user_index = socks_users_match(c->px->users, c->px->n_users, c->user, c->pass);
  c->auth_ok = c->user_index >= 0;
}

static void auth_done(uv_work_t *w, int status) {
  (void)status;
  hp_conn *c = w->data;
  c->work_pending = false;
  sodium_memzero(c->pass, sizeof c->pass);
  if (c->st != HC_AUTH) return maybe_free(c);
  if (!c->auth_ok) {
    c->cred_len = 0;
    LOG_W(HP_COMP, "auth_failed", "sid", c->sid, "reason", "wrong user name or password", NULL);
    return hp_reply(c, 407, "wrong user name or password",
                    "Proxy-Authenticate: Basic realm=\"awgproxy\"\r\n");
  }
  LOG_D(HP_COMP, "auth_ok", "sid", c->sid, NULL);
  const char *pin = c->px->users[c->user_index].server;
  c->user_dl = c->px->pin && pin[0] ? c->px->pin(c->px->pin_ctx, pin) : NULL;
  dispatch_authed(c);
}

/* "Basic base64(user:pass)" into c->user (zero-filled) and c->pass; false if malformed. */
static bool parse_basic(hp_conn *c, const uint8_t *v, size_t n) {
  if (n < 6 || strncasecmp((const char *)v, "basic ", 6) != 0) return false;
  size_t i = 6;
  while (i < n && v[i] == ' ') i++;
  uint8_t bin[520];
  size_t bl = 0;
  if (sodium_base642bin(bin, sizeof bin - 1, (const char *)v + i, n - i, NULL, &bl, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return false;
  uint8_t *colon = memchr(bin, ':', bl);
  bool ok =
      colon && colon - bin < 256 && bl - (size_t)(colon - bin) - 1 < 256 && !memchr(bin, 0, bl);
  if (ok) {
    memset(c->user, 0, sizeof c->user);
    memcpy(c->user, bin, (size_t)(colon - bin));
    size_t pl = bl - (size_t)(colon - bin) - 1;
    memcpy(c->pass, colon + 1, pl);
    c->pass[pl] = 0;
  }
  sodium_memzero(bin, sizeof bin);
  return ok;
}

/* True when the request may go on now; otherwise it was answered or the check was started. */
static bool check_auth(hp_conn *c) {
  http_proxy *px = c->px;
  if (!px->n_users) return true;
  static const char challenge[] = "Proxy-Authenticate: Basic realm=\"awgproxy\"\r\n";
  if (c->rq.auth < 0) {
    hp_reply(c, 407, "this proxy needs a user name and password", challenge);
    return false;
  }
  const hmsg_header *h = &c->rq.hdr[c->rq.auth];
  const uint8_t *v = c->in + h->value;
  /* Keep-alive requests repeat the header: a value already accepted on this connection is not
   * checked again (Argon2id costs ~0.1 s of CPU per entry). */
  if (c->cred_len && c->cred_len == h->value_len && sodium_memcmp(c->cred, v, c->cred_len) == 0)
    return true;
  if (h->value_len > sizeof c->cred || !parse_basic(c, v, h->value_len)) {
    hp_reply(c, 407, "malformed Proxy-Authorization (expected Basic)", challenge);
    return false;
  }
  memcpy(c->cred, v, h->value_len);
  c->cred_len = h->value_len;
  c->st = HC_AUTH;
  hp_update_reading(c);
  c->work.data = c;
  c->work_pending = true;
  if (uv_queue_work(px->loop, &c->work, auth_work, auth_done) != 0) {
    c->work_pending = false;
    c->st = HC_HEAD;
    hp_reply(c, 503, "cannot check the password", NULL);
  }
  return false;
}

/* ---- requests --------------------------------------------------------------------------- */

static bool forwarded_method(const char *m) {
  static const char *const ok[] = {"GET",    "HEAD",    "POST",  "PUT",
                                   "DELETE", "OPTIONS", "PATCH", NULL};
  for (size_t i = 0; ok[i]; i++)
    if (strcmp(m, ok[i]) == 0) return true;
  return false;
}

static void dispatch_authed(hp_conn *c) {
  if (c->rq.form == HREQ_AUTHORITY) return start_connect(c);
  if (!forwarded_method(c->rq.method))
    return hp_reply(c, 405, "method not forwarded by this proxy",
                    "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT\r\n");
  hp_fwd_begin(c);
}

static void dispatch(hp_conn *c) {
  hreq *r = &c->rq;
  c->head_request = strcmp(r->method, "HEAD") == 0;
  if (r->form == HREQ_ORIGIN) {
    bool pac = r->path_len == 10 && memcmp(c->in + r->path, "/proxy.pac", 10) == 0;
    if (pac && (strcmp(r->method, "GET") == 0 || c->head_request)) return serve_pac(c);
    return hp_reply(c, 400,
                    "this is a proxy: send absolute URIs (GET http://host/path) or CONNECT; "
                    "the PAC file is at /proxy.pac",
                    NULL);
  }
  if (log_enabled(LOG_DEBUG)) {
    char dst[300], port[8];
    snprintf(dst, sizeof dst, "%s", r->host);
    snprintf(port, sizeof port, "%u", r->port);
    LOG_D(HP_COMP, "request", "sid", c->sid, "method", r->method, "host", dst, "port", port, NULL);
  }
  if (check_auth(c)) dispatch_authed(c);
}

static void step_head(hp_conn *c) {
  size_t end;
  int status = 0;
  const char *why = NULL;
  hmsg_status st = hmsg_scan(&c->scan, c->in, c->in_len, &end, &status, &why);
  if (st == HMSG_NEED_MORE) return hp_update_reading(c);
  if (st == HMSG_ERROR) return hp_reply(c, status, why, NULL);
  uv_timer_stop(&c->timer);
  /* The head is parsed where it lies; the empty lines before it are dropped first so that the
   * header offsets are offsets into c->in. */
  size_t start = c->scan.start;
  hp_consume(c, start);
  c->head_end = end - start;
  if (hreq_parse(c->in, c->head_end, &c->rq) != 0)
    return hp_reply(c, c->rq.status, c->rq.reason, NULL);
  dispatch(c);
}

void hp_process(hp_conn *c) {
  switch (c->st) {
    case HC_HEAD:
      if (c->in_len)
        step_head(c);
      else
        hp_update_reading(c);
      break;
    case HC_FWD:
      hp_fwd_pump_client(c);
      break;
    default:
      break;
  }
}

static void on_head_timeout(uv_timer_t *t) {
  hp_conn *c = t->data;
  if (c->st != HC_HEAD) return;
  if (!c->in_len) return hp_linger(c); /* a new connection that never sent a byte: a FIN */
  char why[96];
  snprintf(why, sizeof why, "request head not complete within %llu s ([Http] HeaderTimeout)",
           (unsigned long long)(c->px->header_timeout_ms / 1000));
  hp_reply(c, 408, why, NULL);
}

/* HeaderTimeout runs from a connection's accept, or from the first byte of a later request, to
 * the end of that request's head (slowloris). */
static void start_head_timer(hp_conn *c) {
  c->head_timing = true;
  uv_timer_start(&c->timer, on_head_timeout, c->px->header_timeout_ms, 0);
}

static void on_keepalive_idle(uv_timer_t *t) {
  hp_conn *c = t->data;
  if (c->st == HC_HEAD && !c->in_len) hp_close_up(c); /* idle too: a FIN for the origin */
  /* Closed without an answer, as servers do, with a FIN (a close without it would be a reset,
   * which a client may report as an error instead of opening a new connection). */
  if (c->st == HC_HEAD && !c->in_len) hp_linger(c);
}

void hp_next_request(hp_conn *c) {
  c->st = HC_HEAD;
  hmsg_scan_init(&c->scan);
  c->head_request = false;
  c->head_timing = false;
  /* Between requests a keep-alive connection may idle for [Socks] IdleTimeout (the client may
   * still be reading the last response out of our queue, or just have nothing to ask). */
  if (c->in_len)
    start_head_timer(c);
  else if (c->px->idle_ms)
    uv_timer_start(&c->timer, on_keepalive_idle, c->px->idle_ms, 0);
  else
    uv_timer_stop(&c->timer);
  if (c->in_len)
    uv_timer_start(&c->defer, on_defer, 0, 0); /* pipelined: from the loop, not a callback */
  hp_update_reading(c);
}

void hp_conn_start(http_proxy *px, stream *client, const struct sockaddr_storage *local) {
  hp_conn *c = calloc(1, sizeof *c);
  if (!c) return stream_close(client);
  c->px = px;
  c->client = client;
  c->local = *local;
  c->open = 3; /* the two timers and the client stream */
  obs_session_id(c->sid);
  list_push_front(&px->conns, &c->link);
  px->n_conns++;
  client->user = c;
  client->on_read = on_client_read;
  client->on_error = on_client_error;
  client->on_drain = on_client_drain;
  client->on_closed = hp_stream_closed;
  uv_timer_init(px->loop, &c->timer);
  uv_timer_init(px->loop, &c->defer);
  c->timer.data = c->defer.data = c;
  if (px->n_conns > px->max_conns) {
    c->st = HC_HEAD;
    hp_reply(c, 503, "too many connections ([Http] MaxConnections)", NULL);
    return;
  }
  hp_next_request(c);
  start_head_timer(c); /* a new connection has HeaderTimeout for its first head */
}
