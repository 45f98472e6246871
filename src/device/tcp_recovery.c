#include "device/tcp_recovery.h"

#include <stdbool.h>
#include <string.h>

#include "lwip/ip_addr.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "util/bytes.h"
#include "util/inet_sum.h"

#define TCPOPT_SACK 5

/* The connection an inbound packet belongs to (its destination is our side). */
static struct tcp_pcb *find_pcb(const tcp_recovery *r) {
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
    if (pcb->local_port != r->dport || pcb->remote_port != r->sport) continue;
    if (r->v6 ? IP_IS_V6(&pcb->remote_ip) && !memcmp(ip_2_ip6(&pcb->remote_ip)->addr, r->src, 16) &&
                    !memcmp(ip_2_ip6(&pcb->local_ip)->addr, r->dst, 16)
              : IP_IS_V4(&pcb->remote_ip) && !memcmp(&ip_2_ip4(&pcb->remote_ip)->addr, r->src, 4) &&
                    !memcmp(&ip_2_ip4(&pcb->local_ip)->addr, r->dst, 4))
      return pcb;
  }
  return NULL;
}

/* Whether the options report SACKed data above ack (a hole at ack; D-SACK blocks lie below). */
static bool sack_above(const uint8_t *opt, size_t n, uint32_t ack) {
  for (size_t o = 0; o < n;) {
    if (opt[o] == 0) break;
    if (opt[o] == 1) {
      o++;
      continue;
    }
    if (o + 1 >= n || opt[o + 1] < 2 || o + opt[o + 1] > n) break;
    if (opt[o] == TCPOPT_SACK)
      for (size_t b = o + 2; b + 8 <= o + opt[o + 1]; b += 8)
        if ((int32_t)(be32_load(opt + b) - ack) > 0) return true;
    o += opt[o + 1];
  }
  return false;
}

int tcp_recovery_before(tcp_recovery *r, uint8_t *pkt, size_t len) {
  size_t off;
  if (len >= 40 && pkt[0] >> 4 == 6 && pkt[6] == 6) {
    off = 40;
    r->v6 = 1;
    memcpy(r->src, pkt + 8, 16);
    memcpy(r->dst, pkt + 24, 16);
  } else if (len >= 20 && pkt[0] >> 4 == 4 && pkt[9] == 6) {
    off = (size_t)(pkt[0] & 15) * 4;
    r->v6 = 0;
    memcpy(r->src, pkt + 12, 4);
    memcpy(r->dst, pkt + 16, 4);
  } else {
    return 0;
  }
  if (len < off + 20) return 0;
  uint8_t *tcp = pkt + off;
  size_t thl = (size_t)(tcp[12] >> 4) * 4;
  /* A pure ACK (no payload, no SYN/FIN/RST) with options: the only kind looked at. */
  if (thl <= 20 || len != off + thl || (tcp[13] & 0x17) != 0x10) return 0;
  r->ack = be32_load(tcp + 8);
  if (!sack_above(tcp + 20, thl - 20, r->ack)) return 0;
  r->sport = (uint16_t)(tcp[0] << 8 | tcp[1]);
  r->dport = (uint16_t)(tcp[2] << 8 | tcp[3]);
  struct tcp_pcb *pcb = find_pcb(r);
  if (!pcb || !pcb->unacked || (pcb->state != ESTABLISHED && pcb->state != CLOSE_WAIT)) return 0;
  if (r->ack == pcb->lastack) {
    /* A duplicate ACK: make its window the one lwIP holds, so that lwIP counts it (gap 1). */
    uint16_t want = (uint16_t)(pcb->snd_wnd >> pcb->snd_scale);
    uint16_t have = (uint16_t)(tcp[14] << 8 | tcp[15]);
    /* Only a grown window is held back; a shrinking one must reach lwIP at once. */
    if (pcb->snd_wl2 != r->ack || have <= want ||
        (tcpwnd_size_t)want << pcb->snd_scale != pcb->snd_wnd)
      return 0;
    uint16_t sum = inet_sum_adjust((uint16_t)(tcp[16] << 8 | tcp[17]), have, want);
    tcp[14] = (uint8_t)(want >> 8);
    tcp[15] = (uint8_t)want;
    tcp[16] = (uint8_t)(sum >> 8);
    tcp[17] = (uint8_t)sum;
    return 0;
  }
  /* An ACK that advances with a hole right at it: lwIP takes it first (gap 2). */
  return TCP_SEQ_GT(r->ack, pcb->lastack) && TCP_SEQ_LEQ(r->ack, pcb->snd_nxt);
}

void tcp_recovery_after(tcp_recovery *r) {
  /* Looked up again: the ACK's callbacks may have closed the connection. */
  struct tcp_pcb *pcb = find_pcb(r);
  if (!pcb || !pcb->unacked || pcb->lastack != r->ack) return;
  if (lwip_ntohl(pcb->unacked->tcphdr->seqno) != r->ack) return;
  if (tcp_rexmit(pcb) == ERR_OK) tcp_output(pcb);
  tcp_recovery_fix_queues(pcb);
}

void tcp_recovery_fix_queues(struct tcp_pcb *pcb) {
  if (!pcb->unacked || !pcb->unsent) return;
  uint32_t first_unacked = lwip_ntohl(pcb->unacked->tcphdr->seqno);
  struct tcp_seg *head = NULL, **tail = &head;
  while (pcb->unsent && TCP_SEQ_LT(lwip_ntohl(pcb->unsent->tcphdr->seqno), first_unacked)) {
    *tail = pcb->unsent;
    pcb->unsent = pcb->unsent->next;
    tail = &(*tail)->next;
  }
  if (!head) return;
  *tail = pcb->unacked;
  pcb->unacked = head;
#if TCP_OVERSIZE
  if (!pcb->unsent) pcb->unsent_oversize = 0;
#endif
}

/* Frees the wholly acknowledged segments at the head of *queue; returns their payload bytes. */
static size_t drop_acked_head(struct tcp_pcb *pcb, struct tcp_seg **queue) {
  size_t bytes = 0;
  while (*queue &&
         TCP_SEQ_LEQ(lwip_ntohl((*queue)->tcphdr->seqno) + TCP_TCPLEN(*queue), pcb->lastack)) {
    struct tcp_seg *seg = *queue;
    *queue = seg->next;
    u16_t clen = pbuf_clen(seg->p);
    pcb->snd_queuelen = (u16_t)(pcb->snd_queuelen >= clen ? pcb->snd_queuelen - clen : 0);
    bytes += seg->len;
    tcp_seg_free(seg);
  }
  return bytes;
}

size_t tcp_recovery_drop_acked(struct tcp_pcb *pcb) {
  if (pcb->state < ESTABLISHED || pcb->state == TIME_WAIT) return 0;
  size_t bytes = drop_acked_head(pcb, &pcb->unacked) + drop_acked_head(pcb, &pcb->unsent);
  if (!bytes) return 0;
  /* lwIP moved lastack past these bytes without counting them back into the send buffer (not
   * capped at TCP_SND_BUF: tcp_bw_floor.c may have grown the buffer beyond it). */
  pcb->snd_buf = (tcpwnd_size_t)(pcb->snd_buf + bytes);
#if TCP_OVERSIZE
  if (!pcb->unsent) pcb->unsent_oversize = 0;
#endif
  if (!pcb->unacked) pcb->rtime = -1; /* as lwIP does when nothing is left in flight */
  return bytes;
}
