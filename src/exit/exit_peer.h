/* Per-peer exit state: which [Peer] a tunnel source address belongs to, the peer's own exit
 * rules (allow/deny CIDRs, ports, domain patterns), its connection cap and bandwidth limit, on top
 * of the server-wide default-deny policy and global caps.
 *
 * Every new flow (exit TCP, exit UDP, ICMP echo, the server's SOCKS5 service) asks, in order:
 *   p = exit_peer_lookup(x, src)           which peer (NULL: local use, e.g. LocalSocks)
 *   exit_permit(x, p, proto, dst, port, name)   policy; logs the denial at debug and counts it
 *   exit_conn_acquire(x, p)                 a connection slot (peer cap and global cap)
 * and for relayed TCP wraps each side with exit_peer_throttle() so both directions draw from the
 * peer's token bucket. A slot taken is given back exactly once with exit_conn_release().
 *
 * Lifetime: an exit_peer stays valid while slots are held on it, even after a reload removed the
 * [Peer] (it is then marked gone and freed with its last slot). Not for use outside src/exit. */
#ifndef AWGPROXY_EXIT_EXIT_PEER_H
#define AWGPROXY_EXIT_EXIT_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "exit/exit_internal.h"
#include "stream/stream.h"

typedef struct exit_peer exit_peer;

/* The peer whose AllowedIPs contain src; NULL when none does. */
exit_peer *exit_peer_lookup(exit_ctx *x, const exit_addr *src);
/* True when the destination is allowed for p (NULL p: the server-wide policy only). name is the
 * destination's domain name when the flow asked for one (SOCKS5 domain, DNS), else NULL. */
bool exit_permit(exit_ctx *x, exit_peer *p, const char *proto, const exit_addr *dst,
                 uint16_t dport, const char *name);
/* A domain name query by p (DNS on the server's tunnel address, SOCKS5 names): false when the
 * peer's domain rules deny it. */
bool exit_permit_name(exit_ctx *x, exit_peer *p, const char *name);
/* Takes a connection slot; false (counted, logged at debug) when p's or the global cap is full. */
bool exit_conn_acquire(exit_ctx *x, exit_peer *p);
void exit_conn_release(exit_ctx *x, exit_peer *p);
/* Wraps s so the bytes read from it draw from p's token bucket (reading pauses while empty).
 * Returns s itself when p has no limit. The wrapper owns s. */
stream *exit_peer_throttle(exit_ctx *x, exit_peer *p, stream *s);

/* Rebuilds the per-peer table from x->cfg (called by exit_start and exit_reload). */
int exit_peers_build(exit_ctx *x);
void exit_peers_free(exit_ctx *x);

#endif
