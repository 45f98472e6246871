#include "device/ipstack.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"

#define OUT_BUF 65536

struct ipstack {
  struct netif netif;
  uv_timer_t timer;
  ipstack_output_fn out;
  void *ctx;
  uint8_t buf[OUT_BUF]; /* flattening area: lwIP hands out pbuf chains */
};

static bool g_lwip_ready;
static ipstack *g_stack;

/* RFC 1624 incremental update of a one's-complement checksum for a 16-bit word change. */
static uint16_t csum_adjust(uint16_t sum, uint16_t old, uint16_t new_) {
  uint32_t x = (uint16_t)~sum + (uint32_t)(uint16_t)~old + new_;
  x = (x & 0xFFFF) + (x >> 16);
  x = (x & 0xFFFF) + (x >> 16);
  return (uint16_t)~x;
}

static bool pcb_matches(const struct tcp_pcb *pcb, const uint8_t *ip, bool v6, uint16_t sport,
                        uint16_t dport) {
  if (pcb->local_port != sport || pcb->remote_port != dport) return false;
  if (v6)
    return IP_IS_V6(&pcb->remote_ip) && !memcmp(ip_2_ip6(&pcb->remote_ip)->addr, ip + 24, 16) &&
           !memcmp(ip_2_ip6(&pcb->local_ip)->addr, ip + 8, 16);
  return IP_IS_V4(&pcb->remote_ip) && !memcmp(&ip_2_ip4(&pcb->remote_ip)->addr, ip + 16, 4) &&
         !memcmp(&ip_2_ip4(&pcb->local_ip)->addr, ip + 12, 4);
}

/* lwIP sends pure ACKs with SEQ = SND.NXT. When the peer has shrunk its window below data we
 * already sent (a full receiver advertising ~1 KB), that SEQ lies beyond the window and Linux
 * drops the ACK as out of window, so the peer never learns its data arrived: both sides wait
 * forever. Like Linux's own tcp_acceptable_seq(), clamp a pure ACK's SEQ to the window's right
 * edge. Only freshly built empty ACKs are touched, never a segment lwIP keeps for retransmission. */
static void clamp_pure_ack(uint8_t *pkt, size_t len) {
  bool v6 = len >= 40 && pkt[0] >> 4 == 6;
  size_t hl = v6 ? 40 : (size_t)(pkt[0] & 15) * 4;
  if (v6 ? pkt[6] != 6 : (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 6)) return;
  if (len < hl + 20) return;
  uint8_t *tcp = pkt + hl;
  size_t thl = (size_t)(tcp[12] >> 4) * 4;
  if (tcp[13] != 0x10 || len != hl + thl) return; /* ACK only, no payload */
  uint16_t sport = (uint16_t)(tcp[0] << 8 | tcp[1]), dport = (uint16_t)(tcp[2] << 8 | tcp[3]);
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
    if (!pcb_matches(pcb, pkt, v6, sport, dport)) continue;
    uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
    uint32_t edge = pcb->lastack + (uint32_t)pcb->snd_wnd;
    if ((int32_t)(seq - edge) <= 0) return;
    uint16_t sum = (uint16_t)(tcp[16] << 8 | tcp[17]);
    sum = csum_adjust(sum, (uint16_t)(seq >> 16), (uint16_t)(edge >> 16));
    sum = csum_adjust(sum, (uint16_t)seq, (uint16_t)edge);
    for (int i = 0; i < 4; i++) tcp[4 + i] = (uint8_t)(edge >> (24 - 8 * i));
    tcp[16] = (uint8_t)(sum >> 8);
    tcp[17] = (uint8_t)sum;
    return;
  }
}

static err_t emit(struct netif *nif, struct pbuf *p) {
  ipstack *s = nif->state;
  uint8_t *data = p->payload;
  if (p->next) {
    pbuf_copy_partial(p, s->buf, p->tot_len, 0);
    data = s->buf;
  }
  if (p->tot_len <= 120) clamp_pure_ack(data, p->tot_len); /* pure ACKs are small */
  s->out(s->ctx, data, p->tot_len);
  return ERR_OK;
}

static err_t output4(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst) {
  return emit(nif, p);
}

static err_t output6(struct netif *nif, struct pbuf *p, const ip6_addr_t *dst) {
  return emit(nif, p);
}

static err_t netif_setup(struct netif *nif) {
  nif->name[0] = 'w';
  nif->name[1] = 'g';
  nif->output = output4;
  nif->output_ip6 = output6;
  nif->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

/* Runs lwIP's due timers, then sleeps until the next one. */
static void on_timer(uv_timer_t *t) {
  sys_check_timeouts();
  u32_t next = sys_timeouts_sleeptime();
  if (next == SYS_TIMEOUTS_SLEEPTIME_INFINITE) next = 1000;
  if (next < 1) next = 1;
  uv_timer_start(t, on_timer, next, 0);
}

static void add_v4(struct netif *nif, const cfg_cidr *a, bool *have4) {
  ip4_addr_t ip, mask, gw;
  memcpy(&ip.addr, a->addr, 4);
  uint32_t m = a->prefix ? htonl(0xFFFFFFFFu << (32 - a->prefix)) : 0;
  mask.addr = m;
  ip4_addr_set_zero(&gw);
  if (!*have4) netif_set_addr(nif, &ip, &mask, &gw);
  *have4 = true;
}

static int add_v6(struct netif *nif, const cfg_cidr *a) {
  ip6_addr_t ip;
  memcpy(ip.addr, a->addr, 16);
  ip6_addr_clear_zone(&ip);
  s8_t idx;
  if (netif_add_ip6_address(nif, &ip, &idx) != ERR_OK) return -1;
  netif_ip6_addr_set_state(nif, idx, IP6_ADDR_PREFERRED);
  return 0;
}

ipstack *ipstack_create(uv_loop_t *loop, const cfg_cidr *addrs, size_t n, uint32_t mtu,
                        ipstack_output_fn out, void *ctx, char *err, size_t errlen) {
  if (g_stack) {
    snprintf(err, errlen, "only one userspace IP stack per process");
    return NULL;
  }
  ipstack *s = calloc(1, sizeof *s);
  if (!s) return snprintf(err, errlen, "out of memory"), NULL;
  if (!g_lwip_ready) lwip_init(), g_lwip_ready = true;
  s->out = out;
  s->ctx = ctx;
  netif_add_noaddr(&s->netif, s, netif_setup, ip_input);
  s->netif.mtu = (u16_t)(mtu > 65535 ? 65535 : mtu);
  s->netif.mtu6 = s->netif.mtu;
  bool have4 = false;
  for (size_t i = 0; i < n; i++) {
    if (addrs[i].family == AF_INET) {
      add_v4(&s->netif, &addrs[i], &have4);
    } else if (add_v6(&s->netif, &addrs[i]) != 0) {
      snprintf(err, errlen, "too many IPv6 addresses (lwIP holds %d)", LWIP_IPV6_NUM_ADDRESSES);
      netif_remove(&s->netif);
      free(s);
      return NULL;
    }
  }
  netif_set_default(&s->netif);
  netif_set_up(&s->netif);
  netif_set_link_up(&s->netif);
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_timer, 10, 0);
  g_stack = s;
  return s;
}

int ipstack_input(ipstack *s, const uint8_t *pkt, size_t len) {
  if (len == 0 || len > 65535) return -1;
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
  if (!p) return -1;
  pbuf_take(p, pkt, (u16_t)len);
  if (s->netif.input(p, &s->netif) != ERR_OK) {
    pbuf_free(p);
    return -1;
  }
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  ipstack *s = h->data;
  free(s);
}

void ipstack_destroy(ipstack *s) {
  if (!s) return;
  netif_remove(&s->netif);
  g_stack = NULL;
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

struct netif *ipstack_netif(ipstack *s) { return &s->netif; }

void ipstack_ip_from_bytes(ip_addr_t *out, int family, const uint8_t *bytes) {
  if (family == AF_INET6) {
    IP_ADDR6(out, 0, 0, 0, 0);
    memcpy(ip_2_ip6(out)->addr, bytes, 16);
    ip6_addr_clear_zone(ip_2_ip6(out));
  } else {
    IP_ADDR4(out, bytes[0], bytes[1], bytes[2], bytes[3]);
  }
}
