/* UDP flows of one QUIC connection on the server: each DATAGRAM frame names a flow id and a
 * destination (docs/spec/quic-transport.md); one OS socket per flow id and address family sends
 * to whatever destinations the flow uses, under the peer's exit policy, connection cap and
 * bandwidth limit, and answers come back as DATAGRAM frames naming their source. A flow ends
 * after EXIT_UDP_IDLE_MS without traffic. Destinations given by name are not resolved here (the
 * client resolves names through the tunnel first); such datagrams are dropped and counted. */
#ifndef AWGPROXY_EXIT_EXIT_QUIC_UDP_H
#define AWGPROXY_EXIT_EXIT_QUIC_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "exit/exit_internal.h"

typedef struct exit_quic_flows exit_quic_flows;
/* An answer for the connection: the DATAGRAM frame is hdr then data. */
typedef void (*exit_quic_reply_fn)(void *ctx, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                                   size_t len);

exit_quic_flows *exit_quic_flows_new(exit_ctx *x, exit_peer *p, exit_quic_reply_fn fn, void *ctx);
/* One DATAGRAM frame from the client. */
void exit_quic_flows_input(exit_quic_flows *f, const uint8_t *dgram, size_t len);
size_t exit_quic_flows_count(const exit_quic_flows *f);
/* Closes every flow; no reply runs afterwards. NULL is fine. */
void exit_quic_flows_free(exit_quic_flows *f);

#endif
