/* echo_server: the integration tests' TCP echo on the target T (a test tool, never installed).
 *
 * Why not Python: the bulk integrity tests move 100 streams x 10 MB each way through the proxy,
 * and T's threaded Python echo, one core under its interpreter lock, was the slowest hop (75-90 %
 * of a core while the proxy processes used ~30 % each), so those tests measured the echo.
 *
 * What it does, as the Python echo did: each connection gets back every byte it sends, in order;
 * the peer's EOF is answered with our own FIN once everything is echoed, then the socket is
 * closed. A connection whose peer stops reading is not read from either (the queue of unsent
 * echo stays under ECHO_HIGH), so memory stays bounded. "echo done ADDR BYTES" is printed for
 * transfers over 4 MB, "echo error ADDR BYTES WHAT" when a connection fails.
 *
 * Usage: echo_server --port N [--v6]   (--v6: one dual-stack socket on ::, else 0.0.0.0)
 * Prints "echo listening on PORT" once it accepts connections. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define ECHO_READ 262144        /* one read's buffer */
#define ECHO_HIGH (256u * 1024) /* unsent echo at which reading stops: one read, as Python held */
#define ECHO_LOW (64u * 1024)   /* ... and resumes */

typedef struct echo_conn {
  uv_tcp_t tcp;
  uv_shutdown_t shut;
  char peer[64];
  unsigned long long total;
  int reading;
  int eof; /* the peer's FIN is in: never read again (a read after it would see EOF twice) */
} echo_conn;

/* A write owns the buffer its bytes were read into; freed when the write completes. */
typedef struct echo_write {
  uv_write_t req;
  char *base;
} echo_write;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void conn_close(echo_conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void conn_fail(echo_conn *c, const char *what, int err) {
  printf("echo error %s %llu %s: %s\n", c->peer, c->total, what, uv_strerror(err));
  fflush(stdout);
  conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h, (void)hint;
  buf->base = malloc(ECHO_READ);
  buf->len = buf->base ? ECHO_READ : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status) {
  echo_write *w = (echo_write *)req;
  echo_conn *c = req->handle->data;
  free(w->base);
  free(w);
  if (status == UV_ECANCELED) return; /* closing: its callback frees the connection */
  if (status < 0) {
    conn_fail(c, "write", status);
    return;
  }
  if (!c->reading && !c->eof && !uv_is_closing((uv_handle_t *)&c->tcp) &&
      uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= ECHO_LOW) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

static void on_shut(uv_shutdown_t *req, int status) {
  echo_conn *c = req->handle->data;
  if (status < 0 && status != UV_ECANCELED) {
    conn_fail(c, "shutdown", status);
    return;
  }
  if (c->total > (4u << 20)) {
    printf("echo done %s %llu\n", c->peer, c->total);
    fflush(stdout);
  }
  conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  echo_conn *c = s->data;
  if (n <= 0) {
    free(buf->base);
    if (n == 0) return;
    uv_read_stop(s);
    c->reading = 0;
    if (n == UV_EOF) {
      c->eof = 1;
      if (uv_shutdown(&c->shut, s, on_shut) < 0) conn_close(c); /* the FIN goes after the echo */
    } else {
      conn_fail(c, "read", (int)n);
    }
    return;
  }
  echo_write *w = malloc(sizeof *w);
  if (!w) {
    free(buf->base);
    conn_fail(c, "write", UV_ENOMEM);
    return;
  }
  w->base = buf->base;
  uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
  int rc = uv_write(&w->req, s, &out, 1, on_written);
  if (rc < 0) {
    free(w->base);
    free(w);
    conn_fail(c, "write", rc);
    return;
  }
  c->total += (unsigned long long)n;
  if (uv_stream_get_write_queue_size(s) > ECHO_HIGH) {
    uv_read_stop(s);
    c->reading = 0;
  }
}

static void peer_name(echo_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  strcpy(c->peer, "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0) return;
  if (ss.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
  else
    uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  echo_conn *c = calloc(1, sizeof *c);
  if (!c) return; /* the connection stays in the backlog until memory returns */
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  peer_name(c);
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
  int port = -1, v6 = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--v6"))
      v6 = 1;
    else
      port = -1, i = argc;
  }
  if (port < 1 || port > 65535) {
    fprintf(stderr, "usage: echo_server --port N [--v6]\n");
    return 2;
  }
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* the tests stop its parent, the target's servers */
#endif
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_storage addr;
  if (v6)
    uv_ip6_addr("::", port, (struct sockaddr_in6 *)&addr);
  else
    uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&addr);
  int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0); /* :: takes IPv4 too */
  if (rc == 0) rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
  if (rc < 0) {
    fprintf(stderr, "echo_server: cannot listen on port %d: %s\n", port, uv_strerror(rc));
    return 1;
  }
  printf("echo listening on %d\n", port);
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
