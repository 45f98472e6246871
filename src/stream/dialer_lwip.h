/* The dialer through the tunnel: opens lwIP TCP streams to a destination (IPv4, IPv6 or a name
 * that is resolved through the tunnel), racing the resolved addresses (Happy Eyeballs: IPv6
 * first, a new attempt every 250 ms while none has succeeded) within a connect timeout.
 * Failures come back as the precise dial_error:
 *   refused (RST, ICMP port unreachable) · ICMP net/host unreachable · ICMP prohibited
 *   not-allowed · DNS failure (NXDOMAIN, no usable address) name-not-found · timeout with the
 *   tunnel up · tunnel-down (no session within the wait) · general otherwise.
 * Nothing is ever connected directly: the only path is the lwIP stack behind the tunnel. */
#ifndef AWGPROXY_STREAM_DIALER_LWIP_H
#define AWGPROXY_STREAM_DIALER_LWIP_H

#include <stdint.h>
#include <uv.h>

#include "device/tunnel.h"
#include "dns/resolver.h"
#include "stream/dialer.h"

typedef struct {
  uv_loop_t *loop;
  tunnel *tun;
  resolver *res;
  uint64_t connect_timeout_ms;
  uint64_t tunnel_wait_ms;
} dialer_lwip_env;

/* The env is copied; tun and res must outlive the dialer. NULL when out of memory. */
dialer *dialer_lwip_new(const dialer_lwip_env *env);

#endif
