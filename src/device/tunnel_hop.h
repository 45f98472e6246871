/* Port hopping, the client's side ([Peer] EndpointPorts, HopInterval; config/config_hop.c): at
 * random times the peer's endpoint moves to another of the server's ports, so that a throttle
 * keyed on the 5-tuple starts over. The session stays: WireGuard does not care which port
 * carries it, and the server ([Server] ExtraPorts) listens on all of them and answers from the
 * port last used. Nothing is lost at a move: datagrams still in flight to or from the old port
 * are accepted as before (the client's socket takes any source, the server's old socket stays
 * open), and answers from the old port do not move the client back (tun_hop_keeps_port). */
#ifndef AWGPROXY_DEVICE_TUNNEL_HOP_H
#define AWGPROXY_DEVICE_TUNNEL_HOP_H

#include <stdbool.h>
#include <stdint.h>

#include "device/udp_io.h"

struct tun_peer;

/* Moves the endpoint when its time has come, and (re)arms the next move from the peer's config
 * (a reload may have changed or removed it). Returns the monotonic ns of the next move, 0 if
 * the peer does not hop. */
uint64_t tun_hop_service(struct tun_peer *p, uint64_t now);
/* True when `from` is the peer's current endpoint but for the port: a hopping client keeps the
 * port it chose, whichever of the server's ports an answer came from. */
bool tun_hop_keeps_port(const struct tun_peer *p, const dgram_endpoint *from);

#endif
