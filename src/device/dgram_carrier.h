/* The seam between the tunnel and the network: a datagram carrier moves whole AWG datagrams
 * (junk, signature packets, handshakes, transport) to and from peers. UDP (udp_io.h) is one
 * carrier; a TLS carrier for networks that block UDP is another (issue 12). The tunnel seals
 * and opens datagrams; a carrier never looks inside them.
 *
 * Contract, for every carrier:
 * - Sending: carrier_reserve gives room for one datagram to `to` in the carrier's batch; the
 *   caller seals into it and queues it with carrier_commit for the same endpoint (or abandons
 *   it). Queued datagrams leave in order, at the end of the loop turn (util/loop_turn.h,
 *   LOOP_TURN_SEND) or when the batch is full;
 *   carrier_flush sends them now. carrier_send_batch sends a run at once, stopping at the first
 *   failure. A datagram's byte and packet counters move when the carrier hands it on (to the
 *   kernel, or to its own bounded queue); they must outlive the next flush.
 * - Receiving: the carrier calls its dgram_recv_fn for each datagram, with a buffer it owns that
 *   the callback may modify (decryption works in place) until it returns, and the endpoint it
 *   came from. Every datagram of one read is handed over within one loop turn.
 * - Endpoints are opaque to the tunnel except for what it stores per peer (roaming: a peer's
 *   endpoint is where its last authenticated datagram came from) and the address bytes cookies
 *   are bound to (the remote address, whatever carries it). */
#ifndef AWGPROXY_DEVICE_DGRAM_CARRIER_H
#define AWGPROXY_DEVICE_DGRAM_CARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Bytes of addressable memory that every carrier_reserve's room has in front of it and behind
 * max_len. The tunnel's seal borrows them, and puts them back, to run ChaCha20 over the Poly1305
 * key block and the packet in one pass in place (wg_aead_ctx_seal_padded_room), instead of
 * through a scratch buffer and two copies. */
#define DGRAM_CARRIER_ROOM 64

/* Which carrier an endpoint belongs to; the value indexes the tunnel's carriers. */
typedef enum { DGRAM_CARRIER_UDP = 0, DGRAM_CARRIER_TLS, DGRAM_CARRIERS } dgram_carrier_kind;

/* Where a datagram came from or goes to. ss: the remote address as the carrier sees it (a UDP
 * source; for a stream carrier, the connection's remote address). sock: which local port of the
 * carrier (UDP: [Server] ExtraPorts, port hopping; replies leave from the port the peer last sent
 * to, as its NAT expects). A zeroed endpoint is UDP, main port. */
typedef struct {
  struct sockaddr_storage ss;
  socklen_t len;
  uint16_t sock;   /* carrier-specific local slot: UDP, the index in udp_io_open_ports' order */
  uint8_t carrier; /* dgram_carrier_kind */
} dgram_endpoint;

typedef void (*dgram_recv_fn)(void *ctx, uint8_t *data, size_t len, const dgram_endpoint *from);

typedef struct dgram_carrier dgram_carrier;

typedef struct {
  /* Room for one datagram of at most max_len bytes to `to`, flushing first when the batch is
   * full; NULL if max_len is more than the carrier can carry. Valid until the next call on the
   * carrier. (The endpoint lets a stream carrier hand out room in that connection's own buffer.) */
  uint8_t *(*reserve)(dgram_carrier *c, const dgram_endpoint *to, size_t max_len);
  void (*commit)(dgram_carrier *c, const dgram_endpoint *to, size_t len, uint64_t *bytes,
                 uint64_t *packets);
  void (*flush)(dgram_carrier *c);
  /* Sends now, in order and after the queued batch; returns how many were handed on. */
  size_t (*send_batch)(dgram_carrier *c, const dgram_endpoint *to, const uint8_t *const *data,
                       const size_t *len, size_t n);
} dgram_carrier_ops;

/* Embedded first in each carrier's own struct. */
struct dgram_carrier {
  const dgram_carrier_ops *ops;
  const char *name; /* "udp", for logs and status */
  /* A byte stream underneath (TLS over TCP): what the carrier hands on arrives, in order, or
   * the connection ends. Only its own bounded queue drops, and a resend would only join that
   * queue, so the tunnel keeps no copy of these datagrams for repair. */
  bool reliable;
};

static inline uint8_t *carrier_reserve(dgram_carrier *c, const dgram_endpoint *to, size_t max_len) {
  return c->ops->reserve(c, to, max_len);
}
static inline void carrier_commit(dgram_carrier *c, const dgram_endpoint *to, size_t len,
                                  uint64_t *bytes, uint64_t *packets) {
  c->ops->commit(c, to, len, bytes, packets);
}
static inline void carrier_flush(dgram_carrier *c) { c->ops->flush(c); }
static inline size_t carrier_send_batch(dgram_carrier *c, const dgram_endpoint *to,
                                        const uint8_t *const *data, const size_t *len, size_t n) {
  return c->ops->send_batch(c, to, data, len, n);
}
/* Queues a copy of one datagram (reserve + commit). Returns 0, or UV_EMSGSIZE when it is more
 * than the carrier can carry. */
int carrier_send(dgram_carrier *c, const dgram_endpoint *to, const uint8_t *data, size_t len,
                 uint64_t *bytes, uint64_t *packets);

/* The carrier of an endpoint whose own carrier is gone (stopped, or never attached): it drops
 * everything, so that nothing meant for one carrier leaves through another. */
dgram_carrier *dgram_carrier_none(void);

/* "udp", "tls" ("?" out of range). */
const char *dgram_carrier_kind_name(unsigned kind);

/* ip:port or [ip]:port, with the carrier named when it is not UDP ("tls:[ip]:port"). */
void dgram_endpoint_format(const dgram_endpoint *a, char *buf, size_t len);
/* Same carrier, local slot and remote address. */
int dgram_endpoint_equal(const dgram_endpoint *a, const dgram_endpoint *b);

#endif
