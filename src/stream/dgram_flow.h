/* The datagram interface: a UDP flow through the tunnel for one SOCKS UDP association or one
 * forwarded UDP client, whatever carries it (an lwIP UDP PCB, dgram_lwip.h; DATAGRAM frames of
 * the QUIC connection to our own server, quic/dgram_quic.h). Front-ends hold a dgram_opener *
 * and never know which; they resolve names themselves (through the tunnel resolver) and send to
 * IP literals only.
 *
 * Contract for every implementation:
 *   - open() returns a flow, or NULL when none can be had (out of memory, the flow limit); the
 *     flow's replies go to cb with their source (an IP literal) and the payload, both valid
 *     during the call only;
 *   - send() copies what it is given; 0 if it went out (or was queued), -1 if it was dropped, as
 *     UDP may (no path, a full queue, too large, a name as destination);
 *   - cb never runs from inside open() or send(), and never after close();
 *   - close() ends the flow at once and frees it;
 *   - destroy() frees the opener; every flow it opened must have been closed first. */
#ifndef AWGPROXY_STREAM_DGRAM_FLOW_H
#define AWGPROXY_STREAM_DGRAM_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "stream/dial_types.h"

typedef struct dgram_opener dgram_opener;
typedef struct dgram_flow dgram_flow;

typedef void (*dgram_recv_cb)(void *ctx, const dial_dest *from, const uint8_t *data, size_t len);

typedef struct {
  dgram_flow *(*open)(dgram_opener *o, dgram_recv_cb cb, void *ctx);
  int (*send)(dgram_flow *f, const dial_dest *to, const uint8_t *data, size_t len);
  void (*close)(dgram_flow *f);
  void (*destroy)(dgram_opener *o);
  const char *name; /* "lwip", "quic", … for logs */
} dgram_ops;

/* Implementations embed these as the first member of their opener and of their flows (a flow is
 * used and closed without its opener at hand). */
struct dgram_opener {
  const dgram_ops *ops;
};
struct dgram_flow {
  const dgram_ops *ops;
};

static inline dgram_flow *dgram_open(dgram_opener *o, dgram_recv_cb cb, void *ctx) {
  return o->ops->open(o, cb, ctx);
}
static inline int dgram_send(dgram_flow *f, const dial_dest *to, const uint8_t *data, size_t len) {
  return f->ops->send(f, to, data, len);
}
static inline void dgram_close(dgram_flow *f) {
  if (f) f->ops->close(f);
}
static inline void dgram_opener_destroy(dgram_opener *o) {
  if (o) o->ops->destroy(o);
}
static inline const char *dgram_flow_name(const dgram_flow *f) { return f->ops->name; }

#endif
