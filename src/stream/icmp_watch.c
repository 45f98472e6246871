#include "stream/icmp_watch.h"

#include <string.h>
#include <uv.h>

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/raw.h"
#include "stream/stream_lwip.h"

static struct raw_pcb *pcb4, *pcb6;

/* The quoted packet inside the ICMP error: its IP header, then at least 8 bytes of TCP. */
static void match_quoted(const uint8_t *q, size_t len, int err) {
  if (len >= 28 && q[0] >> 4 == 4) {
    size_t ihl = (size_t)(q[0] & 15) * 4;
    if (q[9] != 6 || ihl < 20 || len < ihl + 8) return;
    uint16_t sport = (uint16_t)(q[ihl] << 8 | q[ihl + 1]);
    uint16_t dport = (uint16_t)(q[ihl + 2] << 8 | q[ihl + 3]);
    stream_lwip_icmp_unreachable(AF_INET, q + 16, dport, sport, err);
  } else if (len >= 48 && q[0] >> 4 == 6) {
    if (q[6] != 6) return; /* extension headers before TCP are not followed */
    uint16_t sport = (uint16_t)(q[40] << 8 | q[41]);
    uint16_t dport = (uint16_t)(q[42] << 8 | q[43]);
    stream_lwip_icmp_unreachable(AF_INET6, q + 24, dport, sport, err);
  }
}

static int map4(uint8_t code) {
  switch (code) {
    case 0:
    case 6:
    case 11:
      return UV_ENETUNREACH; /* net unreachable/unknown */
    case 3:
      return UV_ECONNREFUSED; /* port unreachable */
    case 9:
    case 10:
    case 13:
      return UV_EACCES; /* administratively prohibited */
    default:
      return UV_EHOSTUNREACH;
  }
}

static int map6(uint8_t code) {
  switch (code) {
    case 0:
      return UV_ENETUNREACH; /* no route */
    case 1:
    case 5:
    case 6:
      return UV_EACCES; /* prohibited, policy, reject route */
    case 4:
      return UV_ECONNREFUSED; /* port unreachable */
    default:
      return UV_EHOSTUNREACH;
  }
}

static u8_t on_icmp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  uint8_t buf[128];
  size_t len = pbuf_copy_partial(p, buf, sizeof buf, 0);
  if (len < 20) return 0;
  if (buf[0] >> 4 == 4) {
    size_t ihl = (size_t)(buf[0] & 15) * 4;
    if (len < ihl + 8 || buf[ihl] != 3) return 0; /* type 3: destination unreachable */
    match_quoted(buf + ihl + 8, len - ihl - 8, map4(buf[ihl + 1]));
  } else if (buf[0] >> 4 == 6 && len >= 48) {
    if (buf[40] != 1) return 0; /* ICMPv6 type 1: destination unreachable */
    match_quoted(buf + 48, len - 48, map6(buf[41]));
  }
  return 0; /* observe only: lwIP goes on processing the packet */
}

int icmp_watch_start(void) {
  if (pcb4) return 0;
  pcb4 = raw_new_ip_type(IPADDR_TYPE_V4, IP_PROTO_ICMP);
  pcb6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_ICMP6);
  if (!pcb4 || !pcb6) {
    icmp_watch_stop();
    return -1;
  }
  raw_recv(pcb4, on_icmp, NULL);
  raw_recv(pcb6, on_icmp, NULL);
  return 0;
}

void icmp_watch_stop(void) {
  if (pcb4) raw_remove(pcb4);
  if (pcb6) raw_remove(pcb6);
  pcb4 = pcb6 = NULL;
}
