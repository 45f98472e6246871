#include "forward/forward.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/streams.h"
#include "socks/socks_proto.h"
#include "stream/relay.h"
#include "stream/stream_uv.h"
#include "util/log.h"
#include "util/list.h"
#include "util/sockaddr.h"

#define UDP_FLOWS_MAX 256
#define UDP_FLOW_IDLE_MS 60000

typedef struct fwd fwd;

typedef struct {
  fwd *f;
  dgram_flow *df; /* owned; NULL = a free slot */
  struct sockaddr_storage client;
  uint64_t last;
} udp_flow;

struct fwd {
  struct forwarder *owner;
  const cfg_forward *cfg;
  dial_dest target;
  union {
    uv_tcp_t tcp;
    uv_udp_t udp;
  } h;
  udp_flow flows[UDP_FLOWS_MAX];
  dial_dest target_ip; /* UDP: an IP literal, resolved once at start (names through the tunnel) */
  bool target_ready;
  uint8_t rbuf[65536];
};

struct forwarder {
  uv_loop_t *loop;
  dialer *dl;
  dgram_opener *dg;
  resolver *res;
  list_node dialing; /* tcp_pending.link: connections waiting for their dial, cancelled by stop */
  uint64_t idle_ms;
  fwd *fwds;
  size_t n, closing;
  uv_timer_t sweep;
};

static void to_dial_dest(const cfg_hostport *hp, dial_dest *out) {
  memset(out, 0, sizeof *out);
  out->port = hp->port;
  cfg_ip ip;
  if (cfg_parse_ip(hp->host, &ip) == 0) {
    out->type = ip.family == AF_INET ? DIAL_DEST_IPV4 : DIAL_DEST_IPV6;
    memcpy(out->ip, ip.addr, 16);
  } else {
    out->type = DIAL_DEST_NAME;
    snprintf(out->name, sizeof out->name, "%s", hp->host);
  }
}

/* ---- TCP -------------------------------------------------------------------------------- */

typedef struct tcp_pending {
  stream *client;
  fwd *f;
  dial_req *req;
  list_node link; /* on the forwarder's dialing list */
} tcp_pending;

static void on_tcp_relay_done(void *ctx, const relay_result *r) {
  obs_stream_closed(OBS_STREAM_FORWARD_TCP);
}

static void on_tcp_dialed(void *ctx, stream *remote, dial_error err, const char *reason) {
  tcp_pending *p = ctx;
  list_remove(&p->link);
  if (!remote) {
    /* "reply" keeps the SOCKS reply's name, as before the dialer spoke dial_error. */
    LOG_I("forward", "connect_failed", "reply", socks5_rep_name(socks5_rep_for_dial(err)), "reason",
          reason, NULL);
    stream_close(p->client);
  } else {
    obs_stream_opened(OBS_STREAM_FORWARD_TCP);
    if (!relay_start(p->f->owner->loop, p->client, remote, p->f->owner->idle_ms, on_tcp_relay_done,
                     NULL))
      obs_stream_closed(OBS_STREAM_FORWARD_TCP);
  }
  free(p);
}

static void on_tcp_conn(uv_stream_t *srv, int status) {
  fwd *f = srv->data;
  if (status < 0) return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  tcp_pending *p = calloc(1, sizeof *p);
  if (!tcp || !p || uv_tcp_init(f->owner->loop, tcp)) {
    free(tcp);
    free(p);
    return;
  }
  if (uv_accept(srv, (uv_stream_t *)tcp) || !(p->client = stream_uv_wrap(tcp))) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    free(p);
    return;
  }
  p->f = f;
  list_init(&p->link);
  p->req = dialer_start(f->owner->dl, &f->target, on_tcp_dialed, p);
  if (!p->req) {
    stream_close(p->client);
    free(p);
    return;
  }
  list_push_front(&f->owner->dialing, &p->link);
}

/* ---- UDP -------------------------------------------------------------------------------- */

static void on_flow_reply(void *ctx, const dial_dest *from, const uint8_t *data, size_t len) {
  udp_flow *fl = ctx;
  fwd *f = fl->f;
  fl->last = uv_now(f->owner->loop);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  uv_udp_try_send(&f->h.udp, &b, 1, (struct sockaddr *)&fl->client);
}

static void flow_end(udp_flow *fl) {
  dgram_close(fl->df);
  fl->df = NULL;
}

static udp_flow *flow_for(fwd *f, const struct sockaddr *from) {
  size_t alen = sockaddr_len(from);
  udp_flow *free_slot = NULL, *oldest = NULL;
  for (size_t i = 0; i < UDP_FLOWS_MAX; i++) {
    udp_flow *fl = &f->flows[i];
    if (fl->df && !memcmp(&fl->client, from, alen)) return fl;
    if (!fl->df && !free_slot) free_slot = fl;
    if (fl->df && (!oldest || fl->last < oldest->last)) oldest = fl;
  }
  udp_flow *fl = free_slot;
  if (!fl) {
    fl = oldest; /* evict the least recently used flow */
    flow_end(fl);
  }
  fl->df = dgram_open(f->owner->dg, on_flow_reply, fl);
  if (!fl->df) return NULL;
  fl->f = f;
  memset(&fl->client, 0, sizeof fl->client);
  memcpy(&fl->client, from, alen);
  return fl;
}

static void on_udp_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf) {
  fwd *f = h->data;
  *buf = uv_buf_init((char *)f->rbuf, sizeof f->rbuf);
}

static void on_udp_dgram(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                         unsigned flags) {
  fwd *f = h->data;
  if (n < 0 || !from || (flags & UV_UDP_PARTIAL) || !f->target_ready) return;
  udp_flow *fl = flow_for(f, from);
  if (!fl) return;
  fl->last = uv_now(f->owner->loop);
  dgram_send(fl->df, &f->target_ip, (const uint8_t *)buf->base, (size_t)n); /* may drop: UDP */
}

static void on_udp_target(void *ctx, int status, const resolver_result *res) {
  fwd *f = ctx;
  if (status != DNS_OK || !res->n) {
    LOG_W("forward", "target_unresolved", "host", f->target.name, NULL);
    return;
  }
  const dns_answer *a = &res->addrs[0];
  memset(&f->target_ip, 0, sizeof f->target_ip);
  f->target_ip.type = a->family == AF_INET6 ? DIAL_DEST_IPV6 : DIAL_DEST_IPV4;
  memcpy(f->target_ip.ip, a->addr, a->family == AF_INET6 ? 16 : 4);
  f->target_ip.port = f->target.port;
  f->target_ready = true;
}

static void on_sweep(uv_timer_t *t) {
  struct forwarder *fw = t->data;
  uint64_t now = uv_now(fw->loop);
  for (size_t i = 0; i < fw->n; i++)
    for (size_t k = 0; k < UDP_FLOWS_MAX; k++) {
      udp_flow *fl = &fw->fwds[i].flows[k];
      if (fl->df && now - fl->last > UDP_FLOW_IDLE_MS) flow_end(fl);
    }
}

/* ---- setup ------------------------------------------------------------------------------ */

static int start_one(struct forwarder *fw, fwd *f, char *err, size_t errlen) {
  const cfg_forward *c = f->cfg;
  struct sockaddr_storage ss;
  int rc = strchr(c->listen.host, ':')
               ? uv_ip6_addr(c->listen.host, c->listen.port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(c->listen.host, c->listen.port, (struct sockaddr_in *)&ss);
  if (c->proto == FWD_TCP) {
    if (!rc) rc = uv_tcp_init(fw->loop, &f->h.tcp);
    f->h.tcp.data = f;
    if (!rc) rc = uv_tcp_bind(&f->h.tcp, (struct sockaddr *)&ss, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&f->h.tcp, 128, on_tcp_conn);
  } else {
    if (!rc) rc = uv_udp_init(fw->loop, &f->h.udp);
    f->h.udp.data = f;
    if (!rc) rc = uv_udp_bind(&f->h.udp, (struct sockaddr *)&ss, 0);
    if (!rc) rc = uv_udp_recv_start(&f->h.udp, on_udp_alloc, on_udp_dgram);
    if (!rc) resolver_lookup(fw->res, c->target.host, on_udp_target, f);
  }
  char l[300];
  cfg_format_hostport(&c->listen, l, sizeof l);
  if (rc) {
    snprintf(err, errlen, "[Forward] at line %d: cannot listen on %s: %s", c->line, l,
             uv_strerror(rc));
    return -1;
  }
  LOG_I("forward", "listening", "proto", c->proto == FWD_TCP ? "tcp" : "udp", "address", l, NULL);
  return 0;
}

forwarder *forwarder_start(uv_loop_t *loop, const app_config *cfg, dialer *dl, dgram_opener *dg,
                           resolver *res, char *err, size_t errlen) {
  struct forwarder *fw = calloc(1, sizeof *fw);
  if (!fw) return snprintf(err, errlen, "out of memory"), NULL;
  fw->loop = loop;
  fw->dl = dl;
  fw->dg = dg;
  fw->res = res;
  list_init(&fw->dialing);
  fw->idle_ms = (uint64_t)cfg->idle_timeout * 1000;
  fw->fwds = calloc(cfg->n_forwards ? cfg->n_forwards : 1, sizeof *fw->fwds);
  if (!fw->fwds) return free(fw), snprintf(err, errlen, "out of memory"), NULL;
  uv_timer_init(loop, &fw->sweep);
  fw->sweep.data = fw;
  uv_timer_start(&fw->sweep, on_sweep, 10000, 10000);
  for (size_t i = 0; i < cfg->n_forwards; i++) {
    fwd *f = &fw->fwds[i];
    f->owner = fw;
    f->cfg = &cfg->forwards[i];
    to_dial_dest(&f->cfg->target, &f->target);
    fw->n++;
    if (start_one(fw, f, err, errlen) != 0) {
      forwarder_stop(fw);
      return NULL;
    }
  }
  return fw;
}

static void release(struct forwarder *fw) {
  if (--fw->closing) return;
  free(fw->fwds);
  free(fw);
}

static void on_fwd_closed(uv_handle_t *h) { release(((fwd *)h->data)->owner); }
static void on_sweep_closed(uv_handle_t *h) { release(h->data); }

void forwarder_stop(forwarder *fw) {
  if (!fw) return;
  /* Dials still running are abandoned (their callbacks would find the forwarder gone). */
  while (!list_empty(&fw->dialing)) {
    tcp_pending *p = list_entry(fw->dialing.next, tcp_pending, link);
    list_remove(&p->link);
    dial_cancel(p->req);
    stream_close(p->client);
    free(p);
  }
  fw->closing = fw->n + 1;
  for (size_t i = 0; i < fw->n; i++) {
    fwd *f = &fw->fwds[i];
    for (size_t k = 0; k < UDP_FLOWS_MAX; k++) flow_end(&f->flows[k]);
    uv_handle_t *h = (uv_handle_t *)&f->h;
    h->data = f;
    if (h->type != UV_UNKNOWN_HANDLE)
      uv_close(h, on_fwd_closed); /* initialised */
    else
      fw->closing--;
  }
  uv_close((uv_handle_t *)&fw->sweep, on_sweep_closed);
}
