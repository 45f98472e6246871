/* SOCKS5 UDP ASSOCIATE (RFC 1928 §7): a UDP relay socket on the listener's address, bound to the
 * client that asked (its IP, and its port once known), whose datagrams go through the tunnel on
 * one dgram_flow (lwIP or QUIC, stream/dgram_flow.h; names resolved here first); replies come back
 * with the SOCKS UDP header. Fragments (FRAG != 0) are dropped. The association lives as long as
 * its TCP control connection. */
#ifndef AWGPROXY_SOCKS_UDP_ASSOC_H
#define AWGPROXY_SOCKS_UDP_ASSOC_H

#include <sys/socket.h>
#include <uv.h>

#include "dns/resolver.h"
#include "socks/socks_proto.h"
#include "stream/dgram_flow.h"

typedef struct udp_assoc udp_assoc;

typedef struct {
  uint64_t to_tunnel, from_tunnel, dropped;
} udp_assoc_stats;

/* dg opens the association's flow (it must outlive the association);
 * local: the address the client reached us on (the relay socket binds its IP, port 0);
 * client: the control connection's peer; hint: DST.ADDR/PORT from the request (port 0 = any).
 * On success fills bnd with the relay socket's address. */
udp_assoc *udp_assoc_start(uv_loop_t *loop, resolver *res, dgram_opener *dg,
                           const struct sockaddr *local, const struct sockaddr *client,
                           const socks_addr *hint, socks_addr *bnd, char *err, size_t errlen);
void udp_assoc_stop(udp_assoc *a);
void udp_assoc_get_stats(const udp_assoc *a, udp_assoc_stats *out);

#endif
