/* The one byte-stream interface every transport implements (libuv TCP, lwIP TCP; QUIC streams
 * later). Front-ends (SOCKS, forwards, the exit) and the relay only ever see this.
 *
 * Reading is push-based with flow control (the bytes passed to on_read are only valid during the
 * call: copy what you keep): after read_start, on_read delivers data until
 * read_stop; an implementation must not deliver while stopped and must stop pulling from its
 * source (TCP windows close) so nothing buffers without bound. len 0 in on_read means EOF.
 * Writing never blocks: data is copied, write_queued() tells how much is still buffered, and
 * on_drain fires when it falls to STREAM_LOW_WATER or below after having exceeded it.
 * shutdown() sends EOF after the queued data; on_shutdown fires once all of it has been handed to
 * the transport (closing before that would lose it). close() ends the stream at once; on_closed
 * runs later from the loop and the stream must not be touched after it. A close before the shutdown
 * completed (or, where the transport can tell, before the peer's EOF was read) resets the far end
 * (TCP RST, QUIC RESET_STREAM): a stream cut short must never look complete to the other side.
 * Errors arrive in on_error (a negative UV_* code) once; the owner then closes. */
#ifndef AWGPROXY_STREAM_STREAM_H
#define AWGPROXY_STREAM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_HIGH_WATER (256 * 1024)
#define STREAM_LOW_WATER (64 * 1024)

typedef struct stream stream;

typedef struct {
  void (*read_start)(stream *s);
  void (*read_stop)(stream *s);
  int (*write)(stream *s, const uint8_t *data, size_t len);
  size_t (*write_queued)(const stream *s);
  void (*shutdown)(stream *s);
  void (*close)(stream *s);
  const char *kind; /* "tcp", "lwip-tcp", … for logs */
} stream_ops;

struct stream {
  const stream_ops *ops;
  void *user;
  void (*on_read)(stream *s, const uint8_t *data, size_t len);
  void (*on_drain)(stream *s);
  void (*on_shutdown)(stream *s);
  void (*on_error)(stream *s, int err);
  void (*on_closed)(stream *s);
};

static inline void stream_read_start(stream *s) { s->ops->read_start(s); }
static inline void stream_read_stop(stream *s) { s->ops->read_stop(s); }
static inline int stream_write(stream *s, const uint8_t *d, size_t n) {
  return s->ops->write(s, d, n);
}
static inline size_t stream_write_queued(const stream *s) { return s->ops->write_queued(s); }
static inline void stream_shutdown(stream *s) { s->ops->shutdown(s); }
static inline void stream_close(stream *s) { s->ops->close(s); }

#endif
