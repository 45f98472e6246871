/* UDP sockets and batched I/O for the relay (see impair_net.h). Build with -DIMPAIR_PORTABLE to
 * use (and test) the portable recvfrom/sendto path on Linux too. */
#define _GNU_SOURCE /* recvmmsg/sendmmsg */
#include "impair_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int net_parse_addr(const char *text, struct net_addr *addr) {
  char host[256];
  const char *port;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host) return -1;
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = 0;
    port = close + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host) return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    port = colon + 1;
  }
  char *end;
  long p = strtol(port, &end, 10);
  if (!*port || *end || p < 0 || p > 65535) return -1;
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res) return -1;
  memcpy(&addr->ss, res->ai_addr, res->ai_addrlen);
  addr->len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

void net_format_addr(const struct net_addr *addr, char *out, size_t cap) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (addr->ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&addr->ss;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    snprintf(out, cap, "%s:%d", ip, ntohs(a->sin_port));
  } else if (addr->ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&addr->ss;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    snprintf(out, cap, "[%s]:%d", ip, ntohs(a->sin6_port));
  } else {
    snprintf(out, cap, "none");
  }
}

int net_addr_port(const struct net_addr *addr) {
  if (addr->ss.ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
  if (addr->ss.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
  return 0;
}

int net_addr_equal(const struct net_addr *a, const struct net_addr *b) {
  return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static void big_buffers(int fd) {
  int size = 8 << 20;
#ifdef SO_RCVBUFFORCE /* root may exceed net.core.rmem_max; others get what the limit allows */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
#endif
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
#ifdef SO_SNDBUFFORCE
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
#endif
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

int net_udp_socket(int family, const struct net_addr *local, const struct net_addr *peer) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    goto fail;
  big_buffers(fd);
  if (local && bind(fd, (const struct sockaddr *)&local->ss, local->len) != 0) goto fail;
  if (peer && connect(fd, (const struct sockaddr *)&peer->ss, peer->len) != 0) goto fail;
  return fd;
fail : {
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}
}

int net_local_addr(int fd, struct net_addr *out) {
  out->len = sizeof out->ss;
  return getsockname(fd, (struct sockaddr *)&out->ss, &out->len);
}

int rx_batch_init(struct rx_batch *b) {
  memset(b, 0, sizeof *b);
  for (int i = 0; i < RX_BATCH; i++) {
    b->buf[i] = malloc(DGRAM_MAX + 1);
    if (!b->buf[i]) return -1;
  }
  return 0;
}

void rx_batch_free(struct rx_batch *b) {
  for (int i = 0; i < RX_BATCH; i++) free(b->buf[i]);
  memset(b, 0, sizeof *b);
}

static int transient(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNREFUSED;
}

#if defined(__linux__) && !defined(IMPAIR_PORTABLE)
int net_recv_batch(int fd, struct rx_batch *b) {
  struct mmsghdr msgs[RX_BATCH];
  struct iovec iov[RX_BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < RX_BATCH; i++) {
    iov[i].iov_base = b->buf[i];
    iov[i].iov_len = DGRAM_MAX + 1;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &b->from[i].ss;
    msgs[i].msg_hdr.msg_namelen = sizeof b->from[i].ss;
  }
  int n = recvmmsg(fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
  b->n = 0;
  if (n < 0) return transient(errno) ? 0 : -1;
  for (int i = 0; i < n; i++) {
    b->len[i] = msgs[i].msg_len > DGRAM_MAX ? DGRAM_MAX : msgs[i].msg_len;
    b->from[i].len = msgs[i].msg_hdr.msg_namelen;
  }
  b->n = (unsigned)n;
  return n;
}
#else
int net_recv_batch(int fd, struct rx_batch *b) {
  b->n = 0;
  while (b->n < RX_BATCH) {
    struct net_addr *from = &b->from[b->n];
    from->len = sizeof from->ss;
    ssize_t r =
        recvfrom(fd, b->buf[b->n], DGRAM_MAX + 1, 0, (struct sockaddr *)&from->ss, &from->len);
    if (r < 0) {
      if (transient(errno)) break;
      return b->n ? (int)b->n : -1;
    }
    b->len[b->n++] = r > (ssize_t)DGRAM_MAX ? DGRAM_MAX : (uint32_t)r;
  }
  return (int)b->n;
}
#endif

static void wait_writable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  poll(&p, 1, 2); /* at most 2 ms: the relay must keep reading meanwhile */
}

/* Sends entries [from, n): how many consecutive ones went out, or -1 (errno) if entry `from`
 * itself failed. */
static int send_some(int fd, const struct net_addr *dst, const struct tx_entry *e, unsigned from,
                     unsigned n) {
#if defined(__linux__) && !defined(IMPAIR_PORTABLE)
  struct mmsghdr msgs[TX_BATCH];
  struct iovec iov[TX_BATCH];
  unsigned count = n - from;
  memset(msgs, 0, sizeof(msgs[0]) * count);
  for (unsigned i = 0; i < count; i++) {
    iov[i].iov_base = (void *)e[from + i].data;
    iov[i].iov_len = e[from + i].len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (dst) {
      msgs[i].msg_hdr.msg_name = (void *)&dst->ss;
      msgs[i].msg_hdr.msg_namelen = dst->len;
    }
  }
  return sendmmsg(fd, msgs, count, MSG_DONTWAIT);
#else
  unsigned i = from;
  for (; i < n; i++) {
    ssize_t r =
        dst ? sendto(fd, e[i].data, e[i].len, 0, (const struct sockaddr *)&dst->ss, dst->len)
            : send(fd, e[i].data, e[i].len, 0);
    if (r < 0) break;
  }
  if (i == from) return -1;
  return (int)(i - from);
#endif
}

unsigned net_send_batch(int fd, const struct net_addr *dst, const struct tx_entry *e, unsigned n,
                        uint8_t *sent) {
  unsigned done = 0, ok = 0;
  int waited = 0;
  while (done < n) {
    int r = send_some(fd, dst, e, done, n);
    if (r > 0) {
      for (int i = 0; i < r; i++) sent[done + (unsigned)i] = 1;
      done += (unsigned)r;
      ok += (unsigned)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && !waited) {
      waited = 1;
      wait_writable(fd);
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      while (done < n) sent[done++] = 0; /* still full: the rest is lost, and counted */
      break;
    }
    sent[done++] = 0; /* this one is refused (EMSGSIZE, ECONNREFUSED, ...): skip it */
  }
  return ok;
}
