/* The QUIC transport in the metrics (awgproxy_quic_*) and in the control API's peer objects
 * ("transport": "quic" | "ip", and a "quic" object with RTT, congestion window and packets). */
#ifndef AWGPROXY_DAEMON_OBSERVE_QUIC_H
#define AWGPROXY_DAEMON_OBSERVE_QUIC_H

#include <stdbool.h>
#include <stddef.h>

#include "exit/exit.h"
#include "observe/buf.h"
#include "quic/quic_client.h"

void quic_obs_metrics(obs_buf *b);
/* Appends ,"transport":…[,"quic":{…}] to the peer object of the i-th peer (key fingerprint fp):
 * from the client's QUIC transport qc, or from the server's exit x (either may be NULL). */
void quic_obs_peer_fields(obs_buf *b, const quic_client *qc, const exit_ctx *x, size_t i,
                          const char *fp);

#endif
