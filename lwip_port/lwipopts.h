/* awgproxy's lwIP configuration. lwIP runs with NO_SYS=1 inside our libuv loop (one thread):
 * no lwIP threads, no sockets API, raw callbacks only. Memory comes from malloc so that the
 * number of PCBs is bounded by our own limits rather than by static pools. */
#ifndef AWGPROXY_LWIPOPTS_H
#define AWGPROXY_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0
#define LWIP_NETIF_API 0
#define LWIP_TIMERS 1

/* Memory: heap and pools from the C allocator, sized by use, not at compile time. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
/* ... through per-size free lists (lwip_port/lwip_mem.h): a pbuf per packet each way. */
#include "lwip_mem.h"
#define mem_clib_malloc lwip_mem_malloc
#define mem_clib_calloc lwip_mem_calloc
#define mem_clib_free lwip_mem_free
#define MEM_ALIGNMENT 8
#define MEM_SIZE (4 * 1024 * 1024)
#define PBUF_POOL_SIZE 1024
#define PBUF_POOL_BUFSIZE 1600

/* Protocols. The tunnel is a point-to-point L3 link: no Ethernet, ARP, DHCP or ND. */
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_ICMP 1
#define LWIP_RAW 1
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_ND6_QUEUEING 0
#define LWIP_IPV6_FRAG 1
#define LWIP_IPV6_REASS 1
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define IP_FORWARD 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_SINGLE_NETIF 0

/* Connection counts: enough for thousands of concurrent streams. */
#define MEMP_NUM_TCP_PCB 8192
#define MEMP_NUM_TCP_PCB_LISTEN 64
#define MEMP_NUM_UDP_PCB 1024
#define MEMP_NUM_RAW_PCB 16
#define MEMP_NUM_TCP_SEG 65535
#define MEMP_NUM_REASSDATA 64
#define MEMP_NUM_FRAG_PBUF 256
#define MEMP_NUM_SYS_TIMEOUT 16

/* TCP: the inner MSS fits the default tunnel MTU (1420 - S4) for IPv6 too; windows of MBs through
 * window scaling so one stream can fill a long fat path, while the send buffer starts at 1 MB and
 * grows only for a connection whose measured path needs it, so many streams cannot make the
 * process hold unbounded data. */
#define TCP_MSS 1340
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 7
/* The most a connection's receive window grows to (src/stream/rcv_window.h): each starts at
 * AWG_TCP_WND_START, and what all connections of one lwIP instance grew beyond that is bounded by
 * AWG_TCP_WND_GROWN_MAX. 6 MiB carries 40 MB/s over a 150 ms round trip; 2 MiB for every
 * connection held such a download to 13. */
#define TCP_WND (6 * 1024 * 1024)
#define AWG_TCP_WND_START (2 * 1024 * 1024)
#define AWG_TCP_WND_GROWN_MAX (64ull * 1024 * 1024)
#define TCP_SND_BUF (1024 * 1024) /* per connection at the start: what a stream can hold */
/* A connection whose path needs more in flight than TCP_SND_BUF (a long round trip, or loss whose
 * repair holds the cumulative ACK back) has its send buffer grown up to this by the window floor
 * (src/device/tcp_bw_floor.c); lwIP itself only sets snd_buf once, to TCP_SND_BUF. */
#define AWG_TCP_SND_BUF_MAX (4 * 1024 * 1024)
#define TCP_SND_QUEUELEN (2 * AWG_TCP_SND_BUF_MAX / TCP_MSS + 64) /* snd_queuelen is a u16 */
#define TCP_SNDLOWAT 32768                                        /* lwIP compares it with a u16 */
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 4)
#define TCP_QUEUE_OOSEQ 1
#define TCP_OOSEQ_MAX_BYTES (8 * 1024 * 1024)
#define TCP_OOSEQ_MAX_PBUFS 8192
#define LWIP_TCP_SACK_OUT 1
#define LWIP_TCP_MAX_SACK_NUM 4
#define TCP_OVERSIZE TCP_MSS
/* TIME_WAIT lasts 2 * TCP_MSL: 4 s instead of lwIP's 120 s. It exists so that the final ACK can be
 * resent if the peer's FIN is retransmitted (a few RTOs: seconds suffice) and so that stray old
 * segments of a closed connection cannot land in a new one with the same 4-tuple. Inside the tunnel
 * the network cannot duplicate or replay packets (the AEAD's replay window drops them), and local
 * ports are random per connection (stream_lwip.c), so a 4-tuple is rarely reused within minutes.
 * At 120 s, sustained churn (1,500 connections/s) kept ~180,000 PCBs in TIME_WAIT and ran out of
 * ports; at 4 s a few thousand. */
#define TCP_MSL 2000UL
/* lwIP's TCP timers tick every 25 ms (fast: delayed ACKs) and 50 ms (slow: retransmissions)
 * instead of 250/500 ms. Retransmission timeouts are counted in slow ticks with a floor of about
 * three, so a timeout now fires after ~150 ms (RTT permitting; Linux's floor is 200 ms) instead of
 * 1.5 s: with the 500 ms tick, every loss lwIP's fast retransmit cannot repair stalled an upload
 * for seconds. Cost: 40 wake-ups/s while any connection exists, each a walk over the PCBs. */
#define TCP_TMR_INTERVAL 25
/* Timestamps (RFC 7323), as Linux negotiates them: the window floor (tcp_bw_floor.h) takes its
 * round trip times from the echoes; 12 bytes of every segment. */
#define LWIP_TCP_TIMESTAMPS 1
/* A connect gives up when the dialer's ConnectTimeout says so, not when lwIP has resent the SYN a
 * few times: with stream_lwip.c's backoff (1, 2, 4, then every 8 s) lwIP's maximum of 12 resends
 * lasts ~87 s (it was ~7 s, shorter than the default ConnectTimeout of 15 s). */
#define TCP_SYNMAXRTX 12
#define TCP_LISTEN_BACKLOG 1
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0

/* Checksums: generated on output (stock peers check them), unless every peer has said it checks
 * none (an awgproxy server: ipstack_omit_checksums, docs/decisions.md). Inbound, every packet was
 * already authenticated by the tunnel's AEAD; the checks stay on by default because on the
 * client a stock server may forward segments that were corrupted on the Internet leg (its NAT
 * rewrites checksums incrementally and never verifies them), and TCP's checksum is the only end
 * to end check they have. The server turns them off for its netif (ipstack_trust_inbound):
 * what reaches it was sealed by the peer device that made it. Per-netif control lets the two
 * differ. */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1
/* Our one's-complement sum (src/util/inet_sum.h, through lwip_port/sys_port.c): 64-bit
 * accumulators, several times faster than lwIP's own algorithms, which were 5-7 % of the
 * client's CPU in an upload (docs/benchmarks.md). */
unsigned short lwip_port_chksum(const void *data, int len);
#define LWIP_CHKSUM lwip_port_chksum

#define LWIP_STATS 0
#define LWIP_STATS_DISPLAY 0
#define LWIP_DEBUG 0
/* LWIP_NOASSERT is left undefined: lwIP checks only whether it is defined, and its asserts
 * catch misuse of the raw API. */

/* The server's userspace exit (src/exit/exit.h): input hooks take packets addressed to foreign
 * destinations, and one listening PCB per foreign address:port (SO_REUSE) accepts the
 * connections to it next to those it already accepted. */
#define SO_REUSE 1
/* IPv6 reassembly on 64-bit hosts: lwIP's per-fragment helper (a pointer and two u16) is larger
 * than the 8-byte fragment header it overlays; without this it corrupts the IPv6 header before
 * it and fragmented IPv6 datagrams (e.g. UDP above the tunnel MTU) are lost. */
#define IPV6_FRAG_COPYHEADER 1
#define LWIP_HOOK_FILENAME "lwip_hooks.h"
#define LWIP_HOOK_IP4_INPUT(p, inp) lwip_port_hook_ip4_input((p), (inp))
#define LWIP_HOOK_IP6_INPUT(p, inp) lwip_port_hook_ip6_input((p), (inp))
#define LWIP_HOOK_IP4_ROUTE(dest) lwip_port_hook_ip4_route(dest)
/* Every TCP sender's window floor from its measured delivery rate (src/device/tcp_bw_floor.h);
 * its per-connection state is PCB ext arg 0. */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
  lwip_port_hook_tcp_inpacket((pcb), (hdr), (optlen), (opt1len), (opt2), (p))
#define LWIP_TCP_PCB_NUM_EXT_ARGS 1

#endif
