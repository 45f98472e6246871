#include "quic/quic_client.h"

#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic/quic_ip.h"
#include "quic/quic_metrics.h"
#include "quic/quic_proto.h"
#include "util/log.h"
#include "util/sockaddr.h"

#define TICK_MS 100

typedef enum { ST_IDLE, ST_CONNECTING, ST_UP } conn_state;

struct quic_dial {
  quic_client *qc;
  quic_dial *next; /* on qc->waiting */
  bool waiting, done;
  bool early_ready; /* fast open: the stream is out with its request; hand it over */
  dial_dest dst;
  quic_dial_cb cb;
  void *ctx;
  stream *s;
  uint64_t deadline;
  uint64_t asked_ns;         /* uv_hrtime() when the open request went out */
  uint64_t connect_deadline; /* now_ms() by which the server's reply must have come */
  uv_timer_t later;          /* reports failures decided inside quic_dial_start; the reply wait */
  dial_error later_err;
  const char *later_reason;
};

struct quic_client {
  uv_loop_t *loop;
  tunnel *tun;
  const app_config *cfg;
  cfg_transport mode;
  quic_tls *tls;
  quic_conn_opts opts;
  quic_path_addrs path;
  bool has_server;
  quic_conn *conn;
  conn_state st;
  bool ever_up;
  bool standby;        /* a server the client does not use now: no connection unless a dial waits */
  bool attempt_probed; /* this attempt has asked the tunnel for a liveness handshake */
  uint64_t attempt_started, retry_at, tunnel_wait_ms, connect_timeout_ms;
  uv_timer_t tick;
  quic_dial *waiting;
  quic_dgram_sink dgram_sink;
  void *dgram_ctx;
  quic_client_status st_counts;
};

static uint64_t now_ms(const quic_client *qc) { return uv_now(qc->loop); }

quic_route quic_client_route(const quic_client *qc) {
  if (!qc || qc->mode == CFG_TRANSPORT_IP || !qc->has_server) return QUIC_ROUTE_IP;
  if (qc->st == ST_UP) return QUIC_ROUTE_QUIC;
  /* auto never makes a stream wait for a handshake whose outcome is open: ip until QUIC is up */
  return qc->mode == CFG_TRANSPORT_QUIC ? QUIC_ROUTE_PENDING : QUIC_ROUTE_IP;
}

bool quic_client_may_fall_back(const quic_client *qc) { return qc->mode != CFG_TRANSPORT_QUIC; }

/* ---- dials -------------------------------------------------------------------------------- */

static void dial_freed(uv_handle_t *h) { free(h->data); }

static void count_result(void *ctx, dial_error err) {
  quic_client *qc = ctx;
  qc->st_counts.stream_results[err]++;
  quic_metrics_get()->stream_results[err]++;
}

static void dial_finish(quic_dial *d, stream *s, dial_error err, const char *reason) {
  if (d->done) return;
  d->done = true;
  quic_client *qc = d->qc;
  if (d->waiting) {
    for (quic_dial **pp = &qc->waiting; *pp; pp = &(*pp)->next)
      if (*pp == d) {
        *pp = d->next;
        break;
      }
    d->waiting = false;
  }
  if (!d->early_ready) count_result(qc, err); /* a fast-open stream's comes with its reply */
  d->cb(d->ctx, s, err, reason);
  uv_close((uv_handle_t *)&d->later, dial_freed);
}

static void reply_read(stream *s, const uint8_t *data, size_t n) {
  quic_dial *d = s->user;
  dial_error code;
  size_t used;
  if (n == 0 || qp_parse_reply(data, n, &code, &used) != QP_DONE) {
    d->s = NULL;
    stream_close(s);
    dial_finish(d, NULL, DIAL_ERR_GENERAL, n ? "malformed reply from the server" : "stream ended");
    return;
  }
  if (code != DIAL_OK) {
    d->s = NULL;
    stream_close(s);
    dial_finish(d, NULL, code, "refused by the server");
    return;
  }
  d->s = NULL;
  s->user = NULL;
  s->on_read = NULL;
  s->on_error = NULL;
  dial_finish(d, s, DIAL_OK, NULL); /* reading stopped after the header; the caller resumes */
}

static void reply_error(stream *s, int err) {
  quic_dial *d = s->user;
  d->s = NULL;
  stream_close(s);
  dial_finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, "QUIC connection lost");
}

static void ignore_closed(stream *s) {}
static void on_later(uv_timer_t *t);
static void ignore_event(stream *s) {}

static void dial_open(quic_dial *d) {
  quic_client *qc = d->qc;
  uint8_t req[QP_REQUEST_MAX];
  size_t n = qp_build_request(&d->dst, req, sizeof req);
  if (!n) {
    dial_finish(d, NULL, DIAL_ERR_GENERAL, "destination cannot be encoded");
    return;
  }
  stream *s = qc->conn ? quic_conn_open_stream(qc->conn) : NULL;
  if (!s) {
    dial_finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, "QUIC connection not usable");
    return;
  }
  d->s = s;
  s->user = d;
  s->on_read = reply_read;
  s->on_error = reply_error;
  s->on_closed = ignore_closed;
  s->on_drain = ignore_event;
  s->on_shutdown = ignore_event;
  qc->st_counts.streams_opened++;
  /* Fast open: the request waits (QUIC_HOLD_MS: 1-2 ms) for the caller's first bytes, to
   * leave in one packet with them, as ss-local sends the address with the first data. */
  if (d->dst.flags & DIAL_EARLY) quic_stream_hold_next_write(s);
  stream_write(s, req, n);
  if (d->dst.flags & DIAL_EARLY) {
    /* Fast open: the caller's bytes follow the request at once; the reply is checked by the
     * stream itself and a refusal ends it (the caller sees a closed connection). The server's
     * own ConnectTimeout bounds the wait for that reply. */
    quic_stream_gate_reply(s, count_result, qc);
    d->early_ready = true;
    return;
  }
  quic_stream_want_header(s, QP_REPLY_LEN);
  stream_read_start(s);
  /* First check at TunnelWait: a dead path shows as silence from the tunnel, as on the ip path. */
  d->asked_ns = uv_hrtime();
  d->connect_deadline = now_ms(qc) + qc->connect_timeout_ms;
  uint64_t first = qc->tunnel_wait_ms && qc->tunnel_wait_ms < qc->connect_timeout_ms
                       ? qc->tunnel_wait_ms
                       : qc->connect_timeout_ms;
  uv_timer_start(&d->later, on_later, first, 0);
}

/* Fast open: the stream goes to the caller as it is, callbacks cleared for the new owner. */
static void finish_early(quic_dial *d) {
  stream *s = d->s;
  d->s = NULL;
  s->user = NULL;
  s->on_read = NULL;
  s->on_error = NULL;
  dial_finish(d, s, DIAL_OK, NULL);
}

/* A failure decided at start, reported from the loop; or the connect deadline of an open
 * stream whose reply has not come. */
static void on_later(uv_timer_t *t) {
  quic_dial *d = t->data;
  if (d->waiting) return;
  if (d->early_ready) return finish_early(d);
  if (d->s) {
    /* Nothing at all came through the tunnel since the request: the path (or the server) is
     * gone, which SOCKS reports as a general failure, as the ip path does after TunnelWait. */
    bool silent = tunnel_last_rx(d->qc->tun) < d->asked_ns;
    uint64_t now = now_ms(d->qc);
    if (!silent && now < d->connect_deadline) {
      uv_timer_start(&d->later, on_later, d->connect_deadline - now, 0);
      return;
    }
    stream *s = d->s;
    d->s = NULL;
    stream_close(s);
    if (silent)
      dial_finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, "no answer through the tunnel within TunnelWait");
    else
      dial_finish(d, NULL, DIAL_ERR_TIMEOUT, "no answer from the server within ConnectTimeout");
    return;
  }
  dial_finish(d, NULL, d->later_err, d->later_reason);
}

quic_dial *quic_dial_start(quic_client *qc, const dial_dest *dst, quic_dial_cb cb, void *ctx) {
  quic_dial *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->qc = qc;
  d->dst = *dst;
  d->cb = cb;
  d->ctx = ctx;
  uv_timer_init(qc->loop, &d->later);
  d->later.data = d;
  switch (quic_client_route(qc)) {
    case QUIC_ROUTE_QUIC:
      dial_open(d); /* the reply comes from the network: always later */
      if (d->done) {
        /* failed at once: report from the loop, as promised */
        d->done = false;
        d->later_err = DIAL_ERR_TUNNEL_DOWN;
        d->later_reason = "QUIC connection not usable";
        uv_timer_start(&d->later, on_later, 0, 0);
      } else if (d->early_ready)
        uv_timer_start(&d->later, on_later, 0, 0); /* cb never runs inside start */
      break;
    case QUIC_ROUTE_PENDING:
      d->waiting = true;
      d->deadline = now_ms(qc) + qc->tunnel_wait_ms;
      d->next = qc->waiting;
      qc->waiting = d;
      break;
    case QUIC_ROUTE_IP:
      d->later_err = DIAL_ERR_TUNNEL_DOWN;
      d->later_reason = "QUIC transport not in use";
      uv_timer_start(&d->later, on_later, 0, 0);
      break;
  }
  return d;
}

void quic_dial_cancel(quic_dial *d) {
  if (d->done) return;
  quic_client *qc = d->qc;
  if (d->waiting) {
    for (quic_dial **pp = &qc->waiting; *pp; pp = &(*pp)->next)
      if (*pp == d) {
        *pp = d->next;
        break;
      }
  }
  if (d->s) {
    d->s->on_closed = ignore_closed;
    stream_close(d->s);
  }
  d->done = true;
  uv_close((uv_handle_t *)&d->later, dial_freed);
}

/* The connection is up (open the waiting streams) or will not be (fail them). */
static void settle_waiting(quic_client *qc, bool up) {
  quic_dial *w = qc->waiting;
  qc->waiting = NULL;
  while (w) {
    quic_dial *n = w->next;
    w->waiting = false;
    w->next = NULL;
    if (up) {
      dial_open(w);
      if (w->early_ready) finish_early(w);
    } else if (qc->mode == CFG_TRANSPORT_QUIC) {
      /* forced QUIC: keep waiting for the next attempt until the deadline */
      w->waiting = true;
      w->next = qc->waiting;
      qc->waiting = w;
    } else
      dial_finish(w, NULL, DIAL_ERR_TUNNEL_DOWN, "QUIC transport unavailable");
    w = n;
  }
}

/* ---- the connection ----------------------------------------------------------------------- */

static void conn_send(void *ctx, const quic_pkt *pkts, size_t n) {
  quic_client *qc = ctx;
  /* once the handshake is done the server is awgproxy, which does not check (quic_ip.h) */
  bool established = quic_conn_is_established(qc->conn);
  for (size_t i = 0; i < n; i++) {
    size_t len;
    uint8_t *ip = quic_ip_wrap(pkts[i].data, pkts[i].len, &qc->path.local, &qc->path.remote,
                               !established, &len);
    tunnel_send_inner(qc->tun, ip, len);
  }
}

static void conn_established(void *ctx) {
  quic_client *qc = ctx;
  qc->st = ST_UP;
  qc->ever_up = true;
  qc->st_counts.connects++;
  char rtt[16];
  quic_conn_stats s;
  quic_conn_get_stats(qc->conn, &s);
  snprintf(rtt, sizeof rtt, "%.1f", (double)s.rtt_ns / 1e6);
  LOG_I("quic", "connected", "rtt_ms", rtt, "protection", s.tunnel_protection ? "tunnel" : "quic",
        NULL);
  settle_waiting(qc, true);
}

static void drop_conn(quic_client *qc, const char *reason) {
  bool was_up = qc->st == ST_UP;
  if (was_up && qc->standby && !qc->waiting && quic_conn_streams_open(qc->conn) == 0) {
    /* Nothing lost: a server the client no longer uses, its last stream gone. */
    quic_conn_close(qc->conn);
    qc->conn = NULL;
    qc->st = ST_IDLE;
    qc->retry_at = now_ms(qc);
    LOG_I("quic", "standby", "reason", reason, NULL);
    return;
  }
  if (qc->conn) quic_conn_close(qc->conn);
  qc->conn = NULL;
  qc->st = ST_IDLE;
  uint64_t wait = qc->ever_up || qc->mode == CFG_TRANSPORT_QUIC ? QUIC_REDIAL_MS : QUIC_RETRY_MS;
  qc->retry_at = now_ms(qc) + wait;
  if (!was_up) qc->st_counts.connect_failures++;
  char w[16];
  snprintf(w, sizeof w, "%llu", (unsigned long long)wait / 1000);
  if (was_up)
    LOG_W("quic", "disconnected", "reason", reason, "retry_in_s", w, NULL);
  else
    LOG_I("quic", "unavailable", "reason", reason, "fallback",
          qc->mode == CFG_TRANSPORT_AUTO ? "ip" : "none", "retry_in_s", w, NULL);
  settle_waiting(qc, false);
}

static void conn_closed(void *ctx, const char *reason) { drop_conn(ctx, reason); }

void quic_client_set_standby(quic_client *qc, bool on) {
  if (!qc || qc->standby == on) return;
  qc->standby = on;
  if (!on) qc->retry_at = now_ms(qc); /* in use again: connect at once */
}

void quic_client_abort(quic_client *qc, const char *reason) {
  if (qc->conn) drop_conn(qc, reason);
}

static void conn_datagram(void *ctx, const uint8_t *data, size_t len) {
  quic_client *qc = ctx;
  if (qc->dgram_sink) qc->dgram_sink(qc->dgram_ctx, data, len);
}

int quic_client_send_dgram(quic_client *qc, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                           size_t len) {
  if (qc->st != ST_UP || !qc->conn) {
    quic_metrics_get()->dgrams_dropped++;
    return -1;
  }
  return quic_conn_send_datagram(qc->conn, hdr, hlen, data, len);
}

uint64_t quic_client_now_ms(const quic_client *qc) { return now_ms(qc); }

void quic_client_set_dgram_sink(quic_client *qc, quic_dgram_sink fn, void *ctx) {
  qc->dgram_sink = fn;
  qc->dgram_ctx = fn ? ctx : NULL;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
  sockaddr_set_port((struct sockaddr *)ss, port);
}

static void connect_now(quic_client *qc) {
  uint16_t port;
  gnutls_rnd(GNUTLS_RND_NONCE, &port, sizeof port);
  set_port(&qc->path.local, (uint16_t)(49152 + port % 16384)); /* a fresh source port */
  quic_conn_cb cb = {.send = conn_send,
                     .established = conn_established,
                     .closed = conn_closed,
                     .datagram = conn_datagram,
                     .ctx = qc};
  char err[160];
  qc->conn = quic_conn_client(qc->loop, qc->tls, &qc->opts, &cb, &qc->path, err, sizeof err);
  if (!qc->conn) {
    LOG_W("quic", "connect_failed", "error", err, NULL);
    qc->retry_at = now_ms(qc) + QUIC_REDIAL_MS;
    return;
  }
  qc->st = ST_CONNECTING;
  qc->attempt_started = now_ms(qc);
  qc->attempt_probed = false;
}

/* A handshake answers within a round trip. One still open after a round trip and a second
 * means the session under it may be dead (a restarted server forgot it and drops our packets
 * without a word, and WireGuard's own rule waits 15 s to suspect that): ask the tunnel for a
 * handshake once per attempt. A live session costs nothing (the tunnel skips peers heard from
 * within the last second), and attempts are seconds apart: no stock-unlike cadence. */
static void maybe_probe(quic_client *qc, uint64_t now) {
  if (qc->st != ST_CONNECTING || qc->attempt_probed) return;
  if (!qc->ever_up && qc->mode != CFG_TRANSPORT_QUIC) return; /* auto's first probe of a server */
  if (now - qc->attempt_started < tunnel_probe_delay_ms(qc->tun)) return;
  qc->attempt_probed = true;
  tunnel_probe(qc->tun, false);
}

static const uint8_t *host_of(const struct sockaddr_storage *ss, int *family) {
  *family = ss->ss_family;
  return ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr
                                   : (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
}

static void on_tick(uv_timer_t *t) {
  quic_client *qc = t->data;
  uint64_t now = now_ms(qc);
  int family;
  const uint8_t *server = host_of(&qc->path.remote, &family);
  bool tunnel_up = tunnel_route_is_up(qc->tun, family, server);
  if (qc->st == ST_IDLE && now >= qc->retry_at && tunnel_up && (!qc->standby || qc->waiting))
    connect_now(qc);
  if (qc->st == ST_CONNECTING && qc->mode == CFG_TRANSPORT_AUTO && !tunnel_up)
    qc->attempt_started = now; /* the probe's clock runs while the tunnel is up */
  if (qc->st == ST_CONNECTING && qc->mode == CFG_TRANSPORT_AUTO &&
      now - qc->attempt_started >= QUIC_PROBE_MS)
    drop_conn(qc, "no QUIC answer from the server (a stock AmneziaWG/WireGuard server?)");
  if (qc->st == ST_UP && qc->standby && !qc->waiting && quic_conn_streams_open(qc->conn) == 0)
    drop_conn(qc, "not the selected server, and its last stream has ended");
  if (tunnel_up) maybe_probe(qc, now);
  for (quic_dial *d = qc->waiting, *n; d; d = n) {
    n = d->next;
    if (now >= d->deadline)
      dial_finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, "no QUIC connection within TunnelWait");
  }
}

/* Inner packets from the server's QUIC port to ours. */
static bool on_inner(void *ctx, const uint8_t *pkt, size_t len) {
  quic_client *qc = ctx;
  struct sockaddr_storage src, dst;
  const uint8_t *payload;
  size_t plen;
  if (!qc->conn) return false;
  if (!quic_ip_parse_udp(pkt, len, &src, &dst, &payload, &plen)) {
    /* A stock server's host answers our probe with ICMP unreachable: no QUIC there. */
    if (qc->st == ST_CONNECTING && quic_ip_parse_unreachable(pkt, len, &src, &dst) &&
        quic_ip_port(&src) == quic_ip_port(&qc->path.local) &&
        quic_ip_port(&dst) == quic_ip_port(&qc->path.remote) &&
        quic_ip_same_host(&dst, &qc->path.remote)) {
      drop_conn(qc, "ICMP unreachable from the server's tunnel address (a stock server?)");
      return true;
    }
    return false;
  }
  if (quic_ip_port(&dst) != quic_ip_port(&qc->path.local) ||
      quic_ip_port(&src) != quic_ip_port(&qc->path.remote) ||
      !quic_ip_same_host(&src, &qc->path.remote) || !quic_ip_same_host(&dst, &qc->path.local))
    return false;
  quic_conn_input(qc->conn, payload, plen);
  return true;
}

static bool make_path(quic_client *qc) {
  const app_config *c = qc->cfg;
  if (!c->n_peers) return false;
  cfg_ip server;
  uint16_t port;
  if (!config_quic_server(c, &c->peers[0], &server, &port)) return false;
  const cfg_cidr *local = NULL;
  for (size_t i = 0; i < c->n_addresses && !local; i++)
    if (c->addresses[i].family == server.family) local = &c->addresses[i];
  if (!local) return false;
  memset(&qc->path, 0, sizeof qc->path);
  sockaddr_make(&qc->path.local, server.family, local->addr, 0);
  sockaddr_make(&qc->path.remote, server.family, server.addr, port);
  return true;
}

quic_cc quic_cc_of(cfg_congestion c) {
  return c == CFG_CC_CUBIC ? QUIC_CC_CUBIC : c == CFG_CC_RENO ? QUIC_CC_RENO : QUIC_CC_BBR;
}

quic_client *quic_client_start(uv_loop_t *loop, tunnel *tun, const app_config *cfg,
                               uint64_t tunnel_wait_ms, uint64_t connect_timeout_ms, char *err,
                               size_t errlen) {
  quic_client *qc = calloc(1, sizeof *qc);
  if (!qc) return snprintf(err, errlen, "out of memory"), NULL;
  qc->loop = loop;
  qc->tun = tun;
  qc->cfg = cfg;
  qc->tunnel_wait_ms = tunnel_wait_ms;
  qc->connect_timeout_ms = connect_timeout_ms;
  qc->mode = cfg->n_peers ? cfg->peers[0].transport : CFG_TRANSPORT_IP;
  uv_timer_init(loop, &qc->tick);
  qc->tick.data = qc;
  if (qc->mode == CFG_TRANSPORT_IP) return qc;
  quic_metrics_get()->active = true;
  qc->has_server = make_path(qc);
  if (!qc->has_server) {
    LOG_W("quic", "disabled", "reason",
          "no server tunnel address: set [Peer] QuicServer, or an IPv4 Address it can be derived "
          "from",
          NULL);
    return qc;
  }
  qc->tls = quic_tls_new(false, cfg->peers[0].quic_tunnel_protection, err, errlen);
  if (!qc->tls) {
    quic_client_stop(qc);
    return NULL;
  }
  quic_conn_opts_default(&qc->opts);
  qc->opts.cc = quic_cc_of(cfg->peers[0].congestion);
  quic_conn_opts_windows(&qc->opts, cfg->peers[0].quic_stream_window,
                         cfg->peers[0].quic_conn_window);
  qc->opts.headroom = QUIC_IP_HEADROOM;
  qc->opts.max_payload = quic_ip_max_payload(cfg->mtu, qc->path.remote.ss_family);
  tunnel_set_inner_hook(tun, on_inner, qc);
  uv_timer_start(&qc->tick, on_tick, 0, TICK_MS);
  return qc;
}

static void tick_closed(uv_handle_t *h) { free(h->data); }

void quic_client_stop(quic_client *qc) {
  if (!qc) return;
  while (qc->waiting) dial_finish(qc->waiting, NULL, DIAL_ERR_TUNNEL_DOWN, "shutting down");
  if (qc->has_server) tunnel_set_inner_hook(qc->tun, NULL, NULL);
  if (qc->conn) quic_conn_close(qc->conn);
  qc->conn = NULL;
  quic_tls_free(qc->tls);
  uv_timer_stop(&qc->tick);
  uv_close((uv_handle_t *)&qc->tick, tick_closed);
}

void quic_client_status_get(const quic_client *qc, quic_client_status *out) {
  *out = qc->st_counts;
  out->enabled = qc->mode != CFG_TRANSPORT_IP && qc->has_server;
  out->up = qc->st == ST_UP;
  out->transport = quic_client_route(qc) == QUIC_ROUTE_QUIC ? "quic" : "ip";
  memset(&out->conn, 0, sizeof out->conn);
  if (qc->conn) quic_conn_get_stats(qc->conn, &out->conn);
}
