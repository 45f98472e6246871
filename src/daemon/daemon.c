#include "daemon/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <uv.h>

#include "device/tunnel.h"
#include "util/keys.h"
#include "util/log.h"

typedef struct {
  uv_loop_t *loop;
  uv_signal_t sigint, sigterm, sighup;
  daemon_role role;
  awg_config *cfg;
  tunnel *tun;
} daemon_state;

static void on_stop_signal(uv_signal_t *h, int signum) {
  daemon_state *s = h->data;
  LOG_I("daemon", "stopping", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  uv_stop(s->loop);
}

static void on_hup(uv_signal_t *h, int signum) {
  LOG_I("daemon", "reload", "status", "not yet supported in this build; restart to apply", NULL);
}

static void close_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int daemon_run(daemon_role role, awg_config *c) {
  daemon_state s = {.loop = uv_default_loop(), .role = role, .cfg = c};
  uv_signal_t *sigs[] = {&s.sigint, &s.sigterm, &s.sighup};
  int nums[] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(s.loop, sigs[i]);
    sigs[i]->data = &s;
    uv_signal_start(sigs[i], nums[i] == SIGHUP ? on_hup : on_stop_signal, nums[i]);
  }
  signal(SIGPIPE, SIG_IGN);
  char fp[9];
  key_fingerprint(c->public_key, fp);
  LOG_I("daemon", "started", "role", role == DAEMON_CLIENT ? "client" : "server", "key", fp,
        "version", AWGPROXY_VERSION, NULL);
  char err[256] = "";
  s.tun = tunnel_create(s.loop, c, err, sizeof err);
  if (!s.tun) {
    LOG_E("daemon", "start_failed", "error", err, NULL);
    fprintf(stderr, "awgproxy: %s\n", err);
    uv_walk(s.loop, close_cb, NULL);
    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    return 1;
  }
  uv_run(s.loop, UV_RUN_DEFAULT);
  tunnel_destroy(s.tun);
  uv_walk(s.loop, close_cb, NULL);
  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  LOG_I("daemon", "stopped", NULL);
  return 0;
}
