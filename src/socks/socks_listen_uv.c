#include "socks/socks_listen_uv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/stream_uv.h"

struct socks_uv_listener {
  uv_tcp_t tcp;
  uv_loop_t *loop;
  socks_service *svc;
  bool closing;
};

static void on_connection(uv_stream_t *server, int status) {
  socks_uv_listener *l = server->data;
  if (status < 0 || l->closing) return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  if (!tcp || uv_tcp_init(l->loop, tcp) != 0) {
    free(tcp);
    return;
  }
  stream *client = NULL;
  if (uv_accept(server, (uv_stream_t *)tcp) != 0 || !(client = stream_uv_wrap(tcp))) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    return;
  }
  uv_tcp_nodelay(tcp, 1);
  socks_origin o;
  memset(&o, 0, sizeof o);
  int ll = sizeof o.local, pl = sizeof o.peer;
  uv_tcp_getsockname(tcp, (struct sockaddr *)&o.local, &ll);
  uv_tcp_getpeername(tcp, (struct sockaddr *)&o.peer, &pl);
  socks_session_start(l->svc, client, &o);
}

socks_uv_listener *socks_uv_listen(uv_loop_t *loop, socks_service *svc, const cfg_hostport *hp,
                                   char *err, size_t errlen) {
  char a[300];
  cfg_format_hostport(hp, a, sizeof a);
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':') ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
                                 : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  if (rc) return snprintf(err, errlen, "SOCKS listener %s: %s", a, uv_strerror(rc)), NULL;
  socks_uv_listener *l = calloc(1, sizeof *l);
  if (!l) return snprintf(err, errlen, "out of memory"), NULL;
  l->loop = loop;
  l->svc = svc;
  rc = uv_tcp_init(loop, &l->tcp);
  if (rc) {
    free(l);
    return snprintf(err, errlen, "SOCKS listener %s: %s", a, uv_strerror(rc)), NULL;
  }
  l->tcp.data = l;
  rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
  if (rc) {
    snprintf(err, errlen, "cannot listen for SOCKS on %s: %s (is another proxy running there?)", a,
             uv_strerror(rc));
    socks_uv_listener_close(l);
    return NULL;
  }
  return l;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void socks_uv_listener_close(socks_uv_listener *l) {
  if (!l || l->closing) return;
  l->closing = true;
  uv_close((uv_handle_t *)&l->tcp, on_closed);
}
