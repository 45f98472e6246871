/* awgproxy_tls_* (observe_tls.h). */
#include "daemon/observe_tls.h"

#include "observe/prom.h"

void tls_obs_metrics(obs_buf *b, const tls_server *s) {
  if (!s) return;
  tls_server_stats st;
  tls_server_stats_get(s, &st);
  const char *conns = "awgproxy_tls_connections_total";
  prom_header(b, conns, "counter",
              "Connections to the TLS carrier's port, by what they turned out to be: peer (an AWG "
              "initiation passed the gate), decoy (answered as a web server), refused (over the "
              "cap, or no TLS handshake).");
  const struct {
    const char *kind;
    uint64_t v;
  } c[] = {{"peer", st.peers}, {"decoy", st.decoys}, {"refused", st.refused}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    prom_label l = {"kind", c[i].kind};
    prom_sample_u64(b, conns, &l, 1, c[i].v);
  }
  prom_header(b, "awgproxy_tls_connections_open", "gauge",
              "Connections to the TLS carrier's port open now, in every state.");
  prom_sample_u64(b, "awgproxy_tls_connections_open", NULL, 0, st.open);
  const char *frames = "awgproxy_tls_datagrams_total";
  prom_header(b, frames, "counter",
              "AWG datagrams carried over TLS for peers: in, out, and dropped (the connection "
              "was gone or more than 1 MiB behind, as a full UDP socket would drop).");
  const struct {
    const char *dir;
    uint64_t v;
  } f[] = {{"in", st.frames_in}, {"out", st.frames_out}, {"dropped", st.frames_dropped}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    prom_label l = {"direction", f[i].dir};
    prom_sample_u64(b, frames, &l, 1, f[i].v);
  }
  prom_header(b, "awgproxy_tls_decoy_upstream_failures_total", "counter",
              "Decoy connections whose [Server] TlsDecoyUpstream could not be reached.");
  prom_sample_u64(b, "awgproxy_tls_decoy_upstream_failures_total", NULL, 0, st.upstream_failed);
}
