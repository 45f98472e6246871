/* The QUIC transport in the metrics (awgproxy_quic_*) and in the control API's peer objects
 * ("transport": "quic" | "ip", and a "quic" object with RTT, congestion window and packets). */
#ifndef AWGPROXY_OBSERVE_QUIC_OBS_H
#define AWGPROXY_OBSERVE_QUIC_OBS_H

#include <stdbool.h>
#include <stddef.h>

#include "observe/buf.h"

void quic_obs_metrics(obs_buf *b);
/* Appends ,"transport":…[,"quic":{…}] to the peer object of the i-th peer (key fingerprint fp)
 * on the client (client true) or the server. */
void quic_obs_peer_fields(obs_buf *b, bool client, size_t i, const char *fp);

#endif
