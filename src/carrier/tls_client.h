/* The client's TLS carrier (issue 12): for each peer with [Peer] Carrier = tls, the AWG datagrams
 * go over one TLS connection to its TlsEndpoint instead of UDP. With Carrier = auto (the default
 * with a TlsEndpoint) the peer starts on UDP and moves to TLS after two unanswered handshake
 * attempts, or 15 s without a datagram back while sending; from TLS it sends one initiation over
 * UDP every UdpRetry seconds and returns to UDP when that is answered over UDP. The connection is
 * opened when the first datagram is sent (the handshake's), reopened after it ends (at most once a
 * second), and datagrams sent while it opens wait in a small bounded queue; beyond that they are
 * dropped, as UDP would lose them. The server's certificate is not checked unless TlsVerify = on:
 * the WireGuard handshake inside authenticates the server (docs/decisions.md).
 *
 * Endpoints of this carrier: carrier DGRAM_CARRIER_TLS, sock = the peer's index in the config,
 * ss = the TlsEndpoint's address (zero until resolved). */
#ifndef AWGPROXY_CARRIER_TLS_CLIENT_H
#define AWGPROXY_CARRIER_TLS_CLIENT_H

#include <stdbool.h>
#include <uv.h>

#include "config/config.h"
#include "device/tunnel.h"

typedef struct tls_client tls_client;

#define TLS_CLIENT_QUEUE 65536   /* bytes of datagrams waiting for the connection */
#define TLS_CLIENT_RETRY_MS 1000 /* between two connection attempts */
#define TLS_CLIENT_HANDSHAKE_MS 10000

/* Attaches a TLS carrier to t for cfg's peers that use one (none: returns NULL, err empty).
 * t must outlive it; what it needs of cfg is copied. NULL with err on failure. */
tls_client *tls_client_start(uv_loop_t *loop, const app_config *cfg, tunnel *t, char *err,
                             size_t errlen);
/* Whether peer i's connection is up (for status: "carrier": "tls"). */
bool tls_client_connected(const tls_client *c, size_t peer);
void tls_client_stop(tls_client *c);

#endif
