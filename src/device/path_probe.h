/* Finds an MTU black hole on the client's path: a network that silently drops datagrams above
 * some size (a tunnel with a smaller MTU, a broken PMTUD, a middlebox) lets every handshake and
 * every small packet through, so the tunnel looks up while bulk transfers stall.
 *
 * When a TCP connection in the tunnel has timed out twice in a row while the tunnel is up (at
 * most once a minute), the client pings the server's tunnel address (QuicServer, or the .1 of
 * its own IPv4 Address prefix, as stock servers answer there) through the tunnel with ICMP echo
 * requests of a small size and of a ladder of sizes from the tunnel MTU down to 576, three rounds
 * one second apart. A healthy path never pays for the probe. If the small
 * one is answered and the full-size one never is, it logs `mtu_black_hole` with the largest size
 * that came back and the remedy (`MTU = N` in [Interface]), and lowers the stack's MTU to that
 * size at once: new TCP connections then use (and announce) a segment size that fits, and
 * larger packets of older ones leave as IP fragments. A server that answers no ping at all
 * leaves the question open (logged once). IPv4 only. */
#ifndef AWGPROXY_DEVICE_PATH_PROBE_H
#define AWGPROXY_DEVICE_PATH_PROBE_H

#include <uv.h>

#include "config/config.h"
#include "device/tunnel.h"

typedef struct path_probe path_probe;

/* NULL when there is nothing to probe (no peer, no IPv4 server address to derive). t must
 * outlive the probe; cfg is read here only. */
path_probe *path_probe_start(uv_loop_t *loop, tunnel *t, const app_config *cfg);
void path_probe_stop(path_probe *p);

#endif
