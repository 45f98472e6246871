/* Configuration reload (SIGHUP, POST /reload, `awgproxy ctl reload`).
 *
 * 1. Load and validate the file again. Any error: log each one (file:line), keep running on the
 *    old config untouched.
 * 2. Keys that cannot change at run time keep their running values; each one that changed in the
 *    file is named in a warning ("needs a restart"), see config/config_diff.h.
 * 3. Swap: the TLS carrier's certificate and decoy (files read again), the tunnel (peers,
 *    AllowedIPs, MaxSessions), the exit (per-peer rules, AllowPrivate),
 *    the observe endpoints and [Log] Level/Format switch to the new config; then the previous
 *    config is freed, since nothing points into it any more (the initial config is kept: the
 *    SOCKS server, the HTTP proxy and the forwarder use it until shutdown).
 * 4. One log line with the counts (component=daemon event=reloaded). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/tls_server.h"
#include "config/config_diff.h"
#include "config/config_set.h"
#include "daemon/daemon_internal.h"
#include "util/log.h"

void daemon_reload_diags(const diag_list *d, const char *path, obs_reload_report *r) {
  for (size_t i = 0; i < d->n; i++) {
    const diag *g = &d->items[i];
    char line[16];
    snprintf(line, sizeof line, "%d", g->line);
    log_event(g->kind == DIAG_ERROR ? LOG_ERROR : LOG_WARN, "config",
              g->kind == DIAG_ERROR ? "invalid" : "warning", "file", path, "line", line, "msg",
              g->msg, NULL);
    /* The answer lists the errors of a refused file, or the warnings of an applied one. */
    bool wanted = (g->kind == DIAG_ERROR) == (d->errors > 0);
    if (!wanted || r->n_msgs >= OBS_RELOAD_MAX_MSGS) continue;
    snprintf(r->msgs[r->n_msgs++], sizeof r->msgs[0], "%.150s:%d: %s: %.420s", path, g->line,
             g->kind == DIAG_ERROR ? "error" : "warning", g->msg);
  }
}

void daemon_reload_failed(obs_reload_report *r, const char *fmt, const char *arg) {
  r->ok = false;
  snprintf(r->error, sizeof r->error, fmt, arg);
  LOG_E("daemon", "reload_failed", "error", r->error, "msg", "still running on the previous config",
        NULL);
}

/* Steps 1 and 2: a validated config with the restart-only keys as running, or NULL. */
static app_config *load_new(daemon_state *s, obs_reload_report *r) {
  const char *path = s->cfg->path;
  app_config *nc = calloc(1, sizeof *nc);
  if (!nc) return daemon_reload_failed(r, "%s", "out of memory"), NULL;
  config_init(nc);
  diag_list d = {0};
  int rc = config_load_file(nc, path, &d);
  if (rc == 0 && s->worker) worker_shard_config(nc, s->worker);
  daemon_reload_diags(&d, path, r);
  size_t errors = d.errors;
  diag_list_free(&d);
  if (rc != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "%zu error(s) in the file; nothing changed", errors);
    daemon_reload_failed(r, "%s", msg);
  } else {
    int n = config_keep_restart_only(nc, s->cfg, r->restart_keys,
                                     sizeof r->restart_keys / sizeof r->restart_keys[0]);
    if (n >= 0) {
      r->n_restart_keys = (size_t)n;
      for (int i = 0; i < n; i++)
        LOG_W("daemon", "reload_needs_restart", "key", r->restart_keys[i], "msg",
              "changed in the file but needs a restart; the running value stays", NULL);
      return nc;
    }
    daemon_reload_failed(r, "%s", "out of memory");
  }
  config_free(nc);
  free(nc);
  return NULL;
}

void daemon_apply_log_settings(const app_config *c) {
  if (c->log_level >= 0 && !getenv("LOG_LEVEL")) log_set_level((log_level)c->log_level);
  if (c->log_format >= 0 && !getenv("LOG_FORMAT")) log_set_format((log_format)c->log_format);
}

/* One line per reload; a server worker says which share it reloaded (its supervisor logs the
 * whole: workers.c). */
void daemon_log_reloaded(const obs_reload_report *r, const worker_identity *w) {
  char a[16], rm[16], ch[16], un[16], keys[600] = "";
  snprintf(a, sizeof a, "%zu", r->peers_added);
  snprintf(rm, sizeof rm, "%zu", r->peers_removed);
  snprintf(ch, sizeof ch, "%zu", r->peers_changed);
  snprintf(un, sizeof un, "%zu", r->peers_unchanged);
  for (size_t i = 0; i < r->n_restart_keys; i++) {
    size_t l = strlen(keys);
    snprintf(keys + l, sizeof keys - l, "%s%s", i ? "," : "", r->restart_keys[i]);
  }
  char wk[24];
  snprintf(wk, sizeof wk, "%u/%u", w ? w->index : 0, w ? w->count : 1);
  if (w)
    LOG_I("daemon", "worker_reloaded", "worker", wk, "peers_added", a, "peers_removed", rm,
          "peers_changed", ch, "peers_unchanged", un, NULL);
  else
    LOG_I("daemon", "reloaded", "peers_added", a, "peers_removed", rm, "peers_changed", ch,
          "peers_unchanged", un, "restart_required", keys[0] ? keys : "none", NULL);
}

void daemon_reload(daemon_state *s, obs_reload_report *report) {
  obs_reload_report local;
  obs_reload_report *r = report ? report : &local;
  memset(r, 0, sizeof *r);
  if (s->set) return daemon_reload_set(s, r);
  LOG_I("daemon", "reload_started", "file", s->cfg->path, NULL);
  app_config *nc = load_new(s, r);
  if (!nc) return;
  /* Step 3. What can fail first, while nothing has changed yet: the TLS carrier's certificate
   * (a file may be broken), then the tunnel (out of memory). */
  char err[256]; /* the report's size */
  tls_server_update *tls = NULL;
  if (s->tls_srv && !(tls = tls_server_reload_prepare(s->tls_srv, nc, err, sizeof err))) {
    config_free(nc);
    free(nc);
    return daemon_reload_failed(r, "%s", err);
  }
  tunnel_reload_stats st;
  if (tunnel_reload(s->tun, nc, &st, err, sizeof err) != 0) {
    tls_server_reload_abandon(tls);
    config_free(nc);
    free(nc);
    return daemon_reload_failed(r, "%s", err);
  }
  if (tls) tls_server_reload_commit(s->tls_srv, tls);
  if (s->exit) exit_reload(s->exit, nc);
  observe_set_config(s->obs, nc);
  daemon_apply_log_settings(nc);
  daemon_release_config(s);
  s->cfg = nc;
  r->ok = true;
  r->peers_added = st.added;
  r->peers_removed = st.removed;
  r->peers_changed = st.changed;
  r->peers_unchanged = st.unchanged;
  daemon_log_reloaded(r, s->worker);
}

void daemon_release_config(daemon_state *s) {
  if (s->set_cur && s->set_cur != s->set_initial) {
    config_set_free(s->set_cur);
    free(s->set_cur);
  }
  s->set_cur = s->set_initial;
  if (s->set_initial) {
    s->cfg = s->initial; /* the set's front: the caller's */
    return;
  }
  if (s->cfg && s->cfg != s->initial) {
    config_free(s->cfg);
    free(s->cfg);
  }
  s->cfg = s->initial;
}
