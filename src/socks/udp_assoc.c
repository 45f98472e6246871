#include "socks/udp_assoc.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/sockaddr.h"

#define DGRAM_MAX 65535
#define PENDING_NAMES 8 /* datagrams waiting for a name to resolve */

typedef struct pending_dgram {
  struct udp_assoc *a;
  resolver_query *q;
  uint16_t port;
  uint8_t *data;
  size_t len;
} pending_dgram;

struct udp_assoc {
  uv_udp_t sock;
  dgram_flow *flow; /* owned: the tunnel side (lwIP or QUIC, chosen at start) */
  resolver *res;
  struct sockaddr_storage client; /* IP fixed at start; port learned from the first datagram */
  bool client_port_known;
  pending_dgram pending[PENDING_NAMES];
  udp_assoc_stats stats;
  bool stopping;
  uint8_t rbuf[DGRAM_MAX];
  uint8_t wbuf[DGRAM_MAX + 262];
};

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b) {
  return sockaddr_same_host(a, (const struct sockaddr *)b);
}

static uint16_t port_of(const struct sockaddr *a) { return sockaddr_port(a); }

static void send_to_tunnel(struct udp_assoc *a, int family, const uint8_t *addr, uint16_t port,
                           const uint8_t *data, size_t len) {
  dial_dest to;
  memset(&to, 0, sizeof to);
  to.type = family == AF_INET6 ? DIAL_DEST_IPV6 : DIAL_DEST_IPV4;
  memcpy(to.ip, addr, family == AF_INET6 ? 16 : 4);
  to.port = port;
  if (dgram_send(a->flow, &to, data, len) == 0)
    a->stats.to_tunnel++;
  else
    a->stats.dropped++;
}

static void on_name(void *ctx, int status, const resolver_result *res) {
  pending_dgram *d = ctx;
  d->q = NULL;
  if (status == DNS_OK && res->n)
    send_to_tunnel(d->a, res->addrs[0].family, res->addrs[0].addr, d->port, d->data, d->len);
  else
    d->a->stats.dropped++;
  free(d->data);
  d->data = NULL;
}

static void send_by_name(struct udp_assoc *a, const socks_addr *dst, const uint8_t *data,
                         size_t len) {
  for (int i = 0; i < PENDING_NAMES; i++) {
    pending_dgram *d = &a->pending[i];
    if (d->data) continue;
    d->data = malloc(len ? len : 1);
    if (!d->data) break;
    memcpy(d->data, data, len);
    d->len = len;
    d->port = dst->port;
    d->a = a;
    d->q = resolver_lookup(a->res, dst->domain, on_name, d);
    return;
  }
  a->stats.dropped++; /* too many names in flight: UDP may drop */
}

static void on_client_dgram(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                            const struct sockaddr *from, unsigned flags) {
  struct udp_assoc *a = h->data;
  if (n <= 0 || !from || (flags & UV_UDP_PARTIAL) || a->stopping) return;
  /* Only the client that opened the association may use it. */
  if (!same_ip(from, &a->client)) return;
  if (a->client_port_known && port_of(from) != port_of((struct sockaddr *)&a->client)) return;
  if (!a->client_port_known) {
    memcpy(&a->client, from, sockaddr_len(from));
    a->client_port_known = true;
  }
  uint8_t frag;
  socks_addr dst;
  size_t hdr;
  if (socks5_parse_udp((const uint8_t *)buf->base, (size_t)n, &frag, &dst, &hdr) != SOCKS_DONE ||
      frag != 0) {
    a->stats.dropped++;
    return;
  }
  const uint8_t *data = (const uint8_t *)buf->base + hdr;
  size_t len = (size_t)n - hdr;
  if (dst.type == SOCKS_ADDR_DOMAIN)
    send_by_name(a, &dst, data, len);
  else
    send_to_tunnel(a, dst.type == SOCKS_ADDR_IPV4 ? AF_INET : AF_INET6, dst.ip, dst.port, data,
                   len);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf) {
  struct udp_assoc *a = h->data;
  *buf = uv_buf_init((char *)a->rbuf, sizeof a->rbuf);
}

/* A reply from the tunnel: wrap it with the SOCKS header naming its source. */
static void on_tunnel_dgram(void *ctx, const dial_dest *from, const uint8_t *data, size_t len) {
  struct udp_assoc *a = ctx;
  if (!a->client_port_known || a->stopping || from->type == DIAL_DEST_NAME) return;
  socks_addr src = {.port = from->port};
  src.type = from->type == DIAL_DEST_IPV6 ? SOCKS_ADDR_IPV6 : SOCKS_ADDR_IPV4;
  memcpy(src.ip, from->ip, from->type == DIAL_DEST_IPV6 ? 16 : 4);
  size_t hdr = socks5_build_udp_header(&src, a->wbuf, sizeof a->wbuf);
  if (!hdr || len > sizeof a->wbuf - hdr) {
    a->stats.dropped++;
    return;
  }
  memcpy(a->wbuf + hdr, data, len);
  uv_buf_t b = uv_buf_init((char *)a->wbuf, (unsigned)(hdr + len));
  if (uv_udp_try_send(&a->sock, &b, 1, (struct sockaddr *)&a->client) >= 0)
    a->stats.from_tunnel++;
  else
    a->stats.dropped++;
}

static void fill_bnd(struct udp_assoc *a, socks_addr *bnd) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(bnd, 0, sizeof *bnd);
  if (uv_udp_getsockname(&a->sock, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    bnd->type = SOCKS_ADDR_IPV4;
    memcpy(bnd->ip, &((struct sockaddr_in *)&ss)->sin_addr, 4);
  } else {
    bnd->type = SOCKS_ADDR_IPV6;
    memcpy(bnd->ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
  }
  bnd->port = port_of((struct sockaddr *)&ss);
}

udp_assoc *udp_assoc_start(uv_loop_t *loop, resolver *res, dgram_opener *dg,
                           const struct sockaddr *local, const struct sockaddr *client,
                           const socks_addr *hint, socks_addr *bnd, char *err, size_t errlen) {
  struct udp_assoc *a = calloc(1, sizeof *a);
  if (!a) return snprintf(err, errlen, "out of memory"), NULL;
  a->res = res;
  memcpy(&a->client, client, sockaddr_len(client));
  /* RFC 1928: a non-zero DST.PORT names the port the client will send from. */
  if (hint && hint->port) {
    sockaddr_set_port((struct sockaddr *)&a->client, hint->port);
    a->client_port_known = true;
  }
  struct sockaddr_storage bind_addr;
  memcpy(&bind_addr, local, sockaddr_len(local));
  sockaddr_set_port((struct sockaddr *)&bind_addr, 0);
  int rc = uv_udp_init(loop, &a->sock);
  if (!rc) {
    a->sock.data = a;
    rc = uv_udp_bind(&a->sock, (struct sockaddr *)&bind_addr, 0);
    if (!rc) rc = uv_udp_recv_start(&a->sock, on_alloc, on_client_dgram);
    if (rc) {
      snprintf(err, errlen, "cannot open the UDP relay socket: %s", uv_strerror(rc));
      udp_assoc_stop(a);
      return NULL;
    }
  } else {
    free(a);
    return snprintf(err, errlen, "%s", uv_strerror(rc)), NULL;
  }
  a->flow = dgram_open(dg, on_tunnel_dgram, a);
  if (!a->flow) {
    snprintf(err, errlen, "no UDP flow through the tunnel available");
    udp_assoc_stop(a);
    return NULL;
  }
  LOG_D("socks", "udp_flow", "transport", dgram_flow_name(a->flow), NULL);
  fill_bnd(a, bnd);
  return a;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void udp_assoc_stop(udp_assoc *a) {
  if (!a || a->stopping) return;
  a->stopping = true;
  for (int i = 0; i < PENDING_NAMES; i++) {
    if (a->pending[i].q) resolver_cancel(a->pending[i].q);
    free(a->pending[i].data);
  }
  dgram_close(a->flow);
  a->flow = NULL;
  uv_close((uv_handle_t *)&a->sock, on_closed);
}

void udp_assoc_get_stats(const udp_assoc *a, udp_assoc_stats *out) { *out = a->stats; }
