/* tcp_recovery_drop_acked (src/device/tcp_recovery.c): a send queue whose head lwIP left wholly
 * acknowledged. The first case is the state a stalled connection was found in after a NAT
 * rebinding mid-transfer (the client's lwIP, from its SIGUSR1 dump): nothing in flight, the
 * unsent queue starting with 256 bytes below lastack, then a segment 8 bytes into which lastack
 * points: lwIP's persist timer had split a partly acknowledged head at the window (256 bytes)
 * counted from the segment's start. lwIP's window test wraps for such a head and never sends it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "device/tcp_recovery.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#define X 11259010u /* the stalled connection's numbers */

/* A data segment as lwIP queues it: a pbuf holding the TCP header, then len bytes. */
static struct tcp_seg *seg_new(uint32_t seqno, u16_t len) {
  struct tcp_seg *seg = memp_malloc(MEMP_TCP_SEG);
  assert_non_null(seg);
  memset(seg, 0, sizeof *seg);
  seg->p = pbuf_alloc(PBUF_RAW, (u16_t)(TCP_HLEN + len), PBUF_RAM);
  assert_non_null(seg->p);
  memset(seg->p->payload, 0, TCP_HLEN);
  seg->tcphdr = seg->p->payload;
  seg->tcphdr->seqno = lwip_htonl(seqno);
  seg->len = len;
  return seg;
}

/* Builds a queue from (seqno, len) pairs; counts its pbufs into the PCB as tcp_write does. */
static struct tcp_seg *queue(struct tcp_pcb *pcb, const uint32_t (*segs)[2], size_t n) {
  struct tcp_seg *head = NULL, **tail = &head;
  for (size_t i = 0; i < n; i++) {
    *tail = seg_new(segs[i][0], (u16_t)segs[i][1]);
    pcb->snd_queuelen = (u16_t)(pcb->snd_queuelen + pbuf_clen((*tail)->p));
    tail = &(*tail)->next;
  }
  return head;
}

static struct tcp_pcb *pcb_new(uint32_t lastack, uint32_t snd_nxt) {
  struct tcp_pcb *pcb = tcp_new();
  assert_non_null(pcb);
  pcb->state = ESTABLISHED;
  pcb->lastack = lastack;
  pcb->snd_nxt = snd_nxt;
  pcb->snd_buf = 1000;
  pcb->rtime = 0;
  return pcb;
}

static size_t count(const struct tcp_seg *s) {
  size_t n = 0;
  for (; s; s = s->next) n++;
  return n;
}

static void pcb_free(struct tcp_pcb *pcb) {
  tcp_segs_free(pcb->unsent);
  tcp_segs_free(pcb->unacked);
  tcp_free(pcb);
}

static void test_stalled_head_is_freed(void **state) {
  (void)state;
  struct tcp_pcb *pcb = pcb_new(X + 264, X + 1328);
  const uint32_t unsent[][2] = {{X, 256}, {X + 256, 1072}, {X + 1328, 1328}, {X + 2656, 1328}};
  pcb->unsent = queue(pcb, unsent, 4);
  pcb->cwnd = 1340;
  pcb->snd_wnd = 2097151;
  /* lwIP's test for the head: wrapped, so it can never be sent. */
  uint32_t need = lwip_ntohl(pcb->unsent->tcphdr->seqno) - pcb->lastack + pcb->unsent->len;
  assert_true(need > pcb->cwnd);

  assert_int_equal(tcp_recovery_drop_acked(pcb), 256);
  assert_int_equal(count(pcb->unsent), 3);
  assert_int_equal(lwip_ntohl(pcb->unsent->tcphdr->seqno), X + 256); /* partly acked: kept */
  assert_int_equal(pcb->snd_queuelen, 3);
  assert_int_equal(pcb->snd_buf, 1000 + 256);
  assert_int_equal(pcb->rtime, -1);
  /* The new head passes the window test: 1064 bytes of it are new to the receiver. */
  need = lwip_ntohl(pcb->unsent->tcphdr->seqno) - pcb->lastack + pcb->unsent->len;
  assert_int_equal(need, 1064);
  assert_true(need <= pcb->cwnd);
  /* Once done, nothing more is found. */
  assert_int_equal(tcp_recovery_drop_acked(pcb), 0);
  assert_int_equal(count(pcb->unsent), 3);
  pcb_free(pcb);
}

static void test_acked_heads_of_both_queues(void **state) {
  (void)state;
  struct tcp_pcb *pcb = pcb_new(X + 3000, X + 4000);
  const uint32_t unacked[][2] = {{X, 1000}, {X + 1000, 1000}, {X + 2000, 1000}, {X + 3000, 1000}};
  const uint32_t unsent[][2] = {{X + 500, 500}, {X + 4000, 1000}};
  pcb->unacked = queue(pcb, unacked, 4);
  pcb->unsent = queue(pcb, unsent, 2);
  assert_int_equal(tcp_recovery_drop_acked(pcb), 3500);
  assert_int_equal(count(pcb->unacked), 1);
  assert_int_equal(lwip_ntohl(pcb->unacked->tcphdr->seqno), X + 3000);
  assert_int_equal(count(pcb->unsent), 1);
  assert_int_equal(lwip_ntohl(pcb->unsent->tcphdr->seqno), X + 4000);
  assert_int_equal(pcb->snd_queuelen, 2);
  assert_int_equal(pcb->rtime, 0); /* still data in flight: the retransmission timer runs */
  /* A send buffer grown beyond TCP_SND_BUF (tcp_bw_floor.c) keeps its size. */
  pcb->lastack = X + 4000;
  pcb->snd_buf = 3 * TCP_SND_BUF;
  assert_int_equal(tcp_recovery_drop_acked(pcb), 1000);
  assert_int_equal(pcb->snd_buf, 3 * TCP_SND_BUF + 1000);
  pcb_free(pcb);
}

static void test_healthy_queues_untouched(void **state) {
  (void)state;
  /* In flight from lastack, new data behind, across the sequence space's wrap. */
  uint32_t base = 0xFFFFFC00u;
  struct tcp_pcb *pcb = pcb_new(base, base + 2000);
  const uint32_t unacked[][2] = {{base, 1000}, {base + 1000, 1000}};
  const uint32_t unsent[][2] = {{base + 2000, 1000}};
  pcb->unacked = queue(pcb, unacked, 2);
  pcb->unsent = queue(pcb, unsent, 1);
  assert_int_equal(tcp_recovery_drop_acked(pcb), 0);
  assert_int_equal(count(pcb->unacked), 2);
  assert_int_equal(count(pcb->unsent), 1);
  assert_int_equal(pcb->snd_queuelen, 3);
  assert_int_equal(pcb->snd_buf, 1000);
  /* A segment ending exactly at lastack is wholly acknowledged, also across the wrap. */
  pcb->lastack = base + 1000;
  assert_int_equal(tcp_recovery_drop_acked(pcb), 1000);
  assert_int_equal(lwip_ntohl(pcb->unacked->tcphdr->seqno), base + 1000);
  pcb_free(pcb);
}

static void test_not_before_established(void **state) {
  (void)state;
  struct tcp_pcb *pcb = pcb_new(X + 100, X + 100);
  const uint32_t unsent[][2] = {{X, 50}};
  pcb->unsent = queue(pcb, unsent, 1);
  pcb->state = SYN_SENT;
  assert_int_equal(tcp_recovery_drop_acked(pcb), 0);
  assert_int_equal(count(pcb->unsent), 1);
  pcb_free(pcb);
}

/* ---- lwIP itself reaching that state ------------------------------------------------------ */

static int sent;          /* data segments the netif was handed */
static uint32_t sent_seq; /* the last one's sequence number */

static err_t capture(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst) {
  (void)nif;
  (void)dst;
  uint8_t hdr[40];
  if (pbuf_copy_partial(p, hdr, sizeof hdr, 0) == sizeof hdr &&
      p->tot_len > 20 + (hdr[32] >> 4) * 4) { /* carries data, not a bare ACK */
    sent++;
    sent_seq = (uint32_t)hdr[24] << 24 | (uint32_t)hdr[25] << 16 | (uint32_t)hdr[26] << 8 | hdr[27];
  }
  return ERR_OK;
}

static err_t nif_setup(struct netif *nif) {
  nif->output = capture;
  nif->mtu = 1500;
  nif->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

/* The sequence seen after a NAT rebinding, driven through lwIP 2.1's own code: two full segments
 * in flight; the receiver takes 264 bytes (what its window had room for) and leaves a window of
 * 256; the retransmission timeout puts both segments back on the unsent queue; the persist timer
 * splits the head at 256 bytes from its start, a piece wholly acknowledged already. lwIP alone
 * never sends again; with the glue's step before each timer tick (ipstack.c) it sends at once,
 * starting with the piece that holds the first byte the receiver is missing. */
static void test_lwip_persist_split_strands_acked_head(void **state) {
  (void)state;
  struct netif nif;
  ip4_addr_t addr, mask, gw, peer;
  IP4_ADDR(&addr, 10, 9, 0, 1);
  IP4_ADDR(&mask, 255, 255, 255, 0);
  IP4_ADDR(&gw, 0, 0, 0, 0);
  IP4_ADDR(&peer, 10, 9, 0, 2);
  assert_non_null(netif_add(&nif, &addr, &mask, &gw, NULL, nif_setup, ip4_input));
  netif_set_up(&nif);
  netif_set_link_up(&nif);

  struct tcp_pcb *pcb = tcp_new();
  assert_non_null(pcb);
  ip_addr_copy_from_ip4(pcb->local_ip, addr);
  ip_addr_copy_from_ip4(pcb->remote_ip, peer);
  pcb->local_port = 40000;
  pcb->remote_port = 7;
  pcb->state = ESTABLISHED;
  pcb->mss = 1340;
  pcb->snd_wnd = pcb->snd_wnd_max = pcb->cwnd = 1 << 20;
  tcp_nagle_disable(pcb);
  pcb->next = tcp_active_pcbs;
  tcp_active_pcbs = pcb;

  static uint8_t data[2 * 1340];
  uint32_t iss = pcb->lastack;
  assert_int_equal(tcp_write(pcb, data, sizeof data, TCP_WRITE_FLAG_COPY), ERR_OK);
  assert_int_equal(tcp_output(pcb), ERR_OK);
  assert_int_equal(sent, 2);
  assert_int_equal(count(pcb->unacked), 2);

  /* What the receiver's ACK does in tcp_receive: lastack into the first segment, which stays
   * queued (not wholly acknowledged), and the window it advertised. */
  pcb->lastack = iss + 264;
  pcb->snd_wnd = 256;
  pcb->snd_wl2 = pcb->lastack;
  pcb->rtime = pcb->rto; /* the timeout is due */
  tcp_slowtmr();
  assert_true(pcb->flags & TF_RTO);
  assert_null(pcb->unacked);
  assert_int_equal(sent, 2);         /* 1076 bytes of the head are new, the window is 256 */
  assert_true(pcb->persist_backoff); /* so the persist timer runs */

  for (int tick = 0; tick < 200; tick++) tcp_slowtmr(); /* ten seconds of lwIP's timers */
  assert_int_equal(sent, 2);                            /* stalled for good */
  assert_int_equal(lwip_ntohl(pcb->unsent->tcphdr->seqno), iss);
  assert_int_equal(pcb->unsent->len, 256); /* the persist timer's piece, wholly acknowledged */

  int ticks = 0;
  while (sent == 2 && ticks < 20) {
    if (tcp_recovery_drop_acked(pcb)) tcp_output(pcb);
    tcp_slowtmr();
    ticks++;
  }
  assert_true(sent > 2);
  assert_int_equal(sent_seq, iss + 256); /* the piece holding the first missing byte */
  assert_true(ticks <= 5);

  tcp_abort(pcb);
  netif_remove(&nif);
}

int main(void) {
  lwip_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stalled_head_is_freed),
      cmocka_unit_test(test_acked_heads_of_both_queues),
      cmocka_unit_test(test_healthy_queues_untouched),
      cmocka_unit_test(test_not_before_established),
      cmocka_unit_test(test_lwip_persist_split_strands_acked_head),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
