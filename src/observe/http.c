#include "observe/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "util/list.h"

/* ---- request parser ----------------------------------------------------------------------- */

typedef enum {
  P_METHOD,
  P_TARGET,
  P_VERSION,
  P_LINE_LF, /* CR seen after the request line / a header */
  P_HDR_START,
  P_HDR_NAME,
  P_HDR_VALUE,
  P_END_LF, /* CR seen on the empty line */
  P_DONE_HEAD,
} pstate;

typedef struct {
  http_request *req;
  pstate st;
  size_t method_len, target_len, path_len, version_pos;
  bool in_query;
  char name[32]; /* current header name, lower case (truncated names never match) */
  size_t name_len;
  char value[32]; /* value of a header we act on, OWS trimmed later */
  size_t value_len;
  bool value_long;
  size_t headers;
  bool has_length;
} parser;

static bool tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static http_parse_status fail(http_request *req, int status, const char *reason) {
  req->error = status;
  req->reason = reason;
  return HTTP_ERROR;
}

static const char version_prefix[] = "HTTP/1.";

/* One byte of the version token "HTTP/1.<digit>". */
static http_parse_status version_byte(parser *p, unsigned char c) {
  size_t i = p->version_pos++;
  if (i < sizeof version_prefix - 1) {
    if (c == (unsigned char)version_prefix[i]) return HTTP_NEED_MORE;
    if (i == 5 && c >= '0' && c <= '9') return fail(p->req, 505, "only HTTP/1.x is served");
    return fail(p->req, 400, "malformed HTTP version");
  }
  if (i == sizeof version_prefix - 1) {
    if (c < '0' || c > '9') return fail(p->req, 400, "malformed HTTP version");
    p->req->version_minor = c - '0';
    return HTTP_NEED_MORE;
  }
  if (c == '\r') return p->st = P_LINE_LF, HTTP_NEED_MORE;
  if (c == '\n') return p->st = P_HDR_START, HTTP_NEED_MORE;
  return fail(p->req, 400, "malformed HTTP version");
}

static bool header_is(const parser *p, const char *name) {
  return p->name_len == strlen(name) && memcmp(p->name, name, p->name_len) == 0;
}

/* A header line is complete: act on the ones that matter. */
static http_parse_status end_header(parser *p) {
  if (++p->headers > HTTP_MAX_HEADERS) return fail(p->req, 431, "too many header fields");
  if (header_is(p, "transfer-encoding"))
    return fail(p->req, 501, "transfer codings are not supported");
  if (!header_is(p, "content-length")) return HTTP_NEED_MORE;
  size_t a = 0, b = p->value_len;
  while (a < b && (p->value[a] == ' ' || p->value[a] == '\t')) a++;
  while (b > a && (p->value[b - 1] == ' ' || p->value[b - 1] == '\t')) b--;
  if (p->value_long || a == b || b - a > 18) return fail(p->req, 400, "bad Content-Length");
  uint64_t v = 0;
  for (size_t i = a; i < b; i++) {
    if (p->value[i] < '0' || p->value[i] > '9') return fail(p->req, 400, "bad Content-Length");
    v = v * 10 + (uint64_t)(p->value[i] - '0');
  }
  if (p->has_length && v != p->req->content_length)
    return fail(p->req, 400, "conflicting Content-Length headers");
  p->has_length = true;
  p->req->content_length = v;
  return HTTP_NEED_MORE;
}

static http_parse_status step(parser *p, unsigned char c) {
  http_request *req = p->req;
  switch (p->st) {
    case P_METHOD:
      if (c == ' ' && p->method_len) return p->st = P_TARGET, HTTP_NEED_MORE;
      if (!tchar(c)) return fail(req, 400, "malformed request line");
      if (p->method_len + 1 >= sizeof req->method) return fail(req, 501, "unknown method");
      req->method[p->method_len++] = (char)c;
      return HTTP_NEED_MORE;
    case P_TARGET:
      if (c == ' ' && p->target_len) return p->st = P_VERSION, HTTP_NEED_MORE;
      if (c <= 0x20 || c >= 0x7f) return fail(req, 400, "malformed request target");
      if (p->target_len == 0 && c != '/') return fail(req, 400, "request target is not a path");
      if (++p->target_len > HTTP_MAX_TARGET) return fail(req, 414, "request target too long");
      if (c == '?' || c == '#') p->in_query = true;
      if (!p->in_query) req->path[p->path_len++] = (char)c;
      return HTTP_NEED_MORE;
    case P_VERSION:
      return version_byte(p, c);
    case P_LINE_LF:
      if (c != '\n') return fail(req, 400, "CR without LF");
      p->st = P_HDR_START;
      return HTTP_NEED_MORE;
    case P_HDR_START:
      if (c == '\r') return p->st = P_END_LF, HTTP_NEED_MORE;
      if (c == '\n') return p->st = P_DONE_HEAD, HTTP_NEED_MORE;
      if (!tchar(c)) return fail(req, 400, "malformed header field");
      p->st = P_HDR_NAME;
      p->name_len = p->value_len = 0;
      p->value_long = false;
      /* fall through */
    case P_HDR_NAME:
      if (c == ':') return p->st = P_HDR_VALUE, HTTP_NEED_MORE;
      if (!tchar(c)) return fail(req, 400, "malformed header field name");
      if (p->name_len < sizeof p->name)
        p->name[p->name_len] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
      if (p->name_len <= sizeof p->name)
        p->name_len++; /* a name longer than name[] never matches */
      return HTTP_NEED_MORE;
    case P_HDR_VALUE:
      if (c == '\r' || c == '\n') {
        http_parse_status s = end_header(p);
        if (s != HTTP_NEED_MORE) return s;
        p->st = c == '\r' ? P_LINE_LF : P_HDR_START;
        return HTTP_NEED_MORE;
      }
      if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(req, 400, "control byte in a header");
      if (p->value_len < sizeof p->value)
        p->value[p->value_len++] = (char)c;
      else
        p->value_long = true;
      return HTTP_NEED_MORE;
    case P_END_LF:
      if (c != '\n') return fail(req, 400, "CR without LF");
      p->st = P_DONE_HEAD;
      return HTTP_NEED_MORE;
    case P_DONE_HEAD:
      break;
  }
  return HTTP_NEED_MORE;
}

http_parse_status http_parse_request(const char *buf, size_t len, http_request *req) {
  memset(req, 0, sizeof *req);
  parser p = {.req = req, .st = P_METHOD};
  size_t i = 0;
  for (; i < len && p.st != P_DONE_HEAD; i++) {
    if (i >= HTTP_MAX_REQUEST) return fail(req, 431, "request head too large");
    http_parse_status s = step(&p, (unsigned char)buf[i]);
    if (s != HTTP_NEED_MORE) return s;
  }
  if (p.st != P_DONE_HEAD) {
    if (i >= HTTP_MAX_REQUEST) return fail(req, 431, "request head too large");
    return HTTP_NEED_MORE;
  }
  req->head_len = i;
  if (req->content_length > HTTP_MAX_REQUEST - i) return fail(req, 413, "request body too large");
  req->total_len = i + (size_t)req->content_length;
  return len >= req->total_len ? HTTP_DONE : HTTP_NEED_MORE;
}

const char *http_status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 422:
      return "Unprocessable Content";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

/* ---- server ------------------------------------------------------------------------------- */

typedef union {
  uv_handle_t h;
  uv_stream_t s;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} any_stream;

typedef struct http_conn {
  struct http_server *srv;
  list_node link; /* on srv->conns */
  any_stream io;
  uv_timer_t timer;
  uv_write_t wr;
  uv_shutdown_t sd;
  int open_handles;
  bool responded, closing;
  size_t len;
  obs_buf out;
  char buf[HTTP_MAX_REQUEST];
} http_conn;

struct http_server {
  uv_loop_t *loop;
  any_stream lst;
  bool is_unix, stopping;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  const char *what;
  http_handler fn;
  void *ctx;
  list_node conns; /* http_conn.link */
  size_t n_conns;
  bool listener_open;
};

static void maybe_free_server(struct http_server *s) {
  if (s->stopping && !s->listener_open && list_empty(&s->conns)) free(s);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  if (--c->open_handles > 0) return;
  struct http_server *s = c->srv;
  list_remove(&c->link);
  s->n_conns--;
  obs_buf_free(&c->out);
  free(c);
  maybe_free_server(s);
}

static void conn_close(http_conn *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close(&c->io.h, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t);

static void on_shutdown(uv_shutdown_t *req, int status) { conn_close(req->data); }

static void on_written(uv_write_t *req, int status) {
  http_conn *c = req->data;
  if (status < 0 || c->closing || uv_shutdown(&c->sd, &c->io.s, on_shutdown) != 0) conn_close(c);
}

static void send_response(http_conn *c, const char *method, const char *path, const char *error,
                          http_response *res) {
  c->responded = true;
  uv_read_stop(&c->io.s);
  if (res->body.failed) {
    obs_buf_free(&res->body);
    res->status = 500;
    res->content_type = NULL;
    obs_buf_puts(&res->body, "out of memory\n");
  }
  const char *type = res->content_type ? res->content_type : "text/plain; charset=utf-8";
  obs_buf_printf(&c->out,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nConnection: close\r\n",
                 res->status, http_status_text(res->status), type, res->body.len);
  if (res->allow) obs_buf_printf(&c->out, "Allow: %s\r\n", res->allow);
  obs_buf_puts(&c->out, "\r\n");
  if (res->body.len) obs_buf_append(&c->out, res->body.data, res->body.len);
  obs_buf_free(&res->body);
  if (log_enabled(LOG_DEBUG)) {
    char st[8];
    snprintf(st, sizeof st, "%d", res->status);
    if (error)
      LOG_D(c->srv->what, "request_rejected", "status", st, "reason", error, NULL);
    else
      LOG_D(c->srv->what, "request", "method", method, "path", path, "status", st, NULL);
  }
  if (c->out.failed) return conn_close(c);
  /* The timer now bounds the write: a client that does not read is cut off. */
  uv_timer_start(&c->timer, on_timeout, HTTP_TIMEOUT_MS, 0);
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->wr.data = c;
  c->sd.data = c;
  if (uv_write(&c->wr, &c->io.s, &b, 1, on_written) != 0) conn_close(c);
}

static void send_error(http_conn *c, int status, const char *reason) {
  http_response res = {.status = status};
  obs_buf_init(&res.body);
  obs_buf_printf(&res.body, "%s\n", reason);
  send_response(c, NULL, NULL, reason, &res);
}

static void on_timeout(uv_timer_t *t) {
  http_conn *c = t->data;
  if (c->closing) return;
  if (c->responded) return conn_close(c);
  send_error(c, 408, "request not received in time");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  http_conn *c = h->data;
  *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  http_conn *c = st->data;
  if (c->closing || c->responded) return;
  if (n < 0) return conn_close(c); /* EOF or error before a whole request: nothing to answer */
  c->len += (size_t)n;
  http_request req;
  http_parse_status ps = http_parse_request(c->buf, c->len, &req);
  if (ps == HTTP_NEED_MORE) {
    if (c->len == sizeof c->buf) send_error(c, 431, "request too large"); /* cannot happen */
    return;
  }
  if (ps == HTTP_ERROR) return send_error(c, req.error, req.reason);
  http_response res = {.status = 200};
  obs_buf_init(&res.body);
  c->srv->fn(c->srv->ctx, &req, c->buf + req.head_len, (size_t)req.content_length, &res);
  send_response(c, req.method, req.path, NULL, &res);
}

static void on_connection(uv_stream_t *lst, int status) {
  struct http_server *s = lst->data;
  if (status < 0) return;
  http_conn *c = calloc(1, sizeof *c);
  /* Out of memory: leave the connection in the backlog (libuv retries on the next accept). */
  if (!c) return;
  int rc = s->is_unix ? uv_pipe_init(s->loop, &c->io.pipe, 0) : uv_tcp_init(s->loop, &c->io.tcp);
  if (rc) return free(c);
  c->srv = s;
  c->io.h.data = c;
  c->open_handles = 2;
  uv_timer_init(s->loop, &c->timer);
  c->timer.data = c;
  obs_buf_init(&c->out);
  list_push_front(&s->conns, &c->link);
  s->n_conns++;
  if (uv_accept(lst, &c->io.s) != 0 || s->stopping) return conn_close(c);
  if (s->n_conns > HTTP_MAX_CONNS) {
    LOG_W(s->what, "connection_refused", "reason", "too many connections", NULL);
    return conn_close(c);
  }
  if (!s->is_unix) uv_tcp_nodelay(&c->io.tcp, 1);
  uv_timer_start(&c->timer, on_timeout, HTTP_TIMEOUT_MS, 0);
  if (uv_read_start(&c->io.s, on_alloc, on_read) != 0) conn_close(c);
}

/* A socket file left by a previous run is replaced; a live server there is not. */
static int clear_stale_socket(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
  }
  if (!S_ISSOCK(st.st_mode))
    return snprintf(err, errlen, "%s exists and is not a socket; remove it or pick another path",
                    path),
           -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return snprintf(err, errlen, "socket: %s", strerror(errno)), -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  if (live)
    return snprintf(err, errlen, "%s is in use by another process (another awgproxy running?)",
                    path),
           -1;
  if (unlink(path) != 0)
    return snprintf(err, errlen, "cannot remove stale %s: %s", path, strerror(errno)), -1;
  return 0;
}

static int listen_unix(struct http_server *s, const char *path, char *err, size_t errlen) {
  if (strlen(path) >= sizeof s->path)
    return snprintf(err, errlen, "socket path too long: %s", path), -1;
  if (clear_stale_socket(path, err, errlen) != 0) return -1;
  int rc = uv_pipe_init(s->loop, &s->lst.pipe, 0);
  if (rc) return snprintf(err, errlen, "%s", uv_strerror(rc)), -1;
  s->listener_open = true;
  /* Only the owner may talk to the control socket: create it 0600, no window with wider modes. */
  mode_t old = umask(0177);
  rc = uv_pipe_bind(&s->lst.pipe, path);
  umask(old);
  if (rc) return snprintf(err, errlen, "cannot bind %s: %s", path, uv_strerror(rc)), -1;
  snprintf(s->path, sizeof s->path, "%s", path);
  if (chmod(path, 0600) != 0)
    return snprintf(err, errlen, "cannot set mode 0600 on %s: %s", path, strerror(errno)), -1;
  return 0;
}

static int listen_tcp(struct http_server *s, const cfg_hostport *hp, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':') ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
                                 : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  if (!rc) rc = uv_tcp_init(s->loop, &s->lst.tcp);
  if (rc) return snprintf(err, errlen, "%s: %s", hp->host, uv_strerror(rc)), -1;
  s->listener_open = true;
  rc = uv_tcp_bind(&s->lst.tcp, (struct sockaddr *)&ss, 0);
  if (rc) {
    char a[300];
    cfg_format_hostport(hp, a, sizeof a);
    return snprintf(err, errlen, "cannot listen on %s: %s", a, uv_strerror(rc)), -1;
  }
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  struct http_server *s = h->data;
  s->listener_open = false;
  maybe_free_server(s);
}

http_server *http_server_start(uv_loop_t *loop, const char *what, const char *unix_path,
                               const cfg_hostport *hp, http_handler fn, void *ctx, char *err,
                               size_t errlen) {
  struct http_server *s = calloc(1, sizeof *s);
  if (!s) return snprintf(err, errlen, "out of memory"), NULL;
  s->loop = loop;
  list_init(&s->conns);
  s->what = what;
  s->fn = fn;
  s->ctx = ctx;
  s->is_unix = unix_path != NULL;
  s->lst.h.data = s;
  char e[400] = "";
  int rc = s->is_unix ? listen_unix(s, unix_path, e, sizeof e) : listen_tcp(s, hp, e, sizeof e);
  if (!rc) {
    int r = uv_listen(&s->lst.s, 64, on_connection);
    if (r) rc = -1, snprintf(e, sizeof e, "cannot listen: %s", uv_strerror(r));
  }
  if (rc) {
    snprintf(err, errlen, "%s endpoint: %s", what, e);
    http_server_stop(s);
    return NULL;
  }
  char a[300];
  if (s->is_unix)
    snprintf(a, sizeof a, "%s", unix_path);
  else
    cfg_format_hostport(hp, a, sizeof a);
  LOG_I(what, "listening", "address", a, NULL);
  return s;
}

void http_server_stop(http_server *s) {
  if (!s) return;
  s->stopping = true;
  if (s->path[0]) unlink(s->path);
  list_node *it, *tmp;
  list_each_safe(it, tmp, &s->conns) conn_close(list_entry(it, http_conn, link));
  if (s->listener_open && !uv_is_closing(&s->lst.h))
    uv_close(&s->lst.h, on_listener_closed);
  else
    maybe_free_server(s);
}
