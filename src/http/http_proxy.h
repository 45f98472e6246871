/* The client's HTTP proxy front-end ([Http] Listen): the same doors into the tunnel as SOCKS
 * for applications that only speak HTTP proxies (browsers, git, pip, curl's -x).
 *
 *   - CONNECT host:port: dialed through the tunnel (names go to the dialer as names, never
 *     resolved here), answered "200 Connection established", then relayed (stream/relay.h);
 *   - absolute-URI requests (GET http://host/path HTTP/1.1): forwarded in origin-form with the
 *     hop-by-hop and Proxy-* headers removed; request bodies with Content-Length or chunked;
 *     HTTP/1.0 and 1.1 clients; keep-alive across requests, the upstream stream reused while the
 *     host:port stays the same (a new one otherwise). The response's framing (Content-Length,
 *     chunked, close-delimited, 1xx, HEAD/204/304) says where it ends; a close-delimited one
 *     ends the client connection too;
 *   - GET /proxy.pac: a PAC file pointing at this listener and the SOCKS port;
 *   - Proxy-Authorization: Basic checked against the [Socks] User hashes (Argon2id, off the
 *     loop) when there are any: 407 with Proxy-Authenticate otherwise;
 *   - failures as status codes from the dialer's causes (502 refused / unreachable / no such
 *     name, 504 timeout, 403 denied by policy, 503 tunnel down), 400 malformed, 405 methods not
 *     forwarded, 408 slow request head ([Http] HeaderTimeout, from accept or from a later
 *     request's first byte; an idle keep-alive connection lasts [Socks] IdleTimeout), 414/431
 *     limits (http_msg.h), 503
 *     over [Http] MaxConnections; each with a one-line text/plain body. */
#ifndef AWGPROXY_HTTP_HTTP_PROXY_H
#define AWGPROXY_HTTP_HTTP_PROXY_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "stream/dialer.h"

typedef struct http_proxy http_proxy;

/* Binds every [Http] Listen address of cfg (none: a proxy without listeners, which does
 * nothing); destinations are opened with dl, which must outlive the proxy. Authentication uses a
 * copy of cfg's [Socks] User entries. NULL with a message (which address, why) on failure. */
http_proxy *http_proxy_start(uv_loop_t *loop, const app_config *cfg, dialer *dl, char *err,
                             size_t errlen);
/* Stops listening and ends every connection now: dials are cancelled and streams closed before
 * this returns; the proxy frees itself from the loop once the last one has closed. */
void http_proxy_stop(http_proxy *p);
/* A [Socks] User pinned to a server (User = NAME:HASH:SERVER) opens its destinations with the
 * dialer fn returns for that server (a client with several servers, client/server_set.h). */
typedef dialer *(*http_pin_fn)(void *ctx, const char *server);
void http_proxy_set_pins(http_proxy *p, http_pin_fn fn, void *ctx);

#endif
