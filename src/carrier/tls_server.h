/* The server's TLS carrier (issue 12): [Server] TlsListen accepts TLS 1.3 connections that carry
 * the same AWG datagrams as the UDP port, length-framed (device/dgram_frames.h), into the same
 * tunnel. A connection is a peer's only once its first frames hold an AWG initiation whose mac1
 * is ours (tunnel_gate_initiation; junk and signature frames before it are allowed); until then
 * nothing reaches the tunnel and no AWG byte is sent. Anything else is answered as a web server
 * would (carrier/tls_decoy.h): a prober finds nginx with a 404 page, or the TlsDecoy site.
 *
 * Endpoints of this carrier: carrier DGRAM_CARRIER_TLS, sock = the connection's slot, ss = its
 * TCP peer. A datagram sent to a closed (or reused) slot is dropped, as a UDP datagram to a
 * vanished NAT mapping would be; the peer reconnects and roams back. */
#ifndef AWGPROXY_CARRIER_TLS_SERVER_H
#define AWGPROXY_CARRIER_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "device/tunnel.h"

typedef struct tls_server tls_server;

typedef struct {
  uint64_t accepted;              /* TCP connections taken */
  uint64_t peers;                 /* connections that passed the gate */
  uint64_t decoys;                /* connections answered as a web server */
  uint64_t refused;               /* over TLS_SERVER_MAX_CONNS, or a failed handshake */
  uint64_t open;                  /* connections now */
  uint64_t frames_in, frames_out; /* AWG datagrams carried for peers */
  uint64_t frames_dropped;        /* not sent: the connection was gone or too far behind */
  uint64_t upstream_failed;       /* decoys whose TlsDecoyUpstream could not be reached */
} tls_server_stats;

#define TLS_SERVER_MAX_CONNS 1024
#define TLS_SERVER_GATE_MS 30000 /* a connection must show an initiation within this */
#define TLS_SERVER_IDLE_MS 75000 /* a decoy connection idle this long is closed (nginx's) */
#define TLS_SERVER_HANDSHAKE_MS 10000

/* Listens on cfg's TlsListen addresses and attaches itself to t as its TLS carrier. t must
 * outlive it; what it needs of cfg is copied. NULL with err (which address, what failed). */
tls_server *tls_server_open(uv_loop_t *loop, const app_config *cfg, tunnel *t, char *err,
                            size_t errlen);
void tls_server_stats_get(const tls_server *s, tls_server_stats *out);

/* A reload, in two steps so that a bad certificate changes nothing. Prepare reads cfg's
 * TlsCert/TlsKey again (a certificate renewed in place, as certbot does, is taken) or, without
 * them, keeps the self-signed certificate unless TlsName changed; NULL with err naming the file
 * and the fault. Commit puts it and TlsDecoy in place for new connections (open ones keep what
 * they started with) and takes the prepared config; abandon frees it unused. TlsListen is
 * restart-only (config_keep_restart_only). */
typedef struct tls_server_update tls_server_update;
tls_server_update *tls_server_reload_prepare(tls_server *s, const app_config *cfg, char *err,
                                             size_t errlen);
void tls_server_reload_commit(tls_server *s, tls_server_update *u);
void tls_server_reload_abandon(tls_server_update *u);
/* Detaches from the tunnel, closes the listeners and every connection; frees itself once libuv
 * has closed them. */
void tls_server_close(tls_server *s);

#endif
