/* The send batch. Datagrams are sealed in place into one arena, in order; at the end of the loop
 * turn (or when the arena is full) each socket's share leaves in one sendmmsg (Linux), where a
 * run of equal-size datagrams to one endpoint (the last may be shorter) is one UDP GSO send: the
 * kernel (or the NIC) cuts it into datagrams, one syscall and one trip through the stack for up
 * to 64 of them. What the socket buffer cannot take goes to libuv's bounded queue, in order. */
#define _GNU_SOURCE /* sendmmsg */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "device/udp_io_internal.h"
#include "util/log.h"

/* One message of a flush: the queue entries out[first, first+count) (consecutive in the queue,
 * so contiguous in the arena), sent as one GSO datagram of segment size seg, or alone (seg 0). */
typedef struct {
  size_t first, count;
  uint16_t seg;
} udp_msg;

#ifdef __linux__
typedef struct mmsghdr udp_mmsg;
#else
typedef struct {
  struct msghdr msg_hdr;
  unsigned msg_len;
} udp_mmsg;
#endif

#ifdef UDP_IO_HAVE_GSO
#define UDP_CTRL_LEN CMSG_SPACE(sizeof(uint16_t))
#else
#define UDP_CTRL_LEN 1
#endif

typedef struct {
  udp_msg meta[UDP_BATCH_MAX];
  udp_mmsg mm[UDP_BATCH_MAX];
  struct iovec iov[UDP_BATCH_MAX];
  union {
    char buf[UDP_CTRL_LEN];
    struct cmsghdr align;
  } ctrl[UDP_BATCH_MAX];
} udp_flush_plan;

static void on_flush_hook(turn_hook *h) {
  udp_io_flush((udp_io *)((char *)h - offsetof(udp_io, flush_hook)));
}

static uint8_t *udp_carrier_reserve(dgram_carrier *c, const dgram_endpoint *to, size_t max_len) {
  (void)to; /* one batch for every endpoint */
  return udp_io_reserve((udp_io *)c, max_len);
}
static void udp_carrier_commit(dgram_carrier *c, const dgram_endpoint *to, size_t len,
                               uint64_t *bytes, uint64_t *packets) {
  udp_io_commit((udp_io *)c, to, len, bytes, packets);
}
static void udp_carrier_flush(dgram_carrier *c) { udp_io_flush((udp_io *)c); }
static size_t udp_carrier_send_batch(dgram_carrier *c, const dgram_endpoint *to,
                                     const uint8_t *const *data, const size_t *len, size_t n) {
  return udp_io_send_batch((udp_io *)c, to, data, len, n);
}

static const dgram_carrier_ops udp_carrier_ops = {
    .reserve = udp_carrier_reserve,
    .commit = udp_carrier_commit,
    .flush = udp_carrier_flush,
    .send_batch = udp_carrier_send_batch,
};

void udp_batch_init(udp_io *u) {
  u->carrier.ops = &udp_carrier_ops;
  u->carrier.name = "udp";
  u->flush_hook.run = on_flush_hook;
  u->flush_hook.phase = LOOP_TURN_SEND;
}

dgram_carrier *udp_io_carrier(udp_io *u) { return &u->carrier; }

uint8_t *udp_io_reserve(udp_io *u, size_t max_len) {
  if (max_len > UDP_IO_MAX_DATAGRAM) return NULL;
  if (u->n_out == UDP_BATCH_MAX || UDP_ARENA_SIZE - u->used < max_len) udp_io_flush(u);
  return u->arena + u->used;
}

void udp_io_commit(udp_io *u, const dgram_endpoint *to, size_t len, uint64_t *bytes,
                   uint64_t *packets) {
  /* Only after udp_io_reserve(len or more), which made the room. */
  if (!len || u->n_out == UDP_BATCH_MAX || UDP_ARENA_SIZE - u->used < len) return;
  udp_out *o = &u->out[u->n_out++];
  o->to = *to;
  o->off = (uint32_t)u->used;
  o->len = (uint32_t)len;
  o->bytes = bytes;
  o->packets = packets;
  u->used += len;
  loop_turn_want(&u->flush_hook);
}

static void account(const udp_out *o) {
  if (o->bytes) *o->bytes += o->len;
  if (o->packets) ++*o->packets;
}

static void log_send_failed(const udp_out *o, int err) {
  if (!log_enabled(LOG_DEBUG)) return;
  char ep[64];
  dgram_endpoint_format(&o->to, ep, sizeof ep);
  LOG_D("udp", "send_failed", "to", ep, "error", uv_strerror(err), NULL);
}

/* How many queue entries from i form one message: a GSO run of equal lengths to one endpoint,
 * ended by a shorter datagram, the segment or byte limit, or anything else. */
static size_t run_length(const udp_io *u, size_t i, bool gso) {
  const udp_out *a = &u->out[i];
  size_t n = 1, total = a->len;
  if (!gso) return 1;
  while (i + n < u->n_out && n < UDP_GSO_MAX_SEGMENTS) {
    const udp_out *b = &u->out[i + n];
    if (b->len > a->len || total + b->len > UDP_GSO_MAX_BYTES ||
        !dgram_endpoint_equal(&b->to, &a->to))
      break;
    total += b->len;
    n++;
    if (b->len < a->len) break;
  }
  return n;
}

static void set_gso(udp_flush_plan *p, size_t k, uint16_t seg) {
#ifdef UDP_IO_HAVE_GSO
  struct msghdr *h = &p->mm[k].msg_hdr;
  h->msg_control = p->ctrl[k].buf;
  h->msg_controllen = UDP_CTRL_LEN;
  struct cmsghdr *c = CMSG_FIRSTHDR(h);
  c->cmsg_level = IPPROTO_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof seg);
  memcpy(CMSG_DATA(c), &seg, sizeof seg);
#else
  (void)p, (void)k, (void)seg;
#endif
}

/* The messages for socket s from queue entry `from` on; returns how many. */
static size_t plan(udp_io *u, udp_sock *s, size_t from, udp_flush_plan *p) {
  size_t k = 0;
  for (size_t i = from; i < u->n_out;) {
    const udp_out *o = &u->out[i];
    if (o->to.ss.ss_family != s->family || o->to.sock != s->slot) {
      i++;
      continue;
    }
    size_t n = run_length(u, i, s->gso);
    size_t bytes = (size_t)u->out[i + n - 1].off + u->out[i + n - 1].len - o->off;
    p->meta[k] = (udp_msg){i, n, n > 1 ? (uint16_t)o->len : 0};
    p->iov[k] = (struct iovec){u->arena + o->off, bytes};
    memset(&p->mm[k], 0, sizeof p->mm[k]);
    struct msghdr *h = &p->mm[k].msg_hdr;
    h->msg_name = (void *)&o->to.ss;
    h->msg_namelen = o->to.len;
    h->msg_iov = &p->iov[k];
    h->msg_iovlen = 1;
    if (n > 1) set_gso(p, k, (uint16_t)o->len);
    k++;
    i += n;
  }
  return k;
}

/* Sends mm[0, n) in order; returns how many left, or -errno for the first one. */
static int send_msgs(int fd, udp_mmsg *mm, size_t n) {
#ifdef __linux__
  int r;
  do r = sendmmsg(fd, mm, (unsigned)n, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
#else
  size_t i = 0;
  for (; i < n; i++) {
    ssize_t r;
    do r = sendmsg(fd, &mm[i].msg_hdr, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return i ? (int)i : -errno;
  }
  return (int)i;
#endif
}

static void account_msg(udp_io *u, const udp_msg *m) {
  if (m->seg) u->gso_sends++;
  for (size_t i = 0; i < m->count; i++) account(&u->out[m->first + i]);
}

static void drop_msg(udp_io *u, const udp_msg *m, int uv_err) {
  for (size_t i = 0; i < m->count; i++) log_send_failed(&u->out[m->first + i], uv_err);
}

static void queue_msg(udp_io *u, udp_sock *s, const udp_msg *m) {
  for (size_t i = 0; i < m->count; i++) {
    const udp_out *o = &u->out[m->first + i];
    int rc = udp_send_queued(s, &o->to, u->arena + o->off, o->len);
    if (rc == 0)
      account(o);
    else
      log_send_failed(o, rc);
  }
}

static bool gso_refused(int err) {
  return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

static void flush_sock(udp_io *u, udp_sock *s, size_t from) {
  udp_flush_plan p;
  size_t n = plan(u, s, from, &p), k = 0;
  uv_os_fd_t fd;
  if (!n) return;
  /* Behind datagrams already waiting in libuv, wait too: order matters to TCP in the tunnel. */
  if (uv_udp_get_send_queue_count(&s->h) || uv_fileno((uv_handle_t *)&s->h, &fd) != 0) goto queue;
  while (k < n) {
    int r;
    if (u->test_gso_fail && p.meta[k].seg)
      r = -u->test_gso_fail, u->test_gso_fail = 0;
    else
      r = send_msgs(fd, p.mm + k, u->test_gso_fail ? 1 : n - k);
    if (r > 0) {
      for (int i = 0; i < r; i++) account_msg(u, &p.meta[k + (size_t)i]);
      k += (size_t)r;
      continue;
    }
    int err = -r;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
    if (p.meta[k].seg && gso_refused(err)) {
      /* No GSO here (no checksum offload, a segment above the path MTU, an old kernel): plain
       * datagrams from now on, starting with this run. */
      s->gso = false;
      LOG_W("udp", "gso_disabled", "error", uv_strerror(-err), NULL);
      flush_sock(u, s, p.meta[k].first);
      return;
    }
    drop_msg(u, &p.meta[k], -err);
    k++;
  }
queue:
  for (; k < n; k++) queue_msg(u, s, &p.meta[k]);
}

/* Each socket with datagrams in the batch sends its share once, from its first entry on (in
 * the order of first appearance; order matters only within a socket's share, per peer). */
void udp_io_flush(udp_io *u) {
  if (!u->n_out) return;
  loop_turn_cancel(&u->flush_hook);
  uint64_t gen = ++u->flush_gen;
  for (size_t i = 0; i < u->n_out; i++) {
    udp_sock *s = udp_sock_for(u, &u->out[i].to);
    if (!s) {
      log_send_failed(&u->out[i], UV_EAFNOSUPPORT);
      continue;
    }
    if (s->flush_gen == gen) continue;
    s->flush_gen = gen;
    flush_sock(u, s, i);
  }
  u->n_out = 0;
  u->used = 0;
}
