/* Joins two streams: bytes read from one are written to the other, in both directions, with
 * flow control (a side stops reading while the other's write queue is above the high-water mark,
 * so a relay buffers at most about STREAM_HIGH_WATER per direction), half-close propagation
 * (EOF on one side shuts down writing on the other) and an idle timeout. The relay owns both
 * streams and closes them when both directions have ended, on any error, or when idle. */
#ifndef AWGPROXY_STREAM_RELAY_H
#define AWGPROXY_STREAM_RELAY_H

#include <stdint.h>
#include <uv.h>

#include "stream/stream.h"

typedef struct relay relay;

typedef struct {
  uint64_t a_to_b, b_to_a; /* bytes */
  int error;               /* 0, or the first negative UV_* error */
  int idle_timeout;        /* 1 when ended by the idle timer */
} relay_result;

typedef void (*relay_done_cb)(void *ctx, const relay_result *r);

/* Starts relaying. idle_ms 0 = no idle timeout. done (may be NULL) runs once, after both streams
 * have closed. Returns NULL on allocation failure (the streams are then closed). */
relay *relay_start(uv_loop_t *loop, stream *a, stream *b, uint64_t idle_ms, relay_done_cb done,
                   void *ctx);
/* Ends the relay now (both streams are reset). */
void relay_abort(relay *r);
/* The debug line for a relay that ended, one per stream wherever a relay is used:
 * `component=… event=… bytes_up=… bytes_down=… error=… idle_timeout=… KEY=ID`, where up is a to
 * b (a: the side towards the application); KEY=ID only when key is not NULL. Nothing when debug
 * logging is off. */
void relay_log_result(const char *component, const char *event, const char *key, const char *id,
                      const relay_result *r);

#endif
