/* The server's TLS carrier (tls_server.h): listeners, the gate, the decoy, and the carrier ops
 * the tunnel sends through. */
#include "carrier/tls_server.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier/decoy_h2.h"
#include "carrier/decoy_upstream.h"
#include "carrier/tls_decoy.h"
#include "carrier/tls_link.h"
#include "util/addr_fmt.h"
#include "util/log.h"

/* The gate reads at most this much before the first initiation; junk and signature frames
 * (Jc + I1..I5) come first, so a few are allowed. */
#define GATE_BUF 16384
#define GATE_MAX_FRAMES 24

typedef enum { CONN_GATE, CONN_PEER, CONN_DECOY } conn_state;

typedef struct tls_conn {
  struct tls_server *srv;
  tls_link *link;
  uint16_t slot;
  conn_state state;
  dgram_endpoint ep; /* what the tunnel knows this connection as */
  uv_timer_t timer;  /* the gate's deadline, then a decoy's idle limit */
  uint8_t *buf;      /* GATE_BUF: bytes read before the decision, then the decoy's requests */
  size_t n_buf;
  bool passed;        /* a decoy passed to TlsDecoyUpstream */
  decoy_upstream *up; /* that pass-through, while both ends are open */
  decoy_h2 *h2;       /* a decoy whose client chose ALPN h2 */
} tls_conn;

struct tls_server {
  dgram_carrier carrier; /* first: the tunnel's handle on us */
  uv_loop_t *loop;
  char decoy[CFG_PATH_MAX + 1];     /* TlsDecoy (copied: a reload replaces the config) */
  char name[CFG_MAX_HOST + 1];      /* the self-signed certificate's name; "" with TlsCert */
  struct sockaddr_storage upstream; /* TlsDecoyUpstream, resolved; ss_family 0: none */
  uint64_t upstream_warned_ms;      /* the last "unreachable" warning (one a minute at most) */
  tunnel *tun;
  tls_config *tls;
  uv_tcp_t listeners[CFG_TLS_LISTEN_MAX];
  size_t n_listeners, handles_open;
  bool closing;
  tls_conn *slots[TLS_SERVER_MAX_CONNS];
  uint16_t next_slot;
  /* carrier_reserve's room when no link can take it, TLS_LINK_MAX_FRAME bytes at stage_room +
   * DGRAM_CARRIER_ROOM: the room around it is the seal's (dgram_carrier.h) */
  uint8_t stage_room[DGRAM_CARRIER_ROOM + TLS_LINK_MAX_FRAME + DGRAM_CARRIER_ROOM];
  tls_link *direct; /* the link whose own buffer carrier_reserve handed out, or NULL */
  tls_server_stats st;
};

static void maybe_free(tls_server *s) {
  if (s->closing && s->handles_open == 0 && s->st.open == 0) {
    tls_config_free(s->tls);
    free(s);
  }
}

/* ---- connections --------------------------------------------------------------------------- */

static void on_conn_timer_closed(uv_handle_t *h) {
  tls_conn *c = h->data;
  tls_server *s = c->srv;
  free(c->buf);
  free(c);
  s->st.open--;
  maybe_free(s);
}

static void decoy_reply(tls_conn *c) {
  tls_server *s = c->srv;
  while (c->n_buf && c->link) {
    size_t used = 0;
    tls_decoy_reply r;
    tls_decoy_result res =
        tls_decoy_answer(s->decoy, c->buf, c->n_buf, &used, (long long)time(NULL), &r);
    if (res == DECOY_NEED_MORE) return;
    if (r.data) tls_link_write_raw(c->link, r.data, r.len);
    free(r.data);
    if (res == DECOY_BAD || !r.keep_alive) return tls_link_close(c->link, false);
    memmove(c->buf, c->buf + used, c->n_buf - used);
    c->n_buf -= used;
  }
}

static void on_conn_timeout(uv_timer_t *t) {
  tls_conn *c = t->data;
  if (c->link) tls_link_close(c->link, false); /* as a web server's header or idle timeout */
}

/* ---- the decoy passed to a real site (TlsDecoyUpstream) ---- */

/* What a decoy (passed on, or over HTTP/2) sends the prober; sending keeps it from idling out. */
static void decoy_write(void *ctx, const uint8_t *data, size_t len) {
  tls_conn *c = ctx;
  tls_link_write_raw(c->link, data, len);
  uv_timer_start(&c->timer, on_conn_timeout, TLS_SERVER_IDLE_MS, 0);
}

static size_t up_queued(void *ctx) {
  tls_conn *c = ctx;
  return tls_session_queued(c->link->s);
}

static void up_end(void *ctx, bool connected) {
  tls_conn *c = ctx;
  tls_server *s = c->srv;
  c->up = NULL;
  if (!connected) {
    s->st.upstream_failed++;
    uint64_t now = uv_now(s->loop);
    if (!s->upstream_warned_ms || now - s->upstream_warned_ms >= 60000) {
      s->upstream_warned_ms = now;
      char where[ADDR_FMT_LEN];
      addr_format_sockaddr(&s->upstream, where, sizeof where);
      LOG_W("tls", "decoy_upstream_unreachable", "upstream", where, "msg",
            "probers' connections are closed; check [Server] TlsDecoyUpstream", NULL);
    }
  }
  tls_link_close(c->link, false); /* after what the site sent, as a proxy whose upstream closed */
}

static const decoy_upstream_cbs up_cbs = {decoy_write, up_queued, up_end};

/* ---- the decoy over HTTP/2 ---- */

static void h2_close(void *ctx) {
  tls_conn *c = ctx;
  tls_link_close(c->link, false);
}

static const decoy_h2_io h2_io = {decoy_write, up_queued, h2_close};

static void become_decoy(tls_conn *c) {
  tls_server *s = c->srv;
  c->state = CONN_DECOY;
  s->st.decoys++;
  char ep[64];
  dgram_endpoint_format(&c->ep, ep, sizeof ep);
  LOG_D("tls", "decoy", "from", ep, NULL);
  uv_timer_start(&c->timer, on_conn_timeout, TLS_SERVER_IDLE_MS, 0);
  if (!strcmp(tls_session_alpn(c->link->s), "h2")) {
    c->h2 = decoy_h2_start(s->loop, s->decoy, &h2_io, c);
    if (!c->h2) return tls_link_close(c->link, false);
    decoy_h2_feed(c->h2, c->buf, c->n_buf);
    c->n_buf = 0;
    return;
  }
  if (s->upstream.ss_family) {
    c->passed = true;
    c->up = decoy_upstream_start(s->loop, (const struct sockaddr *)&s->upstream, c->buf, c->n_buf,
                                 &up_cbs, c);
    c->n_buf = 0;
    if (!c->up) tls_link_close(c->link, false);
    return;
  }
  decoy_reply(c);
}

/* The gate has seen an initiation for us: from here on every frame goes to the tunnel. */
static void become_peer(tls_conn *c, size_t frame_start) {
  c->state = CONN_PEER;
  c->srv->st.peers++;
  uv_timer_stop(&c->timer);
  char ep[64];
  dgram_endpoint_format(&c->ep, ep, sizeof ep);
  LOG_I("tls", "peer_connected", "from", ep, NULL);
  uint8_t *rest = c->buf;
  size_t n = c->n_buf;
  c->buf = NULL, c->n_buf = 0;
  tls_link_frames(c->link, rest + frame_start, n - frame_start);
  free(rest);
}

/* Reads the frames gathered so far: an initiation for us makes a peer, too many frames or a
 * length no AWG datagram has makes a decoy, otherwise wait for more. */
static void gate(tls_conn *c) {
  /* A request line starts with a capital letter; a frame's length byte is below 0x40. */
  if (c->n_buf && c->buf[0] >= 0x40) return become_decoy(c);
  size_t off = 0;
  for (unsigned frames = 1; c->n_buf - off >= DGRAM_FRAME_HEADER; frames++) {
    size_t len = (size_t)c->buf[off] << 8 | c->buf[off + 1];
    if (len == 0 || len > TLS_LINK_MAX_FRAME || frames > GATE_MAX_FRAMES) return become_decoy(c);
    if (c->n_buf - off - DGRAM_FRAME_HEADER < len) break;
    if (tunnel_gate_initiation(c->srv->tun, c->buf + off + DGRAM_FRAME_HEADER, len, &c->ep))
      return become_peer(c, off);
    off += DGRAM_FRAME_HEADER + len;
  }
  if (c->n_buf == GATE_BUF) become_decoy(c);
}

static void on_raw(tls_link *l, void *ctx, uint8_t *data, size_t len) {
  (void)l;
  tls_conn *c = ctx;
  if (c->h2) {
    uv_timer_start(&c->timer, on_conn_timeout, TLS_SERVER_IDLE_MS, 0);
    decoy_h2_feed(c->h2, data, len);
    return;
  }
  if (c->passed) {
    uv_timer_start(&c->timer, on_conn_timeout, TLS_SERVER_IDLE_MS, 0);
    if (c->up && decoy_upstream_write(c->up, data, len) != 0) tls_link_close(c->link, false);
    return;
  }
  size_t room = GATE_BUF - c->n_buf, take = len < room ? len : room;
  memcpy(c->buf + c->n_buf, data, take);
  c->n_buf += take;
  if (c->state == CONN_GATE) {
    gate(c);
    if (c->state == CONN_GATE && take < len) become_decoy(c);
  } else if (c->state == CONN_DECOY) {
    uv_timer_start(&c->timer, on_conn_timeout, TLS_SERVER_IDLE_MS, 0);
    decoy_reply(c);
  }
}

static bool on_frame(tls_link *l, void *ctx, uint8_t *frame, size_t len) {
  (void)l;
  tls_conn *c = ctx;
  c->srv->st.frames_in++;
  tunnel_datagram_in(c->srv->tun, frame, len, &c->ep);
  return c->link != NULL;
}

static void on_link_closed(tls_link *l, void *ctx, const char *reason) {
  (void)l;
  tls_conn *c = ctx;
  tls_server *s = c->srv;
  if (c->state == CONN_PEER) {
    char ep[64];
    dgram_endpoint_format(&c->ep, ep, sizeof ep);
    LOG_I("tls", "peer_disconnected", "from", ep, "reason", reason, NULL);
  }
  c->link = NULL;
  if (c->up) decoy_upstream_close(c->up);
  c->up = NULL;
  decoy_h2_free(c->h2);
  c->h2 = NULL;
  if (s->slots[c->slot] == c) s->slots[c->slot] = NULL;
  uv_close((uv_handle_t *)&c->timer, on_conn_timer_closed);
}

static void on_ready(tls_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}

static const tls_link_events conn_events = {on_ready, on_frame, on_raw, on_link_closed};

static int free_slot(tls_server *s) {
  for (unsigned i = 0; i < TLS_SERVER_MAX_CONNS; i++) {
    uint16_t k = (uint16_t)((s->next_slot + i) % TLS_SERVER_MAX_CONNS);
    if (!s->slots[k]) {
      s->next_slot = (uint16_t)(k + 1); /* slots are reused last: stale endpoints miss */
      return k;
    }
  }
  return -1;
}

static void free_handle(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *ls, int status) {
  tls_server *s = ls->data;
  if (status < 0 || s->closing) return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  if (!tcp) return;
  uv_tcp_init(s->loop, tcp);
  if (uv_accept(ls, (uv_stream_t *)tcp) != 0) {
    uv_close((uv_handle_t *)tcp, free_handle);
    return;
  }
  s->st.accepted++;
  int slot = free_slot(s);
  tls_conn *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
  uint8_t *buf = c ? malloc(GATE_BUF) : NULL;
  if (!buf) {
    s->st.refused++;
    free(c);
    uv_tcp_close_reset(tcp, free_handle);
    return;
  }
  c->srv = s;
  c->slot = (uint16_t)slot;
  c->buf = buf;
  c->ep.carrier = DGRAM_CARRIER_TLS;
  c->ep.sock = c->slot;
  int len = sizeof c->ep.ss;
  uv_tcp_getpeername(tcp, (struct sockaddr *)&c->ep.ss, &len);
  c->ep.len = (socklen_t)len;
  uv_timer_init(s->loop, &c->timer);
  c->timer.data = c;
  s->st.open++;
  /* The link owns the TCP handle from here on (and frees it with its session). */
  c->link = tls_link_start(tcp, s->tls, &conn_events, c, TLS_SERVER_HANDSHAKE_MS);
  if (!c->link) {
    s->st.refused++;
    uv_close((uv_handle_t *)&c->timer, on_conn_timer_closed);
    return;
  }
  tls_link_raw(c->link);
  s->slots[slot] = c;
  uv_timer_start(&c->timer, on_conn_timeout, TLS_SERVER_GATE_MS, 0);
}

/* ---- the carrier ------------------------------------------------------------------------- */

static tls_conn *conn_for(tls_server *s, const dgram_endpoint *to) {
  tls_conn *c = to->sock < TLS_SERVER_MAX_CONNS ? s->slots[to->sock] : NULL;
  if (!c || c->state != CONN_PEER || !c->link || c->ep.len != to->len ||
      memcmp(&c->ep.ss, &to->ss, to->len) != 0)
    return NULL; /* closed, or the slot now holds another client */
  return c;
}

/* A connected peer's link gets the datagram sealed straight into its pending record (no copy);
 * otherwise the stage, and srv_commit drops it as before. */
static uint8_t *srv_reserve(dgram_carrier *dc, const dgram_endpoint *to, size_t max_len) {
  tls_server *s = (tls_server *)dc;
  tls_conn *c = conn_for(s, to);
  s->direct = NULL;
  uint8_t *room = c ? tls_link_reserve(c->link, max_len) : NULL;
  if (room) {
    s->direct = c->link;
    return room;
  }
  return max_len <= TLS_LINK_MAX_FRAME ? s->stage_room + DGRAM_CARRIER_ROOM : NULL;
}

static void srv_commit(dgram_carrier *dc, const dgram_endpoint *to, size_t len, uint64_t *bytes,
                       uint64_t *packets) {
  tls_server *s = (tls_server *)dc;
  tls_link *direct = s->direct;
  s->direct = NULL;
  if (direct) {
    tls_link_commit(direct, len);
  } else {
    tls_conn *c = conn_for(s, to);
    if (!c || tls_link_send(c->link, s->stage_room + DGRAM_CARRIER_ROOM, len) != 0) {
      s->st.frames_dropped++;
      return;
    }
  }
  s->st.frames_out++;
  if (bytes) *bytes += len;
  if (packets) *packets += 1;
}

static void srv_flush(dgram_carrier *dc) { (void)dc; /* each link flushes at the turn's end */ }

static size_t srv_send_batch(dgram_carrier *dc, const dgram_endpoint *to,
                             const uint8_t *const *data, const size_t *len, size_t n) {
  tls_server *s = (tls_server *)dc;
  tls_conn *c = conn_for(s, to);
  size_t i = 0;
  while (c && i < n && tls_link_send(c->link, data[i], len[i]) == 0) i++;
  s->st.frames_out += i; /* the caller decides what becomes of the rest */
  return i;
}

static const dgram_carrier_ops server_ops = {srv_reserve, srv_commit, srv_flush, srv_send_batch};

/* ---- listeners ---------------------------------------------------------------------------- */

static int listen_on(tls_server *s, const cfg_hostport *hp, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':') ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
                                 : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  uv_tcp_t *l = &s->listeners[s->n_listeners];
  if (rc == 0) {
    uv_tcp_init(s->loop, l);
    l->data = s;
    s->n_listeners++;
    s->handles_open++;
    rc = uv_tcp_bind(l, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)l, 256, on_connection);
  }
  if (rc == 0) return 0;
  char where[300];
  cfg_format_hostport(hp, where, sizeof where);
  snprintf(err, errlen, "[Server] TlsListen %s: %s", where, uv_strerror(rc));
  return -1;
}

/* The certificate cfg asks for: from TlsCert/TlsKey, else self-signed for TlsName (default:
 * the first TlsListen address); name gets the latter's name, or "". */
static tls_config *server_tls_config(const app_config *cfg, char name[CFG_MAX_HOST + 1], char *err,
                                     size_t errlen) {
  const char *n = cfg->tls_name[0] ? cfg->tls_name : cfg->tls_listen[0].host;
  snprintf(name, CFG_MAX_HOST + 1, "%s", cfg->tls_cert[0] ? "" : n);
  return tls_config_server(cfg->tls_cert[0] ? cfg->tls_cert : NULL,
                           cfg->tls_key[0] ? cfg->tls_key : NULL, n, err, errlen);
}

/* TlsDecoyUpstream's address: a name is resolved here, at start and at each reload. */
static int resolve_upstream(const app_config *cfg, struct sockaddr_storage *out, char *err,
                            size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!cfg->has_tls_decoy_upstream) return 0;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  char port[8];
  snprintf(port, sizeof port, "%u", (unsigned)cfg->tls_decoy_upstream.port);
  int rc = getaddrinfo(cfg->tls_decoy_upstream.host, port, &hints, &res);
  if (rc == 0 && res && res->ai_addrlen <= sizeof *out) {
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
  }
  if (res) freeaddrinfo(res);
  char where[300];
  cfg_format_hostport(&cfg->tls_decoy_upstream, where, sizeof where);
  snprintf(err, errlen, "[Server] TlsDecoyUpstream %s: %s", where,
           rc ? gai_strerror(rc) : "no usable address");
  return -1;
}

static const char *decoy_name(const app_config *cfg) {
  if (cfg->has_tls_decoy_upstream) return cfg->tls_decoy_upstream.host;
  return cfg->tls_decoy[0] ? cfg->tls_decoy : "404 page";
}

static void log_listening(const app_config *cfg, const char *where) {
  LOG_I("tls", "listening", "address", where, "certificate",
        cfg->tls_cert[0] ? cfg->tls_cert : "self-signed", "decoy", decoy_name(cfg), NULL);
}

tls_server *tls_server_open(uv_loop_t *loop, const app_config *cfg, tunnel *t, char *err,
                            size_t errlen) {
  tls_server *s = calloc(1, sizeof *s);
  if (!s) return snprintf(err, errlen, "out of memory"), NULL;
  s->carrier.ops = &server_ops;
  s->carrier.name = "tls";
  s->carrier.reliable = true;
  s->loop = loop;
  memcpy(s->decoy, cfg->tls_decoy, sizeof s->decoy);
  s->tun = t;
  if (resolve_upstream(cfg, &s->upstream, err, errlen) != 0) {
    free(s);
    return NULL;
  }
  s->tls = server_tls_config(cfg, s->name, err, errlen);
  if (!s->tls) {
    free(s);
    return NULL;
  }
  /* h2 as a web server offers it, unless probers go to a site we cannot speak h2 for. */
  tls_config_offer_h2(s->tls, !s->upstream.ss_family);
  for (size_t i = 0; i < cfg->n_tls_listen; i++)
    if (listen_on(s, &cfg->tls_listen[i], err, errlen) != 0) {
      tls_server_close(s);
      return NULL;
    }
  tunnel_set_carrier(t, DGRAM_CARRIER_TLS, &s->carrier);
  for (size_t i = 0; i < cfg->n_tls_listen; i++) {
    char where[300];
    cfg_format_hostport(&cfg->tls_listen[i], where, sizeof where);
    log_listening(cfg, where);
  }
  return s;
}

struct tls_server_update {
  tls_config *tls;
  struct sockaddr_storage upstream;
  char decoy_name[CFG_PATH_MAX + 1];
  char name[CFG_MAX_HOST + 1];
  char decoy[CFG_PATH_MAX + 1];
  char cert[CFG_PATH_MAX + 1];
};

tls_server_update *tls_server_reload_prepare(tls_server *s, const app_config *cfg, char *err,
                                             size_t errlen) {
  tls_server_update *u = calloc(1, sizeof *u);
  if (!u) return snprintf(err, errlen, "out of memory"), NULL;
  if (resolve_upstream(cfg, &u->upstream, err, errlen) != 0) {
    free(u);
    return NULL;
  }
  snprintf(u->decoy_name, sizeof u->decoy_name, "%s", decoy_name(cfg));
  const char *n = cfg->tls_name[0] ? cfg->tls_name : cfg->tls_listen[0].host;
  if (!cfg->tls_cert[0] && s->name[0] && !strcmp(n, s->name)) {
    u->tls = tls_config_ref(s->tls); /* the same self-signed certificate: probers see no change */
    snprintf(u->name, sizeof u->name, "%s", s->name);
  } else {
    u->tls = server_tls_config(cfg, u->name, err, errlen);
  }
  if (!u->tls) {
    free(u);
    return NULL;
  }
  memcpy(u->decoy, cfg->tls_decoy, sizeof u->decoy);
  memcpy(u->cert, cfg->tls_cert, sizeof u->cert);
  return u;
}

void tls_server_reload_commit(tls_server *s, tls_server_update *u) {
  tls_config_free(s->tls); /* open sessions hold their own references */
  s->tls = u->tls;
  memcpy(s->name, u->name, sizeof s->name);
  memcpy(s->decoy, u->decoy, sizeof s->decoy);
  s->upstream = u->upstream;
  tls_config_offer_h2(s->tls, !s->upstream.ss_family);
  LOG_I("tls", "reloaded", "certificate", u->cert[0] ? u->cert : "self-signed", "decoy",
        u->decoy_name, NULL);
  free(u);
}

void tls_server_reload_abandon(tls_server_update *u) {
  if (!u) return;
  tls_config_free(u->tls);
  free(u);
}

void tls_server_stats_get(const tls_server *s, tls_server_stats *out) { *out = s->st; }

static void on_listener_closed(uv_handle_t *h) {
  tls_server *s = h->data;
  s->handles_open--;
  maybe_free(s);
}

void tls_server_close(tls_server *s) {
  if (!s || s->closing) return;
  s->closing = true;
  tunnel_set_carrier(s->tun, DGRAM_CARRIER_TLS, NULL);
  for (size_t i = 0; i < s->n_listeners; i++)
    uv_close((uv_handle_t *)&s->listeners[i], on_listener_closed);
  for (size_t i = 0; i < TLS_SERVER_MAX_CONNS; i++)
    if (s->slots[i] && s->slots[i]->link) tls_link_close(s->slots[i]->link, true);
  maybe_free(s);
}
