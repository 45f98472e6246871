/* The dialer interface: opens a byte stream to a destination (an IP literal or a name) and says
 * precisely why when it cannot. Front-ends (SOCKS, forwards) hold a dialer * and never know what
 * is behind it: lwIP TCP through the tunnel (dialer_lwip.h) today, QUIC streams to our own server
 * and a dialer that picks between the two later.
 *
 * Contract for every implementation:
 *   - start() copies dst and returns a request, or NULL when out of memory (cb is then never
 *     called);
 *   - cb runs exactly once, always later from the loop, never from inside start();
 *   - on success s is a connected stream (ownership passes to the callee) and err == DIAL_OK; on
 *     failure s is NULL, err the precise cause and reason a short static text for logs;
 *   - cancel() abandons a request whose cb has not run: cb is then never called and whatever the
 *     request held is released (a stream connected meanwhile is closed);
 *   - destroy() frees the dialer; requests still running must have been cancelled first. */
#ifndef AWGPROXY_STREAM_DIALER_H
#define AWGPROXY_STREAM_DIALER_H

#include "stream/dial_types.h"
#include "stream/stream.h"

typedef struct dialer dialer;
typedef struct dial_req dial_req;

typedef void (*dial_cb)(void *ctx, stream *s, dial_error err, const char *reason);

typedef struct {
  dial_req *(*start)(dialer *d, const dial_dest *dst, dial_cb cb, void *ctx);
  void (*cancel)(dial_req *r);
  void (*destroy)(dialer *d);
  const char *name; /* "lwip", "quic", … for logs */
} dialer_ops;

/* Implementations embed these as the first member of their dialer and of their requests (so a
 * request can be cancelled by whoever holds it, without the dialer at hand). */
struct dialer {
  const dialer_ops *ops;
};
struct dial_req {
  const dialer_ops *ops;
};

static inline dial_req *dialer_start(dialer *d, const dial_dest *dst, dial_cb cb, void *ctx) {
  return d->ops->start(d, dst, cb, ctx);
}
static inline void dial_cancel(dial_req *r) { r->ops->cancel(r); }
static inline void dialer_destroy(dialer *d) {
  if (d) d->ops->destroy(d);
}
static inline const char *dialer_name(const dialer *d) { return d->ops->name; }

#endif
