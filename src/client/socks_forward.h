/* [Socks] Mode = forward (issue 11, the Mycelium mode): the local SOCKS listeners relay each
 * connection byte for byte to the chosen server's own SOCKS service, on its tunnel address, port
 * 1080 ([Server] Socks), through that server's tunnel over the ip path. The SOCKS dialogue, a
 * login included, then runs end to end with the server; the client only carries bytes. It is
 * built from a [Forward]-style TCP forwarder (forward/forward.h) and the dialer below, which
 * ignores the destination it is given and opens the picked server's service instead. */
#ifndef AWGPROXY_CLIENT_SOCKS_FORWARD_H
#define AWGPROXY_CLIENT_SOCKS_FORWARD_H

#include <uv.h>

#include "client/upstream.h"
#include "config/config.h"
#include "stream/dialer.h"

#define SOCKS_FORWARD_PORT 1080

/* The server to forward to now; NULL: none (the connection fails, "tunnel down"). */
typedef const upstream *(*upstream_pick_fn)(void *ctx);

dialer *socks_forward_dialer_new(uv_loop_t *loop, upstream_pick_fn pick, void *ctx);

/* A copy of cfg (shallow: it points into cfg, which must outlive it) whose [Forward]s are its
 * [Socks] Listen addresses, each forwarded to the service; free with socks_forward_config_free.
 * NULL when out of memory. */
app_config *socks_forward_config(const app_config *cfg);
void socks_forward_config_free(app_config *fc);

#endif
