/* The TLS carrier's decoy as a reverse proxy ([Server] TlsDecoyUpstream, issue 12): a prober's
 * decrypted bytes go to a real web server over plain TCP, byte for byte, and its answers come
 * back, so the TLS port shows that site (its pages, headers and timing) instead of our static
 * answers. The server's TLS connection stays ours: the upstream sees plain HTTP/1.1 (ALPN only
 * offers http/1.1) from our address.
 *
 * Ownership: the tls_server's connection (the owner) starts one per decoy connection and ends
 * it with decoy_upstream_close; the upstream ends on its own (peer closed, error, connect
 * failed) by calling on_end once, after which it makes no more calls. Either way its memory is
 * freed once libuv has closed its handles; nothing is called back from inside start or close. */
#ifndef AWGPROXY_CARRIER_DECOY_UPSTREAM_H
#define AWGPROXY_CARRIER_DECOY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct decoy_upstream decoy_upstream;

typedef struct {
  /* The upstream's bytes, for the prober. */
  void (*on_data)(void *ctx, const uint8_t *data, size_t len);
  /* How many bytes are still waiting to reach the prober: above DECOY_UPSTREAM_PAUSE the
   * upstream is not read until they have drained (checked every DECOY_UPSTREAM_POLL_MS). */
  size_t (*queued)(void *ctx);
  /* Over: connected false when the upstream could not be reached (the owner answers by
   * itself then), true when it closed or failed after connecting. */
  void (*on_end)(void *ctx, bool connected);
} decoy_upstream_cbs;

#define DECOY_UPSTREAM_PAUSE (256 * 1024)
#define DECOY_UPSTREAM_POLL_MS 10
/* The prober's bytes not yet taken by the upstream's socket: more ends the connection (a web
 * server's request limits are far below). */
#define DECOY_UPSTREAM_MAX_QUEUED (1024 * 1024)

/* Connects to `to` and, once connected, sends first[0..n) (copied: what the prober sent so far).
 * NULL when out of memory or the connect cannot start. */
decoy_upstream *decoy_upstream_start(uv_loop_t *loop, const struct sockaddr *to,
                                     const uint8_t *first, size_t n, const decoy_upstream_cbs *cbs,
                                     void *ctx);
/* More of the prober's bytes (copied). Returns -1 when too much is waiting (the caller ends the
 * connection). */
int decoy_upstream_write(decoy_upstream *u, const uint8_t *data, size_t len);
/* Ends it now; no on_end follows. */
void decoy_upstream_close(decoy_upstream *u);

#endif
