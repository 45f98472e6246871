/* The SOCKS4/4a/5 front-end: listens on the [Socks] addresses (default 127.0.0.1:1080), speaks
 * the handshake (optional RFC 1929 username/password checked against Argon2id hashes), opens the
 * destination through the tunnel with the dialer and relays. Every failure is answered with the
 * precise reply code; nothing ever connects directly. */
#ifndef AWGPROXY_SOCKS_SERVER_H
#define AWGPROXY_SOCKS_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "stream/dialer.h"

typedef struct socks_server socks_server;

typedef struct {
  uint64_t accepted, active, handshake_failures;
  uint64_t replies[9]; /* by SOCKS5 reply code 0..8 (SOCKS4 failures counted as their cause) */
} socks_stats;

/* Binds every listener; returns NULL with a message (which address, why) on failure. */
socks_server *socks_server_start(uv_loop_t *loop, const awg_config *cfg, const dialer_env *env,
                                 char *err, size_t errlen);
void socks_server_stop(socks_server *s);
void socks_server_get_stats(const socks_server *s, socks_stats *out);

#endif
