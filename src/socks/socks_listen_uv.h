/* A libuv TCP listener whose connections become sessions of a socks_service (the client's
 * [Socks] Listen addresses, the server's LocalSocks). */
#ifndef AWGPROXY_SOCKS_SOCKS_LISTEN_UV_H
#define AWGPROXY_SOCKS_SOCKS_LISTEN_UV_H

#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "socks/socks_session.h"

typedef struct socks_uv_listener socks_uv_listener;

/* Binds hp (an IP literal) and listens; NULL with a message (which address, why) on failure. */
socks_uv_listener *socks_uv_listen(uv_loop_t *loop, socks_service *svc, const cfg_hostport *hp,
                                   char *err, size_t errlen);
/* Stops accepting; the listener is freed from the loop. NULL is fine. */
void socks_uv_listener_close(socks_uv_listener *l);

#endif
