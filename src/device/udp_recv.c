/* Receiving. With UDP_GRO (Linux 5.0+) the kernel hands over runs of equal-size datagrams from
 * one sender as one buffer plus the segment size; libuv 1.44 cannot pass that cmsg on, so the
 * socket is read here with recvmmsg through a uv_poll_t. libuv allows one watcher per fd and
 * the uv_udp_t still sends (its queue watches for writability), so the poll handle watches a
 * dup of the socket. Without GRO: libuv's recvmmsg (UV_UDP_RECVMMSG). Either way nothing is
 * allocated per datagram and every datagram of a batch is handed over before the turn ends. */
#define _GNU_SOURCE /* recvmmsg */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device/udp_io_internal.h"
#include "util/batch_clock.h"
#include "util/sockaddr.h"

static void deliver(udp_sock *s, uint8_t *data, size_t len, const struct sockaddr *addr) {
  udp_io *u = s->owner;
  dgram_endpoint from;
  memset(&from, 0, sizeof from);
  from.sock = s->slot;
  from.len = sockaddr_len(addr);
  memcpy(&from.ss, addr, from.len);
  u->fn(u->ctx, data, len, &from);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  udp_io *u = ((udp_sock *)h->data)->owner;
  *buf = uv_buf_init(u->rbuf, UDP_RECV_SLOTS * UDP_SLOT_SIZE);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
  if (nread < 0 || !addr || (flags & UV_UDP_PARTIAL)) return; /* errors, end of batch, truncated */
  deliver(h->data, (uint8_t *)buf->base, (size_t)nread, addr);
}

#ifdef UDP_IO_HAVE_GRO
#define UDP_RECV_ROUNDS                                                     \
  8 /* recvmmsg calls per wakeup, so one busy socket cannot starve the loop \
     */

typedef struct {
  struct mmsghdr mm[UDP_RECV_SLOTS];
  struct iovec iov[UDP_RECV_SLOTS];
  struct sockaddr_storage from[UDP_RECV_SLOTS];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctrl[UDP_RECV_SLOTS];
} udp_recv_plan;

/* The GRO segment size of a received message, 0 if it is one datagram. */
static size_t gro_segment(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int seg;
      memcpy(&seg, CMSG_DATA(c), sizeof seg);
      return seg > 0 ? (size_t)seg : 0;
    }
  }
  return 0;
}

/* One received message: a datagram, or GRO's run of segments (each `seg` bytes, the last may be
 * shorter), handed over one by one in order; each is decrypted in place in its own bytes. */
static void deliver_message(udp_sock *s, struct mmsghdr *m) {
  udp_io *u = s->owner;
  struct msghdr *h = &m->msg_hdr;
  if (h->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return;
  const struct sockaddr *addr = h->msg_name;
  if (h->msg_namelen < sizeof(sa_family_t) ||
      (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
    return;
  uint8_t *data = h->msg_iov->iov_base;
  size_t len = m->msg_len, seg = gro_segment(h);
  if (!seg || seg >= len) return deliver(s, data, len, addr);
  u->gro_aggregates++;
  for (size_t off = 0; off < len; off += seg)
    deliver(s, data + off, len - off < seg ? len - off : seg, addr);
}

static void on_poll(uv_poll_t *ph, int status, int events) {
  udp_sock *s = ph->data;
  udp_io *u = s->owner;
  if (status < 0) return;
  udp_recv_plan p;
  for (int round = 0; round < UDP_RECV_ROUNDS; round++) {
    memset(p.mm, 0, sizeof p.mm);
    for (size_t i = 0; i < UDP_RECV_SLOTS; i++) {
      p.iov[i] = (struct iovec){u->rbuf + i * UDP_SLOT_SIZE, UDP_SLOT_SIZE};
      struct msghdr *h = &p.mm[i].msg_hdr;
      h->msg_name = &p.from[i];
      h->msg_namelen = sizeof p.from[i];
      h->msg_iov = &p.iov[i];
      h->msg_iovlen = 1;
      h->msg_control = p.ctrl[i].buf;
      h->msg_controllen = sizeof p.ctrl[i].buf;
    }
    int n;
    do n = recvmmsg(s->poll_fd, p.mm, UDP_RECV_SLOTS, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return; /* EAGAIN: drained; other errors (ICMP errors queued): next wakeup */
    uint64_t clock = batch_clock_hold(); /* one clock read for the batch */
    for (int i = 0; i < n && !u->closing; i++) deliver_message(s, &p.mm[i]);
    batch_clock_release(clock);
    if (n < UDP_RECV_SLOTS || u->closing) return;
  }
}

static int start_gro(udp_sock *s) {
  uv_os_fd_t fd;
  int on = 1;
  if (udp_env_flag("AWG_UDP_NO_GRO") || uv_fileno((uv_handle_t *)&s->h, &fd) != 0) return -1;
  if (setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on) != 0) return -1;
  int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) goto off;
  if (uv_poll_init_socket(s->h.loop, &s->poll, dupfd) != 0) {
    close(dupfd);
    goto off;
  }
  s->poll.data = s;
  s->poll_fd = dupfd;
  s->gro = true;
  uv_poll_start(&s->poll, UV_READABLE, on_poll);
  return 0;
off:
  on = 0;
  setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on);
  return -1;
}
#endif

int udp_recv_start(udp_sock *s) {
#ifdef UDP_IO_HAVE_GRO
  if (start_gro(s) == 0) return 0;
#endif
  return uv_udp_recv_start(&s->h, on_alloc, on_recv);
}

int udp_recv_close(udp_sock *s, uv_close_cb cb) {
#ifdef UDP_IO_HAVE_GRO
  if (s->gro) {
    /* Closing stops the watch at once, so the dup can go now; the socket stays open. */
    uv_close((uv_handle_t *)&s->poll, cb);
    close(s->poll_fd);
    s->poll_fd = -1;
    return 1;
  }
#endif
  return 0;
}
