/* One server of a client: its tunnel (keys, obfuscation, endpoint, lwIP netif) and every way
 * through it that the front-ends use: the lwIP dialer and UDP opener, the QUIC transport, the
 * dialer and opener that choose between the two, the tunnel's resolver and its MTU probe. A
 * client with one config has one upstream; with several (client/server_set.h) one per file, all
 * on the same loop and the same lwIP (each tunnel its own netif). */
#ifndef AWGPROXY_CLIENT_UPSTREAM_H
#define AWGPROXY_CLIENT_UPSTREAM_H

#include <uv.h>

#include "device/tunnel.h"
#include "dns/resolver.h"
#include "quic/quic_client.h"
#include "stream/dgram_flow.h"
#include "stream/dialer.h"

typedef struct {
  const app_config *cfg; /* borrowed: must outlive the upstream */
  tunnel *tun;
  struct tls_client *tls; /* the TLS carrier, when the server is reached over TLS */
  resolver *res;
  dialer *dl_ip;       /* lwIP TCP through the tunnel */
  quic_client *quic;   /* the QUIC transport and the choice of path */
  dialer *dl;          /* what the front-ends use: dl_ip or QUIC, per quic */
  dgram_opener *dg_ip; /* lwIP UDP through the tunnel */
  dgram_opener *dg;    /* dg_ip or QUIC datagrams, per quic */
  struct path_probe *probe;
} upstream;

/* Creates the tunnel (handshaking starts) and the ways through it: cfg is the server's config,
 * front the one whose [Socks] ConnectTimeout and TunnelWait apply (the same one, or a set's
 * merged front-end). Returns 0, or -1 with a message in err and nothing left running. */
int upstream_start(upstream *u, uv_loop_t *loop, const app_config *cfg, const app_config *front,
                   char *err, size_t errlen);
/* The server's own tunnel address (config_quic_server: QuicServer, or the .1 of the client's
 * prefix) at port, as a destination through this tunnel; false when it cannot be told. */
bool upstream_service_dest(const upstream *u, uint16_t port, dial_dest *out);
/* After the front-ends that used it stopped (their requests cancelled, their flows closed). */
void upstream_stop(upstream *u);
/* Ends every stream open through this server, both transports: its lwIP connections are reset
 * and its QUIC connection is closed. The client has left the server (failover, disconnect). */
void upstream_abort_streams(upstream *u, const char *reason);

#endif
