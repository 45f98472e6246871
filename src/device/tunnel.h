/* The tunnel device: the WireGuard/AmneziaWG peer(s) of one config on a libuv loop. It joins the
 * UDP sockets (udp_io), the obfuscation layer (awg/obfs), the protocol core (wg/) and the
 * userspace IP stack (ipstack): datagrams in -> classify -> handshake or decrypt -> IP stack;
 * IP stack out -> cryptokey routing -> encrypt -> pad -> UDP. */
#ifndef AWGPROXY_DEVICE_TUNNEL_H
#define AWGPROXY_DEVICE_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "device/ipstack.h"

typedef struct tunnel tunnel;

typedef struct {
  char fingerprint[9];
  char endpoint[64]; /* "" when none is known */
  bool has_session;
  uint64_t last_handshake_unix_ns; /* 0 = never */
  uint64_t rx_bytes, tx_bytes;
  uint64_t handshakes_ok, handshakes_failed;
} tunnel_peer_status;

/* Opens the UDP sockets, creates the IP stack with the config's Address(es) and starts
 * handshaking with peers that have an Endpoint. Returns NULL with a message in err. */
tunnel *tunnel_create(uv_loop_t *loop, const awg_config *cfg, char *err, size_t errlen);
void tunnel_destroy(tunnel *t);
ipstack *tunnel_ipstack(tunnel *t);
uint16_t tunnel_port(const tunnel *t);
/* True when at least one peer has a usable session. */
bool tunnel_is_up(const tunnel *t);
size_t tunnel_peer_count(const tunnel *t);
void tunnel_peer_status_get(const tunnel *t, size_t i, tunnel_peer_status *out);

#endif
