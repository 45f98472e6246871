/* The HTTP proxy service: its listeners, the settings its connections share (http_conn.c,
 * http_fwd.c) and the PAC file. */
#include "http/http_proxy.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "stream/stream_uv.h"
#include "util/log.h"
#include "util/addr_fmt.h"
#include "util/sockaddr.h"

#define MAX_LISTENERS (sizeof((http_proxy *)0)->listeners / sizeof(void *))

typedef struct {
  uv_tcp_t tcp;
  http_proxy *px;
} listener;

static void px_free(http_proxy *px) {
  if (px->users) sodium_memzero(px->users, px->n_users * sizeof *px->users);
  free(px->users);
  free(px->socks);
  free(px);
}

void hp_conn_freed(http_proxy *px) {
  if (px->stopping && list_empty(&px->conns) && !px->n_listeners) px_free(px);
}

static void on_connection(uv_stream_t *server, int status) {
  listener *l = server->data;
  http_proxy *px = l->px;
  if (status < 0 || px->stopping) return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  if (!tcp || uv_tcp_init(px->loop, tcp) != 0) return free(tcp);
  stream *client = NULL;
  if (uv_accept(server, (uv_stream_t *)tcp) != 0 || !(client = stream_uv_wrap(tcp))) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    return;
  }
  /* Far over the cap even the 503 costs too much: the connection is just closed. */
  if (px->n_conns >= 2 * px->max_conns) return stream_close(client);
  uv_tcp_nodelay(tcp, 1);
  struct sockaddr_storage local;
  memset(&local, 0, sizeof local);
  int ll = sizeof local;
  uv_tcp_getsockname(tcp, (struct sockaddr *)&local, &ll);
  hp_conn_start(px, client, &local);
}

static int listen_on(http_proxy *px, const cfg_hostport *hp, char *err, size_t errlen) {
  char a[300];
  cfg_format_hostport(hp, a, sizeof a);
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':') ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
                                 : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  if (rc) return snprintf(err, errlen, "[Http] Listen = %s: %s", a, uv_strerror(rc)), -1;
  listener *l = calloc(1, sizeof *l);
  if (!l) return snprintf(err, errlen, "out of memory"), -1;
  l->px = px;
  uv_tcp_init(px->loop, &l->tcp);
  l->tcp.data = l;
  px->listeners[px->n_listeners++] = l;
  rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
  if (rc) {
    snprintf(err, errlen,
             "cannot listen for HTTP proxy clients on %s: %s (is another proxy running there?)", a,
             uv_strerror(rc));
    return -1;
  }
  LOG_I(HP_COMP, "listening", "address", a, "auth", px->n_users ? "basic" : "none", NULL);
  return 0;
}

http_proxy *http_proxy_start(uv_loop_t *loop, const app_config *cfg, dialer *dl, char *err,
                             size_t errlen) {
  http_proxy *px = calloc(1, sizeof *px);
  if (!px) return snprintf(err, errlen, "out of memory"), NULL;
  px->loop = loop;
  list_init(&px->conns);
  px->dl = dl;
  px->header_timeout_ms = (uint64_t)cfg->http_header_timeout * 1000;
  px->idle_ms = (uint64_t)cfg->idle_timeout * 1000;
  px->max_conns = cfg->http_max_connections;
  px->n_users = cfg->n_socks_users;
  px->n_socks = cfg->n_socks_listen;
  px->users = px->n_users ? malloc(px->n_users * sizeof *px->users) : NULL;
  px->socks = px->n_socks ? malloc(px->n_socks * sizeof *px->socks) : NULL;
  if ((px->n_users && !px->users) || (px->n_socks && !px->socks)) {
    px_free(px);
    return snprintf(err, errlen, "out of memory"), NULL;
  }
  if (px->n_users) memcpy(px->users, cfg->socks_users, px->n_users * sizeof *px->users);
  if (px->n_socks) memcpy(px->socks, cfg->socks_listen, px->n_socks * sizeof *px->socks);
  for (size_t i = 0; i < cfg->n_http_listen; i++) {
    if (i == MAX_LISTENERS) {
      snprintf(err, errlen, "[Http] Listen: at most %zu addresses", MAX_LISTENERS);
      http_proxy_stop(px);
      return NULL;
    }
    if (listen_on(px, &cfg->http_listen[i], err, errlen) != 0) {
      http_proxy_stop(px);
      return NULL;
    }
  }
  return px;
}

static void on_listener_closed(uv_handle_t *h) {
  listener *l = h->data;
  http_proxy *px = l->px;
  free(l);
  px->n_listeners--;
  hp_conn_freed(px);
}

void http_proxy_set_pins(http_proxy *px, http_pin_fn fn, void *ctx) {
  px->pin = fn;
  px->pin_ctx = ctx;
}

void http_proxy_stop(http_proxy *px) {
  if (!px || px->stopping) return;
  px->stopping = true;
  bool any = px->n_listeners || !list_empty(&px->conns);
  for (size_t i = 0; i < px->n_listeners; i++) {
    listener *l = px->listeners[i];
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
  }
  /* Dials are cancelled and streams closed now, while the dialer and the transports exist. */
  list_node *it, *tmp;
  list_each_safe(it, tmp, &px->conns) hp_close_now(list_entry(it, hp_conn, link));
  if (!any) px_free(px);
}

/* ---- the PAC file ----------------------------------------------------------------------- */

/* "host:port" for a PAC directive: the listener's own address, or the address this client
 * reached us on when the listener is a wildcard (0.0.0.0, ::). */
static void pac_addr(const cfg_hostport *hp, const struct sockaddr_storage *local, char *out,
                     size_t cap) {
  bool wildcard = strcmp(hp->host, "0.0.0.0") == 0 || strcmp(hp->host, "::") == 0;
  if (wildcard && (local->ss_family == AF_INET || local->ss_family == AF_INET6)) {
    struct sockaddr_storage ss = *local;
    sockaddr_set_port((struct sockaddr *)&ss, hp->port);
    addr_format_sockaddr(&ss, out, cap);
  } else {
    addr_format_host(hp->host, hp->port, out, cap);
  }
}

size_t hp_pac(const http_proxy *px, const struct sockaddr_storage *local, char *out, size_t cap) {
  char http[300], socks[640] = "";
  uint16_t port = sockaddr_port((const struct sockaddr *)local);
  cfg_hostport self = {.port = port};
  snprintf(self.host, sizeof self.host, "::");
  pac_addr(&self, local, http, sizeof http); /* the address this request came to */
  if (px->n_socks) {
    char s[300];
    pac_addr(&px->socks[0], local, s, sizeof s);
    snprintf(socks, sizeof socks, "; SOCKS5 %s; SOCKS %s", s, s);
  }
  /* Everything goes through the tunnel: no DIRECT fallback, which would leak around it. */
  int n = snprintf(out, cap,
                   "function FindProxyForURL(url, host) {\n"
                   "  return \"PROXY %s%s\";\n"
                   "}\n",
                   http, socks);
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
