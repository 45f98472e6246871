/* The TLS carrier's decoy over HTTP/2 (issue 12: ALPN h2 and http/1.1, as a web server offers
 * them). A prober whose TLS client chose h2 gets the same site as over HTTP/1.1: each request's
 * method, path and authority go to tls_decoy_answer as an HTTP/1.1 request, and its answer goes
 * back as an HTTP/2 response (nghttp2 does the framing, HPACK and flow control), with the
 * settings nginx announces.
 *
 * Ownership: the tls_server's connection starts one when its decoy connection turns out to speak
 * HTTP/2 and feeds it the plaintext; output goes through io.write (paced: no more is produced
 * while io.queued is above DECOY_H2_PAUSE, checked every DECOY_H2_POLL_MS), and io.close is
 * called once when the session is over (GOAWAY sent, or the client's error). decoy_h2_free ends
 * it; its memory is freed once its timer has closed. Nothing is called back from inside start
 * or free. */
#ifndef AWGPROXY_CARRIER_DECOY_H2_H
#define AWGPROXY_CARRIER_DECOY_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct decoy_h2 decoy_h2;

typedef struct {
  void (*write)(void *ctx, const uint8_t *data, size_t len);
  size_t (*queued)(void *ctx);
  void (*close)(void *ctx);
} decoy_h2_io;

#define DECOY_H2_PAUSE (256 * 1024)
#define DECOY_H2_POLL_MS 10
/* Answers not yet sent, summed over a connection's streams: past this a new request is refused
 * (RST_STREAM REFUSED_STREAM), so that a prober cannot make us hold 128 large files at once. */
#define DECOY_H2_MAX_PENDING (8u << 20)

/* root: the decoy site (copied; "" for nginx's 404 page). NULL when out of memory. */
decoy_h2 *decoy_h2_start(uv_loop_t *loop, const char *root, const decoy_h2_io *io, void *ctx);
/* The client's plaintext (the connection preface first). */
void decoy_h2_feed(decoy_h2 *d, const uint8_t *data, size_t len);
void decoy_h2_free(decoy_h2 *d);

/* The HTTP/2 connection preface a client sends first ("PRI * HTTP/2.0..."). */
#define DECOY_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#endif
