/* The client's dialer: QUIC streams to our own server when the QUIC transport is up (or being
 * decided), lwIP TCP through the tunnel otherwise (quic_client.h says when). With Transport =
 * auto, a stream that QUIC could not carry (no connection, the connection lost before the
 * server answered) is dialed again on the ip path; a refusal from the server is final. */
#ifndef AWGPROXY_QUIC_DIALER_TRANSPORT_H
#define AWGPROXY_QUIC_DIALER_TRANSPORT_H

#include "quic/quic_client.h"
#include "stream/dialer.h"

/* Neither is owned: both must outlive the dialer. NULL when out of memory. */
dialer *dialer_transport_new(dialer *ip, quic_client *qc);

#endif
