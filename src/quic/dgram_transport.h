/* The client's datagram opener: a flow opened while the QUIC transport is in use (up, or being
 * waited for with Transport = quic) is a QUIC flow for its whole life (dgram_quic.h); otherwise,
 * or when no QUIC flow can be had in auto mode (the flow limit), an lwIP flow
 * (dgram_lwip.h). Mirrors dialer_transport.h: quic_client_route decides. */
#ifndef AWGPROXY_QUIC_DGRAM_TRANSPORT_H
#define AWGPROXY_QUIC_DGRAM_TRANSPORT_H

#include "quic/quic_client.h"
#include "stream/dgram_flow.h"

/* ip and qc are not owned and must outlive the opener; the QUIC flow table is created here and
 * registered as qc's datagram sink until destroy. NULL when out of memory. */
dgram_opener *dgram_transport_new(dgram_opener *ip, quic_client *qc);

#endif
