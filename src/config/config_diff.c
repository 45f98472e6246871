#include "config/config_diff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include "awg/itag.h"

typedef struct {
  const char **names;
  size_t n, max;
  int oom;
} diff_ctx;

static void note(diff_ctx *d, const char *name) {
  if (d->n < d->max) d->names[d->n] = name;
  d->n++;
}

/* A plain field (no owned memory): compare and copy back. */
#define KEEP(d, loaded, running, field, name)                                 \
  do {                                                                        \
    if (memcmp(&(loaded)->field, &(running)->field, sizeof(loaded)->field)) { \
      note(d, name);                                                          \
      memcpy(&(loaded)->field, &(running)->field, sizeof(loaded)->field);     \
    }                                                                         \
  } while (0)

/* Value equality of the element types (not memcmp: padding, bytes after a string's NUL and
 * line numbers must not count as changes). */
typedef bool (*elem_eq)(const void *a, const void *b);

static bool hostport_eq(const cfg_hostport *a, const cfg_hostport *b) {
  return a->port == b->port && strcmp(a->host, b->host) == 0;
}
static bool addr_eq(int family, const uint8_t *a, const uint8_t *b) {
  return memcmp(a, b, family == AF_INET ? 4 : 16) == 0;
}
static bool cidr_eq(const void *x, const void *y) {
  const cfg_cidr *a = x, *b = y;
  return a->family == b->family && a->prefix == b->prefix && addr_eq(a->family, a->addr, b->addr);
}
static bool ip_eq(const void *x, const void *y) {
  const cfg_ip *a = x, *b = y;
  return a->family == b->family && addr_eq(a->family, a->addr, b->addr);
}
static bool hp_eq(const void *x, const void *y) { return hostport_eq(x, y); }
static bool user_eq(const void *x, const void *y) {
  const cfg_socks_user *a = x, *b = y;
  return strcmp(a->user, b->user) == 0 && strcmp(a->hash, b->hash) == 0 &&
         strcmp(a->server, b->server) == 0;
}
static bool fwd_eq(const void *x, const void *y) {
  const cfg_forward *a = x, *b = y;
  return a->proto == b->proto && hostport_eq(&a->listen, &b->listen) &&
         hostport_eq(&a->target, &b->target);
}

/* An owned array (ptr, count), replaced by a copy of the running one when different. */
static void keep_array(diff_ctx *d, void **lp, size_t *ln, void *const *rp, size_t rn, size_t elem,
                       elem_eq eq, const char *name) {
  bool same = *ln == rn;
  for (size_t i = 0; same && i < rn; i++)
    same = eq((const char *)*lp + i * elem, (const char *)*rp + i * elem);
  if (same) return;
  note(d, name);
  void *copy = NULL;
  if (rn) {
    copy = malloc(rn * elem);
    if (!copy) {
      d->oom = 1;
      return;
    }
    memcpy(copy, *rp, rn * elem);
  }
  if (*lp) memset(*lp, 0, *ln * elem); /* may hold password hashes */
  free(*lp);
  *lp = copy;
  *ln = rn;
}

#define KEEP_ARRAY(d, l, r, ptr, count, eq, name)                                      \
  keep_array(d, (void **)&(l)->ptr, &(l)->count, (void *const *)&(r)->ptr, (r)->count, \
             sizeof *(r)->ptr, eq, name)

static const char *itemplate_text(const awg_itemplate *t) { return t ? awg_itemplate_text(t) : ""; }

static void keep_awg(diff_ctx *d, awg_params *l, const awg_params *r) {
  static const char *const s_names[4] = {"[Interface] S1", "[Interface] S2", "[Interface] S3",
                                         "[Interface] S4"};
  static const char *const h_names[4] = {"[Interface] H1", "[Interface] H2", "[Interface] H3",
                                         "[Interface] H4"};
  static const char *const i_names[AWG_NUM_I] = {
      "[Interface] I1", "[Interface] I2", "[Interface] I3", "[Interface] I4", "[Interface] I5"};
  KEEP(d, l, r, jc, "[Interface] Jc");
  KEEP(d, l, r, jmin, "[Interface] Jmin");
  KEEP(d, l, r, jmax, "[Interface] Jmax");
  for (int k = 0; k < 4; k++) KEEP(d, l, r, s[k], s_names[k]);
  for (int k = 0; k < 4; k++) KEEP(d, l, r, h[k], h_names[k]);
  KEEP(d, l, r, v3.header_protection, "[Interface] HeaderProtectionKey");
  KEEP(d, l, r, v3.hp_key, "[Interface] HeaderProtectionKey");
  KEEP(d, l, r, v3.content_padding, "[Interface] ContentPaddingAddition");
  KEEP(d, l, r, v3.random_trailers, "[Interface] RandomTrailers");
  KEEP(d, l, r, v3.disable_cookies, "[Interface] DisableCookies");
  KEEP(d, l, r, v3.rekey_after_time, "[Interface] RekeyAfterTime");
  KEEP(d, l, r, v3.rekey_timeout, "[Interface] RekeyTimeout");
  KEEP(d, l, r, v3.reject_after_time, "[Interface] RejectAfterTime");
  KEEP(d, l, r, v3.keepalive_timeout, "[Interface] KeepaliveTimeout");
  KEEP(d, l, r, v3.max_handshake_attempts, "[Interface] MaxHandshakeAttempts");
  for (int k = 0; k < AWG_NUM_I; k++) {
    if (strcmp(itemplate_text(l->i[k]), itemplate_text(r->i[k])) == 0) continue;
    note(d, i_names[k]);
    awg_itemplate *copy = NULL;
    char err[256];
    if (r->i[k] &&
        awg_itemplate_compile(awg_itemplate_text(r->i[k]), &copy, err, sizeof err) != 0) {
      d->oom = 1; /* it compiled once: only memory can fail */
      continue;
    }
    awg_itemplate_free(l->i[k]);
    l->i[k] = copy;
  }
}

/* A client's QUIC transport is set up once from its [Peer] (quic_client.h): a peer kept across
 * the reload keeps the transport keys it started with. */
static void keep_peer_transport(diff_ctx *d, app_config *l, const app_config *r) {
  for (size_t i = 0; i < l->n_peers; i++) {
    cfg_peer *lp = &l->peers[i];
    for (size_t k = 0; k < r->n_peers; k++) {
      const cfg_peer *rp = &r->peers[k];
      if (memcmp(lp->public_key, rp->public_key, sizeof lp->public_key) != 0) continue;
      if (lp->transport != rp->transport || lp->congestion != rp->congestion ||
          lp->has_quic_server != rp->has_quic_server || lp->quic_port != rp->quic_port ||
          (lp->has_quic_server && !ip_eq(&lp->quic_server, &rp->quic_server)) ||
          lp->quic_stream_window != rp->quic_stream_window ||
          lp->quic_conn_window != rp->quic_conn_window ||
          lp->quic_tunnel_protection != rp->quic_tunnel_protection ||
          lp->has_tls_endpoint != rp->has_tls_endpoint ||
          (rp->has_tls_endpoint && !hostport_eq(&lp->tls_endpoint, &rp->tls_endpoint)) ||
          strcmp(lp->tls_server_name, rp->tls_server_name) || lp->carrier != rp->carrier ||
          lp->tls_verify != rp->tls_verify || lp->udp_retry != rp->udp_retry) {
        note(d,
             "[Peer] Transport, Congestion, QuicServer, QuicPort, QuicStreamWindow, "
             "QuicConnWindow, QuicProtection, TlsEndpoint, TlsServerName, Carrier, TlsVerify, "
             "UdpRetry");
        lp->transport = rp->transport;
        lp->congestion = rp->congestion;
        lp->has_quic_server = rp->has_quic_server;
        lp->quic_server = rp->quic_server;
        lp->quic_port = rp->quic_port;
        lp->quic_stream_window = rp->quic_stream_window;
        lp->quic_conn_window = rp->quic_conn_window;
        lp->quic_tunnel_protection = rp->quic_tunnel_protection;
        lp->has_tls_endpoint = rp->has_tls_endpoint;
        lp->tls_endpoint = rp->tls_endpoint;
        memcpy(lp->tls_server_name, rp->tls_server_name, sizeof lp->tls_server_name);
        lp->carrier = rp->carrier;
        lp->tls_verify = rp->tls_verify;
        lp->udp_retry = rp->udp_retry;
      }
    }
  }
}

/* The TLS carrier's listeners are opened at start (carrier/tls_server.h); its certificate,
 * TlsName and TlsDecoy are reloaded (tls_server_reload_prepare). */
static void keep_server_tls(diff_ctx *d, app_config *l, const app_config *r) {
  bool same = l->n_tls_listen == r->n_tls_listen;
  for (size_t i = 0; same && i < r->n_tls_listen; i++)
    same = hostport_eq(&l->tls_listen[i], &r->tls_listen[i]);
  if (same) return;
  note(d, "[Server] TlsListen");
  memcpy(l->tls_listen, r->tls_listen, sizeof l->tls_listen);
  l->n_tls_listen = r->n_tls_listen;
}

int config_keep_restart_only(app_config *l, const app_config *r, const char **names, size_t max) {
  diff_ctx d = {names, 0, max, 0};
  if (l->has_private_key != r->has_private_key ||
      memcmp(l->private_key, r->private_key, sizeof l->private_key) != 0) {
    note(&d, "[Interface] PrivateKey");
    l->has_private_key = r->has_private_key;
    memcpy(l->private_key, r->private_key, sizeof l->private_key);
    memcpy(l->public_key, r->public_key, sizeof l->public_key);
  }
  if (l->has_listen_port != r->has_listen_port || l->listen_port != r->listen_port) {
    note(&d, "[Interface] ListenPort");
    l->has_listen_port = r->has_listen_port;
    l->listen_port = r->listen_port;
  }
  KEEP_ARRAY(&d, l, r, addresses, n_addresses, cidr_eq, "[Interface] Address");
  KEEP_ARRAY(&d, l, r, dns, n_dns, ip_eq, "[Interface] DNS");
  if (l->mtu != r->mtu) {
    note(&d, "[Interface] MTU");
    l->mtu = r->mtu;
    l->mtu_explicit = r->mtu_explicit;
  }
  keep_awg(&d, &l->awg, &r->awg);
  KEEP_ARRAY(&d, l, r, socks_listen, n_socks_listen, hp_eq, "[Socks] Listen");
  KEEP_ARRAY(&d, l, r, socks_users, n_socks_users, user_eq, "[Socks] User");
  KEEP(&d, l, r, socks_handshake_timeout, "[Socks] HandshakeTimeout");
  KEEP(&d, l, r, connect_timeout, "[Socks] ConnectTimeout");
  KEEP(&d, l, r, idle_timeout, "[Socks] IdleTimeout");
  KEEP(&d, l, r, tunnel_wait, "[Socks] TunnelWait");
  KEEP(&d, l, r, socks_fast_open, "[Socks] FastOpen");
  KEEP(&d, l, r, socks_max_connections, "[Socks] MaxConnections");
  KEEP(&d, l, r, socks_mode, "[Socks] Mode");
  KEEP(&d, l, r, client_probe_interval, "[Client] ProbeInterval");
  KEEP(&d, l, r, client_probe_failures, "[Client] ProbeFailures");
  KEEP(&d, l, r, client_failback, "[Client] Failback");
  if (strcmp(l->client_select, r->client_select) != 0) {
    note(&d, "[Client] Select");
    memcpy(l->client_select, r->client_select, sizeof l->client_select);
  }
  KEEP_ARRAY(&d, l, r, http_listen, n_http_listen, hp_eq, "[Http] Listen");
  KEEP(&d, l, r, http_header_timeout, "[Http] HeaderTimeout");
  KEEP(&d, l, r, http_max_connections, "[Http] MaxConnections");
  KEEP_ARRAY(&d, l, r, forwards, n_forwards, fwd_eq, "[Forward]");
  KEEP(&d, l, r, server_socks_port, "[Server] Socks");
  KEEP(&d, l, r, server_socks_auth, "[Server] SocksAuth");
  KEEP(&d, l, r, server_quic, "[Server] Quic");
  KEEP(&d, l, r, server_quic_port, "[Server] QuicPort");
  KEEP(&d, l, r, server_quic_stream_window, "[Server] QuicStreamWindow");
  KEEP(&d, l, r, server_quic_conn_window, "[Server] QuicConnWindow");
  KEEP(&d, l, r, server_threads, "[Server] Threads");
  if (memcmp(&l->extra_ports, &r->extra_ports, sizeof l->extra_ports) != 0) {
    note(&d, "[Server] ExtraPorts");
    l->extra_ports = r->extra_ports;
  }
  keep_peer_transport(&d, l, r);
  keep_server_tls(&d, l, r);
  if (l->has_local_socks != r->has_local_socks ||
      (r->has_local_socks && !hostport_eq(&l->local_socks, &r->local_socks))) {
    note(&d, "[Server] LocalSocks");
    l->has_local_socks = r->has_local_socks;
    l->local_socks = r->local_socks;
  }
  if (l->has_metrics != r->has_metrics ||
      (r->has_metrics && !hostport_eq(&l->metrics_listen, &r->metrics_listen))) {
    note(&d, "[Metrics] Listen");
    l->has_metrics = r->has_metrics;
    l->metrics_listen = r->metrics_listen;
  }
  if (strcmp(l->control_path, r->control_path) != 0 || l->has_control_tcp != r->has_control_tcp ||
      (r->has_control_tcp && !hostport_eq(&l->control_listen, &r->control_listen))) {
    note(&d, "[Control] Listen");
    memcpy(l->control_path, r->control_path, sizeof l->control_path);
    l->has_control_tcp = r->has_control_tcp;
    l->control_listen = r->control_listen;
  }
  if (d.oom) return -1;
  return (int)(d.n < max ? d.n : max);
}
