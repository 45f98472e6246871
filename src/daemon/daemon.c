#include "daemon/daemon.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "client/socks_forward.h"
#include "config/config_set.h"
#include "carrier/tls_server.h"
#include "daemon/daemon_internal.h"
#include "daemon/worker_rpc.h"
#include "stream/icmp_watch.h"
#include "stream/stream_lwip.h"
#include "util/keys.h"
#include "util/log.h"
#include "util/loop_turn.h"

static void on_stop_signal(uv_signal_t *h, int signum) {
  daemon_state *s = h->data;
  LOG_I("daemon", "stopping", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  uv_stop(s->loop);
}

static void on_hup(uv_signal_t *h, int signum) {
  (void)signum;
  daemon_reload(h->data, NULL);
}

static void on_usr1(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  stream_lwip_log_state();
}

static void on_drain_guard(uv_timer_t *t) { uv_stop(t->loop); }

/* After stop_all: the loop runs until everything that was closing has closed and freed itself
 * (streams and relays end through deferred callbacks, several turns deep), so nothing is cut
 * short by the forced close below and nothing leaks. An unreferenced guard timer ends the wait
 * if something still holds the loop after DRAIN_MS. */
#define DRAIN_MS 3000
static void drain(daemon_state *s) {
  uv_signal_t *sigs[] = {&s->sigint, &s->sigterm, &s->sighup, &s->sigusr1};
  for (int i = 0; i < 4; i++)
    if (!uv_is_closing((uv_handle_t *)sigs[i])) uv_close((uv_handle_t *)sigs[i], NULL);
  uv_timer_t guard;
  uv_timer_init(s->loop, &guard);
  uv_timer_start(&guard, on_drain_guard, DRAIN_MS, 0);
  uv_unref((uv_handle_t *)&guard);
  uv_run(s->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(s->loop, UV_RUN_NOWAIT);
}

static void on_reload_request(void *ctx, obs_reload_report *out) { daemon_reload(ctx, out); }

static void close_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static const upstream *pick_upstream(void *ctx) {
  daemon_state *s = ctx;
  return s->set ? server_set_selected(s->set) : &s->up;
}

static bool pin_route(void *ctx, const char *server, socks_route *out) {
  return server_set_route(ctx, server, &out->dl, &out->dg, &out->res);
}

static dialer *http_pin(void *ctx, const char *server) {
  socks_route r = {0};
  pin_route(ctx, server, &r);
  return r.dl;
}

/* [Socks]: our SOCKS server, or in forward mode forwards of its listeners to the selected
 * server's own SOCKS service. */
static int start_socks(daemon_state *s, char *err, size_t errlen) {
  if (s->cfg->socks_mode != SOCKS_MODE_FORWARD) {
    s->socks = socks_server_start(s->loop, s->cfg, s->dl, s->dg, s->res, err, errlen);
    if (s->socks && s->set) socks_server_set_pins(s->socks, pin_route, s->set);
    return s->socks ? 0 : -1;
  }
  s->socks_fwd_dl = socks_forward_dialer_new(s->loop, pick_upstream, s);
  s->socks_fwd_cfg = socks_forward_config(s->cfg);
  if (!s->socks_fwd_dl || !s->socks_fwd_cfg) return snprintf(err, errlen, "out of memory"), -1;
  s->socks_fwd =
      forwarder_start(s->loop, s->socks_fwd_cfg, s->socks_fwd_dl, s->dg, s->res, err, errlen);
  if (!s->socks_fwd) return -1;
  for (size_t i = 0; i < s->cfg->n_socks_listen; i++) {
    char a[300];
    cfg_format_hostport(&s->cfg->socks_listen[i], a, sizeof a);
    LOG_I("socks", "listening", "address", a, "mode", "forward", "to",
          "the selected server's SOCKS service (its tunnel address, port 1080)", NULL);
  }
  return 0;
}

/* The client role serves SOCKS (and HTTP, with [Http] Listen) through the tunnel; names resolve
 * through it too. */
static int start_frontends(daemon_state *s, char *err, size_t errlen) {
  if (icmp_watch_start() != 0) return snprintf(err, errlen, "cannot watch ICMP"), -1;
  if (s->role != DAEMON_CLIENT) {
    s->exit = exit_start(s->loop, s->tun, s->cfg, err, errlen);
    return s->exit ? 0 : -1;
  }
  if (s->set) {
    s->dl = server_set_dialer(s->set);
    s->dg = server_set_dgram(s->set);
    s->res = server_set_resolver(s->set);
  } else {
    s->dl = s->up.dl;
    s->dg = s->up.dg;
    s->res = s->up.res;
    s->quic = s->up.quic;
    if (!s->cfg->n_dns)
      LOG_W("dns", "no_dns_configured", "msg",
            "no DNS in [Interface]: names go to 1.1.1.1 and 8.8.8.8 through the tunnel", NULL);
  }
  if (start_socks(s, err, errlen) != 0) return -1;
  s->http = http_proxy_start(s->loop, s->cfg, s->dl, err, errlen);
  if (!s->http) return -1;
  if (s->set) http_proxy_set_pins(s->http, http_pin, s->set);
  s->fwd = forwarder_start(s->loop, s->cfg, s->dl, s->dg, s->res, err, errlen);
  return s->fwd ? 0 : -1;
}

static void stop_all(daemon_state *s) {
  worker_rpc_stop(s->rpc);
  s->rpc = NULL;
  observe_stop(s->obs);
  s->obs = NULL;
  exit_stop(s->exit);
  s->exit = NULL;
  socks_server_stop(s->socks);
  s->socks = NULL;
  http_proxy_stop(s->http);
  s->http = NULL;
  forwarder_stop(s->fwd);
  s->fwd = NULL;
  forwarder_stop(s->socks_fwd);
  s->socks_fwd = NULL;
  dialer_destroy(s->socks_fwd_dl); /* after the forwarder: it cancelled its requests */
  s->socks_fwd_dl = NULL;
  socks_forward_config_free(s->socks_fwd_cfg);
  s->socks_fwd_cfg = NULL;
  /* The client's servers after their users: these cancelled their requests, closed their flows */
  s->dl = NULL, s->dg = NULL, s->res = NULL, s->quic = NULL;
  if (s->role == DAEMON_CLIENT) {
    server_set_stop(s->set);
    s->set = NULL;
    if (s->up.tun) upstream_stop(&s->up);
    s->tun = NULL;
  }
  icmp_watch_stop();
  tls_server_close(s->tls_srv);
  s->tls_srv = NULL;
  tunnel_destroy(s->tun); /* the server's */
  s->tun = NULL;
}

/* A worker's answers to its supervisor: parts of the documents, or a reload. */
static void on_rpc(void *ctx, char what, obs_buf *out) {
  daemon_state *s = ctx;
  if (what != WORKER_RPC_RELOAD) return observe_render_own(s->obs, what, out);
  worker_reload_wire *w = calloc(1, sizeof *w);
  if (!w) return;
  daemon_reload(s, &w->r);
  for (size_t i = 0; i < w->r.n_restart_keys && i < 48; i++) {
    snprintf(w->keys[i], sizeof w->keys[i], "%s", w->r.restart_keys[i]);
    w->r.restart_keys[i] = NULL;
  }
  obs_buf_append(out, (const char *)w, sizeof *w);
  free(w);
}

static void on_supervisor_gone(void *ctx) {
  daemon_state *s = ctx;
  LOG_W("daemon", "stopping", "reason", "the supervisor has gone", NULL);
  uv_stop(s->loop);
}

/* After the front-ends, so that the endpoints can report on them. */
static int start_observe(daemon_state *s, char *err, size_t errlen) {
  obs_sources src = {.role = s->role == DAEMON_CLIENT ? "client" : "server",
                     .cfg = s->cfg,
                     .tun = s->tun,
                     .socks = s->socks,
                     .exit = s->exit,
                     .quic = s->quic,
                     .tls = s->tls_srv,
                     .servers = s->set,
                     .res = s->res,
                     .started_ns = uv_hrtime(),
                     .reload = on_reload_request,
                     .reload_ctx = s,
                     .in_worker = s->worker != NULL,
                     .worker = s->worker ? s->worker->index : 0};
  s->obs = observe_start(s->loop, &src, err, errlen);
  if (!s->obs) return -1;
  if (!s->worker) return 0;
  s->rpc = worker_rpc_start(s->loop, s->worker->rpc_fd, on_rpc, on_supervisor_gone, s);
  return s->rpc ? 0 : (snprintf(err, errlen, "cannot watch the supervisor's socket"), -1);
}

static tunnel *create_tunnel(daemon_state *s, char *err, size_t errlen) {
  const worker_identity *w = s->worker;
  if (!w) return tunnel_create(s->loop, s->cfg, err, errlen);
  tunnel_shard sh = {w->index,  w->count,   w->inbox_fd, w->outbox_fds,
                     w->counts, w->udp4_fd, w->udp6_fd,  {0}};
  memcpy(sh.cookie_seed, w->cookie_seed, sizeof sh.cookie_seed);
  tunnel *t = tunnel_create_shard(s->loop, s->cfg, &sh, err, errlen);
  sodium_memzero(sh.cookie_seed, sizeof sh.cookie_seed);
  return t;
}

/* A client's servers: several (a set), or its config's one. */
typedef struct {
  const char *const *names;
  const app_config *const *cfgs;
  size_t n;
  config_set *set;
  const char *const *paths;
  size_t n_paths;
} client_servers;

/* The server's tunnel, or the client's server(s) with their tunnels. */
static int start_tunnels(daemon_state *s, const client_servers *cs, char *err, size_t errlen) {
  if (s->role != DAEMON_CLIENT) {
    s->tun = create_tunnel(s, err, errlen);
    if (!s->tun) return -1;
    if (!s->cfg->n_tls_listen) return 0;
    s->tls_srv = tls_server_open(s->loop, s->cfg, s->tun, err, errlen);
    return s->tls_srv ? 0 : -1;
  }
  if (cs) {
    s->set_initial = s->set_cur = cs->set;
    s->set_paths = cs->paths;
    s->n_set_paths = cs->n_paths;
    s->set = server_set_start(s->loop, cs->names, cs->cfgs, cs->n, s->cfg, err, errlen);
    return s->set ? 0 : -1;
  }
  if (upstream_start(&s->up, s->loop, s->cfg, s->cfg, err, errlen) != 0) return -1;
  s->tun = s->up.tun;
  return 0;
}

static int run(daemon_role role, app_config *c, const worker_identity *worker,
               const client_servers *cs) {
  daemon_state s = {
      .loop = uv_default_loop(), .role = role, .initial = c, .cfg = c, .worker = worker};
  uv_signal_t *sigs[] = {&s.sigint, &s.sigterm, &s.sighup, &s.sigusr1};
  int nums[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
  uv_signal_cb cbs[] = {on_stop_signal, on_stop_signal, on_hup, on_usr1};
  for (int i = 0; i < 4; i++) {
    uv_signal_init(s.loop, sigs[i]);
    sigs[i]->data = &s;
    uv_signal_start(sigs[i], cbs[i], nums[i]);
  }
  signal(SIGPIPE, SIG_IGN);
  loop_turn_start(s.loop);
  char fp[9], wk[24], ns[24];
  key_fingerprint(c->public_key, fp);
  snprintf(wk, sizeof wk, "%u/%u", worker ? worker->index : 0, worker ? worker->count : 1);
  snprintf(ns, sizeof ns, "%zu", cs ? cs->n : 1);
  LOG_I("daemon", "started", "role", role == DAEMON_CLIENT ? "client" : "server",
        cs ? "servers" : "key", cs ? ns : fp, "version", AWGPROXY_VERSION, worker ? "worker" : NULL,
        wk, NULL);
  char err[256] = "";
  if (start_tunnels(&s, cs, err, sizeof err) != 0) {
    LOG_E("daemon", "start_failed", "error", err, NULL);
    fprintf(stderr, "awgproxy: %s\n", err);
    loop_turn_stop();
    uv_walk(s.loop, close_cb, NULL);
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    return 1;
  }
  if (start_frontends(&s, err, sizeof err) != 0 || start_observe(&s, err, sizeof err) != 0) {
    LOG_E("daemon", "start_failed", "error", err, NULL);
    fprintf(stderr, "awgproxy: %s\n", err);
    stop_all(&s);
    loop_turn_stop();
    uv_walk(s.loop, close_cb, NULL);
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    return 1;
  }
  uv_run(s.loop, UV_RUN_DEFAULT);
  stop_all(&s);
  drain(&s);
  loop_turn_stop();
  uv_walk(s.loop, close_cb, NULL);
  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  daemon_release_config(&s);
  LOG_I("daemon", "stopped", NULL);
  return 0;
}

int daemon_run(daemon_role role, app_config *c, const worker_identity *worker) {
  return run(role, c, worker, NULL);
}

int daemon_run_client_set(config_set *set, const char *const *paths, size_t n_paths) {
  const char *names[CFG_SET_MAX];
  const app_config *cfgs[CFG_SET_MAX];
  size_t n = set->n < CFG_SET_MAX ? set->n : CFG_SET_MAX;
  for (size_t i = 0; i < n; i++) names[i] = set->servers[i].name, cfgs[i] = &set->servers[i].cfg;
  client_servers cs = {names, cfgs, n, set, paths, n_paths};
  return run(DAEMON_CLIENT, &set->front, NULL, &cs);
}
