/* The client's SOCKS4/4a/5 front-end: listens on the [Socks] addresses (default 127.0.0.1:1080)
 * and runs socks_session.h sessions (optional RFC 1929 username/password checked against Argon2id
 * hashes) whose destinations are opened through the tunnel with the dialer, UDP ASSOCIATE with
 * udp_assoc. Every failure is answered with the precise reply code; nothing ever connects
 * directly. */
#ifndef AWGPROXY_SOCKS_SERVER_H
#define AWGPROXY_SOCKS_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "socks/socks_session.h"
#include "dns/resolver.h"
#include "stream/dgram_flow.h"
#include "stream/dialer.h"

typedef struct socks_server socks_server;

/* Binds every listener; CONNECT destinations are opened with dl, UDP ASSOCIATE flows with dg,
 * their names resolved with res (all must outlive the server). Returns NULL with a message (which
 * address, why) on failure. */
socks_server *socks_server_start(uv_loop_t *loop, const app_config *cfg, dialer *dl,
                                 dgram_opener *dg, resolver *res, char *err, size_t errlen);
void socks_server_stop(socks_server *s);

/* Where a [Socks] User pinned to a server (User = NAME:HASH:SERVER) goes: fills the ways through
 * that server; false when the name is unknown (its streams then fail, they never leave from
 * another server). */
typedef struct {
  dialer *dl;
  dgram_opener *dg;
  resolver *res;
} socks_route;
typedef bool (*socks_pin_fn)(void *ctx, const char *server, socks_route *out);
void socks_server_set_pins(socks_server *s, socks_pin_fn fn, void *ctx);
void socks_server_get_stats(const socks_server *s, socks_stats *out);

#endif
