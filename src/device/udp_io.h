/* The tunnel's UDP sockets: one per address family, non-blocking, on the libuv loop. The UDP
 * datagram carrier (dgram_carrier.h; udp_io_carrier): received datagrams go to a dgram_recv_fn,
 * with the endpoint's sock naming the local port they came in on.
 *
 * Receiving: recvmmsg into one preallocated buffer, nothing allocated per datagram. On Linux the
 * socket has UDP_GRO on, so one receive may hold many equal-size datagrams of one sender (split
 * here, each handed to the callback in order); elsewhere, or with AWG_UDP_NO_GRO=1, libuv's
 * recvmmsg (UV_UDP_RECVMMSG). Every datagram of a batch is handed over within one loop turn, so
 * replies wait for the end of the turn (util/loop_turn.h).
 *
 * Sending: datagrams are sealed in place into a preallocated arena (udp_io_reserve, then
 * udp_io_commit) and leave together at the end of the loop turn (phase LOOP_TURN_SEND), or
 * earlier when the batch is full: one sendmmsg on Linux, with runs of equal-size datagrams to one
 * endpoint as one UDP GSO send (UDP_SEGMENT) unless the kernel refuses it or AWG_UDP_NO_GSO=1;
 * a sendmsg loop elsewhere. What the socket buffer cannot take goes to libuv's bounded queue, in
 * order. */
#ifndef AWGPROXY_DEVICE_UDP_IO_H
#define AWGPROXY_DEVICE_UDP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "device/dgram_carrier.h"

typedef struct udp_io udp_io;

/* Binds [::]:port (dual-stack off) and 0.0.0.0:port; port 0 picks one (the same for both when
 * possible). Either family may fail to bind (e.g. no IPv6); fails only if neither binds. */
udp_io *udp_io_open(uv_loop_t *loop, uint16_t port, dgram_recv_fn fn, void *ctx, char *err,
                    size_t errlen);
/* The same; reuseport: the port is shared with other processes' sockets (SO_REUSEPORT), for the
 * workers of one server. */
udp_io *udp_io_open_ex(uv_loop_t *loop, uint16_t port, bool reuseport, dgram_recv_fn fn, void *ctx,
                       char *err, size_t errlen);
/* The same on several local ports (port hopping): ports[0] as above (0 picks one), then each of
 * ports[1..n) (non-zero; a port that cannot be bound fails the whole call, with the port named in
 * err). Datagrams say which port they came in on (dgram_endpoint.sock), and sends leave from the
 * port their dgram_endpoint.sock names. n <= UDP_IO_MAX_PORTS. */
#define UDP_IO_MAX_PORTS 257
udp_io *udp_io_open_ports(uv_loop_t *loop, const uint16_t *ports, size_t n, bool reuseport,
                          dgram_recv_fn fn, void *ctx, char *err, size_t errlen);
/* Adds local ports 1..n-1 to a udp_io made by udp_io_adopt (a server worker: the main port's
 * sockets come from the supervisor, extra ports it binds itself, shared with the siblings). */
int udp_io_add_ports(udp_io *u, uv_loop_t *loop, const uint16_t *ports, size_t n, bool reuseport,
                     char *err, size_t errlen);
/* The same on sockets already bound (by a server's supervisor, which shares them among its
 * workers): fd4 / fd6 (-1 = none), owned by the udp_io from now on. */
udp_io *udp_io_adopt(uv_loop_t *loop, int fd4, int fd6, dgram_recv_fn fn, void *ctx, char *err,
                     size_t errlen);
uint16_t udp_io_port(const udp_io *u);
/* The udp_io as a datagram carrier (dgram_carrier.h); owned by the udp_io. */
dgram_carrier *udp_io_carrier(udp_io *u);
/* How many local ports: 1 + the extra ones. */
size_t udp_io_port_count(const udp_io *u);
#define UDP_IO_MAX_DATAGRAM (65536 + 128)

/* Room for one datagram of at most max_len (<= UDP_IO_MAX_DATAGRAM) bytes in the send batch,
 * flushing the batch first when it is full; NULL if max_len is too large. The caller writes (or
 * seals) the datagram there and queues it with udp_io_commit, or abandons it (the next reserve
 * returns the same room). Valid until the next udp_io call. */
uint8_t *udp_io_reserve(udp_io *u, size_t max_len);
/* Queues the datagram just written at the reserved room (len <= max_len) for `to`, after every
 * datagram queued before it. When it is handed to the kernel (or libuv's queue), *bytes += len
 * and *packets += 1 (either may be NULL); the counters must outlive the next udp_io_flush. */
void udp_io_commit(udp_io *u, const dgram_endpoint *to, size_t len, uint64_t *bytes,
                   uint64_t *packets);
/* Sends the batch now (runs by itself at the end of the loop turn). */
void udp_io_flush(udp_io *u);
/* Sends datagrams now, in order and after the queued batch, stopping at the first failure (the
 * rest are not sent, as in amneziawg-go: a failing junk packet suppresses the initiation behind
 * it). Returns how many were sent (handed to the kernel or libuv's queue). */
size_t udp_io_send_batch(udp_io *u, const dgram_endpoint *to, const uint8_t *const *data,
                         const size_t *len, size_t n);
/* Whether an open socket sends with UDP GSO / receives with UDP GRO (now). */
void udp_io_offload(const udp_io *u, bool *gso, bool *gro);
/* Flushes the batch and closes the sockets. */
void udp_io_close(udp_io *u);

#endif
