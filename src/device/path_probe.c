/* MTU black hole detection on the client (path_probe.h). */
#include "device/path_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "device/ipstack.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/raw.h"
#include "lwip/tcp.h"
#include "util/log.h"

#define TICK_MS 500
#define ROUND_TICKS 2    /* a round of probes each second */
#define ROUNDS 3         /* then one more second for the last answers */
#define REPROBE_MS 60000 /* at most one probe per minute */
#define SMALL_SIZE 84    /* IP bytes, as `ping` sends by default */
#define MIN_SIZE 576
#define MAX_SIZES 12
#define IP_ICMP_HEADER 28 /* IPv4 20 + ICMP echo 8 */

struct path_probe {
  uv_timer_t timer;
  tunnel *tun;
  struct raw_pcb *pcb;
  ip_addr_t dst;
  uint8_t dst_bytes[4];
  char dst_text[16];
  uint64_t last_ms; /* when the last probe started; 0 = never */
  int tick;         /* in the current probe; -1 = idle */
  uint16_t id;      /* ICMP identifier of the current probe */
  size_t n;         /* sizes[0] is the small probe, sizes[1] the full MTU */
  uint16_t sizes[MAX_SIZES];
  bool answered[MAX_SIZES];
  bool told_silent;
};

static void ladder(path_probe *p, uint16_t mtu) {
  static const uint16_t steps[] = {1400, 1360, 1320, 1280, 1240, 1200, 1100, 1000, 800, MIN_SIZE};
  p->n = 0;
  p->sizes[p->n++] = SMALL_SIZE;
  p->sizes[p->n++] = mtu;
  for (size_t i = 0; i < sizeof steps / sizeof *steps && p->n < MAX_SIZES; i++)
    if (steps[i] < mtu) p->sizes[p->n++] = steps[i];
}

static void send_echo(path_probe *p, size_t idx, int round) {
  size_t icmp_len = (size_t)p->sizes[idx] - 20;
  struct pbuf *b = pbuf_alloc(PBUF_IP, (u16_t)icmp_len, PBUF_RAM);
  if (!b) return;
  uint8_t *d = b->payload; /* PBUF_RAM: one contiguous buffer */
  memset(d, 0, icmp_len);
  d[0] = 8; /* echo request */
  d[4] = (uint8_t)(p->id >> 8);
  d[5] = (uint8_t)p->id;
  uint16_t seq = (uint16_t)(round * MAX_SIZES + (int)idx);
  d[6] = (uint8_t)(seq >> 8);
  d[7] = (uint8_t)seq;
  for (size_t i = 8; i < icmp_len; i++) d[i] = (uint8_t)i;
  uint16_t sum = inet_chksum(d, (u16_t)icmp_len);
  memcpy(d + 2, &sum, 2); /* already in network order */
  raw_sendto(p->pcb, b, &p->dst);
  pbuf_free(b);
}

static u8_t on_icmp(void *arg, struct raw_pcb *pcb, struct pbuf *b, const ip_addr_t *from) {
  (void)pcb;
  path_probe *p = arg;
  uint8_t h[28];
  if (p->tick < 0 || pbuf_copy_partial(b, h, sizeof h, 0) != sizeof h) return 0;
  size_t ihl = (size_t)(h[0] & 15) * 4;
  if (h[0] >> 4 != 4 || ihl != 20 || !ip_addr_cmp(from, &p->dst)) return 0;
  const uint8_t *icmp = h + 20;
  uint16_t id = (uint16_t)(icmp[4] << 8 | icmp[5]), seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
  if (icmp[0] != 0 || id != p->id) return 0; /* not an echo reply of ours: lwIP goes on */
  size_t idx = seq % MAX_SIZES;
  if (idx < p->n && b->tot_len == p->sizes[idx]) p->answered[idx] = true;
  pbuf_free(b);
  return 1;
}

static void conclude(path_probe *p) {
  p->tick = -1;
  struct netif *nif = ipstack_netif(tunnel_ipstack(p->tun));
  char full[8], best[8];
  snprintf(full, sizeof full, "%u", p->sizes[1]);
  if (!p->answered[0] && !p->answered[1]) {
    if (!p->told_silent)
      LOG_I("tunnel", "path_probe_unanswered", "server", p->dst_text, "msg",
            "the server does not answer ping on its tunnel address: an MTU black hole on the "
            "path cannot be detected (if bulk transfers stall, set a lower MTU in [Interface])",
            NULL);
    p->told_silent = true;
    return;
  }
  if (p->answered[1]) {
    LOG_D("tunnel", "path_mtu_ok", "server", p->dst_text, "size", full, NULL);
    return;
  }
  uint16_t ok = 0;
  for (size_t i = 2; i < p->n; i++)
    if (p->answered[i] && p->sizes[i] > ok) ok = p->sizes[i];
  char msg[400];
  if (!ok) ok = MIN_SIZE;
  snprintf(best, sizeof best, "%u", ok);
  snprintf(msg, sizeof msg,
           "packets of %u bytes through the tunnel get no answer while small ones do: the path "
           "drops large datagrams (an MTU black hole). Lowered the tunnel MTU to %u for now; "
           "set MTU = %u in [Interface] to keep it",
           p->sizes[1], ok, ok);
  LOG_W("tunnel", "mtu_black_hole", "server", p->dst_text, "mtu", full, "works", best, "msg", msg,
        NULL);
  if (nif->mtu > ok) nif->mtu = ok;
  if (nif->mtu6 > ok) nif->mtu6 = ok;
}

/* A connection whose data has timed out twice in a row while the tunnel is up: the sign of a
 * path that loses what is large (a healthy path, even a lossy one, rarely gets there), and the
 * only time probing is worth its packets. */
static bool tcp_stalled(void) {
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
    if (pcb->nrtx >= 2 && pcb->unacked) return true;
  return false;
}

static void on_tick(uv_timer_t *t) {
  path_probe *p = t->data;
  bool up = tunnel_route_is_up(p->tun, AF_INET, p->dst_bytes);
  uint64_t now = uv_now(t->loop);
  if (p->tick < 0) {
    if (!up || (p->last_ms && now - p->last_ms < REPROBE_MS) || !tcp_stalled()) return;
    p->last_ms = now;
    p->tick = 0;
    p->id = (uint16_t)(now * 2654435761u >> 16);
    memset(p->answered, 0, sizeof p->answered);
    ladder(p, ipstack_netif(tunnel_ipstack(p->tun))->mtu);
  }
  if (p->tick % ROUND_TICKS == 0 && p->tick < ROUNDS * ROUND_TICKS) {
    for (size_t i = 0; i < p->n; i++)
      if (!p->answered[i]) send_echo(p, i, p->tick / ROUND_TICKS);
  }
  p->tick++;
  if (p->answered[1] || p->tick > ROUNDS * ROUND_TICKS) conclude(p);
}

path_probe *path_probe_start(uv_loop_t *loop, tunnel *t, const app_config *cfg) {
  cfg_ip server;
  uint16_t port;
  if (!cfg->n_peers || !config_quic_server(cfg, &cfg->peers[0], &server, &port) ||
      server.family != AF_INET)
    return NULL;
  path_probe *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->tun = t;
  p->tick = -1;
  memcpy(p->dst_bytes, server.addr, 4);
  ipstack_ip_from_bytes(&p->dst, AF_INET, server.addr);
  snprintf(p->dst_text, sizeof p->dst_text, "%u.%u.%u.%u", server.addr[0], server.addr[1],
           server.addr[2], server.addr[3]);
  p->pcb = raw_new_ip_type(IPADDR_TYPE_V4, IP_PROTO_ICMP);
  if (!p->pcb) return free(p), NULL;
  raw_bind_netif(p->pcb, ipstack_netif(tunnel_ipstack(t))); /* its own tunnel, of several */
  raw_recv(p->pcb, on_icmp, p);
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, on_tick, TICK_MS, TICK_MS);
  uv_unref((uv_handle_t *)&p->timer);
  return p;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void path_probe_stop(path_probe *p) {
  if (!p) return;
  raw_remove(p->pcb);
  uv_close((uv_handle_t *)&p->timer, on_closed);
}
