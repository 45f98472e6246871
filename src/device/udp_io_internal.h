/* State shared by udp_io.c (sockets, the libuv fallback queue), udp_batch.c (the send batch:
 * sendmmsg, UDP GSO) and udp_recv.c (recvmmsg, UDP GRO). Not part of the public interface. */
#ifndef AWGPROXY_DEVICE_UDP_IO_INTERNAL_H
#define AWGPROXY_DEVICE_UDP_IO_INTERNAL_H

#include <stdbool.h>

#include "device/udp_io.h"
#include "util/loop_turn.h"

#ifdef __linux__
#include <netinet/udp.h>
#endif
/* Linux: sendmmsg/recvmmsg, UDP_SEGMENT (4.18) and UDP_GRO (5.0) where the headers know them. */
#if defined(__linux__) && defined(UDP_SEGMENT)
#define UDP_IO_HAVE_GSO 1
#endif
#if defined(__linux__) && defined(UDP_GRO)
#define UDP_IO_HAVE_GRO 1
#endif

#define UDP_RECV_SLOTS 32           /* datagrams (or GRO aggregates) per recvmmsg call */
#define UDP_SLOT_SIZE (64 * 1024)   /* one datagram or one GRO aggregate */
#define UDP_BATCH_MAX 64            /* datagrams per flush */
#define UDP_ARENA_SIZE (256 * 1024) /* bytes per flush (>= UDP_IO_MAX_DATAGRAM) */
#define UDP_GSO_MAX_SEGMENTS 64     /* UDP_MAX_SEGMENTS of older kernels */
#define UDP_GSO_MAX_BYTES 64000     /* a GSO send is one UDP datagram of at most 64 KiB */

typedef struct {
  uv_udp_t h;
  int open;
  int family;
  bool gso;       /* UDP_SEGMENT may be used (off after the kernel refused it once) */
  bool gro;       /* receiving through poll (below) with UDP_GRO on */
  uv_poll_t poll; /* on poll_fd, a dup of the socket (libuv allows one watcher per fd) */
  int poll_fd;
  udp_io *owner;
  uint16_t slot;      /* which local port (dgram_endpoint.sock) */
  uint64_t flush_gen; /* the flush that last sent this socket's share */
} udp_sock;

/* One local port: a socket per address family. */
typedef struct {
  udp_sock s4, s6;
  uint16_t port;
} udp_port;

/* One queued datagram: arena[off, off+len) for `to`; the counters are bumped when it is handed
 * to the kernel or to libuv's queue. */
typedef struct {
  dgram_endpoint to;
  uint32_t off, len;
  uint64_t *bytes, *packets;
} udp_out;

struct udp_io {
  dgram_carrier carrier; /* first: a udp_io is the UDP carrier (udp_batch.c's ops) */
  udp_port *ports;       /* [cap], allocated once: the uv handles in it never move */
  size_t n_ports, cap;
  dgram_recv_fn fn;
  void *ctx;
  uint16_t port; /* the main port's number */
  int closing;
  char *rbuf; /* UDP_RECV_SLOTS * UDP_SLOT_SIZE, shared by both sockets (one loop thread) */
  /* The send batch: datagrams sealed in place in arena, in order. DGRAM_CARRIER_ROOM bytes
   * before and after it belong to it too (allocated with it). */
  uint8_t *arena;
  size_t used;
  udp_out out[UDP_BATCH_MAX];
  size_t n_out;
  turn_hook flush_hook;    /* LOOP_TURN_SEND */
  int test_gso_fail;       /* test hook: the next GSO send fails with this errno (0 = off) */
  uint64_t gso_sends;      /* GSO messages the kernel took (tests, diagnostics) */
  uint64_t gro_aggregates; /* received buffers holding more than one datagram */
  uint64_t flush_gen;
};

/* udp_io.c */
/* The open socket for a destination (its family and dgram_endpoint.sock), NULL if none. */
udp_sock *udp_sock_for(udp_io *u, const dgram_endpoint *to);
/* Hands a copy to libuv's bounded queue (sent in order once the socket is writable). */
int udp_send_queued(udp_sock *s, const dgram_endpoint *to, const uint8_t *data, size_t len);
bool udp_env_flag(const char *name);

/* udp_recv.c */
/* Starts receiving on an open socket: recvmmsg + UDP_GRO through a poll handle where the kernel
 * has it (and AWG_UDP_NO_GRO is unset), libuv's recvmmsg otherwise. */
int udp_recv_start(udp_sock *s);
/* Closes what udp_recv_start opened besides the socket; returns the handles to wait for. */
int udp_recv_close(udp_sock *s, uv_close_cb cb);

/* udp_batch.c */
/* The send batch, and the carrier's ops. */
void udp_batch_init(udp_io *u);

#endif
