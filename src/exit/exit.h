/* The server's userspace exit: stock WireGuard/AmneziaWG clients route IP packets for ANY
 * destination through the tunnel, and the server's lwIP stack terminates them and connects out
 * with real OS sockets on the peer's behalf.
 *
 * How packets to foreign addresses reach lwIP (lwIP is configured, never patched): the
 * LWIP_HOOK_IP4_INPUT / LWIP_HOOK_IP6_INPUT hooks (lwip_port/lwip_hooks.h) see every inbound
 * packet first. A packet whose destination is not one of the netif's own addresses is fed to
 * ip4_input/ip6_input again while the netif temporarily carries that destination as its address
 * (IPv4: the address field is set directly, never through netif_set_ipaddr, which would abort
 * PCBs; IPv6: a spare address slot is marked valid), so lwIP accepts it as local. PCBs created
 * that way keep the foreign address as their local address and answer from it.
 *
 * TCP: a SYN to a new foreign destination is held back while the server connects out
 * (uv_tcp_connect). Only when that succeeds is the SYN given to lwIP, where a listening PCB bound
 * to exactly that address:port accepts it; the two sides are then relayed (stream_lwip <->
 * stream_uv, relay.h, [Socks] IdleTimeout). If the outbound connection is refused the peer gets
 * a TCP RST; unreachable or timed out ([Socks] ConnectTimeout) gives ICMP destination unreachable
 * (net or host); a local firewall (EACCES/EPERM) gives ICMP administratively prohibited.
 *
 * UDP: one OS socket per (peer address:port, destination address:port) flow, connected to the
 * destination; replies are built as UDP packets from the destination back into the tunnel; a
 * flow expires after 60 s without traffic. ICMP port unreachable for the outbound socket is
 * passed back to the peer as ICMP port unreachable.
 *
 * DNS: UDP to one of the server's own tunnel addresses, port 53, is answered by the server
 * itself: A and AAAA through the OS resolver (uv_getaddrinfo, so /etc/hosts applies), other query
 * types get an empty NOERROR answer. DNS over TCP to the server address is not offered.
 *
 * ICMP: echo requests to allowed foreign destinations are proxied through unprivileged ICMP
 * sockets (Linux: when the daemon's group is inside net.ipv4.ping_group_range; one socket per
 * peer, destination and echo identifier, closed after 30 s without requests; replies carry the
 * peer's identifier again). Where such sockets are not allowed, or the policy denies the
 * destination, echo requests are answered with ICMP destination unreachable, administratively
 * prohibited (IPv4 type 3 code 13, IPv6 type 1 code 1): `ping` prints "Packet filtered". The
 * start-up log line (component=exit event=started icmp_echo=...) says which applies. Other ICMP
 * addressed to foreign destinations is dropped.
 *
 * Exit policy (default deny, exit_policy.h): loopback, link-local, RFC 1918, CGNAT 100.64/10,
 * ULA fc00::/7, multicast, 0.0.0.0/8, reserved 240/4 and broadcast, the tunnel's own subnets and
 * the host's interface addresses are refused: TCP and UDP with ICMP administratively prohibited.
 * `[Server] AllowPrivate = yes` lifts the RFC 1918 and ULA part.
 *
 * Per peer (exit_peer.h, exit_rules.h; docs/config-reference.md §7.1-7.3): on top of that policy
 * each [Peer] may carry ExitAllow/ExitDeny rules (prefixes, ports) and ExitAllowDomain/
 * ExitDenyDomain patterns (DNS queries for denied names are answered REFUSED), a connection cap
 * (MaxConnections; [Server] MaxConnections caps all peers together; over a cap a SYN gets a RST,
 * UDP is dropped) and bandwidth limits (UploadLimit/DownloadLimit: a token bucket per peer and
 * direction; TCP reading pauses, UDP over the limit is dropped).
 *
 * Everything runs on the loop thread (lwIP has NO_SYS=1). */
#ifndef AWGPROXY_EXIT_EXIT_H
#define AWGPROXY_EXIT_EXIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "device/tunnel.h"
#include "quic/quic_conn.h"

typedef struct exit_ctx exit_ctx;

typedef struct {
  uint64_t tcp_connecting;  /* now: outbound connects in progress */
  uint64_t tcp_relays;      /* now: relayed connections */
  uint64_t tcp_accepted;    /* total */
  uint64_t tcp_refused;     /* RST sent: the destination refused */
  uint64_t tcp_unreachable; /* ICMP sent: unreachable, timed out or prohibited locally */
  uint64_t udp_flows;       /* now */
  uint64_t udp_flows_total;
  uint64_t dns_queries;
  uint64_t denied;          /* new flows refused by the exit policy */
  uint64_t icmp_echo;       /* echo requests proxied */
  uint64_t icmp_prohibited; /* echo requests answered "administratively prohibited" */
  uint64_t dropped;         /* limits reached, no memory, malformed */
  /* per-peer rules and limits (exit_peer.c) */
  uint64_t denied_rule;    /* new flows refused by a peer's own rules */
  uint64_t dns_refused;    /* DNS queries answered REFUSED by a peer's domain rules */
  uint64_t connections;    /* now: connection slots held (TCP + UDP flows, all peers) */
  uint64_t cap_peer;       /* new flows refused: the peer's MaxConnections was reached */
  uint64_t cap_global;     /* new flows refused: [Server] MaxConnections was reached */
  uint64_t throttle_waits; /* times a TCP stream paused reading for its peer's bandwidth limit */
  uint64_t throttle_wait_ms;
  uint64_t udp_throttled; /* UDP datagrams dropped over a peer's bandwidth limit */
  uint64_t udp_throttled_bytes;
} exit_stats;

/* Starts the exit on the tunnel's IP stack. Only one exit may exist per process (lwIP is global).
 * Returns NULL with a message in err. */
exit_ctx *exit_start(uv_loop_t *loop, tunnel *tun, const app_config *cfg, char *err, size_t errlen);
/* Stops accepting, aborts every flow and frees everything (handles close from the loop). NULL is
 * fine. Call before the tunnel is destroyed. */
void exit_stop(exit_ctx *x);
/* Applies a reloaded configuration (same process, new peers and rules): per-peer rules and limits
 * are rebuilt; flows of peers that are gone are ended. cfg must outlive the exit or the next
 * reload. */
void exit_reload(exit_ctx *x, const app_config *cfg);
void exit_get_stats(const exit_ctx *x, exit_stats *out);

#endif
