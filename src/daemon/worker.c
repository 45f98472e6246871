/* The worker's side of a sharded server (daemon/workers.h): who it is, and its share of the
 * config. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/worker_rpc.h"
#include "daemon/workers.h"
#include "util/shard_counts.h"

unsigned workers_wanted(const app_config *c) {
  unsigned n = c->server_threads ? c->server_threads : uv_available_parallelism();
  if (n > WG_SHARDS_MAX) n = WG_SHARDS_MAX;
  if (n < 1 || !c->has_listen_port || !c->listen_port) n = 1;
  /* The TLS carrier's connections live in one process: one worker serves them all
   * (docs/config-reference.md, TlsListen). */
  if (c->n_tls_listen) n = 1;
  return n;
}

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* A UDP socket of the family, or -1 (the supervisor passes /dev/null for a missing family). */
static int udp_fd(int fd, int family) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) return -1;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != family) return -1;
  return fd;
}

int worker_identity_init(const char *arg, worker_identity *w, char *err, size_t errlen) {
  memset(w, 0, sizeof *w);
  char *end;
  unsigned long i = strtoul(arg, &end, 10), n = 0;
  if (end != arg && *end == '/') n = strtoul(end + 1, &end, 10);
  if (*end || n < 2 || n > WG_SHARDS_MAX || i >= n)
    return snprintf(err, errlen, "--worker '%s': expected I/N with I < N <= %d (internal option)",
                    arg, WG_SHARDS_MAX),
           -1;
  w->index = (unsigned)i;
  w->count = (unsigned)n;
  w->rpc_fd = WORKER_FD_RPC;
  w->inbox_fd = WORKER_FD_INBOX;
  for (unsigned k = 0; k < w->count; k++) w->outbox_fds[k] = WORKER_FD_OUTBOX0 + (int)k;
  for (int fd = WORKER_FD_RPC; fd < WORKER_FD_OUTBOX0 + (int)w->count; fd++)
    if (!fd_open(fd))
      return snprintf(err, errlen,
                      "--worker: descriptor %d is not open (started by hand? run "
                      "`awgproxy server -c FILE`, which starts its workers itself)",
                      fd),
             -1;
  w->udp4_fd = udp_fd(WORKER_FD_UDP4, AF_INET);
  w->udp6_fd = udp_fd(WORKER_FD_UDP6, AF_INET6);
  if (w->udp4_fd < 0 && w->udp6_fd < 0)
    return snprintf(err, errlen, "--worker: no UDP socket from the supervisor"), -1;
  if (!(w->counts = shard_counts_map(WORKER_FD_COUNTS, w->index, w->count)))
    return snprintf(err, errlen, "--worker: cannot map the shared counts (descriptor %d)",
                    WORKER_FD_COUNTS),
           -1;
  if (worker_rpc_read_all(w->rpc_fd, w->cookie_seed, sizeof w->cookie_seed, 10000) != 0)
    return snprintf(err, errlen, "--worker: no cookie seed from the supervisor"), -1;
  return 0;
}

static bool keep_mine(const cfg_peer *p, void *ctx) {
  const worker_identity *w = ctx;
  return wg_shard_of_key(p->public_key, w->count) == w->index;
}

void worker_shard_config(app_config *c, const worker_identity *w) {
  config_retain_peers(c, keep_mine, (void *)w);
  c->has_metrics = false;
  c->control_path[0] = '\0';
  c->has_control_tcp = false;
  if (w->index) c->has_local_socks = false;
}
