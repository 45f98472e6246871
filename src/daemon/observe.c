#include "daemon/observe.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit/exit.h"
#include "exit/exit_socks.h"
#include "observe/http.h"
#include "observe/prom.h"
#include "observe/prom_merge.h"
#include "daemon/observe_quic.h"
#include "daemon/observe_servers.h"
#include "daemon/observe_tls.h"
#include "observe/streams.h"
#include "socks/socks_proto.h"
#include "util/log.h"
#include "wg/shard.h"

struct observe {
  obs_sources src;
  http_server *metrics, *control;
};

/* ---- peers -------------------------------------------------------------------------------- */

/* Peer label: the key fingerprint; in the (2^-48) case of two peers sharing one, the later ones
 * get "-<index>" so that series stay distinct. */
static void peer_label(const tunnel *t, size_t i, const tunnel_peer_status *ps, char out[32]) {
  snprintf(out, 32, "%s", ps->fingerprint);
  for (size_t k = 0; k < i; k++) {
    tunnel_peer_status other;
    tunnel_peer_status_get(t, k, &other);
    if (strcmp(other.fingerprint, ps->fingerprint) == 0) {
      snprintf(out, 32, "%s-%zu", ps->fingerprint, i);
      return;
    }
  }
}

static size_t peer_count(const obs_sources *src) {
  return src->tun ? tunnel_peer_count(src->tun) : 0;
}

/* ---- metrics ------------------------------------------------------------------------------ */

typedef uint64_t (*peer_field)(const tunnel_peer_status *ps);
static uint64_t f_rx_bytes(const tunnel_peer_status *ps) { return ps->rx_bytes; }
static uint64_t f_tx_bytes(const tunnel_peer_status *ps) { return ps->tx_bytes; }
static uint64_t f_rx_packets(const tunnel_peer_status *ps) { return ps->rx_packets; }
static uint64_t f_tx_packets(const tunnel_peer_status *ps) { return ps->tx_packets; }

static void peer_counter(obs_buf *b, const obs_sources *src, const char *name, const char *help,
                         peer_field f) {
  prom_header(b, name, "counter", help);
  for (size_t i = 0; i < peer_count(src); i++) {
    tunnel_peer_status ps;
    tunnel_peer_status_get(src->tun, i, &ps);
    char label[32];
    peer_label(src->tun, i, &ps, label);
    prom_label l = {"peer", label};
    prom_sample_u64(b, name, &l, 1, f(&ps));
  }
}

static void tunnel_metrics(obs_buf *b, const obs_sources *src) {
  size_t n = peer_count(src), with_session = 0;
  for (size_t i = 0; i < n; i++) {
    tunnel_peer_status ps;
    tunnel_peer_status_get(src->tun, i, &ps);
    with_session += ps.has_session;
  }
  prom_header(b, "awgproxy_tunnel_up", "gauge", "1 when at least one peer has a usable session.");
  prom_sample_u64(b, "awgproxy_tunnel_up", NULL, 0, with_session > 0);
  prom_header(b, "awgproxy_peers", "gauge", "Configured peers.");
  prom_sample_u64(b, "awgproxy_peers", NULL, 0, n);
  prom_header(b, "awgproxy_sessions_active", "gauge", "Peers with a usable session.");
  prom_sample_u64(b, "awgproxy_sessions_active", NULL, 0, with_session);
  if (!src->tun) return;

  tunnel_stats st;
  tunnel_stats_get(src->tun, &st);
  prom_header(b, "awgproxy_handshakes_total", "counter",
              "Handshakes completed (result=ok) and failed, by reason.");
  prom_label ok = {"result", "ok"};
  prom_sample_u64(b, "awgproxy_handshakes_total", &ok, 1, st.handshakes_ok);
  for (int f = 0; f < TUN_HS_FAILURE_COUNT; f++) {
    prom_label l[2] = {{"result", "failed"}, {"reason", tunnel_hs_failure_name((tun_hs_failure)f)}};
    prom_sample_u64(b, "awgproxy_handshakes_total", l, 2, st.handshakes_failed[f]);
  }
  prom_header(b, "awgproxy_reconnects_total", "counter",
              "Sessions re-established after being lost (routine rekeys not counted).");
  prom_sample_u64(b, "awgproxy_reconnects_total", NULL, 0, st.reconnects);
  prom_header(b, "awgproxy_endpoint_hops_total", "counter",
              "Port hopping: moves of a peer's endpoint to another server port (EndpointPorts).");
  prom_sample_u64(b, "awgproxy_endpoint_hops_total", NULL, 0, st.endpoint_hops);
  prom_header(b, "awgproxy_carrier_switches_total", "counter",
              "Moves of a peer to another datagram carrier (Carrier = auto, tls), by carrier");
  for (unsigned k = 0; k < DGRAM_CARRIERS; k++) {
    prom_label l = {"to", dgram_carrier_kind_name(k)};
    prom_sample_u64(b, "awgproxy_carrier_switches_total", &l, 1, st.carrier_switches[k]);
  }
  prom_header(b, "awgproxy_repair_total", "counter",
              "Loss repair between awgproxy ends: kept = datagrams kept for a resend (none over "
              "TLS), nacks = NACK messages sent, asked = missing "
              "datagrams asked for, filled = gaps filled after asking, given_up = gaps given up, "
              "abandoned = of those, given up on the peer's GIVEUP, "
              "resent = datagrams resent, refused = resends refused (not kept, or over budget), "
              "congestion = NACKs answered with GIVEUP because their losses came from a queue, "
              "giveups_heard = GIVEUPs from the peer, fec_parity = parity datagrams sent, "
              "fec_recovered = lost datagrams rebuilt from a parity.");
  const struct {
    const char *what;
    uint64_t v;
  } rep[] = {{"kept", st.repair_kept},
             {"nacks", st.repair_nacks_sent},
             {"asked", st.repair_asked},
             {"filled", st.repair_filled},
             {"given_up", st.gaps_given_up},
             {"abandoned", st.gaps_abandoned},
             {"resent", st.repair_resent},
             {"refused", st.repair_refused},
             {"congestion", st.repair_congestion},
             {"giveups_heard", st.repair_giveups_heard},
             {"fec_parity", st.fec_parity_sent},
             {"fec_recovered", st.fec_recovered}};
  for (size_t i = 0; i < sizeof rep / sizeof rep[0]; i++) {
    prom_label l = {"event", rep[i].what};
    prom_sample_u64(b, "awgproxy_repair_total", &l, 1, rep[i].v);
  }
  prom_header(b, "awgproxy_handshake_duration_seconds", "histogram",
              "Time from sending a handshake initiation to consuming its response.");
  prom_histogram(b, "awgproxy_handshake_duration_seconds", NULL, 0, &st.handshake_duration);

  peer_counter(
      b, src, "awgproxy_peer_rx_bytes_total",
      "Bytes of authenticated UDP datagrams received from the peer (AWG padding included).",
      f_rx_bytes);
  peer_counter(b, src, "awgproxy_peer_tx_bytes_total",
               "Bytes of UDP datagrams sent to the peer (padding, junk and I-packets included).",
               f_tx_bytes);
  peer_counter(b, src, "awgproxy_peer_rx_packets_total",
               "Authenticated UDP datagrams received from the peer.", f_rx_packets);
  peer_counter(b, src, "awgproxy_peer_tx_packets_total", "UDP datagrams sent to the peer.",
               f_tx_packets);
  prom_header(b, "awgproxy_peer_last_handshake_seconds", "gauge",
              "Unix time of the peer's last completed handshake (0 = never).");
  for (size_t i = 0; i < n; i++) {
    tunnel_peer_status ps;
    tunnel_peer_status_get(src->tun, i, &ps);
    char label[32];
    peer_label(src->tun, i, &ps, label);
    prom_label l = {"peer", label};
    prom_sample(b, "awgproxy_peer_last_handshake_seconds", &l, 1,
                (double)(ps.last_handshake_unix_ns / 1000000) / 1e3);
  }

  prom_header(
      b, "awgproxy_worker_handoffs_total", "counter",
      "Datagrams a server worker handed to the sibling that owns their peer (direction=out) "
      "and took from its siblings (direction=in); see [Server] Threads.");
  prom_label out = {"direction", "out"}, in = {"direction", "in"};
  prom_sample_u64(b, "awgproxy_worker_handoffs_total", &out, 1, st.handed_off);
  prom_sample_u64(b, "awgproxy_worker_handoffs_total", &in, 1, st.handed_in);
  prom_header(b, "awgproxy_junk_packets_sent_total", "counter",
              "Junk datagrams (Jc) sent before handshake initiations.");
  prom_sample_u64(b, "awgproxy_junk_packets_sent_total", NULL, 0, st.junk_sent);
  prom_header(b, "awgproxy_signature_packets_sent_total", "counter",
              "Signature datagrams (I1..I5) sent before handshake initiations.");
  prom_sample_u64(b, "awgproxy_signature_packets_sent_total", NULL, 0, st.signature_sent);
  prom_header(b, "awgproxy_dropped_datagrams_total", "counter",
              "Received datagrams that were not used, by reason.");
  for (int r = 0; r < TUN_DROP_COUNT; r++) {
    prom_label l = {"reason", tunnel_drop_reason_name((tun_drop_reason)r)};
    prom_sample_u64(b, "awgproxy_dropped_datagrams_total", &l, 1, st.dropped[r]);
  }
}

/* The SOCKS counters of whichever service runs here: the client's front-end or the server's
 * SOCKS service; false when neither does. Both report under the same names. */
static bool socks_counters(const obs_sources *src, socks_stats *out) {
  if (src->socks) {
    socks_server_get_stats(src->socks, out);
    return true;
  }
  return exit_socks_get_stats(src->exit, out);
}

static void stream_metrics(obs_buf *b, const obs_sources *src) {
  prom_header(b, "awgproxy_streams_active", "gauge", "Streams being relayed now, by kind.");
  for (int k = 0; k < OBS_STREAM_KINDS; k++) {
    prom_label l = {"kind", obs_stream_kind_name((obs_stream_kind)k)};
    prom_sample_u64(b, "awgproxy_streams_active", &l, 1, obs_streams_active((obs_stream_kind)k));
  }
  prom_header(b, "awgproxy_streams_total", "counter", "Streams opened since start, by kind.");
  for (int k = 0; k < OBS_STREAM_KINDS; k++) {
    prom_label l = {"kind", obs_stream_kind_name((obs_stream_kind)k)};
    prom_sample_u64(b, "awgproxy_streams_total", &l, 1, obs_streams_total((obs_stream_kind)k));
  }
  socks_stats ss;
  if (!socks_counters(src, &ss)) return;
  prom_header(b, "awgproxy_socks_connections_total", "counter", "SOCKS connections accepted.");
  prom_sample_u64(b, "awgproxy_socks_connections_total", NULL, 0, ss.accepted);
  prom_header(b, "awgproxy_socks_handshake_failures_total", "counter",
              "SOCKS connections that failed before a request (malformed, bad password, timeout).");
  prom_sample_u64(b, "awgproxy_socks_handshake_failures_total", NULL, 0, ss.handshake_failures);
  prom_header(b, "awgproxy_socks_over_cap_total", "counter",
              "SOCKS requests refused because [Socks] MaxConnections connections were open.");
  prom_sample_u64(b, "awgproxy_socks_over_cap_total", NULL, 0, ss.over_cap);
  prom_header(b, "awgproxy_stream_failures_total", "counter",
              "SOCKS requests answered with a failure, by SOCKS5 reply.");
  for (uint8_t rep = 1; rep < 9; rep++) {
    prom_label l = {"reply", socks5_rep_name(rep)};
    prom_sample_u64(b, "awgproxy_stream_failures_total", &l, 1, ss.replies[rep]);
  }
}

static void dns_metrics(obs_buf *b, const obs_sources *src) {
  if (!src->res) return;
  resolver_stats rs;
  resolver_get_stats(src->res, &rs);
  prom_header(b, "awgproxy_dns_queries_total", "counter", "Name lookups asked of the resolver.");
  prom_sample_u64(b, "awgproxy_dns_queries_total", NULL, 0, rs.queries);
  prom_header(b, "awgproxy_dns_cache_hits_total", "counter", "Lookups answered from the cache.");
  prom_sample_u64(b, "awgproxy_dns_cache_hits_total", NULL, 0, rs.cache_hits);
  prom_header(b, "awgproxy_dns_failures_total", "counter", "Lookups that failed.");
  prom_sample_u64(b, "awgproxy_dns_failures_total", NULL, 0, rs.failures);
}

/* The server's exit, when one runs in this process. */
static void exit_metrics(obs_buf *b, const exit_ctx *x) {
  if (!x) return;
  exit_stats st;
  exit_get_stats(x, &st);
  static const struct {
    const char *name, *type, *help;
    size_t off;
  } m[] = {
      {"awgproxy_exit_connections", "gauge",
       "Exit connection slots held now (TCP connections and UDP flows, all peers).",
       offsetof(exit_stats, connections)},
      {"awgproxy_exit_denied_total", "counter",
       "New exit flows refused by the server-wide policy (private, own addresses, ...).",
       offsetof(exit_stats, denied)},
      {"awgproxy_exit_denied_by_peer_rule_total", "counter",
       "New exit flows and names refused by a peer's ExitAllow/ExitDeny/Exit*Domain rules.",
       offsetof(exit_stats, denied_rule)},
      {"awgproxy_exit_dns_refused_total", "counter",
       "DNS queries to the server answered REFUSED by a peer's domain rules.",
       offsetof(exit_stats, dns_refused)},
      {"awgproxy_exit_peer_cap_hits_total", "counter",
       "New exit flows refused because the peer's MaxConnections was reached.",
       offsetof(exit_stats, cap_peer)},
      {"awgproxy_exit_global_cap_hits_total", "counter",
       "New exit flows refused because [Server] MaxConnections was reached.",
       offsetof(exit_stats, cap_global)},
      {"awgproxy_exit_throttle_waits_total", "counter",
       "Times an exit TCP stream paused reading for its peer's bandwidth limit.",
       offsetof(exit_stats, throttle_waits)},
      {"awgproxy_exit_throttled_udp_datagrams_total", "counter",
       "UDP datagrams dropped over a peer's bandwidth limit.", offsetof(exit_stats, udp_throttled)},
      {"awgproxy_exit_throttled_udp_bytes_total", "counter",
       "Bytes of UDP datagrams dropped over a peer's bandwidth limit.",
       offsetof(exit_stats, udp_throttled_bytes)},
  };
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    uint64_t v;
    memcpy(&v, (const char *)&st + m[i].off, sizeof v);
    prom_header(b, m[i].name, m[i].type, m[i].help);
    prom_sample_u64(b, m[i].name, NULL, 0, v);
  }
}

/* A supervisor's metrics: its workers' expositions merged (counters and gauges summed, except
 * those that describe the process), plus how many workers there are. */
static void gathered_metrics(const obs_sources *src, obs_buf *b) {
  obs_buf parts[WG_SHARDS_MAX];
  const char *texts[WG_SHARDS_MAX];
  size_t lens[WG_SHARDS_MAX];
  unsigned n = src->workers < WG_SHARDS_MAX ? src->workers : WG_SHARDS_MAX;
  for (unsigned i = 0; i < n; i++) obs_buf_init(&parts[i]);
  unsigned answered = src->gather(src->gather_ctx, OBS_PART_METRICS, parts, n);
  for (unsigned i = 0; i < n; i++)
    texts[i] = parts[i].data ? parts[i].data : "", lens[i] = parts[i].len;
  static const char *const max_families[] = {"awgproxy_build_info", "awgproxy_uptime_seconds",
                                             "awgproxy_tunnel_up", NULL};
  prom_merge(texts, lens, n, max_families, b);
  for (unsigned i = 0; i < n; i++) obs_buf_free(&parts[i]);
  prom_header(b, "awgproxy_workers", "gauge",
              "Server worker processes ([Server] Threads), and how many answered this scrape.");
  prom_label cfg = {"state", "configured"}, ans = {"state", "answered"};
  prom_sample_u64(b, "awgproxy_workers", &cfg, 1, n);
  prom_sample_u64(b, "awgproxy_workers", &ans, 1, answered);
}

void observe_render_metrics(const obs_sources *src, obs_buf *b) {
  if (src->gather) return gathered_metrics(src, b);
  prom_header(b, "awgproxy_build_info", "gauge", "Always 1; labels describe the running build.");
  prom_label info[2] = {{"version", AWGPROXY_VERSION}, {"role", src->role ? src->role : ""}};
  prom_sample_u64(b, "awgproxy_build_info", info, 2, 1);
  prom_header(b, "awgproxy_uptime_seconds", "gauge", "Seconds since the daemon started.");
  prom_sample(b, "awgproxy_uptime_seconds", NULL, 0,
              (double)((uv_hrtime() - src->started_ns) / 1000000) / 1e3);
  tunnel_metrics(b, src);
  stream_metrics(b, src);
  dns_metrics(b, src);
  exit_metrics(b, src->exit);
  quic_obs_metrics(b);
  tls_obs_metrics(b, src->tls);
}

/* ---- control API documents ---------------------------------------------------------------- */

static void json_key(obs_buf *b, bool *first, const char *key) {
  obs_buf_puts(b, *first ? "" : ",");
  *first = false;
  obs_buf_json_string(b, key);
  obs_buf_puts(b, ":");
}

static void json_u64(obs_buf *b, bool *first, const char *key, uint64_t v) {
  json_key(b, first, key);
  obs_buf_printf(b, "%" PRIu64, v);
}

static void peer_json(obs_buf *b, const obs_sources *src, size_t i, bool detail) {
  tunnel_peer_status ps;
  tunnel_peer_status_get(src->tun, i, &ps);
  bool first = true;
  obs_buf_puts(b, "{");
  json_key(b, &first, "peer");
  obs_buf_json_string(b, ps.fingerprint);
  if (src->in_worker) json_u64(b, &first, "worker", src->worker);
  json_key(b, &first, "endpoint");
  if (ps.endpoint[0])
    obs_buf_json_string(b, ps.endpoint);
  else
    obs_buf_puts(b, "null");
  json_key(b, &first, "carrier");
  obs_buf_json_string(b, ps.carrier);
  json_key(b, &first, "has_session");
  obs_buf_puts(b, ps.has_session ? "true" : "false");
  json_key(b, &first, "repair");
  obs_buf_puts(b, ps.repair ? "true" : "false");
  /* Unix time in seconds with exactly millisecond precision, null if never. */
  json_key(b, &first, "last_handshake");
  uint64_t ms = ps.last_handshake_unix_ns / 1000000;
  if (ps.last_handshake_unix_ns)
    obs_buf_printf(b, "%" PRIu64 ".%03u", ms / 1000, (unsigned)(ms % 1000));
  else
    obs_buf_puts(b, "null");
  json_u64(b, &first, "rx_bytes", ps.rx_bytes);
  json_u64(b, &first, "tx_bytes", ps.tx_bytes);
  quic_obs_peer_fields(b, src->quic, src->exit, i, ps.fingerprint);
  if (detail) {
    json_u64(b, &first, "rx_packets", ps.rx_packets);
    json_u64(b, &first, "tx_packets", ps.tx_packets);
    json_u64(b, &first, "handshakes_ok", ps.handshakes_ok);
    json_u64(b, &first, "handshakes_failed", ps.handshakes_failed);
    const cfg_peer *cp = tunnel_peer_cfg(src->tun, i);
    json_key(b, &first, "allowed_ips");
    obs_buf_puts(b, "[");
    for (size_t k = 0; k < cp->n_allowed_ips; k++) {
      char cidr[64];
      cfg_format_cidr(&cp->allowed_ips[k], cidr, sizeof cidr);
      obs_buf_puts(b, k ? "," : "");
      obs_buf_json_string(b, cidr);
    }
    obs_buf_puts(b, "]");
    json_u64(b, &first, "persistent_keepalive", cp->persistent_keepalive);
  }
  obs_buf_puts(b, "}");
}

/* What the streams document counts, from this process (or summed over a server's workers). */
typedef struct {
  uint64_t active[OBS_STREAM_KINDS], total[OBS_STREAM_KINDS];
  bool has_socks, up;
  socks_stats socks;
} stream_counts;

static void stream_counts_get(const obs_sources *src, stream_counts *c) {
  memset(c, 0, sizeof *c);
  for (int k = 0; k < OBS_STREAM_KINDS; k++) {
    c->active[k] = obs_streams_active((obs_stream_kind)k);
    c->total[k] = obs_streams_total((obs_stream_kind)k);
  }
  c->has_socks = socks_counters(src, &c->socks);
  c->up = src->tun && tunnel_is_up(src->tun);
}

static void stream_counts_add(stream_counts *sum, const stream_counts *c) {
  for (int k = 0; k < OBS_STREAM_KINDS; k++) {
    sum->active[k] += c->active[k];
    sum->total[k] += c->total[k];
  }
  sum->up |= c->up;
  if (!c->has_socks) return;
  sum->has_socks = true;
  sum->socks.accepted += c->socks.accepted;
  sum->socks.active += c->socks.active;
  sum->socks.handshake_failures += c->socks.handshake_failures;
  sum->socks.over_cap += c->socks.over_cap;
  for (int r = 0; r < 9; r++) sum->socks.replies[r] += c->socks.replies[r];
}

static void streams_object(obs_buf *b, const stream_counts *c) {
  uint64_t total = 0;
  for (int k = 0; k < OBS_STREAM_KINDS; k++) total += c->active[k];
  bool first = true;
  obs_buf_puts(b, "{");
  json_u64(b, &first, "active", total);
  json_key(b, &first, "by_kind");
  obs_buf_puts(b, "{");
  bool f2 = true;
  for (int k = 0; k < OBS_STREAM_KINDS; k++)
    json_u64(b, &f2, obs_stream_kind_name((obs_stream_kind)k), c->active[k]);
  obs_buf_puts(b, "}");
  json_key(b, &first, "opened_total");
  obs_buf_puts(b, "{");
  f2 = true;
  for (int k = 0; k < OBS_STREAM_KINDS; k++)
    json_u64(b, &f2, obs_stream_kind_name((obs_stream_kind)k), c->total[k]);
  obs_buf_puts(b, "}");
  if (c->has_socks) {
    const socks_stats *ss = &c->socks;
    json_key(b, &first, "socks");
    obs_buf_puts(b, "{");
    f2 = true;
    json_u64(b, &f2, "accepted", ss->accepted);
    json_u64(b, &f2, "in_handshake", ss->active);
    json_u64(b, &f2, "handshake_failures", ss->handshake_failures);
    json_u64(b, &f2, "over_cap", ss->over_cap);
    json_key(b, &f2, "failures_by_reply");
    obs_buf_puts(b, "{");
    bool f3 = true;
    for (uint8_t rep = 1; rep < 9; rep++) json_u64(b, &f3, socks5_rep_name(rep), ss->replies[rep]);
    obs_buf_puts(b, "}}");
  }
  obs_buf_puts(b, "}");
}

/* ---- a server's workers (daemon/workers.h) ---------------------------------------------- */

/* A worker's part of /status, /peers and /streams: its counts (raw bytes: the supervisor runs the
 * same executable), then its peer objects, one per line, each behind the line of its [Peer] in
 * the file and a tab (so that the supervisor lists them in the file's order, as one process
 * would). */
static void worker_part(const obs_sources *src, bool detail, obs_buf *b) {
  stream_counts c;
  stream_counts_get(src, &c);
  obs_buf_append(b, (const char *)&c, sizeof c);
  for (size_t i = 0; i < peer_count(src); i++) {
    obs_buf_printf(b, "%d\t", tunnel_peer_cfg(src->tun, i)->line);
    peer_json(b, src, i, detail);
    obs_buf_puts(b, "\n");
  }
}

typedef struct {
  long line;
  const char *json;
  size_t len;
} peer_item;

static int by_line(const void *a, const void *b) {
  long x = ((const peer_item *)a)->line, y = ((const peer_item *)b)->line;
  return (x > y) - (x < y);
}

/* Collects the "line<TAB>object" items of one part (after its counts) into items[*n..]. */
static void collect_items(const obs_buf *part, peer_item **items, size_t *n, size_t *cap) {
  const char *p = part->data + sizeof(stream_counts), *end = part->data + part->len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *tab = memchr(p, '\t', (size_t)(end - p));
    if (!nl || !tab || tab > nl) break;
    if (*n == *cap) {
      size_t nc = *cap ? *cap * 2 : 64;
      peer_item *g = realloc(*items, nc * sizeof *g);
      if (!g) return;
      *items = g, *cap = nc;
    }
    (*items)[(*n)++] = (peer_item){strtol(p, NULL, 10), tab + 1, (size_t)(nl - tab - 1)};
    p = nl + 1;
  }
}

void observe_render_part(const obs_sources *src, char what, obs_buf *b) {
  if (what == OBS_PART_METRICS) return observe_render_metrics(src, b);
  worker_part(src, what == OBS_PART_PEERS, b);
}

/* The workers' parts put together: counts summed, peer objects joined into one array. */
static void gathered(const obs_sources *src, char what, stream_counts *sum, obs_buf *peers) {
  memset(sum, 0, sizeof *sum);
  obs_buf parts[WG_SHARDS_MAX];
  unsigned n = src->workers < WG_SHARDS_MAX ? src->workers : WG_SHARDS_MAX;
  for (unsigned i = 0; i < n; i++) obs_buf_init(&parts[i]);
  src->gather(src->gather_ctx, what, parts, n);
  peer_item *items = NULL;
  size_t n_items = 0, cap = 0;
  for (unsigned i = 0; i < n; i++) {
    if (parts[i].len < sizeof(stream_counts)) continue;
    stream_counts c;
    memcpy(&c, parts[i].data, sizeof c);
    stream_counts_add(sum, &c);
    collect_items(&parts[i], &items, &n_items, &cap);
  }
  if (n_items) qsort(items, n_items, sizeof *items, by_line);
  for (size_t k = 0; peers && k < n_items; k++) {
    obs_buf_puts(peers, k ? "," : "");
    obs_buf_append(peers, items[k].json, items[k].len);
  }
  free(items);
  for (unsigned i = 0; i < n; i++) obs_buf_free(&parts[i]);
}

static void counts_and_peers(const obs_sources *src, bool detail, stream_counts *c,
                             obs_buf *peers) {
  if (src->gather) return gathered(src, detail ? OBS_PART_PEERS : OBS_PART_STATUS, c, peers);
  stream_counts_get(src, c);
  if (!peers) return;
  for (size_t i = 0; i < peer_count(src); i++) {
    obs_buf_puts(peers, i ? "," : "");
    peer_json(peers, src, i, detail);
  }
}

void observe_render_status(const obs_sources *src, obs_buf *b) {
  stream_counts c;
  obs_buf peers;
  obs_buf_init(&peers);
  counts_and_peers(src, false, &c, &peers);
  bool first = true;
  obs_buf_puts(b, "{");
  json_key(b, &first, "version");
  obs_buf_json_string(b, AWGPROXY_VERSION);
  json_key(b, &first, "role");
  obs_buf_json_string(b, src->role ? src->role : "");
  json_key(b, &first, "state");
  obs_buf_json_string(b, c.up ? "up" : "down");
  json_key(b, &first, "uptime_seconds");
  uint64_t up_ms = (uv_hrtime() - src->started_ns) / 1000000;
  obs_buf_printf(b, "%" PRIu64 ".%03u", up_ms / 1000, (unsigned)(up_ms % 1000));
  if (src->gather) json_u64(b, &first, "workers", src->workers);
  json_key(b, &first, "peers");
  obs_buf_puts(b, "[");
  if (peers.len) obs_buf_append(b, peers.data, peers.len);
  obs_buf_puts(b, "]");
  json_key(b, &first, "streams");
  streams_object(b, &c);
  obs_buf_puts(b, "}\n");
  obs_buf_free(&peers);
}

void observe_render_peers(const obs_sources *src, obs_buf *b) {
  stream_counts c;
  obs_buf peers;
  obs_buf_init(&peers);
  counts_and_peers(src, true, &c, &peers);
  obs_buf_puts(b, "{\"peers\":[");
  if (peers.len) obs_buf_append(b, peers.data, peers.len);
  obs_buf_puts(b, "]}\n");
  obs_buf_free(&peers);
}

void observe_render_streams(const obs_sources *src, obs_buf *b) {
  stream_counts c;
  counts_and_peers(src, false, &c, NULL);
  streams_object(b, &c);
  obs_buf_puts(b, "\n");
}

static void string_array(obs_buf *b, bool *first, const char *key, const char *const *items,
                         size_t n, size_t stride) {
  json_key(b, first, key);
  obs_buf_puts(b, "[");
  for (size_t i = 0; i < n; i++) {
    obs_buf_puts(b, i ? "," : "");
    obs_buf_json_string(b, *(const char *const *)((const char *)items + i * stride));
  }
  obs_buf_puts(b, "]");
}

int observe_render_reload(const obs_reload_report *r, obs_buf *b) {
  const char *msgs[OBS_RELOAD_MAX_MSGS];
  for (size_t i = 0; i < r->n_msgs && i < OBS_RELOAD_MAX_MSGS; i++) msgs[i] = r->msgs[i];
  size_t n_msgs = r->n_msgs < OBS_RELOAD_MAX_MSGS ? r->n_msgs : OBS_RELOAD_MAX_MSGS;
  bool first = true;
  obs_buf_puts(b, "{");
  json_key(b, &first, "ok");
  obs_buf_puts(b, r->ok ? "true" : "false");
  if (!r->ok) {
    json_key(b, &first, "error");
    obs_buf_json_string(b, r->error);
    string_array(b, &first, "errors", msgs, n_msgs, sizeof msgs[0]);
    obs_buf_puts(b, "}\n");
    return r->n_msgs ? 422 : 500;
  }
  json_key(b, &first, "peers");
  bool f2 = true;
  obs_buf_puts(b, "{");
  json_u64(b, &f2, "added", r->peers_added);
  json_u64(b, &f2, "removed", r->peers_removed);
  json_u64(b, &f2, "changed", r->peers_changed);
  json_u64(b, &f2, "unchanged", r->peers_unchanged);
  obs_buf_puts(b, "}");
  string_array(b, &first, "restart_required", r->restart_keys, r->n_restart_keys,
               sizeof r->restart_keys[0]);
  string_array(b, &first, "warnings", msgs, n_msgs, sizeof msgs[0]);
  obs_buf_puts(b, "}\n");
  return 200;
}

/* ---- HTTP handlers ------------------------------------------------------------------------ */

/* What a request reports on: with several servers, the selected one's tunnel and QUIC. */
static obs_sources current(const struct observe *o) {
  obs_sources src = o->src;
  if (!src.servers) return src;
  const upstream *u = server_set_selected(src.servers);
  src.tun = u ? u->tun : NULL;
  src.quic = u ? u->quic : NULL;
  return src;
}

static void metrics_handler(void *ctx, const http_request *req, const char *body, size_t body_len,
                            http_response *res) {
  struct observe *o = ctx;
  if (strcmp(req->path, "/metrics") != 0 || strcmp(req->method, "GET") != 0) {
    res->status = 404;
    obs_buf_puts(&res->body, "not found: GET /metrics\n");
    return;
  }
  res->content_type = PROM_CONTENT_TYPE;
  obs_sources src = current(o);
  observe_render_metrics(&src, &res->body);
  if (src.servers) observe_servers_metrics(src.servers, &res->body);
}

static void json_error(http_response *res, int status, const char *msg) {
  res->status = status;
  res->content_type = "application/json";
  obs_buf_puts(&res->body, "{\"error\":");
  obs_buf_json_string(&res->body, msg);
  obs_buf_puts(&res->body, "}\n");
}

static void control_handler(void *ctx, const http_request *req, const char *body, size_t body_len,
                            http_response *res) {
  struct observe *o = ctx;
  if (o->src.servers && observe_servers_route(o->src.servers, req, body, body_len, res)) return;
  obs_sources src = current(o);
  static const struct {
    const char *path, *method;
    void (*render)(const obs_sources *, obs_buf *);
  } routes[] = {
      {"/status", "GET", observe_render_status},
      {"/peers", "GET", observe_render_peers},
      {"/streams", "GET", observe_render_streams},
      {"/reload", "POST", NULL},
  };
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(req->path, routes[i].path) != 0) continue;
    if (strcmp(req->method, routes[i].method) != 0) {
      res->allow = routes[i].method;
      return json_error(res, 405, "method not allowed");
    }
    if (!routes[i].render) {
      if (!o->src.reload) return json_error(res, 501, "reload is not available in this process");
      obs_reload_report *r = calloc(1, sizeof *r);
      if (!r) return json_error(res, 500, "out of memory");
      o->src.reload(o->src.reload_ctx, r);
      res->content_type = "application/json";
      res->status = observe_render_reload(r, &res->body);
      free(r);
      return;
    }
    res->content_type = "application/json";
    routes[i].render(&src, &res->body);
    return;
  }
  json_error(res, 404, "not found: GET /status, /peers, /streams or POST /reload");
}

/* ---- lifetime ----------------------------------------------------------------------------- */

observe *observe_start(uv_loop_t *loop, const obs_sources *src, char *err, size_t errlen) {
  struct observe *o = calloc(1, sizeof *o);
  if (!o) return snprintf(err, errlen, "out of memory"), NULL;
  o->src = *src;
  const app_config *c = src->cfg;
  if (c->has_metrics) {
    o->metrics = http_server_start(loop, "metrics", NULL, &c->metrics_listen, metrics_handler, o,
                                   err, errlen);
    if (!o->metrics) return observe_stop(o), NULL;
  }
  if (c->control_path[0] || c->has_control_tcp) {
    o->control = http_server_start(loop, "control", c->control_path[0] ? c->control_path : NULL,
                                   &c->control_listen, control_handler, o, err, errlen);
    if (!o->control) return observe_stop(o), NULL;
  }
  return o;
}

void observe_render_own(const observe *o, char what, obs_buf *out) {
  observe_render_part(&o->src, what, out);
}

void observe_set_config(observe *o, const app_config *cfg) {
  if (o) o->src.cfg = cfg;
}

void observe_stop(observe *o) {
  if (!o) return;
  http_server_stop(o->metrics);
  http_server_stop(o->control);
  free(o);
}
