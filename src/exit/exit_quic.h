/* The server's QUIC endpoint (docs/spec/quic-transport.md): QUIC packets that peers send inside
 * the tunnel to one of the server's tunnel addresses, port [Server] QuicPort, are taken before
 * lwIP (tunnel_set_inner_hook) and answered with inner packets built without lwIP. Each peer
 * address:port is one connection. A connection is accepted only from a source address inside a
 * peer's AllowedIPs (the tunnel has already dropped any other) and belongs to that peer.
 *
 * Each stream's request goes through the same connector as the server's SOCKS5 service
 * (exit_socks_connect.h): the peer's exit policy and rules, its connection cap, name resolution
 * on the server, bandwidth limits on the relay. DATAGRAM frames become UDP flows
 * (exit_quic_udp.c) under the same policy. Not for use outside src/exit. */
#ifndef AWGPROXY_EXIT_EXIT_QUIC_H
#define AWGPROXY_EXIT_EXIT_QUIC_H

#include <stdbool.h>
#include <stdint.h>

#include "exit/exit_internal.h"
#include "quic/quic_conn.h"
#include "stream/dial_types.h"

/* Counted here; the rest of the QUIC counters are in quic_metrics.h. */
typedef struct {
  uint64_t conns, conns_total, conns_refused;
  uint64_t streams, streams_total;
} exit_quic_stats;

/* Starts the endpoint when [Server] Quic is on; -1 with a message. */
int exit_quic_start(exit_ctx *x, char *err, size_t errlen);
void exit_quic_stop(exit_ctx *x);
/* Closes the connections of p (a peer removed by a reload). */
void exit_quic_end_peer(exit_ctx *x, exit_peer *p);
/* The established QUIC connection of the peer with this key fingerprint; false if it has none. */
bool exit_quic_peer_stats(const exit_ctx *x, const char *fingerprint, quic_conn_stats *out);

#endif
