#include "daemon/observe_quic.h"

#include <inttypes.h>

#include "exit/exit.h"
#include "exit/exit_quic.h"
#include "observe/prom.h"
#include "quic/quic_client.h"
#include "quic/quic_metrics.h"
#include "stream/dial_error.h"

static void counter(obs_buf *b, const char *name, const char *type, const char *help, uint64_t v) {
  prom_header(b, name, type, help);
  prom_sample_u64(b, name, NULL, 0, v);
}

void quic_obs_metrics(obs_buf *b) {
  const quic_metrics *m = quic_metrics_get();
  if (!m->active) return;
  counter(b, "awgproxy_quic_connections", "gauge", "QUIC connections established now.", m->conns);
  counter(b, "awgproxy_quic_connections_total", "counter", "QUIC connections established.",
          m->conns_total);
  counter(b, "awgproxy_quic_connection_failures_total", "counter",
          "QUIC handshakes that did not complete (client probes of stock servers included).",
          m->conn_failures);
  counter(b, "awgproxy_quic_streams", "gauge", "QUIC streams open now.", m->streams);
  counter(b, "awgproxy_quic_streams_opened_total", "counter", "QUIC streams opened.",
          m->streams_opened);
  const char *name = "awgproxy_quic_stream_results_total";
  prom_header(b, name, "counter",
              "Stream requests by outcome: ok, or the failure code the server answered "
              "(tunnel-down: QUIC could not carry it).");
  for (int e = 0; e < DIAL_ERR_COUNT; e++) {
    prom_label l = {"result", dial_error_name((dial_error)e)};
    prom_sample_u64(b, name, &l, 1, m->stream_results[e]);
  }
  counter(b, "awgproxy_quic_packets_sent_total", "counter", "QUIC packets sent.", m->pkts_sent);
  counter(b, "awgproxy_quic_packets_received_total", "counter", "QUIC packets received.",
          m->pkts_recv);
  counter(b, "awgproxy_quic_packets_lost_total", "counter",
          "QUIC packets carrying stream data declared lost (and retransmitted), counted when "
          "their stream closes.",
          m->pkts_lost);
  counter(b, "awgproxy_quic_datagrams_sent_total", "counter", "DATAGRAM frames sent (UDP).",
          m->dgrams_sent);
  counter(b, "awgproxy_quic_datagrams_received_total", "counter", "DATAGRAM frames received (UDP).",
          m->dgrams_recv);
  counter(b, "awgproxy_quic_datagrams_dropped_total", "counter",
          "DATAGRAM frames dropped: too large for a packet, or the send queue full.",
          m->dgrams_dropped);
  prom_header(b, "awgproxy_quic_rtt_seconds", "histogram",
              "Round-trip time samples of QUIC connections (one per connection and second).");
  prom_histogram(b, "awgproxy_quic_rtt_seconds", NULL, 0, &m->rtt);
}

static void conn_object(obs_buf *b, const quic_conn_stats *s) {
  obs_buf_printf(b,
                 ",\"quic\":{\"rtt_ms\":%.3f,\"min_rtt_ms\":%.3f,\"cwnd\":%" PRIu64
                 ",\"bytes_in_flight\":%" PRIu64 ",\"packets_sent\":%" PRIu64
                 ",\"packets_received\":%" PRIu64 ",\"packets_lost\":%" PRIu64
                 ",\"streams\":%" PRIu64 ",\"congestion\":\"%s\"}",
                 (double)s->rtt_ns / 1e6, (double)s->min_rtt_ns / 1e6, s->cwnd, s->bytes_in_flight,
                 s->pkts_sent, s->pkts_recv, s->pkts_lost, s->streams_open, quic_cc_name(s->cc));
}

void quic_obs_peer_fields(obs_buf *b, const quic_client *qc, const exit_ctx *x, size_t i,
                          const char *fp) {
  quic_conn_stats s;
  bool quic = false;
  if (qc && i == 0) {
    quic_client_status st;
    quic_client_status_get(qc, &st);
    quic = st.up;
    s = st.conn;
  } else if (x) {
    quic = exit_quic_peer_stats(x, fp, &s);
  }
  obs_buf_printf(b, ",\"transport\":\"%s\"", quic ? "quic" : "ip");
  if (quic) conn_object(b, &s);
}
