/* The server's UDP port, bound once by the supervisor for all its workers (daemon/workers.h):
 * per address family one SO_REUSEPORT group of N sockets, socket i for worker i. The supervisor
 * keeps them open for its whole life, so the group's order never changes (the kernel reorders
 * a group when a member closes) and a restarted worker takes over its predecessor's socket with
 * whatever datagrams queued meanwhile; and "port in use" is one clear error at start.
 *
 * On Linux a classic BPF program steers each datagram to the socket of the worker that owns its
 * receiver index (wg/shard.h: the index modulo N; transport data carries it at offset S4 + 4,
 * little-endian), so a peer's data reaches its owner directly even after it roamed to a source
 * address that the kernel's hash would give to another worker. Initiations carry no receiver
 * index and land anywhere (the worker that gets one hands it to the owner by key); with AWG 3.x
 * header protection the index is masked, so there is no program and the hash decides (the
 * tests of the handoff path use that). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/filter.h>
#endif

#include "daemon/worker_sockets.h"
#include "util/sockaddr.h"

static int bind_one(int family, uint16_t port) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  int on = 1;
#ifdef SO_REUSEPORT
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) goto fail;
#endif
  struct sockaddr_storage ss;
  socklen_t len = sockaddr_make(&ss, family, NULL, port);
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0)
    goto fail;
  if (bind(fd, (struct sockaddr *)&ss, len) == 0) return fd;
fail:;
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

#if defined(__linux__) && defined(SO_ATTACH_REUSEPORT_CBPF)
/* A = le32 at payload[off] mod n: the socket index within the group. A datagram too short for the
 * loads ends the program with 0 (the first worker, which hands it on if need be). */
static int steer(int fd, uint32_t off, unsigned n) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, off + 3),
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 8),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, off + 2),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 8),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, off + 1),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 8),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, off),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_fprog prog = {sizeof code / sizeof code[0], code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}
#else
static int steer(int fd, uint32_t off, unsigned n) {
  (void)fd, (void)off, (void)n;
  return -1;
}
#endif

static void close_all(worker_sockets *s) {
  for (unsigned i = 0; i < WG_SHARDS_MAX; i++) {
    if (s->fd4[i] >= 0) close(s->fd4[i]);
    if (s->fd6[i] >= 0) close(s->fd6[i]);
    s->fd4[i] = s->fd6[i] = -1;
  }
}

int worker_sockets_open(worker_sockets *s, uint16_t port, unsigned n, const awg_params *awg,
                        char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  for (unsigned i = 0; i < WG_SHARDS_MAX; i++) s->fd4[i] = s->fd6[i] = -1;
  s->n = n;
  int e4 = 0, e6 = 0;
  for (unsigned i = 0; i < n && !e4; i++)
    if ((s->fd4[i] = bind_one(AF_INET, port)) < 0) e4 = errno;
  for (unsigned i = 0; i < n && !e6; i++)
    if ((s->fd6[i] = bind_one(AF_INET6, port)) < 0) e6 = errno;
  /* Either family may be missing (a host without IPv6), as for a single process. */
  if (e4 && e6) {
    snprintf(err, errlen, "cannot bind UDP port %u: %s", port, strerror(e4));
    close_all(s);
    return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    if (e4 && s->fd4[i] >= 0) close(s->fd4[i]), s->fd4[i] = -1;
    if (e6 && s->fd6[i] >= 0) close(s->fd6[i]), s->fd6[i] = -1;
  }
  if (!awg->v3.header_protection) {
    uint32_t off = awg->s[3] + 4; /* S4 prefix, then the type field */
    bool ok4 = e4 || steer(s->fd4[0], off, n) == 0, ok6 = e6 || steer(s->fd6[0], off, n) == 0;
    s->steered = ok4 && ok6;
  }
  return 0;
}

void worker_sockets_close(worker_sockets *s) { close_all(s); }
