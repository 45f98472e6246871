/* The client's side of the QUIC transport: one QUIC connection to the server's tunnel address
 * (config_quic_server), carried as inner UDP packets through the tunnel, and the choice between
 * it and the ip path ([Peer] Transport):
 *   quic  every stream goes over QUIC; while the connection is not up, new streams wait for it
 *         (up to [Socks] TunnelWait) and fail with "tunnel down";
 *   auto  a QUIC handshake is tried once the tunnel is up; streams take the ip path until it
 *         completes (never waiting for it). No answer within QUIC_PROBE_MS (a stock
 *         AmneziaWG/WireGuard server) means the ip path, and QUIC is tried again every
 *         QUIC_RETRY_MS; a QUIC connection that dies sends new streams to the ip path until a
 *         new one is up (streams already open on either path are left alone);
 *   ip    QUIC is never tried.
 * Liveness comes from QUIC itself (PINGs every 10 s, 30 s idle timeout); opening a stream never
 * makes the tunnel handshake. */
#ifndef AWGPROXY_QUIC_QUIC_CLIENT_H
#define AWGPROXY_QUIC_QUIC_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "device/tunnel.h"
#include "quic/quic_conn.h"
#include "stream/dial_types.h"
#include "stream/stream.h"

#define QUIC_PROBE_MS 1500
#define QUIC_RETRY_MS (3 * 60 * 1000)
#define QUIC_REDIAL_MS 2000 /* after a connection that worked was lost */

typedef struct quic_client quic_client;

typedef enum {
  QUIC_ROUTE_IP,      /* use the ip path */
  QUIC_ROUTE_QUIC,    /* the connection is up */
  QUIC_ROUTE_PENDING, /* Transport = quic and no connection yet: wait for one */
} quic_route;

/* [Peer] Congestion as the QUIC layer names it (the client's and the server's). */
quic_cc quic_cc_of(cfg_congestion c);

/* NULL with err on failure; a client whose peer says Transport = ip gets an object that always
 * routes to ip. A dial waits up to tunnel_wait_ms for a connection ([Socks] TunnelWait), then up
 * to connect_timeout_ms for the server's answer ([Socks] ConnectTimeout: a timeout). */
quic_client *quic_client_start(uv_loop_t *loop, tunnel *tun, const app_config *cfg,
                               uint64_t tunnel_wait_ms, uint64_t connect_timeout_ms, char *err,
                               size_t errlen);
void quic_client_stop(quic_client *qc);
/* Ends the connection now, if there is one (its open streams end with an error) and redials
 * later as after any lost connection: a client leaving this server for another. */
void quic_client_abort(quic_client *qc, const char *reason);
/* A client with several servers keeps no QUIC connection to the ones it does not use (a stock
 * client idling would send nothing like its PINGs): on, no connection is made unless a stream
 * waits for one (Transport = quic); off, one is made at once. */
void quic_client_set_standby(quic_client *qc, bool on);
quic_route quic_client_route(const quic_client *qc);
/* True when a stream QUIC could not carry may take the ip path instead (Transport = auto). */
bool quic_client_may_fall_back(const quic_client *qc);

typedef struct quic_dial quic_dial;
/* On success s is the stream, connected at the server (the reply header already read). On
 * failure err says why: a code from the server, or DIAL_ERR_TUNNEL_DOWN when the QUIC
 * connection was not usable (auto mode then falls back to the ip path). */
typedef void (*quic_dial_cb)(void *ctx, stream *s, dial_error err, const char *reason);
/* cb always runs later. NULL when out of memory. */
quic_dial *quic_dial_start(quic_client *qc, const dial_dest *dst, quic_dial_cb cb, void *ctx);
void quic_dial_cancel(quic_dial *d);

/* DATAGRAM frames (UDP flows, quic/dgram_quic.h). send: 0 when queued on the connection, -1
 * when dropped (no connection up, the queue full, too large). The sink gets every frame the
 * server sends, valid during the call; NULL fn removes it. */
int quic_client_send_dgram(quic_client *qc, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                           size_t len);
typedef void (*quic_dgram_sink)(void *ctx, const uint8_t *frame, size_t len);
void quic_client_set_dgram_sink(quic_client *qc, quic_dgram_sink fn, void *ctx);
uint64_t quic_client_now_ms(const quic_client *qc); /* its loop's clock */

typedef struct {
  bool enabled;          /* Transport is not ip */
  bool up;               /* a QUIC connection is established */
  const char *transport; /* what new streams use now: "quic" or "ip" */
  quic_conn_stats conn;
  uint64_t connects, connect_failures;
  uint64_t streams_opened;
  uint64_t stream_results[DIAL_ERR_COUNT];
} quic_client_status;
void quic_client_status_get(const quic_client *qc, quic_client_status *out);

#endif
