/* UDP flows through lwIP (the ip path): each flow has its own UDP PCBs (IPv4 and IPv6, opened on
 * first use, each on an ephemeral port of the tunnel address), so replies find their flow by
 * port. Implements stream/dgram_flow.h. */
#ifndef AWGPROXY_STREAM_DGRAM_LWIP_H
#define AWGPROXY_STREAM_DGRAM_LWIP_H

#include "stream/dgram_flow.h"

/* NULL when out of memory. */
struct netif;
/* Flows leave through nif, the tunnel's netif (NULL: lwIP's routing). */
dgram_opener *dgram_lwip_new(struct netif *nif);

#endif
