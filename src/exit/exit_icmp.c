/* ICMP echo through the exit, with unprivileged ICMP sockets (socket(AF_INET, SOCK_DGRAM,
 * IPPROTO_ICMP) and the ICMPv6 equivalent), which Linux allows when the process's group is in
 * net.ipv4.ping_group_range (the same range governs both families). The kernel picks the echo
 * identifier of such a socket and delivers only the replies that carry it, so each
 * (peer, destination, identifier) gets its own socket; replies go back into the tunnel with the
 * peer's own identifier. When the sockets are not allowed, echo requests are answered
 * "administratively prohibited" instead (exit_udp.c). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exit/exit_internal.h"
#include "exit/exit_peer.h"
#include "util/log.h"
#include "util/list.h"
#include "util/sockaddr.h"

struct echo_flow {
  list_node link; /* on x->echo_list */
  exit_ctx *x;    /* NULL once unlinked */
  exit_addr src, dst;
  uint16_t id;       /* the peer's identifier */
  uint16_t last_seq; /* of the last request, for an ICMP error back */
  uint64_t last;
  int fd;
  uv_poll_t poll;
};

static int open_ping_socket(int family) {
  return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
}

static bool is_unreach_errno(int e) {
  return e == EHOSTUNREACH || e == ENETUNREACH || e == EACCES || e == EPERM;
}

void exit_icmp_start(exit_ctx *x) {
  int fd = open_ping_socket(AF_INET);
  if (fd >= 0) x->ping4 = true, close(fd);
  fd = open_ping_socket(AF_INET6);
  if (fd >= 0) x->ping6 = true, close(fd);
}

static void on_poll_closed(uv_handle_t *h) {
  echo_flow *f = h->data;
  close(f->fd);
  free(f);
}

static void close_flow(echo_flow *f) {
  exit_ctx *x = f->x;
  if (x) {
    list_remove(&f->link);
    x->n_echo--;
    f->x = NULL;
  }
  uv_poll_stop(&f->poll);
  uv_close((uv_handle_t *)&f->poll, on_poll_closed);
}

/* The destination (or a router before it) said it cannot be reached: tell the peer the same,
 * quoting a request of its own. */
static void answer_error(echo_flow *f, int err) {
  bool v6 = f->src.family == AF_INET6;
  uint8_t q[48];
  memset(q, 0, sizeof q);
  size_t ih = v6 ? 40 : 20;
  if (v6) {
    q[0] = 0x60, q[5] = 8, q[6] = 58, q[7] = 64;
    memcpy(q + 8, f->src.a, 16);
    memcpy(q + 24, f->dst.a, 16);
  } else {
    q[0] = 0x45, q[3] = 28, q[8] = 64, q[9] = 1;
    memcpy(q + 12, f->src.a, 4);
    memcpy(q + 16, f->dst.a, 4);
  }
  q[ih] = v6 ? 128 : 8;
  q[ih + 4] = (uint8_t)(f->id >> 8), q[ih + 5] = (uint8_t)f->id;
  q[ih + 6] = (uint8_t)(f->last_seq >> 8), q[ih + 7] = (uint8_t)f->last_seq;
  uint8_t c4 = EXIT_ICMP4_HOST, c6 = EXIT_ICMP6_ADDR;
  if (err == ENETUNREACH)
    c4 = EXIT_ICMP4_NET, c6 = EXIT_ICMP6_NOROUTE;
  else if (err == EACCES || err == EPERM)
    c4 = EXIT_ICMP4_PROHIBITED, c6 = EXIT_ICMP6_PROHIBITED;
  exit_send_unreach(f->x, q, ih + 8, c4, c6);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  echo_flow *f = h->data;
  exit_ctx *x = f->x;
  if (!x) return;
  bool v6 = f->src.family == AF_INET6;
  for (int i = 0; i < 64; i++) {
    ssize_t n = recv(f->fd, x->rbuf, sizeof x->rbuf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      if (is_unreach_errno(errno)) answer_error(f, errno);
      continue; /* the error is consumed by the read; the socket goes on */
    }
    if (n < 8 || x->rbuf[0] != (v6 ? 129 : 0)) continue; /* echo replies only */
    f->last = uv_now(x->loop);
    x->rbuf[4] = (uint8_t)(f->id >> 8), x->rbuf[5] = (uint8_t)f->id;
    exit_send_icmp(x, &f->dst, &f->src, x->rbuf, (size_t)n);
  }
}

static echo_flow *find(exit_ctx *x, const exit_addr *src, const exit_addr *dst, uint16_t id) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->echo_list) {
    echo_flow *f = list_entry(it, echo_flow, link);
    if (f->id == id && exit_addr_equal(&f->src, src) && exit_addr_equal(&f->dst, dst)) return f;
  }
  return NULL;
}

/* Sets *err to the errno of a failed socket or connect. */
static echo_flow *open_flow(exit_ctx *x, const exit_addr *src, const exit_addr *dst, uint16_t id,
                            int *err) {
  if (x->n_echo >= EXIT_MAX_ECHO_FLOWS) { /* the least recently used goes */
    echo_flow *old = NULL;
    list_node *it, *tmp;
    list_each_safe(it, tmp, &x->echo_list) {
      echo_flow *f = list_entry(it, echo_flow, link);
      if (!old || f->last < old->last) old = f;
    }
    if (old) close_flow(old);
  }
  int fd = open_ping_socket(dst->family);
  if (fd < 0) return *err = errno, NULL;
  struct sockaddr_storage ss;
  exit_addr_to_sockaddr(dst, 0, &ss);
  socklen_t sl = sockaddr_len((const struct sockaddr *)&ss);
  echo_flow *f = calloc(1, sizeof *f);
  *err = ENOMEM;
  if (!f || connect(fd, (struct sockaddr *)&ss, sl) != 0 ||
      uv_poll_init(x->loop, &f->poll, fd) != 0) {
    if (f) *err = errno;
    free(f);
    close(fd);
    return NULL;
  }
  f->fd = fd;
  f->src = *src;
  f->dst = *dst;
  f->id = id;
  f->last = uv_now(x->loop);
  f->poll.data = f;
  uv_poll_start(&f->poll, UV_READABLE, on_readable);
  f->x = x;
  list_push_front(&x->echo_list, &f->link);
  x->n_echo++;
  return f;
}

bool exit_icmp_echo(exit_ctx *x, const exit_addr *src, const exit_addr *dst, const uint8_t *icmp,
                    size_t len) {
  if (!(dst->family == AF_INET6 ? x->ping6 : x->ping4) || len < 8) return false;
  uint16_t id = (uint16_t)(icmp[4] << 8 | icmp[5]);
  uint16_t seq = (uint16_t)(icmp[6] << 8 | icmp[7]);
  echo_flow *f = find(x, src, dst, id);
  int err = 0;
  if (!f && !(f = open_flow(x, src, dst, id, &err))) {
    if (!is_unreach_errno(err)) return false;
    echo_flow tmp = {.x = x, .src = *src, .dst = *dst, .id = id, .last_seq = seq};
    answer_error(&tmp, err); /* e.g. no route on the server */
    return true;
  }
  f->last = uv_now(x->loop);
  f->last_seq = seq;
  /* The kernel sets the identifier and the checksum. */
  if (send(f->fd, icmp, len, 0) < 0 && is_unreach_errno(errno)) answer_error(f, errno);
  x->stats.icmp_echo++;
  return true;
}

void exit_icmp_sweep(exit_ctx *x, uint64_t now) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->echo_list) {
    echo_flow *f = list_entry(it, echo_flow, link);
    if (now - f->last >= EXIT_ECHO_IDLE_MS) close_flow(f);
  }
}

void exit_icmp_end_stale(exit_ctx *x) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->echo_list) {
    echo_flow *f = list_entry(it, echo_flow, link);
    if (!exit_peer_lookup(x, &f->src)) close_flow(f);
  }
}

void exit_icmp_stop(exit_ctx *x) {
  while (!list_empty(&x->echo_list)) close_flow(list_entry(x->echo_list.next, echo_flow, link));
}
