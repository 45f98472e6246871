/* Reload of a client with several servers (SIGHUP, POST /reload): every file is loaded again as
 * at start (config/config_set.h). All or nothing: an error in any file, or a running server's
 * file gone, changes nothing. Then, per server (matched by name), the restart-only keys keep
 * their running values and its tunnel switches to the new peers; the merged front-end applies
 * [Log] (its other keys need a restart, as with one file). A file added joins at the next
 * restart: the answer says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_diff.h"
#include "config/config_set.h"
#include "daemon/daemon_internal.h"
#include "util/log.h"

static void report_files(const cfg_set_report *rep, obs_reload_report *r) {
  for (size_t i = 0; i < rep->n; i++)
    daemon_reload_diags(&rep->files[i].diags, rep->files[i].path, r);
  daemon_reload_diags(&rep->whole, rep->label, r);
}

/* Appends the restart-only keys that differ (running values kept) to the answer. */
static int keep_running(app_config *loaded, const app_config *running, obs_reload_report *r) {
  const char *names[CFG_RESTART_KEYS_MAX];
  int n = config_keep_restart_only(loaded, running, names, CFG_RESTART_KEYS_MAX);
  for (int k = 0; k < n; k++) {
    bool dup = false;
    for (size_t j = 0; j < r->n_restart_keys; j++) dup |= !strcmp(r->restart_keys[j], names[k]);
    if (!dup && r->n_restart_keys < sizeof r->restart_keys / sizeof r->restart_keys[0])
      r->restart_keys[r->n_restart_keys++] = names[k];
    LOG_W("daemon", "reload_needs_restart", "key", names[k], "file", loaded->path, "msg",
          "changed in the file but needs a restart; the running value stays", NULL);
  }
  return n;
}

static void add_restart_note(obs_reload_report *r, const char *note) {
  if (r->n_restart_keys < sizeof r->restart_keys / sizeof r->restart_keys[0])
    r->restart_keys[r->n_restart_keys++] = note;
}

/* Matches the running servers with the loaded set and applies each one's file. */
static int apply_servers(daemon_state *s, config_set *ns, obs_reload_report *r) {
  char err[256];
  size_t n = server_set_count(s->set);
  bool *seen = calloc(ns->n ? ns->n : 1, sizeof *seen);
  if (!seen) return daemon_reload_failed(r, "%s", "out of memory"), -1;
  for (size_t i = 0; i < n; i++) {
    server_status st;
    server_set_status(s->set, i, &st);
    int j = config_set_find(ns, st.name);
    seen[j] = true; /* every running server is in ns: checked by the caller */
    app_config *nc = &ns->servers[j].cfg;
    tunnel_reload_stats ts;
    if (keep_running(nc, st.cfg, r) < 0 ||
        server_set_reload_server(s->set, i, nc, &ts, err, sizeof err) != 0) {
      free(seen);
      return daemon_reload_failed(r, "%s", err[0] ? err : "out of memory"), -1;
    }
    r->peers_added += ts.added, r->peers_removed += ts.removed;
    r->peers_changed += ts.changed, r->peers_unchanged += ts.unchanged;
  }
  for (size_t j = 0; j < ns->n; j++)
    if (!seen[j]) {
      LOG_W("daemon", "reload_needs_restart", "server", ns->servers[j].name, "msg",
            "a new config file: its server joins at the next restart", NULL);
      add_restart_note(r, "a server's config file was added");
    }
  free(seen);
  return 0;
}

/* The name of a running server whose file is no longer in ns, or NULL. Removing a server needs a
 * restart, and it would run on with a config the reload frees: such a reload changes nothing. */
static const char *server_gone(daemon_state *s, const config_set *ns) {
  for (size_t i = 0; i < server_set_count(s->set); i++) {
    server_status st;
    server_set_status(s->set, i, &st);
    if (config_set_find(ns, st.name) < 0) return st.name;
  }
  return NULL;
}

void daemon_reload_set(daemon_state *s, obs_reload_report *r) {
  LOG_I("daemon", "reload_started", "files", s->set_paths[0], NULL);
  config_set *ns = calloc(1, sizeof *ns);
  cfg_set_report rep = {0};
  if (!ns) return daemon_reload_failed(r, "%s", "out of memory");
  int rc = config_set_load(ns, s->set_paths, s->n_set_paths, &rep);
  report_files(&rep, r);
  size_t errors = rep.errors;
  cfg_set_report_free(&rep);
  if (rc != 0 || errors) {
    char msg[200];
    snprintf(msg, sizeof msg, "%zu error(s) in the files; nothing changed", errors);
    config_set_free(ns);
    free(ns);
    return daemon_reload_failed(r, "%s", msg);
  }
  const char *gone = server_gone(s, ns);
  if (gone) {
    if (r->n_msgs < OBS_RELOAD_MAX_MSGS)
      snprintf(r->msgs[r->n_msgs++], sizeof r->msgs[0],
               "%.150s: error: server %.63s is running but its file is not in the set any more",
               s->set_paths[0], gone);
    config_set_free(ns);
    free(ns);
    return daemon_reload_failed(r,
                                "server %s: its file is gone (or left out); removing a server "
                                "needs a restart, nothing changed",
                                gone);
  }
  if (keep_running(&ns->front, s->cfg, r) < 0) {
    config_set_free(ns);
    free(ns);
    return daemon_reload_failed(r, "%s", "out of memory");
  }
  if (apply_servers(s, ns, r) != 0) {
    /* Out of memory half way: the servers reloaded before point into ns, the others into the
     * previous set; both stay allocated (ns is left to the process's end). */
    return;
  }
  observe_set_config(s->obs, &ns->front);
  daemon_apply_log_settings(&ns->front);
  daemon_release_config(s); /* the previous reload's set, never the initial one */
  s->set_cur = ns;
  s->cfg = &ns->front;
  r->ok = true;
  daemon_log_reloaded(r, NULL);
}
