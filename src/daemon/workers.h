/* A server on every core: [Server] Threads = auto | N (docs/decisions.md "A server on every
 * core"). lwIP keeps its state in globals, so one process holds one IP stack; the server is
 * therefore sharded by process:
 *
 *   supervisor (awgproxy server -c FILE)
 *     ├─ serves [Metrics] and [Control] for all, putting each document together from the workers'
 *     │  parts (worker_rpc.c), relays SIGHUP/SIGTERM/SIGUSR1, restarts a worker that dies
 *     └─ worker i of N (the same binary, `server -c FILE --worker i/N`): a whole server (tunnel,
 *        lwIP, exit, QUIC endpoint) for the peers whose public key maps to i (wg/shard.h), on its
 *        own UDP socket bound to the shared ListenPort with SO_REUSEPORT.
 *
 * Descriptors handed to worker i (its fds 3, 4, 5, 6, 7..7+N-1): the RPC socket to the
 * supervisor, its handoff inbox, its IPv4 and IPv6 UDP sockets (worker_sockets.c; /dev/null for
 * a family the host lacks), the shared counts behind the server-wide caps (util/shard_counts.h),
 * every worker's handoff outbox (device/tunnel_shard.c; fds 8..8+N-1). The
 * supervisor writes the shared cookie seed on the RPC socket first. A worker whose supervisor
 * is gone (RPC socket at EOF) stops. */
#ifndef AWGPROXY_DAEMON_WORKERS_H
#define AWGPROXY_DAEMON_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "wg/shard.h"

#define WORKER_FD_RPC 3
#define WORKER_FD_INBOX 4
#define WORKER_FD_UDP4 5
#define WORKER_FD_UDP6 6
#define WORKER_FD_COUNTS 7
#define WORKER_FD_OUTBOX0 8

typedef struct {
  unsigned index, count;
  int rpc_fd, inbox_fd;
  int udp4_fd, udp6_fd;        /* -1 = none */
  struct shard_counts *counts; /* mapped from WORKER_FD_COUNTS for the process's whole life */
  int outbox_fds[WG_SHARDS_MAX];
  uint8_t cookie_seed[32];
} worker_identity;

/* How many workers a server config asks for: Threads, or one per core for auto; 1 when the port
 * is chosen at random (ListenPort unset: the workers could not agree on it). */
unsigned workers_wanted(const app_config *c);

/* The supervisor: runs n workers of this executable for c (loaded from c->path) until
 * SIGINT/SIGTERM; returns the exit status. */
int workers_supervise(app_config *c, unsigned n);

/* Worker side: "i/N" from --worker, the descriptors at their fixed numbers, and the cookie seed
 * read from the supervisor. -1 with a message in err. */
int worker_identity_init(const char *arg, worker_identity *w, char *err, size_t errlen);

/* Trims a freshly loaded config to worker w's share: only its peers; no [Metrics]/[Control]
 * listeners (the supervisor's), and LocalSocks only in worker 0 (one TCP port, one listener).
 * The server-wide caps stay whole: the workers add up their counts (util/shard_counts.h). */
void worker_shard_config(app_config *c, const worker_identity *w);

#endif
