#include "device/ipstack.h"
#include "device/tcp_bw_floor.h"
#include "device/tcp_recovery.h"

#include <arpa/inet.h>
#include <stddef.h>
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
#include "util/loop_turn.h"
#include "util/bytes.h"
#include "util/inet_sum.h"
#include "util/log.h"

#define OUT_BUF 65536
#define ACK_SLOTS 64   /* connections with a held ACK per loop turn; more flush early */
#define ACK_MAX 128    /* a pure ACK: IPv6 + TCP header + SACK blocks fit */
#define ACK_STRETCH 16 /* MSS-sized segments one held ACK may cover before it must go */

/* A pure ACK held until the end of the loop turn (see hold_ack). */
typedef struct {
  uint8_t key[36]; /* addresses and ports, as in the packet */
  uint8_t klen;
  uint32_t first_ack; /* ACK number of the first ACK held this turn */
  uint16_t len;
  uint8_t pkt[ACK_MAX];
} held_ack;

struct ipstack {
  struct netif netif;
  uv_timer_t timer;
  turn_hook flush; /* end of a loop turn: the held ACKs go out */
  ipstack_output_fn out;
  void *ctx;
  size_t n_held;
  bool trust_forced, trust_peers; /* inbound checksums not verified (ipstack_trust_*) */
  /* outbound IPv4 header, TCP and UDP checksums left out (ipstack_omit_checksums) */
  bool omit_sums;
  ipstack_congestion_fn congested; /* the tunnel's verdict for lwIP's senders, NULL: none */
  void *congested_ctx;
  held_ack held[ACK_SLOTS];
  uint8_t buf[OUT_BUF]; /* flattening area: lwIP hands out pbuf chains */
};

static bool g_lwip_ready;
/* lwIP is one per process (global PCB lists and timers); each stack is one netif on it. The
 * first stack's netif is lwIP's default; every PCB our code opens is bound to its stack's netif,
 * so several tunnels (a client with several servers) never mix. */

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
 * edge. Only freshly built empty ACKs are touched, never a segment lwIP keeps for retransmission.
 */
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
    uint32_t seq = be32_load(tcp + 4);
    uint32_t edge = pcb->lastack + (uint32_t)pcb->snd_wnd;
    if ((int32_t)(seq - edge) <= 0) return;
    uint16_t sum = (uint16_t)(tcp[16] << 8 | tcp[17]);
    sum = inet_sum_adjust(sum, (uint16_t)(seq >> 16), (uint16_t)(edge >> 16));
    sum = inet_sum_adjust(sum, (uint16_t)seq, (uint16_t)edge);
    for (int i = 0; i < 4; i++) tcp[4 + i] = (uint8_t)(edge >> (24 - 8 * i));
    tcp[16] = (uint8_t)(sum >> 8);
    tcp[17] = (uint8_t)sum;
    return;
  }
}

/* Where a TCP packet's 4-tuple is and how long it is; 0 if p is not TCP. The TCP header
 * starts at *tcp_off. */
static size_t tcp_key(const uint8_t *pkt, size_t len, size_t *tcp_off, const uint8_t **key) {
  if (len >= 40 && pkt[0] >> 4 == 6 && pkt[6] == 6) {
    *tcp_off = 40;
    *key = pkt + 8; /* source and destination address, then (in the TCP header) the ports */
  } else if (len >= 20 && pkt[0] >> 4 == 4 && pkt[9] == 6) {
    *tcp_off = (size_t)(pkt[0] & 15) * 4;
    *key = pkt + 12;
  } else {
    return 0;
  }
  if (len < *tcp_off + 20) return 0;
  return pkt[0] >> 4 == 6 ? 32 : 8;
}

static held_ack *find_held(ipstack *s, const uint8_t *key, size_t klen, const uint8_t *ports) {
  for (size_t i = 0; i < s->n_held; i++) {
    held_ack *h = &s->held[i];
    if (h->klen == klen + 4 && !memcmp(h->key, key, klen) && !memcmp(h->key + klen, ports, 4))
      return h;
  }
  return NULL;
}

static void drop_held(ipstack *s, held_ack *h) {
  *h = s->held[--s->n_held]; /* order between connections does not matter */
}

static void flush_held(ipstack *s) {
  for (size_t i = 0; i < s->n_held; i++) s->out(s->ctx, s->held[i].pkt, s->held[i].len);
  s->n_held = 0;
}

/* Pure ACKs are coalesced per connection and loop turn. lwIP acknowledges every second segment
 * and again on every window update, so a download of 1340-byte segments cost half a datagram
 * (sealed, sent, and opened and routed by the server) per segment. All datagrams one recvmmsg
 * brings in are processed before the end of the loop turn, so holding a connection's ACK until
 * then, and letting a newer one replace it (its ACK number and window are at least as new),
 * leaves one ACK per connection per turn. Stretch ACKs are what GRO receivers send too; one held
 * ACK covers at most ACK_STRETCH segments so a sender that grows its window per ACK (lwIP on our
 * server: 2 MSS per ACK in slow start) still opens quickly. Not held: ACKs with SACK blocks
 * (out-of-order data: the sender's loss recovery counts duplicate ACKs); any other segment of
 * the connection (data, FIN, RST) carries the same information, so the held ACK is dropped. */
static bool hold_ack(ipstack *s, const uint8_t *pkt, size_t len) {
  size_t off;
  const uint8_t *key;
  size_t klen = tcp_key(pkt, len, &off, &key);
  if (!klen) return false;
  const uint8_t *tcp = pkt + off;
  size_t thl = (size_t)(tcp[12] >> 4) * 4;
  bool pure = tcp[13] == 0x10 && len == off + thl && len <= ACK_MAX;
  bool sack = false;
  for (size_t o = 20; pure && o < thl && off + o < len;) { /* options: look for SACK (5) */
    uint8_t kind = tcp[o];
    if (kind == 0) break;
    if (kind == 1) {
      o++;
      continue;
    }
    if (o + 1 >= thl || tcp[o + 1] < 2) break;
    if (kind == 5) sack = true;
    o += tcp[o + 1];
  }
  held_ack *h = s->n_held ? find_held(s, key, klen, tcp) : NULL;
  uint32_t ack = be32_load(tcp + 8);
  if (!pure || sack) {
    if (h) drop_held(s, h);
    return false;
  }
  if (h) {
    if ((uint32_t)(ack - h->first_ack) >= ACK_STRETCH * TCP_MSS) {
      drop_held(s, h); /* covers enough: this one goes now */
      return false;
    }
  } else {
    if (s->n_held == ACK_SLOTS) flush_held(s);
    h = &s->held[s->n_held++];
    memcpy(h->key, key, klen);
    memcpy(h->key + klen, tcp, 4);
    h->klen = (uint8_t)(klen + 4);
    h->first_ack = ack;
  }
  memcpy(h->pkt, pkt, len);
  h->len = (uint16_t)len;
  loop_turn_want(&s->flush);
  return true;
}

static err_t emit(struct netif *nif, struct pbuf *p) {
  ipstack *s = nif->state;
  uint8_t *data = p->payload;
  if (p->next) {
    pbuf_copy_partial(p, s->buf, p->tot_len, 0);
    data = s->buf;
  }
  if (p->tot_len <= 120) clamp_pure_ack(data, p->tot_len); /* pure ACKs are small */
  if (hold_ack(s, data, p->tot_len)) return ERR_OK;
  s->out(s->ctx, data, p->tot_len);
  return ERR_OK;
}

/* End of a loop turn: every datagram of the turn is in, and the LOOP_TURN_DELIVER phase has
 * handed what arrived to the applications (which reopens windows: their updates join the held
 * ACKs). */
static void on_turn_end(turn_hook *h) {
  ipstack *s = (ipstack *)((char *)h - offsetof(ipstack, flush));
  flush_held(s);
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

/* lwIP drops a connection that has been in LAST_ACK for 2 MSL without hearing from the peer (4 s
 * with our short TIME_WAIT, lwipopts.h), even while it still has data queued behind its FIN: a
 * stream whose end was being sent when the path went quiet for a few seconds would lose its tail.
 * Such connections end as any other does, when lwIP's retransmissions give up (TCP_MAXRTX), as
 * on Linux. */
static void keep_last_ack(void) {
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
    if (pcb->state == LAST_ACK) pcb->tmr = tcp_ticks;
}

/* lwIP 2.1's persist timer splits the head of the send queue to the peer's window cast to 16
 * bits (tcp_slowtmr: tcp_split_unsent_seg(pcb, (u16_t)pcb->snd_wnd)). With window scaling the
 * window can be an exact multiple of 64 KiB, the cast gives 0, and lwIP asserts ("Can't split
 * segment into length 0") and the process aborts. Persist can still be ticking with such a
 * window: 2.1 stops it only when tcp_output finds the head fitting, not on a window update
 * (seen after a NAT rebinding mid-transfer). One byte less of window changes nothing else. */
static void fix_persist_window(struct tcp_pcb *pcb) {
  if (pcb->persist_backoff > 0 && pcb->snd_wnd != 0 && (u16_t)pcb->snd_wnd == 0) pcb->snd_wnd--;
}

/* lwIP keeps connections in TIME_WAIT on one linked list, and every connect with SOF_REUSEADDR
 * (stream_lwip.c) walks all of it to prove its 4-tuple unique: under churn (2,000 connections/s,
 * each in TIME_WAIT for 2 * TCP_MSL = 4 s) that list held ~8,000 PCBs and the walk in tcp_connect
 * was 11 % of the client's CPU samples in a connections/s run (2.6 % with 512 kept). Like Linux's
 * tcp_max_tw_buckets, only the newest TIME_WAIT_KEEP stay; older ones are freed before lwIP's
 * timers run. What is lost is the resend of a final ACK whose FIN comes again after that: the
 * peer, which has every byte already, then closes on our RST. Ports are random per connection,
 * so an early reuse of the 4-tuple stays unlikely (stream_lwip.c). */
#define TIME_WAIT_KEEP 256

void ipstack_trim_time_wait(struct tcp_pcb **list, int keep) {
  struct tcp_pcb *prev = *list;
  if (keep < 1) keep = 1;
  for (int i = 1; prev && i < keep; i++) prev = prev->next;
  while (prev && prev->next) {
    struct tcp_pcb *pcb = prev->next;
    if (pcb->callback_arg) { /* a stream still holds it (stream_lwip.c detaches on close) */
      prev = pcb;
      continue;
    }
    prev->next = pcb->next;
    tcp_pcb_purge(pcb);
    tcp_free(pcb);
  }
}

/* A wholly acknowledged segment left at the head of a send queue (tcp_recovery.h): freed, and
 * the queue behind it sent at once rather than at the persist timer's next slot (seconds). */
static void drop_acked(struct tcp_pcb *pcb) {
  int in_flight = pcb->unacked != NULL;
  size_t bytes = tcp_recovery_drop_acked(pcb);
  if (!bytes) return;
  char what[200];
  snprintf(what, sizeof what,
           "lport=%u rport=%u lastack=%lu bytes=%zu in_flight=%d nrtx=%u persist_backoff=%u "
           "flags=0x%x snd_wnd=%lu cwnd=%lu",
           pcb->local_port, pcb->remote_port, (unsigned long)pcb->lastack, bytes, in_flight,
           (unsigned)pcb->nrtx, (unsigned)pcb->persist_backoff, (unsigned)pcb->flags,
           (unsigned long)pcb->snd_wnd, (unsigned long)pcb->cwnd);
  LOG_I("tcp", "acked_segment_freed", "pcb", what, NULL);
  tcp_output(pcb);
}

static void before_timers(void) {
  ipstack_trim_time_wait(&tcp_tw_pcbs, TIME_WAIT_KEEP);
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
    fix_persist_window(pcb);
    tcp_recovery_fix_queues(pcb); /* before a timeout can append unsent behind unacked */
    drop_acked(pcb);
  }
}

/* Runs lwIP's due timers, then sleeps until the next one. */
static void on_timer(uv_timer_t *t) {
  keep_last_ack();
  before_timers();
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

/* tcp_bw_congestion_fn for every stack: asks the tunnel behind the netif. */
static bool congested_behind(struct netif *nif, bool v6, const uint8_t *addr, uint32_t window_ms) {
  ipstack *s = nif->state;
  return s && s->congested && s->congested(s->congested_ctx, v6, addr, window_ms);
}

void ipstack_set_congestion_probe(ipstack *s, ipstack_congestion_fn fn, void *ctx) {
  s->congested = fn;
  s->congested_ctx = ctx;
}

ipstack *ipstack_create(uv_loop_t *loop, const cfg_cidr *addrs, size_t n, uint32_t mtu,
                        ipstack_output_fn out, void *ctx, char *err, size_t errlen) {
  ipstack *s = calloc(1, sizeof *s);
  if (!s) return snprintf(err, errlen, "out of memory"), NULL;
  if (!g_lwip_ready) {
    lwip_init();
    tcp_bw_floor_init();
    tcp_bw_floor_set_congestion_probe(congested_behind);
    g_lwip_ready = true;
  }
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
  if (!netif_default) netif_set_default(&s->netif);
  netif_set_up(&s->netif);
  netif_set_link_up(&s->netif);
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_timer, 10, 0);
  s->flush.run = on_turn_end;
  s->flush.phase = LOOP_TURN_STACK;
  loop_turn_start(loop);
  return s;
}

static void apply_trust(ipstack *s) {
  u16_t gen = NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_UDP | NETIF_CHECKSUM_GEN_TCP |
              NETIF_CHECKSUM_GEN_ICMP | NETIF_CHECKSUM_GEN_ICMP6;
  u16_t flags = s->trust_forced || s->trust_peers ? gen : NETIF_CHECKSUM_ENABLE_ALL;
  if (s->omit_sums)
    flags &= (u16_t) ~(NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_UDP | NETIF_CHECKSUM_GEN_TCP);
  NETIF_SET_CHECKSUM_CTRL(&s->netif, flags);
}

bool ipstack_trusts_inbound(const ipstack *s) { return s->trust_forced; }

void ipstack_omit_checksums(ipstack *s, bool on) {
  if (s->omit_sums == on) return;
  s->omit_sums = on;
  apply_trust(s);
  LOG_I("tunnel", "outbound_checksums", "ip_tcp_udp", on ? "omitted" : "computed", NULL);
}

void ipstack_trust_inbound(ipstack *s) {
  s->trust_forced = true;
  apply_trust(s);
}

void ipstack_trust_peers(ipstack *s, bool on) {
  if (s->trust_peers == on) return;
  s->trust_peers = on;
  apply_trust(s);
}

int ipstack_input(ipstack *s, const uint8_t *pkt, size_t len) {
  if (len == 0 || len > 65535) return -1;
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
  if (!p) return -1;
  pbuf_take(p, pkt, (u16_t)len);
  tcp_recovery rec;
  /* A pure ACK fits the first pbuf, where tcp_recovery may adjust it. */
  int after = p->len == len && tcp_recovery_before(&rec, p->payload, len);
  if (s->netif.input(p, &s->netif) != ERR_OK) {
    pbuf_free(p);
    return -1;
  }
  if (after) tcp_recovery_after(&rec);
  return 0;
}

static void on_handle_closed(uv_handle_t *h) { free(h->data); }

void ipstack_destroy(ipstack *s) {
  if (!s) return;
  s->n_held = 0;
  loop_turn_cancel(&s->flush);
  netif_remove(&s->netif); /* lwIP picks no new default: the next stack created takes it */
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

struct netif *ipstack_netif(ipstack *s) {
  return &s->netif;
}

void ipstack_ip_from_bytes(ip_addr_t *out, int family, const uint8_t *bytes) {
  if (family == AF_INET6) {
    IP_ADDR6(out, 0, 0, 0, 0);
    memcpy(ip_2_ip6(out)->addr, bytes, 16);
    ip6_addr_clear_zone(ip_2_ip6(out));
  } else {
    IP_ADDR4(out, bytes[0], bytes[1], bytes[2], bytes[3]);
  }
}
