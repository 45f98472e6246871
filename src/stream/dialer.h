/* Opens a TCP stream through the tunnel to a SOCKS-style destination (IPv4, IPv6 or a name that
 * is resolved through the tunnel), racing the resolved addresses (Happy Eyeballs: IPv6 first, a
 * new attempt every 250 ms while none has succeeded) within a connect timeout. Failures come back
 * as a SOCKS5 reply code, the precise cause, so front-ends can answer each client exactly:
 *   refused 0x05 · ICMP net/host unreachable 0x03/0x04 · ICMP prohibited 0x02 · DNS failure 0x04 ·
 *   timeout with the tunnel up 0x06 · tunnel down (no session within the wait) 0x01.
 * Nothing is ever connected directly: the only path is the lwIP stack behind the tunnel. */
#ifndef AWGPROXY_STREAM_DIALER_H
#define AWGPROXY_STREAM_DIALER_H

#include <stdint.h>
#include <uv.h>

#include "device/tunnel.h"
#include "dns/resolver.h"
#include "socks/socks_proto.h"
#include "stream/stream.h"

typedef struct {
  uv_loop_t *loop;
  tunnel *tun;
  resolver *res;
  uint64_t connect_timeout_ms;
  uint64_t tunnel_wait_ms;
} dialer_env;

typedef struct dial_req dial_req;

/* On success s is a connected stream (ownership to the callee) and rep = 0. On failure s is NULL,
 * rep a SOCKS5 code and reason a short text for logs. */
typedef void (*dial_cb)(void *ctx, stream *s, uint8_t rep, const char *reason);

/* Starts dialing; cb always runs later (never from inside this call). NULL = out of memory. */
dial_req *dial_start(const dialer_env *env, const socks_addr *dst, dial_cb cb, void *ctx);
/* Abandons a dial; cb is not called. */
void dial_cancel(dial_req *d);

#endif
