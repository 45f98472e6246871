/* UDP flows over the QUIC connection to our own server (docs/spec/quic-transport.md,
 * "Datagrams"): every datagram is one DATAGRAM frame carrying the flow id and the destination
 * (upstream) or the source (downstream). Implements stream/dgram_flow.h.
 *
 * Flow ids: a flow lives in one of DGRAM_QUIC_FLOWS_MAX slots and its id is
 * slot + DGRAM_QUIC_FLOWS_MAX * (how many times the slot was used), so incoming frames find
 * their flow in O(1) and an id is never reused while the opener lives (a late answer to a
 * closed flow finds no one, never the flow that took its slot). The slots are the only memory:
 * nothing is allocated per flow or per datagram (the DATAGRAM send queue of quic_conn copies).
 *
 * The server keeps a socket per flow id until the flow was idle for a minute, at most 256 per
 * connection, and is never told that a flow closed (a DATAGRAM could be lost anyway). So a slot
 * is taken again only DGRAM_QUIC_QUIET_MS after its flow's last datagram: the flows the server
 * may still hold never exceed its limit, and a client needing more gets none here (auto mode
 * then uses lwIP for it).
 *
 * The opener does no I/O: send_fn carries a frame to the server (quic_client_send_dgram), and
 * frames from the server are handed to dgram_quic_input. A flow's sends fail while there is no
 * QUIC connection; one opened before a reconnect carries on over the new connection (the server
 * then gives it a new socket, i.e. a new source port, as a NAT rebinding would). */
#ifndef AWGPROXY_QUIC_DGRAM_QUIC_H
#define AWGPROXY_QUIC_DGRAM_QUIC_H

#include <stddef.h>
#include <stdint.h>

#include "stream/dgram_flow.h"

#define DGRAM_QUIC_FLOWS_MAX 256 /* the server's limit per connection (exit_quic_udp.c) */
/* The server's idle timeout (EXIT_UDP_IDLE_MS, 60 s), its sweep period (5 s), and a margin for
 * a late answer. */
#define DGRAM_QUIC_QUIET_MS 70000

/* Queues one DATAGRAM frame made of hdr then data; 0, or -1 if it was dropped. */
typedef int (*dgram_quic_send_fn)(void *ctx, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                                  size_t len);

/* Milliseconds of a monotonic clock (uv_now). */
typedef uint64_t (*dgram_quic_clock_fn)(void *ctx);

/* send_fn and clock_fn get ctx. NULL when out of memory. */
dgram_opener *dgram_quic_new(dgram_quic_send_fn send_fn, dgram_quic_clock_fn clock_fn, void *ctx);
/* One DATAGRAM frame from the server (hostile input: anything malformed or for no open flow is
 * dropped). */
void dgram_quic_input(dgram_opener *o, const uint8_t *frame, size_t len);
size_t dgram_quic_open_flows(const dgram_opener *o);

#endif
