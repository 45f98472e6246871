/* [Forward] sections: a local TCP or UDP port whose traffic goes, byte for byte, to an address
 * reachable through the tunnel (e.g. a SOCKS service inside the overlay). TCP connections are
 * dialed through the tunnel and relayed like SOCKS streams; UDP is relayed per client address,
 * each flow with its own tunnel-side port, expiring after an idle minute. */
#ifndef AWGPROXY_FORWARD_FORWARD_H
#define AWGPROXY_FORWARD_FORWARD_H

#include <uv.h>

#include "config/config.h"
#include "dns/resolver.h"
#include "stream/dgram_flow.h"
#include "stream/dialer.h"

typedef struct forwarder forwarder;

/* Starts every [Forward] of cfg: TCP connections are opened with dl, UDP flows with dg (one per
 * client address), UDP targets resolved with res (all must outlive the forwarder). NULL with a
 * message naming the failing one. */
forwarder *forwarder_start(uv_loop_t *loop, const app_config *cfg, dialer *dl, dgram_opener *dg,
                           resolver *res, char *err, size_t errlen);
void forwarder_stop(forwarder *f);

#endif
