/* Observability endpoints of a running daemon:
 *  - [Metrics] Listen: Prometheus text format at GET /metrics (docs/observability.md lists the
 *    metrics);
 *  - [Control] Listen: an HTTP+JSON API on a unix socket (mode 0600) or a loopback address:
 *    GET /status, GET /peers, GET /streams, POST /reload.
 * Both read the live state of the tunnel and the front-ends on the loop thread; neither can see a
 * key, a password or a destination address. */
#ifndef AWGPROXY_OBSERVE_OBSERVE_H
#define AWGPROXY_OBSERVE_OBSERVE_H

#include <uv.h>

#include "config/config.h"
#include "device/tunnel.h"
#include "dns/resolver.h"
#include "observe/buf.h"
#include "socks/socks_server.h"

/* What the endpoints report on; any pointer but cfg may be NULL (that part is left out). */
typedef struct {
  const char *role; /* "client" or "server" */
  const awg_config *cfg;
  const tunnel *tun;
  const socks_server *socks;
  const resolver *res;
  uint64_t started_ns; /* uv_hrtime() at start, for the uptime */
} obs_sources;

typedef struct observe observe;

/* Starts the endpoints cfg enables (none: an idle handle). NULL with a message in err when one
 * cannot listen. */
observe *observe_start(uv_loop_t *loop, const obs_sources *src, char *err, size_t errlen);
void observe_stop(observe *o);

/* The documents themselves (for the endpoints and the tests). */
void observe_render_metrics(const obs_sources *src, obs_buf *out);
void observe_render_status(const obs_sources *src, obs_buf *out);
void observe_render_peers(const obs_sources *src, obs_buf *out);
void observe_render_streams(const obs_sources *src, obs_buf *out);

#endif
