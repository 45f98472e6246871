/* Counters of the QUIC transport in this process, whichever side runs it (the client's
 * connection, the server's endpoint), for the awgproxy_quic_* metrics. Plain data on the loop
 * thread; the metrics writer reads it there too. */
#ifndef AWGPROXY_QUIC_QUIC_METRICS_H
#define AWGPROXY_QUIC_QUIC_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "observe/hist.h"
#include "stream/dial_types.h"

typedef struct {
  bool active;             /* a QUIC client or endpoint runs here */
  uint64_t conns;          /* now */
  uint64_t conns_total;    /* established */
  uint64_t conn_failures;  /* handshakes that did not complete (client probes included) */
  uint64_t streams;        /* now */
  uint64_t streams_opened; /* total */
  uint64_t stream_results[DIAL_ERR_COUNT]; /* by outcome: 0 connected, else the failure code */
  uint64_t pkts_sent, pkts_recv;
  uint64_t pkts_lost; /* stream packets declared lost, counted when their stream closes */
  uint64_t dgrams_sent, dgrams_recv, dgrams_dropped;
  obs_hist rtt; /* seconds; each connection's latest RTT sample, at most once a second */
} quic_metrics;

quic_metrics *quic_metrics_get(void);

#endif
