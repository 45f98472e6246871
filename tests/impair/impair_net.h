/* UDP sockets and batched receive/send for the relay: recvmmsg/sendmmsg on Linux, a loop of
 * recvfrom/sendto elsewhere. Every receive buffer holds DGRAM_MAX + 1 bytes, so any datagram
 * fits whole. */
#ifndef IMPAIR_NET_H
#define IMPAIR_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "impair.h"

#define RX_BATCH 32
#define TX_BATCH 64

struct net_addr {
  struct sockaddr_storage ss;
  socklen_t len;
};

/* "IP:PORT", "[IPv6]:PORT" or "name:PORT" -> addr. 0 on success. */
int net_parse_addr(const char *text, struct net_addr *addr);
/* "IP:PORT" ("[IPv6]:PORT") into out. */
void net_format_addr(const struct net_addr *addr, char *out, size_t cap);
int net_addr_port(const struct net_addr *addr);
int net_addr_equal(const struct net_addr *a, const struct net_addr *b);

/* A non-blocking UDP socket bound to local (NULL: any address of family, ephemeral port) and,
 * when peer is given, connected to it. Big buffers. Returns the fd or -1 (errno set). */
int net_udp_socket(int family, const struct net_addr *local, const struct net_addr *peer);
int net_local_addr(int fd, struct net_addr *out);

struct rx_batch {
  unsigned n;
  uint8_t *buf[RX_BATCH]; /* each DGRAM_MAX + 1 bytes, owned by the batch */
  uint32_t len[RX_BATCH];
  struct net_addr from[RX_BATCH];
};

int rx_batch_init(struct rx_batch *b);
void rx_batch_free(struct rx_batch *b);
/* Reads up to RX_BATCH datagrams from fd into b (b->n). Returns b->n (0: nothing waiting) or -1
 * on an error other than EAGAIN/EINTR/ECONNREFUSED. */
int net_recv_batch(int fd, struct rx_batch *b);

struct tx_entry {
  const uint8_t *data;
  uint32_t len;
  int32_t slot; /* the engine's slot to give back after sending, or -1 */
};

/* Sends entries to fd (dst NULL: fd is connected). Returns how many went out; sent[i] tells for
 * each entry whether it did (1) or was refused (0). Waits briefly once when the socket buffer is
 * full, then gives up on the rest. */
unsigned net_send_batch(int fd, const struct net_addr *dst, const struct tx_entry *e, unsigned n,
                        uint8_t *sent);

#endif
