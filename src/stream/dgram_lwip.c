#include "stream/dgram_lwip.h"

#include <stdlib.h>
#include <string.h>

#include "device/ipstack.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"

#define DGRAM_MAX 65535

typedef struct {
  dgram_opener base;
  struct netif *nif;       /* the tunnel's, borrowed */
  uint8_t rbuf[DGRAM_MAX]; /* a chained reply made contiguous (one loop thread: shared) */
} lopener;

typedef struct {
  dgram_flow base;
  lopener *o;
  struct udp_pcb *pcb4, *pcb6; /* opened on first send of their family */
  dgram_recv_cb cb;
  void *ctx;
} lflow;

static const dgram_ops lwip_ops;

static void on_reply(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                     u16_t port) {
  lflow *f = arg;
  dial_dest from;
  memset(&from, 0, sizeof from);
  from.port = port;
  if (IP_IS_V6(addr)) {
    from.type = DIAL_DEST_IPV6;
    memcpy(from.ip, ip_2_ip6(addr)->addr, 16);
  } else {
    from.type = DIAL_DEST_IPV4;
    memcpy(from.ip, &ip_2_ip4(addr)->addr, 4);
  }
  if (p->len == p->tot_len) {
    f->cb(f->ctx, &from, p->payload, p->len);
  } else {
    size_t n = pbuf_copy_partial(p, f->o->rbuf, p->tot_len, 0); /* tot_len <= DGRAM_MAX */
    f->cb(f->ctx, &from, f->o->rbuf, n);
  }
  pbuf_free(p);
}

static struct udp_pcb *pcb_for(lflow *f, bool v6) {
  struct udp_pcb **slot = v6 ? &f->pcb6 : &f->pcb4;
  if (*slot) return *slot;
  struct udp_pcb *pcb = udp_new_ip_type(v6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
  if (!pcb) return NULL;
  if (udp_bind(pcb, v6 ? IP6_ADDR_ANY : IP4_ADDR_ANY, 0) != ERR_OK) {
    udp_remove(pcb);
    return NULL;
  }
  if (f->o->nif) udp_bind_netif(pcb, f->o->nif);
  udp_recv(pcb, on_reply, f);
  return *slot = pcb;
}

static int l_send(dgram_flow *base, const dial_dest *to, const uint8_t *data, size_t len) {
  lflow *f = (lflow *)base;
  if (to->type == DIAL_DEST_NAME || len > DGRAM_MAX) return -1;
  bool v6 = to->type == DIAL_DEST_IPV6;
  struct udp_pcb *pcb = pcb_for(f, v6);
  if (!pcb) return -1;
  struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
  if (!p) return -1;
  memcpy(p->payload, data, len);
  ip_addr_t dst;
  ipstack_ip_from_bytes(&dst, v6 ? AF_INET6 : AF_INET, to->ip);
  err_t e = udp_sendto(pcb, p, &dst, to->port);
  pbuf_free(p);
  return e == ERR_OK ? 0 : -1;
}

static void l_close(dgram_flow *base) {
  lflow *f = (lflow *)base;
  if (f->pcb4) udp_remove(f->pcb4);
  if (f->pcb6) udp_remove(f->pcb6);
  free(f);
}

static dgram_flow *l_open(dgram_opener *base, dgram_recv_cb cb, void *ctx) {
  lflow *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->base.ops = &lwip_ops;
  f->o = (lopener *)base;
  f->cb = cb;
  f->ctx = ctx;
  return &f->base;
}

static void l_destroy(dgram_opener *base) { free(base); }

static const dgram_ops lwip_ops = {l_open, l_send, l_close, l_destroy, "lwip"};

dgram_opener *dgram_lwip_new(struct netif *nif) {
  lopener *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->nif = nif;
  o->base.ops = &lwip_ops;
  return &o->base;
}
