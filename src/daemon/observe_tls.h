/* The server's TLS carrier in the metrics (awgproxy_tls_*): what connections to the TLS port
 * turned out to be (peers, decoys, refused), how many are open, and the datagrams carried. */
#ifndef AWGPROXY_DAEMON_OBSERVE_TLS_H
#define AWGPROXY_DAEMON_OBSERVE_TLS_H

#include "carrier/tls_server.h"
#include "observe/buf.h"

/* Nothing when s is NULL (no TlsListen). */
void tls_obs_metrics(obs_buf *b, const tls_server *s);

#endif
