/* Packets the exit builds for the tunnel: ICMP (errors and echo replies) and UDP (DNS answers,
 * datagrams from destinations), handed to lwIP's output towards the peer. */
#include <string.h>

#include "exit/exit_internal.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
#include "lwip/pbuf.h"

void exit_send_icmp(exit_ctx *x, const exit_addr *from, const exit_addr *to, uint8_t *icmp,
                    size_t len) {
  if (len < 8 || len > 65535 - 40) return;
  struct pbuf *q = pbuf_alloc(PBUF_IP, (u16_t)len, PBUF_RAM);
  if (!q) {
    x->stats.dropped++;
    return;
  }
  bool v6 = from->family == AF_INET6;
  icmp[2] = icmp[3] = 0;
  pbuf_take(q, icmp, (u16_t)len);
  ip_addr_t src, dst;
  exit_addr_to_ip(from, &src);
  exit_addr_to_ip(to, &dst);
  u16_t sum = v6 ? ip6_chksum_pseudo(q, IP6_NEXTH_ICMP6, q->tot_len, ip_2_ip6(&src), ip_2_ip6(&dst))
                 : inet_chksum(q->payload, q->tot_len);
  memcpy((uint8_t *)q->payload + 2, &sum, 2);
  ip_output_if_src(q, &src, &dst, 64, 0, v6 ? IP6_NEXTH_ICMP6 : IP_PROTO_ICMP, x->nif);
  pbuf_free(q);
}

void exit_send_unreach(exit_ctx *x, const uint8_t *quote, size_t qlen, uint8_t code4,
                       uint8_t code6) {
  if (qlen < 20) return;
  bool v6 = quote[0] >> 4 == 6;
  if (v6 && qlen < 40) return;
  exit_addr from = {.family = v6 ? AF_INET6 : AF_INET}, to = from;
  memcpy(from.a, quote + (v6 ? 24 : 16), exit_addr_len(from.family));
  memcpy(to.a, quote + (v6 ? 8 : 12), exit_addr_len(to.family));
  /* As much of the packet as fits the minimum MTU (RFC 1812 4.3.2.3, RFC 4443 2.4). */
  size_t max = v6 ? 1280 - 48 : 576 - 28;
  if (qlen > max) qlen = max;
  uint8_t b[8 + 1280 - 48];
  memset(b, 0, 8);
  b[0] = v6 ? 1 : 3; /* destination unreachable */
  b[1] = v6 ? code6 : code4;
  memcpy(b + 8, quote, qlen);
  exit_send_icmp(x, &from, &to, b, 8 + qlen);
}

void exit_send_udp(exit_ctx *x, const exit_addr *from, uint16_t fport, const exit_addr *to,
                   uint16_t tport, const uint8_t *data, size_t len) {
  if (len > 65535 - 8 - 40) return;
  struct pbuf *q = pbuf_alloc(PBUF_IP, (u16_t)(8 + len), PBUF_RAM);
  if (!q) {
    x->stats.dropped++;
    return;
  }
  uint8_t *b = q->payload;
  b[0] = (uint8_t)(fport >> 8), b[1] = (uint8_t)fport;
  b[2] = (uint8_t)(tport >> 8), b[3] = (uint8_t)tport;
  b[4] = (uint8_t)((8 + len) >> 8), b[5] = (uint8_t)(8 + len);
  b[6] = b[7] = 0;
  memcpy(b + 8, data, len);
  ip_addr_t src, dst;
  exit_addr_to_ip(from, &src);
  exit_addr_to_ip(to, &dst);
  u16_t sum = ip_chksum_pseudo(q, IP_PROTO_UDP, q->tot_len, &src, &dst);
  if (sum == 0) sum = 0xFFFF;
  memcpy(b + 6, &sum, 2);
  ip_output_if_src(q, &src, &dst, 64, 0, IP_PROTO_UDP, x->nif);
  pbuf_free(q);
}
