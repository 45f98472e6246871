/* The client's TLS carrier (tls_client.h): one connection per peer that uses it, opened on
 * demand, and the carrier ops the tunnel sends through. */
#include "carrier/tls_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/tls_link.h"
#include "util/log.h"
#include "util/sockaddr.h"

typedef enum { LINK_IDLE, LINK_RESOLVING, LINK_CONNECTING, LINK_UP } link_state;

typedef struct {
  struct tls_client *cl;
  size_t peer;
  cfg_hostport where; /* TlsEndpoint: a copy, the config may be replaced by a reload */
  tls_config *tls;    /* per peer: its SNI */
  link_state st;
  bool used;      /* the peer uses this carrier */
  tls_link *link; /* LINK_UP (handshake included) */
  uv_tcp_t *tcp;  /* LINK_CONNECTING */
  uv_connect_t connect_req;
  uv_getaddrinfo_t gai;
  dgram_endpoint ep;               /* what the tunnel sends to */
  uint8_t queue[TLS_CLIENT_QUEUE]; /* framed datagrams waiting for the connection */
  size_t n_queue;
  uint64_t last_attempt;
  /* Carrier = auto: starts on UDP, moves here when UDP goes unanswered, tries UDP again every
   * udp_retry_ms and goes back when it answers (the tunnel's soft pin). */
  bool is_auto, on_tls;
  uint64_t udp_retry_ms, switched_at, last_trial, last_tx_packets;
  char fp[CFG_MAX_HOST + 8]; /* TlsEndpoint as written, for logs */
} peer_link;

struct tls_client {
  dgram_carrier carrier; /* first: the tunnel's handle on us */
  uv_loop_t *loop;
  tunnel *tun;
  peer_link *links; /* [cfg->n_peers] */
  size_t n;
  unsigned busy;   /* handles, requests and links still to end before the client is freed */
  uv_timer_t tick; /* Carrier = auto's checks, once a second */
  bool has_tick;
  bool stopping;
  /* carrier_reserve's room when no link can take it, TLS_LINK_MAX_FRAME bytes at stage_room +
   * DGRAM_CARRIER_ROOM: the room around it is the seal's (dgram_carrier.h) */
  uint8_t stage_room[DGRAM_CARRIER_ROOM + TLS_LINK_MAX_FRAME + DGRAM_CARRIER_ROOM];
  tls_link *direct; /* the link whose own buffer carrier_reserve handed out, or NULL */
};

static void maybe_free(tls_client *c) {
  if (!c->stopping || c->busy) return;
  for (size_t i = 0; i < c->n; i++) tls_config_free(c->links[i].tls);
  free(c->links);
  free(c);
}

static void start_connect(peer_link *pl);

/* ---- the link's events ------------------------------------------------------------------- */

static void on_ready(tls_link *l, void *ctx) {
  peer_link *pl = ctx;
  LOG_I("tls", "connected", "endpoint", pl->fp, "resumed", tls_session_resumed(l->s) ? "yes" : "no",
        NULL);
  /* What waited for the connection leaves now, in order. */
  for (size_t off = 0; off + DGRAM_FRAME_HEADER <= pl->n_queue;) {
    size_t len = (size_t)pl->queue[off] << 8 | pl->queue[off + 1];
    tls_link_send(l, pl->queue + off + DGRAM_FRAME_HEADER, len);
    off += DGRAM_FRAME_HEADER + len;
  }
  pl->n_queue = 0;
}

static bool on_frame(tls_link *l, void *ctx, uint8_t *frame, size_t len) {
  (void)l;
  peer_link *pl = ctx;
  tunnel_datagram_in(pl->cl->tun, frame, len, &pl->ep);
  return pl->link != NULL;
}

static void on_closed(tls_link *l, void *ctx, const char *reason) {
  (void)l;
  peer_link *pl = ctx;
  tls_client *c = pl->cl;
  pl->link = NULL;
  pl->st = LINK_IDLE;
  c->busy--;
  if (!c->stopping && pl->on_tls) /* in use: worth a warning; after a return to UDP, routine */
    LOG_W("tls", "disconnected", "endpoint", pl->fp, "reason", reason, NULL);
  else if (!c->stopping)
    LOG_D("tls", "disconnected", "endpoint", pl->fp, "reason", reason, NULL);
  maybe_free(c);
}

static const tls_link_events link_events = {on_ready, on_frame, NULL, on_closed};

/* ---- connecting ---------------------------------------------------------------------------- */

static void on_tcp_closed(uv_handle_t *h) {
  peer_link *pl = h->data;
  free(h);
  pl->cl->busy--;
  maybe_free(pl->cl);
}

static void on_connected(uv_connect_t *req, int status) {
  peer_link *pl = req->data;
  tls_client *c = pl->cl;
  uv_tcp_t *tcp = pl->tcp;
  pl->tcp = NULL;
  if (status != 0 || c->stopping) {
    if (!c->stopping)
      LOG_W("tls", "connect_failed", "endpoint", pl->fp, "error", uv_strerror(status), NULL);
    pl->st = LINK_IDLE;
    if (!uv_is_closing((uv_handle_t *)tcp)) uv_close((uv_handle_t *)tcp, on_tcp_closed);
    return;
  }
  uv_tcp_nodelay(tcp, 1);
  /* The TCP handle's count passes to the link (freed with its session). */
  pl->link = tls_link_start(tcp, pl->tls, &link_events, pl, TLS_CLIENT_HANDSHAKE_MS);
  if (!pl->link) {
    pl->st = LINK_IDLE;
    c->busy--;
    return;
  }
  pl->st = LINK_UP;
}

static void connect_to(peer_link *pl, const struct sockaddr *sa) {
  tls_client *c = pl->cl;
  memset(&pl->ep.ss, 0, sizeof pl->ep.ss);
  memcpy(&pl->ep.ss, sa, sockaddr_len(sa));
  pl->ep.len = sockaddr_len(sa);
  if (pl->on_tls) /* the address is known now; the peer stays where it is */
    tunnel_peer_pin_endpoint(c->tun, pl->peer, &pl->ep, pl->is_auto, "TlsEndpoint resolved");
  pl->tcp = malloc(sizeof *pl->tcp);
  if (!pl->tcp) {
    pl->st = LINK_IDLE;
    return;
  }
  uv_tcp_init(c->loop, pl->tcp);
  pl->tcp->data = pl;
  c->busy++;
  pl->connect_req.data = pl;
  pl->st = LINK_CONNECTING;
  int rc = uv_tcp_connect(&pl->connect_req, pl->tcp, sa, on_connected);
  if (rc != 0) {
    LOG_W("tls", "connect_failed", "endpoint", pl->fp, "error", uv_strerror(rc), NULL);
    pl->st = LINK_IDLE;
    uv_close((uv_handle_t *)pl->tcp, on_tcp_closed);
    pl->tcp = NULL;
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
  peer_link *pl = req->data;
  tls_client *c = pl->cl;
  c->busy--;
  pl->st = LINK_IDLE;
  const struct addrinfo *pick = ai;
  for (const struct addrinfo *a = ai; a; a = a->ai_next)
    if (a->ai_family == AF_INET) { /* IPv4 first, as for the UDP Endpoint */
      pick = a;
      break;
    }
  if (!c->stopping && status == 0 && pick)
    connect_to(pl, pick->ai_addr);
  else if (!c->stopping)
    LOG_W("tls", "endpoint_unresolved", "endpoint", pl->fp, "error", uv_strerror(status), NULL);
  if (ai) uv_freeaddrinfo(ai);
  maybe_free(c);
}

static void start_connect(peer_link *pl) {
  tls_client *c = pl->cl;
  uint64_t now = uv_now(c->loop);
  if (pl->st != LINK_IDLE || c->stopping ||
      (pl->last_attempt && now - pl->last_attempt < TLS_CLIENT_RETRY_MS))
    return;
  pl->last_attempt = now;
  char port[8];
  snprintf(port, sizeof port, "%u", pl->where.port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  if (pl->where.host_is_ip) hints.ai_flags = AI_NUMERICHOST;
  pl->gai.data = pl;
  pl->st = LINK_RESOLVING;
  c->busy++;
  int rc = uv_getaddrinfo(c->loop, &pl->gai, on_resolved, pl->where.host, port, &hints);
  if (rc != 0) {
    c->busy--;
    pl->st = LINK_IDLE;
    LOG_W("tls", "endpoint_unresolved", "endpoint", pl->fp, "error", uv_strerror(rc), NULL);
  }
}

/* ---- the carrier ------------------------------------------------------------------------- */

static peer_link *link_for(tls_client *c, const dgram_endpoint *to) {
  return to->sock < c->n && c->links[to->sock].used ? &c->links[to->sock] : NULL;
}

static bool send_one(tls_client *c, const dgram_endpoint *to, const uint8_t *data, size_t len) {
  peer_link *pl = link_for(c, to);
  if (!pl || len == 0 || len > TLS_LINK_MAX_FRAME) return false;
  if (pl->st == LINK_UP && pl->link && pl->link->ready)
    return tls_link_send(pl->link, data, len) == 0;
  start_connect(pl);
  if (pl->n_queue + DGRAM_FRAME_HEADER + len > sizeof pl->queue) return false;
  dgram_frame_header(pl->queue + pl->n_queue, len);
  memcpy(pl->queue + pl->n_queue + DGRAM_FRAME_HEADER, data, len);
  pl->n_queue += DGRAM_FRAME_HEADER + len;
  return true;
}

/* A link that is up gets the datagram sealed straight into its pending record (no copy);
 * anything else goes through the stage and send_one, which queues, starts or refuses. */
static uint8_t *cl_reserve(dgram_carrier *dc, const dgram_endpoint *to, size_t max_len) {
  tls_client *c = (tls_client *)dc;
  peer_link *pl = link_for(c, to);
  c->direct = NULL;
  if (pl && pl->st == LINK_UP && pl->link && pl->link->ready) {
    uint8_t *room = tls_link_reserve(pl->link, max_len);
    if (room) {
      c->direct = pl->link;
      return room;
    }
  }
  return max_len <= TLS_LINK_MAX_FRAME ? c->stage_room + DGRAM_CARRIER_ROOM : NULL;
}

static void cl_commit(dgram_carrier *dc, const dgram_endpoint *to, size_t len, uint64_t *bytes,
                      uint64_t *packets) {
  tls_client *c = (tls_client *)dc;
  tls_link *direct = c->direct;
  c->direct = NULL;
  if (direct)
    tls_link_commit(direct, len);
  else if (!send_one(c, to, c->stage_room + DGRAM_CARRIER_ROOM, len))
    return;
  if (bytes) *bytes += len;
  if (packets) *packets += 1;
}

static void cl_flush(dgram_carrier *dc) { (void)dc; }

static size_t cl_send_batch(dgram_carrier *dc, const dgram_endpoint *to, const uint8_t *const *data,
                            const size_t *len, size_t n) {
  size_t i = 0;
  while (i < n && send_one((tls_client *)dc, to, data[i], len[i])) i++;
  return i;
}

static const dgram_carrier_ops client_ops = {cl_reserve, cl_commit, cl_flush, cl_send_batch};

/* ---- Carrier = auto ------------------------------------------------------------------------ */

static void to_tls(peer_link *pl, const char *reason) {
  pl->on_tls = true;
  pl->switched_at = pl->last_trial = uv_now(pl->cl->loop);
  tunnel_peer_pin_endpoint(pl->cl->tun, pl->peer, &pl->ep, true, reason);
}

static void check_auto(peer_link *pl) {
  tls_client *c = pl->cl;
  uint64_t now = uv_now(c->loop);
  tunnel_peer_status ps;
  tunnel_peer_status_get(c->tun, pl->peer, &ps);
  bool sending = ps.tx_packets > pl->last_tx_packets;
  pl->last_tx_packets = ps.tx_packets;
  if (!pl->on_tls) {
    if (ps.unanswered_initiations >= 2 && !ps.has_session)
      to_tls(pl, "2 handshake attempts over UDP went unanswered");
    else if (ps.has_session && sending && ps.silent_ms != UINT64_MAX && ps.silent_ms > 15000)
      to_tls(pl, "nothing came back over UDP for 15 s while sending");
    return;
  }
  if (strcmp(ps.carrier, "tls") != 0) { /* a UDP trial was answered: the tunnel moved back */
    pl->on_tls = false;
    if (pl->link) tls_link_close(pl->link, false);
    return;
  }
  if (now - pl->last_trial >= pl->udp_retry_ms) {
    pl->last_trial = now;
    LOG_D("tls", "udp_trial", "tls_endpoint", pl->fp, NULL);
    tunnel_peer_try_udp(c->tun, pl->peer);
  }
}

static void on_tick(uv_timer_t *t) {
  tls_client *c = t->data;
  for (size_t i = 0; i < c->n; i++)
    if (c->links[i].used && c->links[i].is_auto) check_auto(&c->links[i]);
}

static void on_tick_closed(uv_handle_t *h) {
  tls_client *c = h->data;
  c->busy--;
  maybe_free(c);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static bool uses_tls(const cfg_peer *p) {
  cfg_carrier k = cfg_peer_carrier(p);
  return p->has_tls_endpoint && (k == CFG_CARRIER_TLS || k == CFG_CARRIER_AUTO);
}

static int start_peer(tls_client *c, const cfg_peer *p, size_t i, char *err, size_t errlen) {
  peer_link *pl = &c->links[i];
  pl->cl = c;
  pl->peer = i;
  pl->where = p->tls_endpoint;
  pl->used = true;
  snprintf(pl->fp, sizeof pl->fp, "%s:%u", p->tls_endpoint.host, p->tls_endpoint.port);
  const char *sni = p->tls_server_name[0]         ? p->tls_server_name
                    : !p->tls_endpoint.host_is_ip ? p->tls_endpoint.host
                                                  : NULL;
  pl->tls = tls_config_client(sni, p->tls_verify, err, errlen);
  if (!pl->tls) return -1;
  pl->ep.carrier = DGRAM_CARRIER_TLS;
  pl->ep.sock = (uint16_t)i;
  pl->is_auto = cfg_peer_carrier(p) == CFG_CARRIER_AUTO;
  pl->udp_retry_ms = (uint64_t)(p->udp_retry ? p->udp_retry : CFG_DEFAULT_UDP_RETRY) * 1000;
  if (!pl->is_auto) { /* Carrier = tls: through us from now on; the address follows */
    pl->on_tls = true;
    tunnel_peer_pin_endpoint(c->tun, i, &pl->ep, false, "Carrier = tls");
  }
  LOG_I("tls", "carrier", "mode", pl->is_auto ? "auto" : "tls", "tls_endpoint", pl->fp, "verify",
        p->tls_verify ? "on" : "off", "server_name", sni ? sni : "none", NULL);
  return 0;
}

tls_client *tls_client_start(uv_loop_t *loop, const app_config *cfg, tunnel *t, char *err,
                             size_t errlen) {
  err[0] = '\0';
  size_t users = 0;
  for (size_t i = 0; i < cfg->n_peers; i++)
    users += cfg->peers[i].has_tls_endpoint && uses_tls(&cfg->peers[i]);
  if (!users) return NULL;
  tls_client *c = calloc(1, sizeof *c);
  if (c) c->links = calloc(cfg->n_peers, sizeof *c->links);
  if (!c || !c->links) {
    free(c);
    return snprintf(err, errlen, "out of memory"), NULL;
  }
  c->carrier.ops = &client_ops;
  c->carrier.name = "tls";
  c->carrier.reliable = true;
  c->loop = loop;
  c->tun = t;
  c->n = cfg->n_peers;
  tunnel_set_carrier(t, DGRAM_CARRIER_TLS, &c->carrier);
  uv_timer_init(loop, &c->tick);
  c->tick.data = c;
  c->has_tick = true;
  c->busy++;
  uv_timer_start(&c->tick, on_tick, 1000, 1000);
  for (size_t i = 0; i < cfg->n_peers; i++)
    if (cfg->peers[i].has_tls_endpoint && uses_tls(&cfg->peers[i]) &&
        start_peer(c, &cfg->peers[i], i, err, errlen) != 0) {
      tls_client_stop(c);
      return NULL;
    }
  return c;
}

bool tls_client_connected(const tls_client *c, size_t peer) {
  return c && peer < c->n && c->links[peer].st == LINK_UP && c->links[peer].link &&
         c->links[peer].link->ready;
}

void tls_client_stop(tls_client *c) {
  if (!c || c->stopping) return;
  c->stopping = true;
  tunnel_set_carrier(c->tun, DGRAM_CARRIER_TLS, NULL);
  if (c->has_tick) uv_close((uv_handle_t *)&c->tick, on_tick_closed);
  for (size_t i = 0; i < c->n; i++) {
    peer_link *pl = &c->links[i];
    if (pl->link) tls_link_close(pl->link, true);
    if (pl->tcp && !uv_is_closing((uv_handle_t *)pl->tcp))
      uv_close((uv_handle_t *)pl->tcp, on_tcp_closed); /* the connect callback sees ECANCELED */
    if (pl->st == LINK_RESOLVING) uv_cancel((uv_req_t *)&pl->gai);
  }
  maybe_free(c);
}
