#include "socks/udp_assoc.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/ipstack.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"
#include "util/log.h"

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
  struct udp_pcb *pcb4, *pcb6;
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
  if (a->sa_family != b->ss_family) return false;
  if (a->sa_family == AF_INET)
    return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                   &((const struct sockaddr_in *)b)->sin_addr, 4);
  return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                 &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

static uint16_t port_of(const struct sockaddr *a) {
  return ntohs(a->sa_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                       : ((const struct sockaddr_in6 *)a)->sin6_port);
}

static void send_to_tunnel(struct udp_assoc *a, int family, const uint8_t *addr, uint16_t port,
                           const uint8_t *data, size_t len) {
  struct udp_pcb *pcb = family == AF_INET6 ? a->pcb6 : a->pcb4;
  struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
  if (!pcb || !p) {
    a->stats.dropped++;
    if (p) pbuf_free(p);
    return;
  }
  memcpy(p->payload, data, len);
  ip_addr_t dst;
  ipstack_ip_from_bytes(&dst, family, addr);
  if (udp_sendto(pcb, p, &dst, port) == ERR_OK) a->stats.to_tunnel++;
  else a->stats.dropped++;
  pbuf_free(p);
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
    memcpy(&a->client, from, from->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                        : sizeof(struct sockaddr_in6));
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
  if (dst.type == SOCKS_ADDR_DOMAIN) send_by_name(a, &dst, data, len);
  else send_to_tunnel(a, dst.type == SOCKS_ADDR_IPV4 ? AF_INET : AF_INET6, dst.ip, dst.port, data, len);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf) {
  struct udp_assoc *a = h->data;
  *buf = uv_buf_init((char *)a->rbuf, sizeof a->rbuf);
}

/* A reply from the tunnel: wrap it with the SOCKS header naming its source. */
static void on_tunnel_dgram(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                            u16_t port) {
  struct udp_assoc *a = arg;
  if (!a->client_port_known || a->stopping) {
    pbuf_free(p);
    return;
  }
  socks_addr src = {.port = port};
  if (IP_IS_V6(addr)) {
    src.type = SOCKS_ADDR_IPV6;
    memcpy(src.ip, ip_2_ip6(addr)->addr, 16);
  } else {
    src.type = SOCKS_ADDR_IPV4;
    memcpy(src.ip, &ip_2_ip4(addr)->addr, 4);
  }
  size_t hdr = socks5_build_udp_header(&src, a->wbuf, sizeof a->wbuf);
  size_t len = pbuf_copy_partial(p, a->wbuf + hdr, p->tot_len, 0); /* tot_len < wbuf - 262 */
  pbuf_free(p);
  uv_buf_t b = uv_buf_init((char *)a->wbuf, (unsigned)(hdr + len));
  if (uv_udp_try_send(&a->sock, &b, 1, (struct sockaddr *)&a->client) >= 0) a->stats.from_tunnel++;
  else a->stats.dropped++;
}

static struct udp_pcb *open_pcb(struct udp_assoc *a, u8_t type) {
  struct udp_pcb *pcb = udp_new_ip_type(type);
  if (!pcb) return NULL;
  udp_bind(pcb, type == IPADDR_TYPE_V6 ? IP6_ADDR_ANY : IP4_ADDR_ANY, 0);
  udp_recv(pcb, on_tunnel_dgram, a);
  return pcb;
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

udp_assoc *udp_assoc_start(uv_loop_t *loop, resolver *res, const struct sockaddr *local,
                           const struct sockaddr *client, const socks_addr *hint, socks_addr *bnd,
                           char *err, size_t errlen) {
  struct udp_assoc *a = calloc(1, sizeof *a);
  if (!a) return snprintf(err, errlen, "out of memory"), NULL;
  a->res = res;
  memcpy(&a->client, client,
         client->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
  /* RFC 1928: a non-zero DST.PORT names the port the client will send from. */
  if (hint && hint->port) {
    if (a->client.ss_family == AF_INET) ((struct sockaddr_in *)&a->client)->sin_port = htons(hint->port);
    else ((struct sockaddr_in6 *)&a->client)->sin6_port = htons(hint->port);
    a->client_port_known = true;
  }
  struct sockaddr_storage bind_addr;
  memcpy(&bind_addr, local,
         local->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
  if (bind_addr.ss_family == AF_INET) ((struct sockaddr_in *)&bind_addr)->sin_port = 0;
  else ((struct sockaddr_in6 *)&bind_addr)->sin6_port = 0;
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
  a->pcb4 = open_pcb(a, IPADDR_TYPE_V4);
  a->pcb6 = open_pcb(a, IPADDR_TYPE_V6);
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
  if (a->pcb4) udp_remove(a->pcb4);
  if (a->pcb6) udp_remove(a->pcb6);
  uv_close((uv_handle_t *)&a->sock, on_closed);
}

void udp_assoc_get_stats(const udp_assoc *a, udp_assoc_stats *out) { *out = a->stats; }
