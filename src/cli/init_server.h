/* `awgproxy init-server`: a complete server config from one command (cmd_init.c). The text is
 * built by init_server_text so that tests can draw it many times without files. */
#ifndef AWGPROXY_CLI_INIT_SERVER_H
#define AWGPROXY_CLI_INIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/obfs_draw.h"

typedef struct {
  const char *endpoint; /* HOST or HOST:PORT clients use; NULL = none known */
  uint16_t port;        /* 0 = draw a random high port */
  const char *subnet;   /* IPv4 tunnel network "10.x.y.0/24"; NULL = draw 10.x.y.0/24 */
  const char *subnet6;  /* IPv6 tunnel network, "off", or NULL = draw a ULA /64 */
  obfs_profile profile;
  const char *control; /* [Control] Listen path, "off", or NULL = none */
} init_server_opts;

/* Writes a fresh server config (new key, port, subnets, obfuscation) into buf. Returns its
 * length, or 0 with a reason in err (a bad --subnet, buf too small). */
size_t init_server_text(const init_server_opts *o, char *buf, size_t cap, char *err, size_t errlen);

#endif
