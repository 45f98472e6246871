/* Shared between the parts of the exit (exit.c: hooks, packets, lifecycle; exit_tcp.c;
 * exit_udp.c). Not for use outside src/exit. */
#ifndef AWGPROXY_EXIT_EXIT_INTERNAL_H
#define AWGPROXY_EXIT_EXIT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "exit/exit.h"
#include "exit/exit_policy.h"
#include "lwip/ip_addr.h"
#include "util/list.h"

struct pbuf;
struct netif;

#define EXIT_MAX_TCP_PENDING 1024 /* outbound connects in progress */
#define EXIT_MAX_UDP_FLOWS 1024   /* the least recently used flow makes room for a new one */
#define EXIT_MAX_DNS_PENDING 128
#define EXIT_MAX_ECHO_FLOWS 256 /* ping sessions (peer, destination, identifier) */
#define EXIT_ECHO_IDLE_MS 30000
#define EXIT_UDP_IDLE_MS 60000
#define EXIT_HASH_BUCKETS 1024
#define EXIT_HOST_REFRESH_MS 30000

/* One address; IPv4 uses a[0..3]. */
typedef struct {
  int family;
  uint8_t a[16];
} exit_addr;

/* A flow as the peer sees it: src is the peer, dst the destination it asked for. */
typedef struct {
  exit_addr src, dst;
  uint16_t sport, dport;
} exit_tuple;

typedef struct tcp_flow tcp_flow;
typedef struct exit_listener exit_listener;
typedef struct exit_conn exit_conn;
typedef struct udp_flow udp_flow;
typedef struct dns_req dns_req;
typedef struct echo_flow echo_flow;
typedef struct exit_peer exit_peer;

struct exit_ctx {
  uv_loop_t *loop;
  const app_config *cfg;
  tunnel *tun;
  struct netif *nif;
  exit_policy policy;
  uv_timer_t sweep;
  uint64_t next_host_refresh;
  bool stopping;
  exit_stats stats;
  /* TCP */
  tcp_flow *tcp_buckets[EXIT_HASH_BUCKETS];
  list_node tcp_list; /* tcp_flow.link: every pending flow, for the sweep */
  exit_listener *listeners;
  list_node conns; /* exit_conn.link */
  /* UDP and DNS */
  udp_flow *udp_buckets[EXIT_HASH_BUCKETS];
  list_node udp_list; /* udp_flow.link */
  list_node dns_list; /* dns_req.link */
  size_t n_dns;
  struct raw_pcb *raw_udp4, *raw_udp6, *raw_icmp4, *raw_icmp6;
  /* ICMP echo */
  bool ping4, ping6;   /* unprivileged ICMP sockets work (net.ipv4.ping_group_range) */
  list_node echo_list; /* echo_flow.link */
  size_t n_echo;
  uint8_t rbuf[65536];
  /* per-peer state (exit_peer.c) and the SOCKS5 service (exit_socks.c) */
  struct exit_peer_table *peers;
  struct exit_socks *socks;
  struct exit_quic *quic; /* the QUIC endpoint (exit_quic.c), NULL when off */
};

/* ---- exit.c ---- */
/* Feeds a packet (ownership passes) to lwIP as if dst were a local address. */
void exit_input_as_local(exit_ctx *x, struct pbuf *p, const exit_addr *dst);
/* True while a packet to a foreign address is inside lwIP (exit_input_as_local). */
bool exit_in_foreign_input(void);
/* Sends ICMP destination unreachable (v4 type 3 / v6 type 1, with code) to the sender of the
 * quoted packet (bytes from its IP header on), from the address it was sent to. */
void exit_send_unreach(exit_ctx *x, const uint8_t *quote, size_t qlen, uint8_t code4,
                       uint8_t code6);
/* Sends one ICMP/ICMPv6 message (icmp[2..3], the checksum, is filled in) into the tunnel. */
void exit_send_icmp(exit_ctx *x, const exit_addr *from, const exit_addr *to, uint8_t *icmp,
                    size_t len);
/* Sends one UDP datagram into the tunnel: from:fport -> to:tport. */
void exit_send_udp(exit_ctx *x, const exit_addr *from, uint16_t fport, const exit_addr *to,
                   uint16_t tport, const uint8_t *data, size_t len);
/* Bytes of an address of family (16 for AF_INET6, else 4). */
size_t exit_addr_len(int family);
void exit_addr_to_ip(const exit_addr *a, ip_addr_t *out);
void exit_addr_from_ip(const ip_addr_t *ip, exit_addr *out);
void exit_addr_to_sockaddr(const exit_addr *a, uint16_t port, struct sockaddr_storage *ss);
bool exit_addr_equal(const exit_addr *a, const exit_addr *b);
void exit_addr_format(const exit_addr *a, uint16_t port, char *buf, size_t len);
uint32_t exit_tuple_hash(const exit_tuple *t);
bool exit_tuple_equal(const exit_tuple *a, const exit_tuple *b);
/* Policy check with logging and counting; true when allowed. */
bool exit_allowed(exit_ctx *x, const char *proto, const exit_tuple *t);

/* ICMP codes: v4 (type 3) and v6 (type 1) */
#define EXIT_ICMP4_NET 0
#define EXIT_ICMP4_HOST 1
#define EXIT_ICMP4_PORT 3
#define EXIT_ICMP4_PROHIBITED 13
#define EXIT_ICMP6_NOROUTE 0
#define EXIT_ICMP6_PROHIBITED 1
#define EXIT_ICMP6_ADDR 3
#define EXIT_ICMP6_PORT 4

/* ---- exit_tcp.c ---- */
/* A SYN (no ACK) to a foreign address; takes ownership of p. hdr holds the packet's first bytes
 * (IP header and TCP header), ihl the IP header length. */
void exit_tcp_syn(exit_ctx *x, struct pbuf *p, const uint8_t *hdr, size_t ihl);
void exit_tcp_sweep(exit_ctx *x, uint64_t now);
void exit_tcp_stop(exit_ctx *x);
/* Ends every TCP flow and connection of p (a peer removed by a reload). */
void exit_tcp_end_peer(exit_ctx *x, exit_peer *p);

/* ---- exit_icmp.c ---- */
/* Probes for unprivileged ICMP sockets (sets x->ping4/ping6). */
void exit_icmp_start(exit_ctx *x);
/* An echo request from the peer (icmp: the ICMP message) to an allowed foreign destination.
 * Returns false when it cannot be proxied (the caller answers "prohibited"). */
bool exit_icmp_echo(exit_ctx *x, const exit_addr *src, const exit_addr *dst, const uint8_t *icmp,
                    size_t len);
void exit_icmp_sweep(exit_ctx *x, uint64_t now);
void exit_icmp_stop(exit_ctx *x);
/* Closes echo flows whose source no longer belongs to a peer (after a reload). */
void exit_icmp_end_stale(exit_ctx *x);

/* ---- exit_socks.c ---- */
/* Starts the server's SOCKS5 listeners ([Server] Socks, LocalSocks); -1 with a message. */
int exit_socks_start(exit_ctx *x, char *err, size_t errlen);
void exit_socks_stop(exit_ctx *x);
/* Ends the SOCKS requests in progress and the relays of p (a peer removed by a reload): what a
 * client inside the tunnel opened through the service counts among the peer's exit connections.
 * LocalSocks clients have no peer and are never affected. */
void exit_socks_end_peer(exit_ctx *x, exit_peer *p);

/* ---- exit_udp.c ---- */
int exit_udp_start(exit_ctx *x);
void exit_udp_sweep(exit_ctx *x, uint64_t now);
void exit_udp_stop(exit_ctx *x);
/* Closes every UDP flow of p (a peer removed by a reload). */
void exit_udp_end_peer(exit_ctx *x, exit_peer *p);

#endif
