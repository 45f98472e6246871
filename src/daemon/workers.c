/* The supervisor of a sharded server (daemon/workers.h): spawns the workers, serves [Metrics] and
 * [Control] by asking them (worker_rpc.h), relays signals, and restarts a worker that dies. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/daemon_internal.h"
#include "daemon/observe.h"
#include "daemon/worker_rpc.h"
#include "daemon/worker_sockets.h"
#include "daemon/workers.h"
#include "util/log.h"
#include "util/shard_counts.h"

#define RPC_TIMEOUT_MS 2000
#define STOP_GRACE_MS 10000   /* SIGTERM, then SIGKILL for a worker that has not stopped */
#define RESTART_DELAY_MS 1000 /* between a worker's death and its replacement */
#define STARTUP_MS 3000       /* a worker failing sooner failed to start: no retry */
#define RESTARTS_MAX 5        /* within RESTART_WINDOW_MS, then the supervisor gives up */
#define RESTART_WINDOW_MS 60000
#define HANDOFF_SOCKET_BUFFER (4 * 1024 * 1024)

typedef struct supervisor supervisor;

typedef struct {
  supervisor *sup;
  unsigned index;
  uv_process_t proc;
  bool alive, closing;
  int rpc; /* the supervisor's end of this worker's RPC socket (a fresh one per start), -1 = none */
  int inbox, outbox; /* the handoff pair: the worker reads inbox, everyone writes outbox */
  uint64_t started_ms;
  uv_timer_t restart;
} worker_slot;

struct supervisor {
  uv_loop_t *loop;
  app_config *cfg;
  unsigned n;
  worker_slot w[WG_SHARDS_MAX];
  uint8_t seed[32];
  worker_sockets udp; /* the port, bound here for all workers */
  int devnull;        /* passed in place of a socket family the host lacks */
  int counts;         /* the shared counts (util/shard_counts.h) */
  char exe[4096];
  uv_signal_t sigint, sigterm, sighup, sigusr1;
  uv_timer_t kill_timer;
  observe *obs;
  bool stopping;
  int status;
  uint32_t seq;
  uint64_t restart_times[RESTARTS_MAX];
  size_t n_restarts;
};

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

static int pair_cloexec(int type, int fds[2]) {
#ifdef SOCK_CLOEXEC
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0) return 0;
#endif
  if (socketpair(AF_UNIX, type, 0, fds) != 0) return -1;
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  return 0;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static int open_handoff(worker_slot *ws) {
  int fds[2];
  if (pair_cloexec(SOCK_DGRAM, fds) != 0) return -1;
  int sz = HANDOFF_SOCKET_BUFFER;
  setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  ws->inbox = fds[0];
  ws->outbox = fds[1];
  return 0;
}

static void on_worker_exit(uv_process_t *p, int64_t status, int signum);

/* Starts worker ws with a fresh RPC socket (nothing stale from a predecessor can be read as the
 * seed) and writes it the cookie seed. */
static int spawn(supervisor *s, worker_slot *ws) {
  int rpc[2];
  if (pair_cloexec(SOCK_STREAM, rpc) != 0) return UV_EMFILE;
  char which[24];
  snprintf(which, sizeof which, "%u/%u", ws->index, s->n);
  char *args[] = {s->exe, "server", "-c", s->cfg->path, "--worker", which, NULL};
  uv_stdio_container_t stdio[WORKER_FD_OUTBOX0 + WG_SHARDS_MAX];
  for (int i = 0; i < 3; i++) stdio[i] = (uv_stdio_container_t){UV_INHERIT_FD, {.fd = i}};
  stdio[WORKER_FD_RPC] = (uv_stdio_container_t){UV_INHERIT_FD, {.fd = rpc[1]}};
  stdio[WORKER_FD_INBOX] = (uv_stdio_container_t){UV_INHERIT_FD, {.fd = ws->inbox}};
  int fd4 = s->udp.fd4[ws->index], fd6 = s->udp.fd6[ws->index];
  stdio[WORKER_FD_UDP4] =
      (uv_stdio_container_t){UV_INHERIT_FD, {.fd = fd4 >= 0 ? fd4 : s->devnull}};
  stdio[WORKER_FD_UDP6] =
      (uv_stdio_container_t){UV_INHERIT_FD, {.fd = fd6 >= 0 ? fd6 : s->devnull}};
  stdio[WORKER_FD_COUNTS] = (uv_stdio_container_t){UV_INHERIT_FD, {.fd = s->counts}};
  for (unsigned k = 0; k < s->n; k++)
    stdio[WORKER_FD_OUTBOX0 + k] = (uv_stdio_container_t){UV_INHERIT_FD, {.fd = s->w[k].outbox}};
  uv_process_options_t o = {.exit_cb = on_worker_exit,
                            .file = s->exe,
                            .args = args,
                            .stdio_count = WORKER_FD_OUTBOX0 + (int)s->n,
                            .stdio = stdio};
  ws->proc.data = ws;
  int rc = uv_spawn(s->loop, &ws->proc, &o);
  close(rpc[1]);
  if (rc) {
    close(rpc[0]);
    return rc;
  }
  ws->rpc = rpc[0];
  ws->alive = true;
  ws->closing = false;
  ws->started_ms = now_ms();
  if (worker_rpc_write_all(ws->rpc, s->seed, sizeof s->seed, RPC_TIMEOUT_MS) != 0) {
    uv_process_kill(&ws->proc, SIGKILL); /* on_worker_exit follows */
    return 0;
  }
  char pid[16];
  snprintf(pid, sizeof pid, "%d", ws->proc.pid);
  LOG_I("daemon", "worker_started", "worker", which, "pid", pid, NULL);
  return 0;
}

static void finish_if_done(supervisor *s) {
  for (unsigned i = 0; i < s->n; i++)
    if (s->w[i].alive || s->w[i].closing) return;
  uv_stop(s->loop);
}

static void on_kill_timer(uv_timer_t *t) {
  supervisor *s = t->data;
  for (unsigned i = 0; i < s->n; i++)
    if (s->w[i].alive) uv_process_kill(&s->w[i].proc, SIGKILL);
}

static void stop_workers(supervisor *s, int status) {
  if (!s->stopping) s->status = status;
  s->stopping = true;
  for (unsigned i = 0; i < s->n; i++) {
    uv_timer_stop(&s->w[i].restart);
    if (s->w[i].alive) uv_process_kill(&s->w[i].proc, SIGTERM);
  }
  if (!uv_is_active((uv_handle_t *)&s->kill_timer))
    uv_timer_start(&s->kill_timer, on_kill_timer, STOP_GRACE_MS, 0);
  finish_if_done(s);
}

static void on_proc_closed(uv_handle_t *h) {
  worker_slot *ws = h->data;
  ws->closing = false;
  if (ws->sup->stopping) finish_if_done(ws->sup);
}

static bool may_restart(supervisor *s) {
  uint64_t now = now_ms();
  size_t n = 0;
  for (size_t i = 0; i < s->n_restarts; i++)
    if (now - s->restart_times[i] < RESTART_WINDOW_MS) s->restart_times[n++] = s->restart_times[i];
  s->n_restarts = n;
  if (n >= RESTARTS_MAX) return false;
  s->restart_times[s->n_restarts++] = now;
  return true;
}

static void on_restart(uv_timer_t *t) {
  worker_slot *ws = t->data;
  supervisor *s = ws->sup;
  if (s->stopping || ws->alive || ws->closing) return;
  int rc = spawn(s, ws);
  if (rc) {
    LOG_E("daemon", "worker_failed", "error", uv_strerror(rc), "msg", "cannot start a worker",
          NULL);
    stop_workers(s, 1);
  }
}

static void on_worker_exit(uv_process_t *p, int64_t status, int signum) {
  worker_slot *ws = p->data;
  supervisor *s = ws->sup;
  ws->alive = false;
  ws->closing = true;
  close_fd(&ws->rpc);
  uv_close((uv_handle_t *)p, on_proc_closed);
  char which[24], st[24], sig[24];
  snprintf(which, sizeof which, "%u/%u", ws->index, s->n);
  snprintf(st, sizeof st, "%lld", (long long)status);
  snprintf(sig, sizeof sig, "%d", signum);
  if (s->stopping) {
    /* A worker that did not stop cleanly (a crash on the way out, a leak report, the SIGKILL
     * after the grace period) makes the server's exit status say so, as one process would. */
    if ((status != 0 || signum != 0) && s->status == 0) {
      s->status = status > 0 && status < 256 ? (int)status : 128 + signum;
      LOG_E("daemon", "worker_failed", "worker", which, "status", st, "signal", sig, "msg",
            "the worker did not stop cleanly", NULL);
    }
    return;
  }
  bool at_start = now_ms() - ws->started_ms < STARTUP_MS && status != 0 && !signum;
  LOG_E("daemon", "worker_died", "worker", which, "status", st, "signal", sig, "msg",
        at_start ? "it failed to start (see its error above): stopping"
                 : "its peers reconnect to its replacement",
        NULL);
  if (at_start || !may_restart(s)) {
    if (!at_start)
      LOG_E("daemon", "worker_failed", "msg", "workers keep dying: stopping the server", NULL);
    return stop_workers(s, 1);
  }
  uv_timer_start(&ws->restart, on_restart, RESTART_DELAY_MS, 0);
}

/* ---- asking the workers ------------------------------------------------------------------- */

static unsigned gather(void *ctx, char what, obs_buf *parts, unsigned n) {
  supervisor *s = ctx;
  unsigned answered = 0;
  for (unsigned i = 0; i < n && i < s->n; i++) {
    worker_slot *ws = &s->w[i];
    if (ws->alive && ws->rpc >= 0 &&
        worker_rpc_call(ws->rpc, what, ++s->seq, &parts[i], RPC_TIMEOUT_MS) == 0) {
      answered++;
      continue;
    }
    obs_buf_reset(&parts[i]);
  }
  return answered;
}

/* Every worker reloads the same file; the answer adds up their peer counts (each counts its own
 * share) and takes the rest from the first worker, or from one that refused. */
static void reload_all(void *ctx, obs_reload_report *out) {
  supervisor *s = ctx;
  obs_buf parts[WG_SHARDS_MAX];
  for (unsigned i = 0; i < s->n; i++) obs_buf_init(&parts[i]);
  unsigned answered = gather(s, WORKER_RPC_RELOAD, parts, s->n);
  memset(out, 0, sizeof *out);
  static worker_reload_wire keep; /* the restart keys' names point into it until the next one */
  const worker_reload_wire *from = NULL; /* the first answer, or the first refusal */
  size_t added = 0, removed = 0, changed = 0, unchanged = 0;
  for (unsigned i = 0; i < s->n; i++) {
    if (parts[i].len != sizeof(worker_reload_wire)) continue;
    const worker_reload_wire *w = (const worker_reload_wire *)(const void *)parts[i].data;
    if (!from || (from->r.ok && !w->r.ok)) from = w;
    added += w->r.peers_added, removed += w->r.peers_removed;
    changed += w->r.peers_changed, unchanged += w->r.peers_unchanged;
  }
  if (from) {
    keep = *from;
    *out = keep.r;
    for (size_t k = 0; k < out->n_restart_keys && k < 48; k++) out->restart_keys[k] = keep.keys[k];
    out->peers_added = added, out->peers_removed = removed;
    out->peers_changed = changed, out->peers_unchanged = unchanged;
  }
  for (unsigned i = 0; i < s->n; i++) obs_buf_free(&parts[i]);
  if (answered < s->n && (!from || out->ok)) {
    out->ok = false;
    snprintf(out->error, sizeof out->error, "%u of %u workers did not answer the reload",
             s->n - answered, s->n);
  }
  if (out->ok)
    daemon_log_reloaded(out, NULL);
  else
    LOG_E("daemon", "reload_failed", "error", out->error, "msg",
          "still running on the previous config", NULL);
}

/* ---- signals ------------------------------------------------------------------------------ */

static void on_stop_signal(uv_signal_t *h, int signum) {
  supervisor *s = h->data;
  LOG_I("daemon", "stopping", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  stop_workers(s, 0);
}

static void on_hup(uv_signal_t *h, int signum) {
  (void)signum;
  obs_reload_report *r = calloc(1, sizeof *r);
  if (!r) return;
  reload_all(h->data, r);
  free(r);
}

static void on_usr1(uv_signal_t *h, int signum) {
  supervisor *s = h->data;
  for (unsigned i = 0; i < s->n; i++)
    if (s->w[i].alive) uv_process_kill(&s->w[i].proc, signum);
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int start(supervisor *s, char *err, size_t errlen) {
  size_t len = sizeof s->exe;
  if (uv_exepath(s->exe, &len) != 0)
    return snprintf(err, errlen, "cannot find this executable to start the workers"), -1;
  randombytes_buf(s->seed, sizeof s->seed);
  s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (s->devnull < 0)
    return snprintf(err, errlen, "cannot open /dev/null: %s", strerror(errno)), -1;
  if ((s->counts = shard_counts_create(s->n)) < 0)
    return snprintf(err, errlen, "cannot create the workers' shared counts: %s", strerror(errno)),
           -1;
  if (worker_sockets_open(&s->udp, s->cfg->listen_port, s->n, &s->cfg->awg, err, errlen) != 0)
    return -1;
  char port[8];
  snprintf(port, sizeof port, "%u", s->cfg->listen_port);
  LOG_I("daemon", "port_shared", "udp_port", port, "steering",
        s->udp.steered ? "by receiver index (BPF)" : "kernel hash", NULL);
  for (unsigned i = 0; i < s->n; i++) {
    worker_slot *ws = &s->w[i];
    *ws = (worker_slot){.sup = s, .index = i, .rpc = -1, .inbox = -1, .outbox = -1};
    uv_timer_init(s->loop, &ws->restart);
    ws->restart.data = ws;
    if (open_handoff(ws) != 0)
      return snprintf(err, errlen, "cannot create the workers' sockets: %s", strerror(errno)), -1;
  }
  for (unsigned i = 0; i < s->n; i++) {
    int rc = spawn(s, &s->w[i]);
    if (rc) return snprintf(err, errlen, "cannot start worker %u: %s", i, uv_strerror(rc)), -1;
  }
  obs_sources src = {.role = "server",
                     .cfg = s->cfg,
                     .started_ns = uv_hrtime(),
                     .reload = reload_all,
                     .reload_ctx = s,
                     .gather = gather,
                     .gather_ctx = s,
                     .workers = s->n};
  s->obs = observe_start(s->loop, &src, err, errlen);
  return s->obs ? 0 : -1;
}

int workers_supervise(app_config *c, unsigned n) {
  supervisor *s = calloc(1, sizeof *s);
  if (!s) return fprintf(stderr, "awgproxy: out of memory\n"), 1;
  s->loop = uv_default_loop();
  s->cfg = c;
  s->n = n;
  s->devnull = -1;
  s->counts = -1;
  for (unsigned i = 0; i < WG_SHARDS_MAX; i++) s->udp.fd4[i] = s->udp.fd6[i] = -1;
  uv_signal_t *sigs[] = {&s->sigint, &s->sigterm, &s->sighup, &s->sigusr1};
  int nums[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
  uv_signal_cb cbs[] = {on_stop_signal, on_stop_signal, on_hup, on_usr1};
  for (int i = 0; i < 4; i++) {
    uv_signal_init(s->loop, sigs[i]);
    sigs[i]->data = s;
    uv_signal_start(sigs[i], cbs[i], nums[i]);
  }
  uv_timer_init(s->loop, &s->kill_timer);
  s->kill_timer.data = s;
  signal(SIGPIPE, SIG_IGN);
  char nn[16];
  snprintf(nn, sizeof nn, "%u", n);
  LOG_I("daemon", "supervisor_started", "workers", nn, "version", AWGPROXY_VERSION, NULL);
  char err[256] = "";
  if (start(s, err, sizeof err) != 0) {
    LOG_E("daemon", "start_failed", "error", err, NULL);
    fprintf(stderr, "awgproxy: %s\n", err);
    stop_workers(s, 1);
  }
  uv_run(s->loop, UV_RUN_DEFAULT);
  observe_stop(s->obs);
  for (unsigned i = 0; i < s->n; i++) {
    close_fd(&s->w[i].rpc);
    close_fd(&s->w[i].inbox);
    close_fd(&s->w[i].outbox);
  }
  worker_sockets_close(&s->udp);
  if (s->devnull >= 0) close(s->devnull);
  if (s->counts >= 0) close(s->counts);
  uv_walk(s->loop, close_walk, NULL);
  uv_run(s->loop, UV_RUN_DEFAULT);
  uv_loop_close(s->loop);
  sodium_memzero(s->seed, sizeof s->seed);
  int status = s->status;
  free(s);
  LOG_I("daemon", "stopped", NULL);
  return status;
}
