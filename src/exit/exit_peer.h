/* Per-peer exit state: which [Peer] a tunnel source address belongs to, the peer's own exit
 * rules (allow/deny CIDRs, ports, domain patterns), its connection cap and bandwidth limit, on top
 * of the server-wide default-deny policy and global caps.
 *
 * Every new flow (exit TCP, exit UDP, ICMP echo, the server's SOCKS5 service) asks, in order:
 *   p = exit_peer_lookup(x, src)           which peer (NULL: local use, e.g. LocalSocks)
 *   exit_permit(x, p, proto, dst, port, name)   policy; logs the denial at debug and counts it
 *   exit_conn_acquire(x, p)                 a connection slot (peer cap and global cap)
 * and for relayed TCP wraps each side with exit_peer_throttle() so both directions draw from the
 * peer's token buckets. A slot taken is given back exactly once with exit_conn_release().
 *
 * A flow from a tunnel address that no peer's AllowedIPs contain (lookup NULL) is refused by
 * the exit's TCP/UDP/ICMP paths and by the SOCKS5 service inside the tunnel; NULL passed to
 * exit_permit means local use (LocalSocks): the server-wide policy only.
 *
 * Lifetime: an exit_peer stays valid while slots, throttled streams or exit_peer_hold()
 * references are held on it, even after a reload removed the [Peer] (it is then marked gone:
 * exit_peer_gone(), everything is refused for it, and it is freed with its last reference).
 * A reload ends the exit's TCP, UDP and ICMP flows and the SOCKS5 service's requests and relays
 * of removed peers (exit_socks_end_peer); anything else holding one must check exit_peer_gone()
 * and end its use when it is true. A reload applies changed rules, caps and bandwidth limits
 * at once, to live flows too. Not for use outside src/exit. */
#ifndef AWGPROXY_EXIT_EXIT_PEER_H
#define AWGPROXY_EXIT_EXIT_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exit/exit_internal.h"
#include "stream/stream.h"

typedef struct exit_peer exit_peer;

/* The peer whose AllowedIPs contain src; NULL when none does. */
exit_peer *exit_peer_lookup(exit_ctx *x, const exit_addr *src);
/* Its [Peer] Congestion: the controller of what the server sends it over QUIC. */
cfg_congestion exit_peer_congestion(const exit_peer *p);
/* True when the destination is allowed for p (NULL p: the server-wide policy only). name is the
 * destination's domain name when the flow asked for one (SOCKS5 domain, DNS), else NULL. */
bool exit_permit(exit_ctx *x, exit_peer *p, const char *proto, const exit_addr *dst, uint16_t dport,
                 const char *name);
/* A domain name query by p (DNS on the server's tunnel address, SOCKS5 names): false when the
 * peer's domain rules deny it. */
bool exit_permit_name(exit_ctx *x, exit_peer *p, const char *name);
/* Takes a connection slot; false (counted, logged at debug) when p's or the global cap is full. */
bool exit_conn_acquire(exit_ctx *x, exit_peer *p);
void exit_conn_release(exit_ctx *x, exit_peer *p);
/* Wraps s so the bytes read from it draw from p's token bucket (reading pauses while empty).
 * from_peer: s is the peer's side of the connection (an lwIP TCP or a QUIC stream), whose reads
 * are the peer's uploads (UploadLimit); otherwise s is the destination's side, whose reads are
 * downloads to the peer (DownloadLimit). Returns s itself when p is
 * NULL; otherwise a wrapper even while p has no limit, so that a reload adding one applies to
 * the live connection. The wrapper owns s. Never NULL: out of memory, s is returned unwrapped
 * (logged). */
stream *exit_peer_throttle(exit_ctx *x, exit_peer *p, stream *s, bool from_peer);

/* A UDP datagram of len bytes in one direction (up: from the peer): true when p's bucket
 * allows it, false (counted) when it must be dropped. */
bool exit_peer_udp_budget(exit_ctx *x, exit_peer *p, bool up, size_t len);
/* The server's DNS answered name (which p may resolve) with addr: in allow-list mode with
 * ExitAllowDomain, p may then connect to addr by address (remembered for EXIT_LEARNED_MS after
 * the last such answer, at most EXIT_MAX_LEARNED addresses per peer, the oldest go first). */
void exit_peer_learn(exit_ctx *x, exit_peer *p, const exit_addr *addr);
bool exit_peer_learns(const exit_peer *p);
void exit_peer_hold(exit_peer *p);
void exit_peer_put(exit_peer *p);
bool exit_peer_gone(const exit_peer *p);
/* The short key fingerprint, for logs. */
const char *exit_peer_name(const exit_peer *p);
/* Counters kept by the per-peer part, added into exit_get_stats. */
void exit_peers_stats(const exit_ctx *x, exit_stats *st);

#define EXIT_MAX_LEARNED 1024
#define EXIT_LEARNED_MS (10 * 60 * 1000)

/* Builds the per-peer table from x->cfg (exit_start), or brings it in line with a reloaded
 * x->cfg (exit_reload): peers are matched by public key. Peers no longer configured are marked
 * gone (every lookup and new flow refuses them) and handed to the caller in *removed (linked
 * through next; the table's reference goes with them: exit_peer_put each once its flows are
 * ended). */
int exit_peers_build(exit_ctx *x, exit_peer **removed);
/* Unlinks p from a list from exit_peers_build's *removed and returns the next. */
exit_peer *exit_peer_next_removed(exit_peer *p);
void exit_peers_free(exit_ctx *x);

#endif
