/* Two connected in-memory streams on a libuv loop: what one end writes the other reads, with the
 * whole stream.h contract and nothing but the loop underneath. For tests of anything built on
 * streams (the relay, SOCKS sessions, the QUIC stream layer) and as the reference a transport is
 * compared with (tests/unit/test_stream_contract.c).
 *
 * Model, per direction: the reader has a receive buffer of `window` bytes (a TCP receive window).
 * Written bytes are accepted at once (write never blocks); those that do not fit the reader's
 * window are the writer's write_queued(). While the reader reads, bytes are delivered from the
 * loop (never inside a call on either end) in chunks of at most 64 KiB, freeing window; when the
 * reader stops, the window stays full and the writer's queue grows. Then:
 *   - on_drain fires when write_queued falls to STREAM_LOW_WATER after having exceeded
 *     STREAM_HIGH_WATER;
 *   - shutdown: on_shutdown fires once nothing is queued beyond the window (all of it handed to
 *     the "transport"), the reader gets EOF (on_read with len 0) after every byte before it;
 *   - close: on_closed runs later from the loop, and nothing else is called after it. Closing an
 *     end whose shutdown has completed is a clean close (the peer still reads what is in its
 *     window, then EOF); any other close is an abort: the peer's bytes in flight are dropped and
 *     the peer gets on_error(UV_ECONNRESET), as TCP does on a reset. Writing to an end whose peer
 *     has closed gets the same error;
 *   - on_error fires at most once; after it the end delivers nothing more and the owner closes.
 * Not thread-safe: both ends belong to the loop's thread. */
#ifndef AWGPROXY_STREAM_STREAM_PAIR_H
#define AWGPROXY_STREAM_STREAM_PAIR_H

#include <stddef.h>
#include <uv.h>

#include "stream/stream.h"

#define STREAM_PAIR_DEFAULT_WINDOW (64 * 1024)

/* Creates the pair; window 0 means STREAM_PAIR_DEFAULT_WINDOW. The two ends are independent
 * streams, each closed by its owner; the memory goes when both have closed. Returns 0, or
 * UV_ENOMEM (nothing created). */
int stream_pair_new(uv_loop_t *loop, size_t window, stream **a, stream **b);

/* Makes s fail as a broken transport would: its on_error(err) runs from the loop (once), and its
 * peer sees an abort (UV_ECONNRESET). For tests of error handling. */
void stream_pair_fail(stream *s, int err);

#endif
