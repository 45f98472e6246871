#include "daemon/daemon.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "daemon/daemon_internal.h"
#include "daemon/worker_rpc.h"
#include "quic/dgram_transport.h"
#include "quic/dialer_transport.h"
#include "stream/dgram_lwip.h"
#include "stream/dialer_lwip.h"
#include "device/path_probe.h"
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

/* The client role serves SOCKS (and HTTP, with [Http] Listen) through the tunnel; names resolve
 * through it too. */
static int start_frontends(daemon_state *s, char *err, size_t errlen) {
  if (icmp_watch_start() != 0) return snprintf(err, errlen, "cannot watch ICMP"), -1;
  if (s->role != DAEMON_CLIENT) {
    s->exit = exit_start(s->loop, s->tun, s->cfg, err, errlen);
    return s->exit ? 0 : -1;
  }
  s->res = resolver_create(s->loop, s->cfg->dns, s->cfg->n_dns);
  if (!s->res) return snprintf(err, errlen, "out of memory"), -1;
  if (!s->cfg->n_dns)
    LOG_W("dns", "no_dns_configured", "msg",
          "no DNS in [Interface]: names go to 1.1.1.1 and 8.8.8.8 through the tunnel", NULL);
  dialer_lwip_env env = {s->loop, s->tun, s->res, (uint64_t)s->cfg->connect_timeout * 1000,
                         (uint64_t)s->cfg->tunnel_wait * 1000};
  s->dl_ip = dialer_lwip_new(&env);
  if (!s->dl_ip) return snprintf(err, errlen, "out of memory"), -1;
  s->quic = quic_client_start(s->loop, s->tun, s->cfg, env.tunnel_wait_ms, env.connect_timeout_ms,
                              err, errlen);
  if (!s->quic) return -1;
  s->dl = dialer_transport_new(s->dl_ip, s->quic);
  if (!s->dl) return snprintf(err, errlen, "out of memory"), -1;
  s->dg_ip = dgram_lwip_new();
  s->dg = s->dg_ip ? dgram_transport_new(s->dg_ip, s->quic) : NULL;
  if (!s->dg) return snprintf(err, errlen, "out of memory"), -1;
  s->socks = socks_server_start(s->loop, s->cfg, s->dl, s->dg, s->res, err, errlen);
  if (!s->socks) return -1;
  s->http = http_proxy_start(s->loop, s->cfg, s->dl, err, errlen);
  if (!s->http) return -1;
  s->fwd = forwarder_start(s->loop, s->cfg, s->dl, s->dg, s->res, err, errlen);
  s->probe = path_probe_start(s->loop, s->tun, s->cfg); /* NULL: nothing to probe */
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
  dialer_destroy(s->dl); /* after its users: they cancel their requests first */
  s->dl = NULL;
  dgram_opener_destroy(s->dg); /* after its users: they closed their flows */
  s->dg = NULL;
  quic_client_stop(s->quic);
  s->quic = NULL;
  dialer_destroy(s->dl_ip);
  s->dl_ip = NULL;
  dgram_opener_destroy(s->dg_ip);
  s->dg_ip = NULL;
  path_probe_stop(s->probe);
  s->probe = NULL;
  icmp_watch_stop();
  tunnel_destroy(s->tun);
  s->tun = NULL;
  resolver_destroy(s->res);
  s->res = NULL;
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

int daemon_run(daemon_role role, app_config *c, const worker_identity *worker) {
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
  char fp[9], wk[24];
  key_fingerprint(c->public_key, fp);
  snprintf(wk, sizeof wk, "%u/%u", worker ? worker->index : 0, worker ? worker->count : 1);
  LOG_I("daemon", "started", "role", role == DAEMON_CLIENT ? "client" : "server", "key", fp,
        "version", AWGPROXY_VERSION, worker ? "worker" : NULL, wk, NULL);
  char err[256] = "";
  s.tun = create_tunnel(&s, err, sizeof err);
  if (!s.tun) {
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
