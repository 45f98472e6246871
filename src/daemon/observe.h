/* Observability endpoints of a running daemon:
 *  - [Metrics] Listen: Prometheus text format at GET /metrics (docs/observability.md lists the
 *    metrics);
 *  - [Control] Listen: an HTTP+JSON API on a unix socket (mode 0600) or a loopback address:
 *    GET /status, GET /peers, GET /streams, POST /reload.
 * Both read the live state of the tunnel and the front-ends on the loop thread; neither can see a
 * key, a password or a destination address. */
#ifndef AWGPROXY_DAEMON_OBSERVE_H
#define AWGPROXY_DAEMON_OBSERVE_H

#include <uv.h>

#include "client/server_set.h"
#include "config/config.h"
#include "device/tunnel.h"
#include "dns/resolver.h"
#include "exit/exit.h"
#include "quic/quic_client.h"
#include "observe/buf.h"
#include "socks/socks_server.h"

#define OBS_RELOAD_MAX_MSGS 32

/* What POST /reload did (filled by the daemon's reload). */
typedef struct {
  bool ok;         /* false: nothing changed (invalid file, out of memory) */
  char error[256]; /* when !ok: the summary */
  /* When !ok: the file's errors; when ok: its warnings. "FILE:LINE: message" each. */
  char msgs[OBS_RELOAD_MAX_MSGS][600];
  size_t n_msgs;
  const char *restart_keys[48]; /* keys that changed but need a restart (kept as running) */
  size_t n_restart_keys;
  size_t peers_added, peers_removed, peers_changed, peers_unchanged;
} obs_reload_report;

/* Runs a reload (the same as SIGHUP) and describes it. */
typedef void (*obs_reload_fn)(void *ctx, obs_reload_report *out);

/* What the endpoints report on; any pointer but cfg may be NULL (that part is left out). */
typedef struct {
  const char *role; /* "client" or "server" */
  const app_config *cfg;
  const tunnel *tun;
  const socks_server *socks;    /* the client's SOCKS front-end */
  const exit_ctx *exit;         /* the server's exit: its counters, QUIC peers and SOCKS service */
  const quic_client *quic;      /* the client's QUIC transport */
  const struct tls_server *tls; /* the server's TLS carrier ([Server] TlsListen) */
  /* A client with several servers: tun and quic are then the selected server's, read at each
   * request, and /servers, /connect, /disconnect and the awgproxy_server_* metrics exist. */
  server_set *servers;
  const resolver *res;
  uint64_t started_ns;  /* uv_hrtime() at start, for the uptime */
  obs_reload_fn reload; /* NULL: POST /reload answers 501 */
  void *reload_ctx;
  /* A server worker (daemon/workers.h): its peer objects say which worker it is. */
  bool in_worker;
  unsigned worker;
  /* A server's supervisor: tun, exit, … are NULL and the documents are put together from the
   * workers' parts, which gather fills (parts[i] = worker i's observe_render_part, left empty
   * when it did not answer); it returns how many answered. */
  unsigned (*gather)(void *ctx, char what, obs_buf *parts, unsigned n);
  void *gather_ctx;
  unsigned workers;
} obs_sources;

/* The parts a worker renders for its supervisor. */
#define OBS_PART_METRICS 'M' /* its whole metrics page */
#define OBS_PART_STATUS 'S'  /* its counts, then its peer objects (as in /status), one per line */
#define OBS_PART_PEERS 'P'   /* the same with the peer objects of /peers */

typedef struct observe observe;

/* Starts the endpoints cfg enables (none: an idle handle). NULL with a message in err when one
 * cannot listen. */
observe *observe_start(uv_loop_t *loop, const obs_sources *src, char *err, size_t errlen);
void observe_stop(observe *o);
/* After a reload: the config to report on from now on (the endpoints' listeners stay). */
void observe_set_config(observe *o, const app_config *cfg);

/* The documents themselves (for the endpoints and the tests). */
void observe_render_metrics(const obs_sources *src, obs_buf *out);
void observe_render_status(const obs_sources *src, obs_buf *out);
void observe_render_peers(const obs_sources *src, obs_buf *out);
void observe_render_streams(const obs_sources *src, obs_buf *out);
/* A worker's part (OBS_PART_*) for its supervisor. */
void observe_render_part(const obs_sources *src, char what, obs_buf *out);
/* The same from the sources o was started with. */
void observe_render_own(const observe *o, char what, obs_buf *out);
/* The POST /reload answer; returns the HTTP status (200 applied, 422 file not usable, 500). */
int observe_render_reload(const obs_reload_report *r, obs_buf *out);

#endif
