/* `awgproxy client` and `awgproxy server`: load the config, log the validation summary, then run
 * the event loop until SIGINT/SIGTERM. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/config_set.h"
#include "daemon/daemon.h"
#include "util/log.h"
#include "util/shard_counts.h"

static const char client_usage[] =
    "Usage: awgproxy client -c FILE | -c FILE -c FILE... | -c DIR/\n"
    "Connects to the [Peer] with an Endpoint and serves SOCKS4/4a/5 (default 127.0.0.1:1080) and\n"
    "the [Forward] ports through the tunnel. LOG_LEVEL=debug shows per-packet decisions.\n"
    "Several files (or a directory of *.conf): one server each, named after its file; new streams\n"
    "go to the selected one ([Client] Select), with failover (docs/client.md, Several servers).\n"
    "SIGHUP or `awgproxy ctl reload` reloads FILE: peers (added, removed, AllowedIPs, Endpoint,\n"
    "PersistentKeepalive, PresharedKey) and [Log] apply at once; keys that shape sockets or the\n"
    "wire ([Interface] keys, [Socks], [Forward], listeners) need a restart and are logged.\n"
    "A file with errors changes nothing (docs/config-reference.md 2.1). SIGTERM/SIGINT stop.\n";
static const char server_usage[] =
    "Usage: awgproxy server -c FILE\n"
    "Accepts tunnels from the configured [Peer]s and connects out on their behalf.\n"
    "SIGHUP or `awgproxy ctl reload` reloads FILE: peers (a removed one's session and exit\n"
    "connections end), their exit rules and limits, AllowPrivate, MaxSessions and [Log] apply at\n"
    "once; keys that shape sockets or the wire ([Interface] keys, [Socks], Socks, LocalSocks,\n"
    "listeners) need a restart and are logged. A file with errors changes nothing\n"
    "(docs/config-reference.md 2.1). SIGTERM/SIGINT stop cleanly.\n";

/* The daemons log the same summary `check` prints, one event per line. */
static void log_summary(const app_config *c, const diag_list *d) {
  for (size_t i = 0; i < d->n; i++) {
    char line[16];
    snprintf(line, sizeof line, "%d", d->items[i].line);
    log_event(d->items[i].kind == DIAG_ERROR ? LOG_ERROR : LOG_WARN, "config",
              d->items[i].kind == DIAG_ERROR ? "invalid" : "warning", "file", c->path, "line", line,
              "msg", d->items[i].msg, NULL);
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  if (!mem) return;
  config_print_summary(c, mem);
  fclose(mem);
  for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    while (*l == ' ') l++;
    log_event(LOG_INFO, "config", "summary", "text", l, NULL);
  }
  free(buf);
}

/* Takes the internal `--worker I/N` (a server's supervisor starting its workers) out of argv. */
static const char *take_worker_arg(int *argc, char **argv) {
  for (int i = 0; i + 1 < *argc; i++) {
    if (strcmp(argv[i], "--worker") != 0) continue;
    const char *v = argv[i + 1];
    memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2) * sizeof *argv);
    *argc -= 2;
    return v;
  }
  return NULL;
}

/* A server runs as one process, or as a supervisor of workers ([Server] Threads), or is one of
 * those workers. */
static int run_daemon(daemon_role role, app_config *c, const char *worker_arg) {
  if (role != DAEMON_SERVER) return daemon_run(role, c, NULL);
  if (!worker_arg) {
    unsigned n = workers_wanted(c);
    return n > 1 ? workers_supervise(c, n) : daemon_run(role, c, NULL);
  }
  worker_identity w;
  char err[256];
  if (worker_identity_init(worker_arg, &w, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy server: %s\n", err);
    return 2;
  }
  worker_shard_config(c, &w);
  int rc = daemon_run(role, c, &w);
  sodium_memzero(w.cookie_seed, sizeof w.cookie_seed);
  shard_counts_unmap(w.counts); /* after the loop: nothing uses it any more */
  return rc;
}

/* A client with several servers (config/config_set.h): every usable file runs; the ones left out
 * are reported with file:line and the client starts without them. */
static int run_client_set(const char **paths, size_t n) {
  config_set set;
  cfg_set_report rep = {0};
  int rc = config_set_load(&set, paths, n, &rep);
  if (rc == 0 && set.front.log_level >= 0 && !getenv("LOG_LEVEL"))
    log_set_level((log_level)set.front.log_level);
  if (rc == 0 && set.front.log_format >= 0 && !getenv("LOG_FORMAT"))
    log_set_format((log_format)set.front.log_format);
  cfg_set_report_print(&rep, stderr);
  if (rc != 0) {
    fprintf(stderr,
            "awgproxy client: no usable set of servers (%zu error(s)); `awgproxy check` "
            "with the same -c arguments explains\n",
            rep.errors);
    config_set_free(&set);
    cfg_set_report_free(&rep);
    return 1;
  }
  for (size_t i = 0; i < set.n; i++)
    LOG_I("config", "server", "name", set.servers[i].name, "file", set.servers[i].cfg.path, NULL);
  for (size_t i = 0; i < rep.n; i++)
    if (!rep.files[i].usable)
      LOG_W("config", "server_left_out", "file", rep.files[i].path, "msg",
            "this file has errors (printed above; `awgproxy check` explains): the client runs "
            "without it",
            NULL);
  cfg_set_report_free(&rep);
  rc = daemon_run_client_set(&set, paths, n);
  config_set_free(&set);
  return rc;
}

static int run(const char *cmd, daemon_role role, int argc, char **argv, const char *usage) {
  if (cli_wants_help(argc, argv)) return fputs(usage, stdout), 0;
  const char *worker_arg = role == DAEMON_SERVER ? take_worker_arg(&argc, argv) : NULL;
  const char *path;
  if (role == DAEMON_CLIENT) {
    const char *paths[CFG_SET_MAX];
    size_t n = cli_config_args(cmd, argc, argv, usage, paths, CFG_SET_MAX);
    if (!n) return 2;
    if (!cli_single_config(paths, n)) return run_client_set(paths, n);
    path = paths[0];
  } else {
    path = cli_config_arg(cmd, argc, argv, usage);
  }
  if (!path) return 2;
  app_config c;
  diag_list d = {0};
  config_init(&c);
  int rc = config_load_file(&c, path, &d);
  if (c.log_level >= 0 && !getenv("LOG_LEVEL")) log_set_level((log_level)c.log_level);
  if (c.log_format >= 0 && !getenv("LOG_FORMAT")) log_set_format((log_format)c.log_format);
  if (rc != 0) {
    diag_list_print(&d, path, stderr);
    fprintf(stderr,
            "awgproxy %s: %s is not usable (%zu error(s)); `awgproxy check -c %s` explains\n", cmd,
            path, d.errors, path);
    diag_list_free(&d);
    config_free(&c);
    return 1;
  }
  if (role == DAEMON_SERVER && c.client_line) {
    fprintf(stderr,
            "awgproxy server: %s:%d: [Client] is for clients (several servers); remove it\n", path,
            c.client_line);
    diag_list_free(&d);
    config_free(&c);
    return 1;
  }
  if (!worker_arg) log_summary(&c, &d); /* once, by the supervisor */
  diag_list_free(&d);
  rc = run_daemon(role, &c, worker_arg);
  config_free(&c);
  return rc;
}

int cmd_client(int argc, char **argv) {
  return run("client", DAEMON_CLIENT, argc, argv, client_usage);
}
int cmd_server(int argc, char **argv) {
  return run("server", DAEMON_SERVER, argc, argv, server_usage);
}
