/* The daemon's state, shared by daemon.c (start, run, stop) and reload.c (SIGHUP and the control
 * API's POST /reload). */
#ifndef AWGPROXY_DAEMON_DAEMON_INTERNAL_H
#define AWGPROXY_DAEMON_DAEMON_INTERNAL_H

#include <uv.h>

#include "client/server_set.h"
#include "client/upstream.h"
#include "daemon/daemon.h"
#include "device/tunnel.h"
#include "dns/resolver.h"
#include "exit/exit.h"
#include "forward/forward.h"
#include "http/http_proxy.h"
#include "daemon/observe.h"
#include "socks/socks_server.h"
#include "quic/quic_client.h"
#include "stream/dgram_flow.h"
#include "stream/dialer.h"

typedef struct {
  uv_loop_t *loop;
  uv_signal_t sigint, sigterm, sighup, sigusr1;
  daemon_role role;
  /* The config the daemon was started with (owned by the caller). The SOCKS server, the HTTP
   * proxy and the forwarder keep pointing into it for their whole life: their keys need a restart,
   * so it never changes and is never freed while they run. */
  app_config *initial;
  /* The config in effect: initial, or the latest reload's (owned here, heap). The tunnel, the
   * exit and the observe endpoints point into it. */
  app_config *cfg;
  /* Client: its one server (up) or, with several configs, the set of them (set). The pointers
   * below are borrowed from whichever it is. */
  upstream up;
  server_set *set;
  /* With a set: what it was loaded from (for reloads, reload_set.c), the set it started with
   * (the caller's; never freed here: the front-ends point into its front) and the one in effect
   * (initial, or the latest reload's, heap). */
  const char *const *set_paths;
  size_t n_set_paths;
  config_set *set_initial, *set_cur;
  tunnel *tun;                /* the server's own; the client's one server's (NULL with a set) */
  struct tls_server *tls_srv; /* the server's TLS carrier ([Server] TlsListen), or NULL */
  resolver *res;              /* client: the front-ends' resolver */
  dialer *dl;                 /* client: how the front-ends open streams */
  quic_client *quic;          /* client with one server: its QUIC transport */
  dgram_opener *dg;           /* client: how the front-ends open UDP flows */
  socks_server *socks;
  forwarder *fwd;
  /* client, [Socks] Mode = forward (client/socks_forward.h): the listeners as forwards */
  forwarder *socks_fwd;
  dialer *socks_fwd_dl;
  app_config *socks_fwd_cfg;
  http_proxy *http;              /* client: [Http] Listen */
  exit_ctx *exit;                /* server: the userspace exit */
  observe *obs;                  /* [Metrics] and [Control] endpoints */
  const worker_identity *worker; /* server worker (daemon/workers.h), NULL otherwise */
  struct worker_rpc *rpc;        /* worker: answers its supervisor */
} daemon_state;

/* Loads s->cfg->path again and applies it (see reload.c); report may be NULL. */
void daemon_reload(daemon_state *s, obs_reload_report *report);
/* The same for a client with several servers (reload_set.c): every file again. */
void daemon_reload_set(daemon_state *s, obs_reload_report *r);
/* reload.c, shared with reload_set.c */
void daemon_reload_failed(obs_reload_report *r, const char *fmt, const char *arg);
void daemon_reload_diags(const diag_list *d, const char *path, obs_reload_report *r);
void daemon_apply_log_settings(const app_config *c);
/* The reload's log line (also the supervisor's, for all its workers: w NULL). */
void daemon_log_reloaded(const obs_reload_report *r, const worker_identity *w);
/* Frees s->cfg if it is not the initial config (at shutdown, after everything stopped). */
void daemon_release_config(daemon_state *s);

#endif
