/* The supervisor asks, a server worker answers (daemon/workers.h): one stream socket per worker.
 *
 *   request: u8 what | u32 seq            reply: u32 seq | u32 length | bytes
 *
 * `what` is an OBS_PART_* code (daemon/observe.h) or WORKER_RPC_RELOAD. The supervisor's side is
 * synchronous with a deadline (a scrape or a reload waits for the workers, a few ms each); a
 * reply whose seq is not the one awaited (a late answer to an earlier request that timed out) is
 * skipped. The worker's side runs on its loop; the socket at EOF means the supervisor is gone. */
#ifndef AWGPROXY_DAEMON_WORKER_RPC_H
#define AWGPROXY_DAEMON_WORKER_RPC_H

#include <stdint.h>
#include <uv.h>

#include "daemon/observe.h"
#include "observe/buf.h"

#define WORKER_RPC_RELOAD 'R' /* reload now; the answer is a worker_reload_wire */
#define WORKER_RPC_REPLY_MAX (64u << 20)

/* A reload report as bytes: obs_reload_report with the restart keys' names copied (its pointers
 * mean nothing in another process). */
typedef struct {
  obs_reload_report r;
  char keys[48][48];
} worker_reload_wire;

/* Worker side. fn renders the answer to `what` into out; on_gone runs once at EOF or error. */
typedef void (*worker_rpc_fn)(void *ctx, char what, obs_buf *out);
typedef struct worker_rpc worker_rpc;
worker_rpc *worker_rpc_start(uv_loop_t *loop, int fd, worker_rpc_fn fn, void (*on_gone)(void *ctx),
                             void *ctx);
void worker_rpc_stop(worker_rpc *r);

/* Supervisor side: sends `what` with seq and waits up to timeout_ms for its answer, into out.
 * 0, or -1 (timeout, error, EOF). */
int worker_rpc_call(int fd, char what, uint32_t seq, obs_buf *out, int timeout_ms);

/* Blocking write of all of buf (either side). 0 or -1. */
int worker_rpc_write_all(int fd, const void *buf, size_t len, int timeout_ms);
/* Blocking read of exactly len bytes. 0, or -1 (EOF, error, timeout). */
int worker_rpc_read_all(int fd, void *buf, size_t len, int timeout_ms);

#endif
