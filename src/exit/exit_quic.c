#include "exit/exit_quic.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "exit/exit_peer.h"
#include "exit/exit_quic_udp.h"
#include "exit/exit_socks_connect.h"
#include "quic/quic_client.h"
#include "quic/quic_conn.h"
#include "quic/quic_ip.h"
#include "quic/quic_metrics.h"
#include "quic/quic_proto.h"
#include "stream/dial_error.h"
#include "stream/relay.h"
#include "util/list.h"
#include "util/log.h"
#include "wg/wg_crypto.h"

#define MAX_CONNS_PER_PEER 16
#define MAX_CONNS 4096

typedef struct qconn qconn;
struct qconn {
  struct exit_quic *eq;
  qconn *next;
  quic_conn *qc;
  exit_peer *p; /* held */
  quic_path_addrs path;
  char name[64]; /* peer address:port for logs */
  exit_quic_flows *flows;
};

#define RESETS_PER_SECOND 20

struct exit_quic {
  exit_ctx *x;
  /* Stateless reset tokens come from this (derived from the server's private key): after a
   * restart the server can still end the connections clients hold with its predecessor, and
   * they reconnect at once instead of waiting out the idle timeout. */
  uint8_t reset_secret[32];
  uint64_t reset_window; /* the second (uv_now / 1000) the count below is for */
  unsigned resets;
  quic_tls *tls;
  quic_conn_opts opts;
  uint16_t port;
  qconn *conns;
  exit_socks_env env;
  socks_connector connector;
  exit_quic_stats st;
  list_node sessions; /* every qsess: stopping detaches them (their streams close later) */
};

/* One stream: the request, the connect, then a relay. eq is NULL once the endpoint stopped: the
 * stream and relay end later from the loop, and only free the session then. */
typedef struct {
  list_node link; /* in eq->sessions */
  relay *r;       /* once relaying */
  struct exit_quic *eq;
  stream *s;
  uint8_t buf[QP_REQUEST_MAX];
  size_t have;
  dial_dest dst;
  char dst_name[300];
  socks_origin origin;
  void *req;      /* the connector's request, from connect until released */
  uint8_t *early; /* bytes that came behind the request, written once connected */
  size_t early_len;
  bool failed;
} qsess;

/* ---- streams ------------------------------------------------------------------------------ */

static void sess_free(qsess *q) {
  list_remove(&q->link);
  if (q->eq) q->eq->st.streams--;
  free(q->early);
  free(q);
}

static void fail_closed(stream *s) { sess_free(s->user); }
static void fail_read(stream *s, const uint8_t *d, size_t n) {}
static void fail_shutdown(stream *s) { stream_close(s); }
static void fail_error(stream *s, int err) { stream_close(s); }

/* Answers a failure code, ends our side and closes once it is out (or at once when malformed:
 * the stream is then reset). */
static void sess_fail(qsess *q, dial_error code, const char *why, bool reset) {
  q->failed = true;
  quic_metrics_get()->stream_results[code]++;
  LOG_D("quic", "stream_failed", "dst", q->dst_name, "code", dial_error_name(code), "reason", why,
        NULL);
  stream *s = q->s;
  s->on_read = fail_read;
  s->on_shutdown = fail_shutdown;
  s->on_error = fail_error;
  s->on_closed = fail_closed;
  if (reset) {
    stream_close(s);
    return;
  }
  uint8_t r[QP_REPLY_LEN];
  qp_build_reply(code, r);
  stream_write(s, r, sizeof r);
  stream_shutdown(s);
  stream_read_start(s); /* discard what the client sent */
}

static void on_relay_done(void *ctx, const relay_result *r) {
  qsess *q = ctx;
  relay_log_result("quic", "stream_closed", "dst", q->dst_name, r);
  if (q->req) q->eq->connector.release(q->req); /* a stop released it already */
  sess_free(q);
}

static void on_connected(void *ctx, stream *remote, dial_error err, const char *reason) {
  qsess *q = ctx;
  struct exit_quic *eq = q->eq;
  if (!remote) {
    q->req = NULL; /* a failed request is gone once its callback ran */
    sess_fail(q, err, reason, false);
    return;
  }
  quic_metrics_get()->stream_results[DIAL_OK]++;
  LOG_D("quic", "stream_connected", "dst", q->dst_name, NULL);
  uint8_t r[QP_REPLY_LEN];
  qp_build_reply(DIAL_OK, r);
  stream *s = q->s;
  /* A client that sent bytes behind its request (fast open) does not wait for this reply: it
   * leaves with the destination's first bytes, one packet for both. */
  if (q->early_len) quic_stream_hold_next_write(s);
  stream_write(s, r, sizeof r);
  if (q->early_len) stream_write(remote, q->early, q->early_len);
  free(q->early);
  q->early = NULL;
  q->early_len = 0;
  if (eq->connector.wrap) eq->connector.wrap(q->req, &s, &remote);
  uint64_t idle = (uint64_t)eq->x->cfg->idle_timeout * 1000;
  q->r = relay_start(eq->x->loop, s, remote, idle, on_relay_done, q);
  if (!q->r) {
    eq->connector.release(q->req);
    sess_free(q);
  }
}

/* While the request is read or the connect runs: the stream failing ends the attempt. */
static void sess_error(stream *s, int err) {
  qsess *q = s->user;
  if (q->req) q->eq->connector.cancel(q->req);
  q->req = NULL;
  s->on_closed = fail_closed;
  stream_close(s);
}

static void start_connect(qsess *q) {
  struct exit_quic *eq = q->eq;
  dial_dest_format(&q->dst, q->dst_name, sizeof q->dst_name);
  stream_read_stop(q->s); /* the rest waits in the stream's window until the relay reads it */
  q->req = eq->connector.connect(eq->connector.env, &q->origin, &q->dst, on_connected, q);
  if (!q->req) sess_fail(q, DIAL_ERR_GENERAL, "out of memory", false);
}

static void sess_read(stream *s, const uint8_t *d, size_t n) {
  qsess *q = s->user;
  if (q->req || !q->eq) return; /* reading stops at the request's end; or stopping */
  if (n == 0) {
    sess_fail(q, DIAL_ERR_GENERAL, "end of stream inside the request", true);
    return;
  }
  size_t take = sizeof q->buf - q->have < n ? sizeof q->buf - q->have : n;
  memcpy(q->buf + q->have, d, take);
  q->have += take;
  size_t used = 0;
  qp_status st = qp_parse_request(q->buf, q->have, &q->dst, &used);
  if (st == QP_NEED_MORE && q->have < sizeof q->buf) return;
  if (st != QP_DONE) {
    snprintf(q->dst_name, sizeof q->dst_name, "?");
    sess_fail(q, DIAL_ERR_GENERAL, "malformed request", true);
    return;
  }
  /* What followed the request in this read (the client's first bytes) waits for the connect. */
  size_t extra = q->have - used + (n - take);
  if (extra) {
    q->early = malloc(extra);
    if (!q->early) {
      sess_fail(q, DIAL_ERR_GENERAL, "out of memory", true);
      return;
    }
    memcpy(q->early, q->buf + used, q->have - used);
    memcpy(q->early + (q->have - used), d + take, n - take);
    q->early_len = extra;
  }
  start_connect(q);
}

static void sess_closed(stream *s) { sess_free(s->user); }
static void sess_shutdown(stream *s) {}
static void sess_drain(stream *s) {}

static void on_new_stream(void *ctx, stream *s) {
  qconn *c = ctx;
  struct exit_quic *eq = c->eq;
  qsess *q = calloc(1, sizeof *q);
  if (!q) {
    stream_close(s);
    return;
  }
  q->eq = eq;
  list_push_front(&eq->sessions, &q->link);
  q->s = s;
  q->origin.local = c->path.local;
  q->origin.peer = c->path.remote;
  eq->st.streams++;
  eq->st.streams_total++;
  s->user = q;
  s->on_read = sess_read;
  s->on_error = sess_error;
  s->on_closed = sess_closed;
  s->on_shutdown = sess_shutdown;
  s->on_drain = sess_drain;
  stream_read_start(s);
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_send(void *ctx, const quic_pkt *pkts, size_t n) {
  qconn *c = ctx;
  bool established = quic_conn_is_established(c->qc); /* the client is awgproxy (quic_ip.h) */
  for (size_t i = 0; i < n; i++) {
    size_t len;
    uint8_t *ip = quic_ip_wrap(pkts[i].data, pkts[i].len, &c->path.local, &c->path.remote,
                               !established, &len);
    tunnel_send_inner(c->eq->x->tun, ip, len);
  }
}

static void conn_end(qconn *c, const char *reason) {
  struct exit_quic *eq = c->eq;
  for (qconn **pp = &eq->conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  LOG_D("quic", "connection_closed", "peer", exit_peer_name(c->p), "from", c->name, "reason",
        reason, NULL);
  exit_quic_flows_free(c->flows);
  quic_conn_close(c->qc);
  exit_peer_put(c->p);
  eq->st.conns--;
  free(c);
}

static void conn_closed(void *ctx, const char *reason) { conn_end(ctx, reason); }

static void conn_established(void *ctx) {
  qconn *c = ctx;
  LOG_D("quic", "connection_established", "peer", exit_peer_name(c->p), "from", c->name, NULL);
}

static void conn_datagram(void *ctx, const uint8_t *d, size_t n) {
  qconn *c = ctx;
  exit_quic_flows_input(c->flows, d, n);
}

static void flow_reply(void *ctx, const uint8_t *hdr, size_t hlen, const uint8_t *d, size_t n) {
  qconn *c = ctx;
  quic_conn_send_datagram(c->qc, hdr, hlen, d, n); /* a full queue drops it, as UDP would */
}

static bool own_address(const exit_ctx *x, const struct sockaddr_storage *a) {
  for (size_t i = 0; i < x->cfg->n_addresses; i++) {
    const cfg_cidr *c = &x->cfg->addresses[i];
    if (c->family != a->ss_family) continue;
    const void *b = a->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
    if (!memcmp(c->addr, b, a->ss_family == AF_INET6 ? 16 : 4)) return true;
  }
  return false;
}

static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  return quic_ip_same_host(a, b) && quic_ip_port(a) == quic_ip_port(b);
}

static void conn_new(struct exit_quic *eq, const quic_path_addrs *path, const uint8_t *pkt,
                     size_t len) {
  exit_ctx *x = eq->x;
  exit_addr src;
  memset(&src, 0, sizeof src);
  src.family = path->remote.ss_family;
  if (src.family == AF_INET6)
    memcpy(src.a, &((const struct sockaddr_in6 *)&path->remote)->sin6_addr, 16);
  else
    memcpy(src.a, &((const struct sockaddr_in *)&path->remote)->sin_addr, 4);
  exit_peer *p = exit_peer_lookup(x, &src);
  size_t of_peer = 0, all = 0;
  for (qconn *c = eq->conns; c; c = c->next, all++) of_peer += c->p == p;
  if (!p || exit_peer_gone(p) || of_peer >= MAX_CONNS_PER_PEER || all >= MAX_CONNS) {
    eq->st.conns_refused++;
    return;
  }
  qconn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->eq = eq;
  c->path = *path;
  c->p = p;
  exit_peer_hold(p);
  exit_addr_format(&src, quic_ip_port(&path->remote), c->name, sizeof c->name);
  quic_conn_cb cb = {.send = conn_send,
                     .established = conn_established,
                     .closed = conn_closed,
                     .new_stream = on_new_stream,
                     .datagram = conn_datagram,
                     .ctx = c};
  c->flows = exit_quic_flows_new(x, p, flow_reply, c);
  char err[160];
  quic_conn_opts opts = eq->opts;
  opts.cc = quic_cc_of(exit_peer_congestion(p)); /* what the server sends: the downloads */
  opts.max_payload = quic_ip_max_payload(x->cfg->mtu, path->remote.ss_family);
  c->qc = c->flows ? quic_conn_server(x->loop, eq->tls, &opts, &cb, path, pkt, len, err, sizeof err)
                   : NULL;
  if (!c->qc) {
    LOG_D("quic", "connection_refused", "from", c->name, "reason", c->flows ? err : "no memory",
          NULL);
    exit_quic_flows_free(c->flows);
    exit_peer_put(p);
    free(c);
    eq->st.conns_refused++;
    return;
  }
  c->next = eq->conns;
  eq->conns = c;
  eq->st.conns++;
  eq->st.conns_total++;
}

/* A packet for a connection we do not know (one of a previous server process): a Stateless
 * Reset ends it at the client, at most RESETS_PER_SECOND of them. */
static void send_reset(struct exit_quic *eq, const quic_path_addrs *path, const uint8_t *pkt,
                       size_t len) {
  uint64_t second = uv_now(eq->x->loop) / 1000;
  if (second != eq->reset_window) eq->reset_window = second, eq->resets = 0;
  if (eq->resets >= RESETS_PER_SECOND) return;
  uint8_t buf[QUIC_IP_HEADROOM + 64];
  size_t n = quic_stateless_reset(eq->reset_secret, sizeof eq->reset_secret, pkt, len,
                                  buf + QUIC_IP_HEADROOM, 64);
  if (!n) return;
  eq->resets++;
  size_t ip_len;
  uint8_t *ip = quic_ip_wrap(buf + QUIC_IP_HEADROOM, n, &path->local, &path->remote, true, &ip_len);
  tunnel_send_inner(eq->x->tun, ip, ip_len);
}

/* Inner packets, before lwIP: ours when they are UDP to one of our addresses on QuicPort. */
static bool on_inner(void *ctx, const uint8_t *pkt, size_t len) {
  struct exit_quic *eq = ctx;
  quic_path_addrs path;
  const uint8_t *payload;
  size_t plen;
  if (!quic_ip_parse_udp(pkt, len, &path.remote, &path.local, &payload, &plen)) return false;
  if (quic_ip_port(&path.local) != eq->port || !own_address(eq->x, &path.local)) return false;
  for (qconn *c = eq->conns; c; c = c->next) {
    if (same_endpoint(&c->path.remote, &path.remote) &&
        same_endpoint(&c->path.local, &path.local)) {
      quic_conn_input(c->qc, payload, plen);
      return true;
    }
  }
  if (quic_conn_acceptable(payload, plen))
    conn_new(eq, &path, payload, plen);
  else
    send_reset(eq, &path, payload, plen);
  return true; /* anything else to the QUIC port is dropped here, never given to the exit */
}

int exit_quic_start(exit_ctx *x, char *err, size_t errlen) {
  if (!x->cfg->server_quic) return 0;
  struct exit_quic *eq = calloc(1, sizeof *eq);
  if (!eq) return snprintf(err, errlen, "out of memory"), -1;
  list_init(&eq->sessions);
  eq->tls = quic_tls_new(true, true, err, errlen);
  if (!eq->tls) {
    free(eq);
    return -1;
  }
  eq->x = x;
  eq->port = x->cfg->server_quic_port;
  quic_conn_opts_default(&eq->opts);
  eq->opts.headroom = QUIC_IP_HEADROOM;
  quic_conn_opts_windows(&eq->opts, x->cfg->server_quic_stream_window,
                         x->cfg->server_quic_conn_window);
  /* Each connection's own, for its family (conn_new); IPv6 headers are the larger. */
  eq->opts.max_payload = quic_ip_max_payload(x->cfg->mtu, AF_INET6);
  eq->opts.keepalive_ms = 0; /* the client keeps the connection alive */
  eq->env.x = x;
  eq->env.tunnel = true;
  eq->connector = exit_socks_connector(&eq->env);
  static const char label[] = "awgproxy quic stateless reset";
  wg_hash(eq->reset_secret, label, sizeof label - 1, x->cfg->private_key,
          sizeof x->cfg->private_key);
  eq->opts.reset_secret = eq->reset_secret;
  eq->opts.reset_secret_len = sizeof eq->reset_secret;
  x->quic = eq;
  quic_metrics_get()->active = true;
  tunnel_set_inner_hook(x->tun, on_inner, eq);
  char port[8];
  snprintf(port, sizeof port, "%u", eq->port);
  LOG_I("quic", "listening", "port", port, NULL);
  return 0;
}

void exit_quic_stop(exit_ctx *x) {
  struct exit_quic *eq = x->quic;
  if (!eq) return;
  tunnel_set_inner_hook(x->tun, NULL, NULL);
  /* Sessions end from the loop after this returns: what their requests hold goes back now, while
   * the exit still exists, and they forget eq. */
  while (!list_empty(&eq->sessions)) {
    qsess *q = list_entry(eq->sessions.next, qsess, link);
    list_remove(&q->link);
    if (q->req && q->r)
      eq->connector.release(q->req);
    else if (q->req)
      eq->connector.cancel(q->req);
    q->req = NULL;
    q->eq = NULL;
    if (q->r) relay_abort(q->r);
  }
  while (eq->conns) conn_end(eq->conns, "shutdown");
  quic_tls_free(eq->tls);
  wg_wipe(eq->reset_secret, sizeof eq->reset_secret);
  free(eq);
  x->quic = NULL;
}

void exit_quic_end_peer(exit_ctx *x, exit_peer *p) {
  struct exit_quic *eq = x->quic;
  if (!eq) return;
  for (qconn *c = eq->conns, *n; c; c = n) {
    n = c->next;
    if (c->p == p) conn_end(c, "peer removed");
  }
}

bool exit_quic_peer_stats(const exit_ctx *x, const char *fingerprint, quic_conn_stats *out) {
  const struct exit_quic *eq = x->quic;
  for (const qconn *c = eq ? eq->conns : NULL; c; c = c->next) {
    if (strcmp(exit_peer_name(c->p), fingerprint) != 0 || !quic_conn_is_established(c->qc))
      continue;
    quic_conn_get_stats(c->qc, out);
    return true;
  }
  return false;
}
