/* lwIP hook declarations (LWIP_HOOK_FILENAME, see lwipopts.h). lwIP is configured, never
 * patched: these are its official extension points.
 *
 * The implementations live in src/exit/exit.c (the server's userspace exit) and
 * src/device/tcp_bw_floor.c (every TCP sender's window floor). They are declared
 * weak so that programs linking lwIP without the exit (unit tests, benchmarks, fuzzers) still
 * link: an absent hook is a null pointer and lwIP behaves as if no hook were configured. */
#ifndef AWGPROXY_LWIP_HOOKS_H
#define AWGPROXY_LWIP_HOOKS_H

#include <stdint.h>

struct pbuf;
struct netif;
struct ip4_addr;
struct tcp_pcb;
struct tcp_hdr;

/* Return nonzero when the packet was taken (the hook then owns and frees it). */
int exit_hook_ip4_input(struct pbuf *p, struct netif *inp) __attribute__((weak));
int exit_hook_ip6_input(struct pbuf *p, struct netif *inp) __attribute__((weak));
/* The netif for an IPv4 destination no netif matches, or NULL. */
struct netif *exit_hook_ip4_route(const struct ip4_addr *dest) __attribute__((weak));

static inline int lwip_port_hook_ip4_input(struct pbuf *p, struct netif *inp) {
  int (*fn)(struct pbuf *, struct netif *) = exit_hook_ip4_input;
  return fn ? fn(p, inp) : 0;
}

static inline int lwip_port_hook_ip6_input(struct pbuf *p, struct netif *inp) {
  int (*fn)(struct pbuf *, struct netif *) = exit_hook_ip6_input;
  return fn ? fn(p, inp) : 0;
}

static inline struct netif *lwip_port_hook_ip4_route(const struct ip4_addr *dest) {
  struct netif *(*fn)(const struct ip4_addr *) = exit_hook_ip4_route;
  return fn ? fn(dest) : (struct netif *)0;
}

/* LWIP_HOOK_TCP_INPACKET_PCB (src/device/tcp_bw_floor.h); returns an err_t, always ERR_OK. */
int8_t tcp_bw_floor_inpacket_hook(struct tcp_pcb *pcb, struct tcp_hdr *hdr, uint16_t optlen,
                                  uint16_t opt1len, uint8_t *opt2, struct pbuf *p)
    __attribute__((weak));

static inline int8_t lwip_port_hook_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr,
                                                 uint16_t optlen, uint16_t opt1len, uint8_t *opt2,
                                                 struct pbuf *p) {
  int8_t (*fn)(struct tcp_pcb *, struct tcp_hdr *, uint16_t, uint16_t, uint8_t *, struct pbuf *) =
      tcp_bw_floor_inpacket_hook;
  return fn ? fn(pcb, hdr, optlen, opt1len, opt2, p) : 0;
}

#endif
