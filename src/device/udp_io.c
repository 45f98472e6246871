/* The sockets: opening both families, socket buffers, libuv's bounded queue for what a full
 * socket buffer cannot take, immediate sends (handshake bursts), closing. The batch lives in
 * udp_batch.c, receiving in udp_recv.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/udp_io_internal.h"
#include "util/addr_fmt.h"
#include "util/sockaddr.h"

#define UDP_SOCKET_BUFFER (8 * 1024 * 1024)
#define UDP_SEND_QUEUE_MAX 8192 /* datagrams waiting for a full socket buffer (~12 MB) */

bool udp_env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v == '1';
}

/* Large socket buffers absorb bursts (many streams at once, handshake floods): a datagram lost
 * here costs a TCP stream inside the tunnel a retransmission timeout. The kernel caps the plain
 * request at net.core.[rw]mem_max; with CAP_NET_ADMIN (Linux) the FORCE variants go beyond. */
static void grow_buffers(udp_sock *s) {
  int sz = UDP_SOCKET_BUFFER;
  uv_send_buffer_size((uv_handle_t *)&s->h, &sz);
  sz = UDP_SOCKET_BUFFER;
  uv_recv_buffer_size((uv_handle_t *)&s->h, &sz);
#if defined(__linux__) && defined(SO_RCVBUFFORCE)
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&s->h, &fd) == 0) {
    int want = UDP_SOCKET_BUFFER;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want);
  }
#endif
}

/* Several processes on one port, the kernel spreading datagrams among them by source address
 * (Linux 3.9+; elsewhere the port is shared but one socket may take everything: the workers hand
 * misdelivered datagrams on, so that stays correct, only slower). libuv's UV_UDP_REUSEADDR sets
 * SO_REUSEADDR on Linux, which does not spread, hence the option by hand before the bind. */
static int share_port(udp_sock *s) {
#ifdef SO_REUSEPORT
  uv_os_fd_t fd;
  int on = 1;
  if (uv_fileno((uv_handle_t *)&s->h, &fd) != 0) return UV_EBADF;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    return uv_translate_sys_error(errno);
  return 0;
#else
  (void)s;
  return UV_ENOTSUP;
#endif
}

/* The socket is open (and bound): receive, send offloads, buffers. */
static int start_one(udp_io *u, udp_sock *s) {
  int rc = udp_recv_start(s);
  if (rc) {
    uv_close((uv_handle_t *)&s->h, NULL);
    return rc;
  }
#ifdef UDP_IO_HAVE_GSO
  s->gso = !udp_env_flag("AWG_UDP_NO_GSO");
#endif
  grow_buffers(s);
  s->open = 1;
  return 0;
}

static void init_sock(udp_io *u, udp_sock *s, int family, uint16_t slot) {
  s->owner = u;
  s->family = family;
  s->slot = slot;
  s->poll_fd = -1;
  s->h.data = s;
}

static int open_one(uv_loop_t *loop, udp_io *u, udp_sock *s, int family, uint16_t port,
                    bool reuseport, uint16_t slot) {
  int rc = uv_udp_init_ex(loop, &s->h, (unsigned)family | UV_UDP_RECVMMSG);
  if (rc) return rc;
  init_sock(u, s, family, slot);
  if (reuseport && (rc = share_port(s)) != 0) {
    uv_close((uv_handle_t *)&s->h, NULL);
    return rc;
  }
  struct sockaddr_storage ss;
  sockaddr_make(&ss, family, NULL, port);
  rc = uv_udp_bind(&s->h, (struct sockaddr *)&ss, family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
  if (rc) {
    uv_close((uv_handle_t *)&s->h, NULL);
    return rc;
  }
  return start_one(u, s);
}

static int adopt_one(uv_loop_t *loop, udp_io *u, udp_sock *s, int family, int fd) {
  if (fd < 0) return UV_EBADF;
  int rc = uv_udp_init_ex(loop, &s->h, AF_UNSPEC | UV_UDP_RECVMMSG);
  if (rc) return rc;
  init_sock(u, s, family, 0);
  if ((rc = uv_udp_open(&s->h, fd)) != 0) {
    uv_close((uv_handle_t *)&s->h, NULL);
    return rc;
  }
  return start_one(u, s);
}

static uint16_t bound_port(udp_sock *s) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_udp_getsockname(&s->h, (struct sockaddr *)&ss, &len)) return 0;
  return sockaddr_port((struct sockaddr *)&ss);
}

static void free_io(udp_io *u) {
  free(u->ports);
  free(u->rbuf);
  free(u->arena ? u->arena - DGRAM_CARRIER_ROOM : NULL);
  free(u);
}

udp_io *udp_io_open(uv_loop_t *loop, uint16_t port, dgram_recv_fn fn, void *ctx, char *err,
                    size_t errlen) {
  return udp_io_open_ex(loop, port, false, fn, ctx, err, errlen);
}

static udp_io *new_io(size_t cap, dgram_recv_fn fn, void *ctx, char *err, size_t errlen) {
  udp_io *u = calloc(1, sizeof *u);
  if (u) u->rbuf = malloc((size_t)UDP_RECV_SLOTS * UDP_SLOT_SIZE);
  uint8_t *arena = u ? malloc(DGRAM_CARRIER_ROOM + UDP_ARENA_SIZE + DGRAM_CARRIER_ROOM) : NULL;
  if (arena) u->arena = arena + DGRAM_CARRIER_ROOM; /* the seal's room (dgram_carrier.h) */
  if (u) u->ports = calloc(cap, sizeof *u->ports);
  if (!u || !u->rbuf || !u->arena || !u->ports) {
    if (u) free_io(u);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  u->cap = cap;
  u->fn = fn;
  u->ctx = ctx;
  udp_batch_init(u);
  return u;
}

udp_io *udp_io_adopt(uv_loop_t *loop, int fd4, int fd6, dgram_recv_fn fn, void *ctx, char *err,
                     size_t errlen) {
  /* Room for extra ports added later (udp_io_add_ports); calloc'd pages cost nothing untouched. */
  udp_io *u = new_io(UDP_IO_MAX_PORTS, fn, ctx, err, errlen);
  if (!u) return NULL;
  udp_port *p = &u->ports[0];
  int rc4 = adopt_one(loop, u, &p->s4, AF_INET, fd4);
  if (!rc4) u->port = bound_port(&p->s4);
  int rc6 = adopt_one(loop, u, &p->s6, AF_INET6, fd6);
  if (!rc6 && !u->port) u->port = bound_port(&p->s6);
  if (rc4 && rc6) {
    snprintf(err, errlen, "cannot use the UDP sockets handed over: %s", uv_strerror(rc4));
    free_io(u);
    return NULL;
  }
  p->port = u->port;
  u->n_ports = 1;
  return u;
}

/* Binds local port number `port` (0: any) as the next slot. Either family may fail (no IPv6);
 * returns the IPv4 error when neither binds. */
static int open_port(udp_io *u, uv_loop_t *loop, uint16_t port, bool reuseport) {
  uint16_t slot = (uint16_t)u->n_ports;
  udp_port *p = &u->ports[slot];
  int rc4 = open_one(loop, u, &p->s4, AF_INET, port, reuseport, slot);
  if (!rc4) port = bound_port(&p->s4);
  int rc6 = open_one(loop, u, &p->s6, AF_INET6, port, reuseport, slot);
  if (!rc6 && !port) port = bound_port(&p->s6);
  if (rc4 && rc6) return rc4;
  p->port = port;
  u->n_ports++;
  return 0;
}

static void close_port_now(udp_port *p);

int udp_io_add_ports(udp_io *u, uv_loop_t *loop, const uint16_t *ports, size_t n, bool reuseport,
                     char *err, size_t errlen) {
  if (n > u->cap) return snprintf(err, errlen, "more than %zu UDP ports", u->cap - 1), -1;
  for (size_t i = 1; i < n; i++) {
    int rc = open_port(u, loop, ports[i], reuseport);
    if (rc) {
      snprintf(err, errlen, "cannot bind UDP port %u (ExtraPorts): %s", ports[i], uv_strerror(rc));
      return -1;
    }
  }
  return 0;
}

udp_io *udp_io_open_ports(uv_loop_t *loop, const uint16_t *ports, size_t n, bool reuseport,
                          dgram_recv_fn fn, void *ctx, char *err, size_t errlen) {
  if (n < 1 || n > UDP_IO_MAX_PORTS)
    return snprintf(err, errlen, "between 1 and %d UDP ports", UDP_IO_MAX_PORTS), NULL;
  udp_io *u = new_io(n, fn, ctx, err, errlen);
  if (!u) return NULL;
  int rc = open_port(u, loop, ports[0], reuseport);
  if (rc) {
    snprintf(err, errlen, "cannot bind UDP port %u: %s", ports[0], uv_strerror(rc));
    free_io(u);
    return NULL;
  }
  u->port = u->ports[0].port;
  if (udp_io_add_ports(u, loop, ports, n, reuseport, err, errlen) != 0) {
    udp_io_close(u); /* what was opened closes as on shutdown */
    return NULL;
  }
  return u;
}

udp_io *udp_io_open_ex(uv_loop_t *loop, uint16_t port, bool reuseport, dgram_recv_fn fn, void *ctx,
                       char *err, size_t errlen) {
  return udp_io_open_ports(loop, &port, 1, reuseport, fn, ctx, err, errlen);
}

uint16_t udp_io_port(const udp_io *u) { return u->port; }

size_t udp_io_port_count(const udp_io *u) { return u->n_ports; }

void udp_io_offload(const udp_io *u, bool *gso, bool *gro) {
  const udp_port *p = &u->ports[0];
  *gso = (p->s4.open && p->s4.gso) || (p->s6.open && p->s6.gso);
  *gro = (p->s4.open && p->s4.gro) || (p->s6.open && p->s6.gro);
}

udp_sock *udp_sock_for(udp_io *u, const dgram_endpoint *to) {
  if (to->sock >= u->n_ports) return NULL;
  udp_port *p = &u->ports[to->sock];
  udp_sock *s = to->ss.ss_family == AF_INET ? &p->s4 : &p->s6;
  return s->open ? s : NULL;
}

typedef struct {
  uv_udp_send_t req;
  size_t len;
  uint8_t data[];
} queued_send;

static void on_queued_sent(uv_udp_send_t *req, int status) { free(req); }

/* The socket buffer is full: queue the datagram in libuv (which sends it as soon as the socket is
 * writable, in order) instead of dropping it, because a drop costs a TCP connection inside the
 * tunnel a retransmission timeout. Bounded, so a stuck socket cannot grow memory without end. */
int udp_send_queued(udp_sock *s, const dgram_endpoint *to, const uint8_t *data, size_t len) {
  if (uv_udp_get_send_queue_count(&s->h) >= UDP_SEND_QUEUE_MAX) return UV_EAGAIN;
  queued_send *q = malloc(sizeof *q + len);
  if (!q) return UV_ENOMEM;
  memcpy(q->data, data, len);
  q->len = len;
  uv_buf_t b = uv_buf_init((char *)q->data, (unsigned)len);
  int rc = uv_udp_send(&q->req, &s->h, &b, 1, (const struct sockaddr *)&to->ss, on_queued_sent);
  if (rc) free(q);
  return rc;
}

static int send_now(udp_io *u, const dgram_endpoint *to, const uint8_t *data, size_t len) {
  udp_sock *s = udp_sock_for(u, to);
  if (!s) return UV_EAFNOSUPPORT;
  /* Behind queued datagrams, queue too: order matters to TCP inside the tunnel. */
  if (uv_udp_get_send_queue_count(&s->h)) return udp_send_queued(s, to, data, len);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(&s->h, &b, 1, (const struct sockaddr *)&to->ss);
  if (rc == UV_EAGAIN || rc == UV_ENOBUFS) return udp_send_queued(s, to, data, len);
  return rc < 0 ? rc : 0;
}

size_t udp_io_send_batch(udp_io *u, const dgram_endpoint *to, const uint8_t *const *data,
                         const size_t *len, size_t n) {
  /* After everything sealed before (per-peer order), then one by one: a failure must stop the
   * burst, and this runs once per handshake, not per data packet. */
  udp_io_flush(u);
  size_t sent = 0;
  for (; sent < n; sent++)
    if (send_now(u, to, data[sent], len[sent]) != 0) break;
  return sent;
}

static void on_closed(uv_handle_t *h) {
  udp_io *u = ((udp_sock *)h->data)->owner;
  if (--u->closing == 0) free_io(u);
}

void udp_io_close(udp_io *u) {
  if (!u) return;
  udp_io_flush(u);
  loop_turn_cancel(&u->flush_hook);
  u->closing = 0;
  for (size_t i = 0; i < u->n_ports; i++) {
    udp_sock *socks[2] = {&u->ports[i].s4, &u->ports[i].s6};
    for (int k = 0; k < 2; k++)
      if (socks[k]->open) u->closing += 1 + udp_recv_close(socks[k], on_closed);
  }
  for (size_t i = 0; i < u->n_ports; i++) close_port_now(&u->ports[i]);
  if (!u->closing) free_io(u);
}

static void close_port_now(udp_port *p) {
  if (p->s4.open) uv_close((uv_handle_t *)&p->s4.h, on_closed);
  if (p->s6.open) uv_close((uv_handle_t *)&p->s6.h, on_closed);
}
