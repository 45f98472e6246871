/* A stream over an lwIP TCP connection inside the tunnel. Flow control is TCP's own: received
 * data is acknowledged to lwIP (tcp_recved, which reopens the window) only once the consumer has
 * taken it, so a slow application side closes the tunnel-side window instead of buffering. */
#ifndef AWGPROXY_STREAM_LWIP_H
#define AWGPROXY_STREAM_LWIP_H

#include <stdint.h>
#include <uv.h>

#include "stream/stream.h"

struct tcp_pcb;

/* status 0: connected and s is ready; otherwise a negative UV_* code (UV_ECONNREFUSED for a
 * reset, UV_ENETUNREACH / UV_EHOSTUNREACH from ICMP, UV_ECONNABORTED, …) and s is already closed
 * (do not touch it; its on_closed is not called). */
typedef void (*stream_lwip_connect_cb)(void *ctx, stream *s, int status);

/* Starts a TCP connection through the IP stack to addr:port (family AF_INET/AF_INET6), bound to
 * nif (the tunnel's netif: it leaves through that tunnel whatever the routes say; NULL = lwIP's
 * routing). Returns the stream being connected (stream_close cancels it; cb is then not called),
 * or NULL if no PCB could be created. */
struct netif;
stream *stream_lwip_connect(uv_loop_t *loop, struct netif *nif, int family, const uint8_t *addr,
                            uint16_t port, stream_lwip_connect_cb cb, void *ctx);

/* Wraps an accepted lwIP PCB (server side). */
stream *stream_lwip_wrap(uv_loop_t *loop, struct tcp_pcb *pcb);

/* Called by the ICMP watcher: fails a connection attempt whose SYN drew an ICMP destination
 * unreachable (lwIP itself does not tell TCP about ICMP errors). */
void stream_lwip_icmp_unreachable(int family, const uint8_t *dst, uint16_t dport, uint16_t sport,
                                  int uv_err);

/* Logs one line per lwIP TCP connection in this process (state, windows, queues, timers, and the
 * stream's own buffered bytes): what a stalled transfer is waiting for. On SIGUSR1. */
void stream_lwip_log_state(void);

#endif
