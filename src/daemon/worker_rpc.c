#include "daemon/worker_rpc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/bytes.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: the daemons ignore SIGPIPE anyway */
#endif

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* Waits until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, uint64_t deadline) {
  for (;;) {
    uint64_t now = now_ms();
    if (now >= deadline) return -1;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)(deadline - now));
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return -1;
  }
}

int worker_rpc_write_all(int fd, const void *buf, size_t len, int timeout_ms) {
  const uint8_t *p = buf;
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (len) {
    ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      p += n, len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, deadline) == 0)
      continue;
    return -1;
  }
  return 0;
}

int worker_rpc_read_all(int fd, void *buf, size_t len, int timeout_ms) {
  uint8_t *p = buf;
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (len) {
    ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
    if (n > 0) {
      p += n, len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLIN, deadline) == 0)
      continue;
    return -1; /* EOF or error */
  }
  return 0;
}

/* ---- supervisor side ---------------------------------------------------------------------- */

/* Reads one reply into out; *seq_out its sequence number. */
static int read_reply(int fd, uint32_t *seq_out, obs_buf *out, int timeout_ms) {
  uint8_t hdr[8];
  if (worker_rpc_read_all(fd, hdr, sizeof hdr, timeout_ms) != 0) return -1;
  *seq_out = be32_load(hdr);
  uint32_t len = be32_load(hdr + 4);
  if (len > WORKER_RPC_REPLY_MAX) return -1;
  char chunk[4096];
  while (len) {
    size_t n = len < sizeof chunk ? len : sizeof chunk;
    if (worker_rpc_read_all(fd, chunk, n, timeout_ms) != 0) return -1;
    obs_buf_append(out, chunk, n);
    len -= (uint32_t)n;
  }
  return 0;
}

int worker_rpc_call(int fd, char what, uint32_t seq, obs_buf *out, int timeout_ms) {
  uint8_t req[5] = {(uint8_t)what};
  be32_store(req + 1, seq);
  if (worker_rpc_write_all(fd, req, sizeof req, timeout_ms) != 0) return -1;
  for (;;) { /* late answers to earlier calls carry an older seq: skipped */
    uint32_t got;
    obs_buf_reset(out);
    if (read_reply(fd, &got, out, timeout_ms) != 0) return -1;
    if (got == seq) return out->failed ? -1 : 0;
  }
}

/* ---- worker side -------------------------------------------------------------------------- */

struct worker_rpc {
  uv_poll_t poll;
  int fd;
  worker_rpc_fn fn;
  void (*on_gone)(void *ctx);
  void *ctx;
  bool gone;
};

static void gone(worker_rpc *r) {
  if (r->gone) return;
  r->gone = true;
  uv_poll_stop(&r->poll);
  r->on_gone(r->ctx);
}

static void answer(worker_rpc *r, char what, uint32_t seq) {
  obs_buf out;
  obs_buf_init(&out);
  r->fn(r->ctx, what, &out);
  uint8_t hdr[8];
  be32_store(hdr, seq);
  be32_store(hdr + 4, out.failed ? 0 : (uint32_t)out.len);
  /* The supervisor is waiting on this answer: a blocking write is what it expects. */
  if (worker_rpc_write_all(r->fd, hdr, sizeof hdr, 5000) != 0 ||
      (!out.failed && out.len && worker_rpc_write_all(r->fd, out.data, out.len, 5000) != 0))
    gone(r);
  obs_buf_free(&out);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  worker_rpc *r = h->data;
  if (status < 0) return gone(r);
  uint8_t req[5];
  ssize_t n;
  do n = recv(r->fd, req, 1, MSG_DONTWAIT | MSG_PEEK);
  while (n < 0 && errno == EINTR);
  if (n == 0) return gone(r); /* EOF: the supervisor has gone */
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) gone(r);
    return;
  }
  /* A request is 5 bytes written at once; wait briefly for the rest if it is split. */
  if (worker_rpc_read_all(r->fd, req, sizeof req, 1000) != 0) return gone(r);
  answer(r, (char)req[0], be32_load(req + 1));
}

worker_rpc *worker_rpc_start(uv_loop_t *loop, int fd, worker_rpc_fn fn, void (*on_gone)(void *ctx),
                             void *ctx) {
  worker_rpc *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->fd = fd;
  r->fn = fn;
  r->on_gone = on_gone;
  r->ctx = ctx;
  if (uv_poll_init_socket(loop, &r->poll, fd) != 0) {
    free(r);
    return NULL;
  }
  r->poll.data = r;
  uv_poll_start(&r->poll, UV_READABLE, on_readable);
  return r;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void worker_rpc_stop(worker_rpc *r) {
  if (r) uv_close((uv_handle_t *)&r->poll, on_closed);
}
