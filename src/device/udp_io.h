/* The tunnel's UDP sockets: one per address family, non-blocking, on the libuv loop. Receiving
 * uses recvmmsg through libuv where the OS has it (UV_UDP_RECVMMSG; a plain recvmsg loop
 * elsewhere) into one preallocated buffer, so the receive path allocates nothing per datagram.
 * Sending is synchronous (uv_udp_try_send): nothing is queued or allocated per datagram. */
#ifndef AWGPROXY_DEVICE_UDP_IO_H
#define AWGPROXY_DEVICE_UDP_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct {
  struct sockaddr_storage ss;
  socklen_t len;
} udp_addr;

/* data is scratch owned by udp_io, writable by the callback until it returns (decryption works
 * in place). */
typedef void (*udp_recv_fn)(void *ctx, uint8_t *data, size_t len, const udp_addr *from);

typedef struct udp_io udp_io;

/* Binds [::]:port (dual-stack off) and 0.0.0.0:port; port 0 picks one (the same for both when
 * possible). Either family may fail to bind (e.g. no IPv6); fails only if neither binds. */
udp_io *udp_io_open(uv_loop_t *loop, uint16_t port, udp_recv_fn fn, void *ctx, char *err,
                    size_t errlen);
uint16_t udp_io_port(const udp_io *u);
/* Sends one datagram. Returns 0, or a negative libuv error (UV_EAGAIN means dropped). */
int udp_io_send(udp_io *u, const udp_addr *to, const uint8_t *data, size_t len);
/* Sends datagrams in order, stopping at the first failure (the rest are not sent, as in
 * amneziawg-go: a failing junk packet suppresses the initiation behind it). Returns how many
 * were sent. */
size_t udp_io_send_batch(udp_io *u, const udp_addr *to, const uint8_t *const *data,
                         const size_t *len, size_t n);
void udp_io_close(udp_io *u);

/* Formats an address as ip:port or [ip]:port. */
void udp_addr_format(const udp_addr *a, char *buf, size_t len);
int udp_addr_equal(const udp_addr *a, const udp_addr *b);

#endif
