/* A stream wrapper that limits how fast bytes are READ from the inner stream: every chunk the
 * inner stream delivers is passed on at once and its size taken from a token bucket (shared by
 * any number of wrappers, e.g. all of one peer's connections). When the bucket is in debt the
 * wrapper stops reading the inner stream (its transport's flow control then slows the sender:
 * TCP windows close) and a timer resumes reading when the balance is positive again. Nothing is
 * buffered: the debt is at most one read chunk per wrapper. Writes, shutdown and the callbacks
 * pass straight through. */
#ifndef AWGPROXY_STREAM_STREAM_THROTTLE_H
#define AWGPROXY_STREAM_STREAM_THROTTLE_H

#include <stdint.h>
#include <uv.h>

#include "stream/stream.h"
#include "util/tbucket.h"

typedef struct {
  tbucket *bucket;         /* must stay valid until release() has run */
  void (*release)(void *); /* called once, when the wrapper is freed (may be NULL) */
  void *ctx;
  uint64_t *waits;   /* optional: incremented each time reading pauses */
  uint64_t *wait_ms; /* optional: the milliseconds spent paused */
} stream_throttle_cfg;

/* Wraps inner (the wrapper owns it from now on). NULL on allocation failure: inner is left as
 * it was and release() is not called. */
stream *stream_throttle_wrap(uv_loop_t *loop, stream *inner, const stream_throttle_cfg *cfg);

#endif
