/* TCP through the exit. A peer's SYN to a foreign address:port is held back while the server
 * connects out with an OS socket; only then is the SYN handed to lwIP (as if the address were
 * local), where a listening PCB bound to exactly that address:port accepts it. The peer so sees
 * the real outcome: a handshake only when the destination accepted, a RST when it refused, ICMP
 * unreachable when it could not be reached. */
#include <stdlib.h>
#include <string.h>

#include "exit/exit_internal.h"
#include "exit/exit_peer.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "stream/relay.h"
#include "stream/stream_lwip.h"
#include "stream/stream_uv.h"
#include "observe/streams.h"
#include "util/log.h"
#include "util/bytes.h"
#include "util/list.h"

typedef enum { F_CONNECTING, F_HANDSHAKE } flow_state;

struct tcp_flow {
  tcp_flow *hnext; /* hash chain */
  list_node link;  /* on x->tcp_list */
  exit_ctx *x;     /* NULL once unlinked */
  exit_tuple t;
  flow_state st;
  struct pbuf *syn;  /* the held SYN (F_CONNECTING) */
  uint32_t rst_ack;  /* SYN sequence number + segment length, for a RST */
  uint64_t deadline; /* connect timeout (uv_now ms) */
  uv_tcp_t *tcp;     /* the outbound socket (malloc'd; stream_uv takes it over) */
  uv_connect_t req;
  struct tcp_pcb *pcb; /* the SYN_RCVD PCB (F_HANDSHAKE) */
  exit_listener *lst;
  exit_peer *peer; /* holds a connection slot (exit_conn_acquire) */
};

struct exit_listener {
  exit_listener *next;
  struct tcp_pcb *pcb;
  exit_addr addr;
  uint16_t port;
  int refs; /* flows in F_HANDSHAKE on it; closed by the sweep at 0 */
};

struct exit_conn {
  list_node link; /* on x->conns while the exit runs */
  exit_ctx *x;    /* NULL once the exit stopped */
  relay *r;
  exit_peer *peer; /* holds a connection slot */
};

/* ---- the flow table --------------------------------------------------------------------- */

static tcp_flow **bucket(exit_ctx *x, const exit_tuple *t) {
  return &x->tcp_buckets[exit_tuple_hash(t) % EXIT_HASH_BUCKETS];
}

static tcp_flow *lookup(exit_ctx *x, const exit_tuple *t) {
  for (tcp_flow *f = *bucket(x, t); f; f = f->hnext)
    if (exit_tuple_equal(&f->t, t)) return f;
  return NULL;
}

static void link_flow(exit_ctx *x, tcp_flow *f) {
  tcp_flow **b = bucket(x, &f->t);
  f->hnext = *b;
  *b = f;
  list_push_front(&x->tcp_list, &f->link);
  f->x = x;
  x->stats.tcp_connecting++;
}

static void unlink_flow(tcp_flow *f) {
  exit_ctx *x = f->x;
  if (!x) return;
  for (tcp_flow **pp = bucket(x, &f->t); *pp; pp = &(*pp)->hnext)
    if (*pp == f) {
      *pp = f->hnext;
      break;
    }
  list_remove(&f->link);
  f->x = NULL;
  x->stats.tcp_connecting--;
}

static void on_tcp_closed(uv_handle_t *h) {
  tcp_flow *f = h->data;
  free(h);
  free(f);
}

/* Ends a flow that will not become a relay: the held SYN, the SYN_RCVD PCB and the outbound
 * socket go; the flow itself is freed once the socket has closed. */
static void drop_flow(tcp_flow *f) {
  exit_ctx *x = f->x;
  unlink_flow(f);
  if (f->syn) pbuf_free(f->syn), f->syn = NULL;
  if (f->pcb) {
    struct tcp_pcb *pcb = f->pcb;
    f->pcb = NULL;
    tcp_arg(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_abort(pcb);
  }
  if (f->lst) f->lst->refs--, f->lst = NULL;
  if (f->peer) exit_conn_release(x, f->peer);
  f->peer = NULL;
  f->tcp->data = f;
  uv_close((uv_handle_t *)f->tcp, on_tcp_closed);
}

/* ---- answering the peer ----------------------------------------------------------------- */

static void send_rst(exit_ctx *x, const tcp_flow *f) {
  ip_addr_t local, remote;
  exit_addr_to_ip(&f->t.dst, &local);
  exit_addr_to_ip(&f->t.src, &remote);
  tcp_rst(NULL, 0, f->rst_ack, &local, &remote, f->t.dport, f->t.sport);
}

static void send_unreach_pbuf(exit_ctx *x, struct pbuf *p, uint8_t code4, uint8_t code6) {
  uint8_t q[1280];
  size_t n = pbuf_copy_partial(p, q, sizeof q, 0);
  exit_send_unreach(x, q, n, code4, code6);
}

/* The outbound connection failed with status: tell the peer the way a router/host would. */
static void answer_failure(exit_ctx *x, tcp_flow *f, int status) {
  const char *what;
  if (status == UV_ECONNREFUSED) {
    send_rst(x, f);
    x->stats.tcp_refused++;
    what = "refused";
  } else {
    uint8_t c4 = EXIT_ICMP4_HOST, c6 = EXIT_ICMP6_ADDR;
    what = "unreachable";
    if (status == UV_ENETUNREACH || status == UV_EAFNOSUPPORT || status == UV_EADDRNOTAVAIL) {
      c4 = EXIT_ICMP4_NET, c6 = EXIT_ICMP6_NOROUTE;
    } else if (status == UV_EACCES || status == UV_EPERM) {
      c4 = EXIT_ICMP4_PROHIBITED, c6 = EXIT_ICMP6_PROHIBITED;
      what = "prohibited";
    }
    if (f->syn) send_unreach_pbuf(x, f->syn, c4, c6);
    x->stats.tcp_unreachable++;
  }
  if (log_enabled(LOG_DEBUG)) {
    char dst[64];
    exit_addr_format(&f->t.dst, f->t.dport, dst, sizeof dst);
    LOG_D("exit", "tcp_failed", "dst", dst, "result", what, "error", uv_err_name(status), NULL);
  }
}

/* ---- listeners -------------------------------------------------------------------------- */

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err);

static exit_listener *listener_get(exit_ctx *x, const exit_addr *a, uint16_t port) {
  for (exit_listener *l = x->listeners; l; l = l->next)
    if (l->port == port && exit_addr_equal(&l->addr, a)) return l->refs++, l;
  exit_listener *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  struct tcp_pcb *pcb = tcp_new_ip_type(a->family == AF_INET6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
  if (!pcb) return free(l), NULL;
  ip_set_option(pcb, SOF_REUSEADDR); /* next to the connections it accepted earlier */
  ip_addr_t ip;
  exit_addr_to_ip(a, &ip);
  struct tcp_pcb *lpcb = NULL;
  if (tcp_bind(pcb, &ip, port) == ERR_OK) lpcb = tcp_listen_with_backlog(pcb, 255);
  if (!lpcb) {
    tcp_abort(pcb);
    free(l);
    return NULL;
  }
  tcp_arg(lpcb, NULL); /* accepted PCBs get their flow as argument before the accept */
  tcp_accept(lpcb, on_accept);
  l->pcb = lpcb;
  l->addr = *a;
  l->port = port;
  l->refs = 1;
  l->next = x->listeners;
  x->listeners = l;
  return l;
}

static void close_idle_listeners(exit_ctx *x, bool all) {
  for (exit_listener **pp = &x->listeners; *pp;) {
    exit_listener *l = *pp;
    if (l->refs > 0 && !all) {
      pp = &l->next;
      continue;
    }
    *pp = l->next;
    if (tcp_close(l->pcb) != ERR_OK) tcp_abort(l->pcb);
    free(l);
  }
}

/* ---- the lwIP side ---------------------------------------------------------------------- */

static struct tcp_pcb *find_pcb(struct tcp_pcb *list, const exit_tuple *t) {
  ip_addr_t local, remote;
  exit_addr_to_ip(&t->dst, &local);
  exit_addr_to_ip(&t->src, &remote);
  for (struct tcp_pcb *pcb = list; pcb; pcb = pcb->next)
    if (pcb->local_port == t->dport && pcb->remote_port == t->sport &&
        ip_addr_cmp(&pcb->local_ip, &local) && ip_addr_cmp(&pcb->remote_ip, &remote))
      return pcb;
  return NULL;
}

static void on_relay_done(void *ctx, const relay_result *r) {
  exit_conn *c = ctx;
  exit_ctx *x = c->x;
  if (x) {
    list_remove(&c->link);
    x->stats.tcp_relays--;
  }
  exit_conn_release(x, c->peer);
  obs_stream_closed(OBS_STREAM_EXIT_TCP);
  relay_log_result("exit", "tcp_closed", NULL, NULL, r);
  free(c);
}

/* The peer completed the handshake: relay the lwIP connection and the outbound socket. */
static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err) {
  tcp_flow *f = arg;
  if (!f || !newpcb || err != ERR_OK || !f->x) return ERR_VAL;
  exit_ctx *x = f->x;
  f->pcb = NULL;
  tcp_err(newpcb, NULL);
  uv_tcp_t *tcp = f->tcp;
  exit_conn *c = calloc(1, sizeof *c);
  stream *a = c ? stream_lwip_wrap(x->loop, newpcb) : NULL;
  if (!a) {
    free(c);
    drop_flow(f); /* newpcb is no longer f->pcb: aborted below */
    tcp_abort(newpcb);
    x->stats.dropped++;
    return ERR_ABRT;
  }
  stream *b = stream_uv_wrap(tcp);
  if (!b) {
    free(c);
    stream_close(a); /* aborts newpcb */
    drop_flow(f);
    x->stats.dropped++;
    return ERR_ABRT;
  }
  unlink_flow(f);
  if (f->lst) f->lst->refs--;
  c->peer = f->peer; /* the slot moves to the connection */
  free(f);
  c->x = x;
  /* Both directions draw from the peer's buckets. */
  a = exit_peer_throttle(x, c->peer, a, true);
  b = exit_peer_throttle(x, c->peer, b, false);
  c->r = relay_start(x->loop, a, b, (uint64_t)x->cfg->idle_timeout * 1000, on_relay_done, c);
  if (!c->r) {
    exit_conn_release(x, c->peer);
    free(c);
    return ERR_ABRT; /* relay_start closed both streams, which aborted newpcb */
  }
  obs_stream_opened(OBS_STREAM_EXIT_TCP);
  list_push_front(&x->conns, &c->link);
  x->stats.tcp_relays++;
  x->stats.tcp_accepted++;
  return ERR_OK;
}

/* The SYN_RCVD PCB died (the peer reset it, or it never answered our SYN-ACK). */
static void on_handshake_err(void *arg, err_t err) {
  tcp_flow *f = arg;
  if (!f) return;
  f->pcb = NULL; /* lwIP has freed it */
  drop_flow(f);
}

/* Outbound connected: now let lwIP answer the peer's SYN. */
static void hand_syn_to_lwip(exit_ctx *x, tcp_flow *f) {
  f->lst = listener_get(x, &f->t.dst, f->t.dport);
  if (!f->lst) {
    x->stats.dropped++;
    drop_flow(f);
    return;
  }
  /* A new connection on the 4-tuple of one in TIME-WAIT: the old one is over. */
  struct tcp_pcb *tw = find_pcb(tcp_tw_pcbs, &f->t);
  if (tw) tcp_abort(tw);
  struct pbuf *p = f->syn;
  f->syn = NULL;
  exit_input_as_local(x, p, &f->t.dst);
  struct tcp_pcb *pcb = find_pcb(tcp_active_pcbs, &f->t);
  if (!pcb || pcb->state != SYN_RCVD || pcb->listener != (struct tcp_pcb_listen *)f->lst->pcb) {
    x->stats.dropped++; /* lwIP did not take it (checksum, memory) */
    drop_flow(f);
    return;
  }
  f->pcb = pcb;
  f->st = F_HANDSHAKE;
  tcp_arg(pcb, f);
  tcp_err(pcb, on_handshake_err);
}

static void on_connected(uv_connect_t *req, int status) {
  tcp_flow *f = req->data;
  exit_ctx *x = f->x;
  if (!x || status == UV_ECANCELED) return; /* timed out or stopped: already handled */
  if (status < 0) {
    answer_failure(x, f, status);
    drop_flow(f);
    return;
  }
  uv_tcp_nodelay(f->tcp, 1);
  hand_syn_to_lwip(x, f);
}

/* ---- SYNs from the hook ----------------------------------------------------------------- */

void exit_tcp_syn(exit_ctx *x, struct pbuf *p, const uint8_t *h, size_t ihl) {
  bool v6 = ihl == 40 && h[0] >> 4 == 6;
  exit_tuple t = {.src.family = v6 ? AF_INET6 : AF_INET, .dst.family = v6 ? AF_INET6 : AF_INET};
  memcpy(t.src.a, h + (v6 ? 8 : 12), v6 ? 16 : 4);
  memcpy(t.dst.a, h + (v6 ? 24 : 16), v6 ? 16 : 4);
  const uint8_t *th = h + ihl;
  t.sport = be16_load(th);
  t.dport = be16_load(th + 2);
  size_t total = v6 ? 40u + be16_load(h + 4) : be16_load(h + 2);
  size_t doff = (size_t)(th[12] >> 4) * 4;

  tcp_flow *f = lookup(x, &t);
  if (f) {
    if (f->st == F_HANDSHAKE)
      exit_input_as_local(x, p, &t.dst); /* lwIP resends its SYN-ACK */
    else
      pbuf_free(p); /* still connecting out: the peer will retransmit */
    return;
  }
  if (find_pcb(tcp_active_pcbs, &t)) { /* lwIP knows this connection; let it answer */
    exit_input_as_local(x, p, &t.dst);
    return;
  }
  /* The checksum is not verified, as lwIP does not verify the segments after it: the packet came
   * sealed from the peer's device (ipstack_trust_inbound), and an awgproxy client leaves it out
   * (ipstack_omit_checksums). */
  if (doff < 20 || total < ihl + doff || p->tot_len != total || p->len < ihl || !t.dport ||
      !t.sport) {
    x->stats.dropped++;
    pbuf_free(p);
    return;
  }
  exit_peer *peer = exit_peer_lookup(x, &t.src);
  if (!peer || !exit_permit(x, peer, "tcp", &t.dst, t.dport, NULL)) {
    if (!peer) x->stats.denied++; /* no peer owns the source (e.g. left out by a reload) */
    send_unreach_pbuf(x, p, EXIT_ICMP4_PROHIBITED, EXIT_ICMP6_PROHIBITED);
    pbuf_free(p);
    return;
  }
  uint32_t rst_ack = be32_load(th + 4) + 1 + (uint32_t)(total - ihl - doff);
  if (!exit_conn_acquire(x, peer)) { /* over a connection cap: refused like a full server */
    tcp_flow tmp = {.t = t, .rst_ack = rst_ack};
    send_rst(x, &tmp);
    pbuf_free(p);
    return;
  }
  if (x->stats.tcp_connecting >= EXIT_MAX_TCP_PENDING || !(f = calloc(1, sizeof *f)) ||
      !(f->tcp = malloc(sizeof *f->tcp))) {
    if (f) free(f);
    exit_conn_release(x, peer);
    x->stats.dropped++;
    pbuf_free(p); /* the peer retransmits its SYN later */
    return;
  }
  f->t = t;
  f->syn = p;
  f->peer = peer;
  f->rst_ack = rst_ack;
  f->st = F_CONNECTING;
  f->deadline = uv_now(x->loop) + (uint64_t)x->cfg->connect_timeout * 1000;
  uv_tcp_init(x->loop, f->tcp);
  f->tcp->data = f;
  f->req.data = f;
  link_flow(x, f);
  struct sockaddr_storage ss;
  exit_addr_to_sockaddr(&t.dst, t.dport, &ss);
  int rc = uv_tcp_connect(&f->req, f->tcp, (const struct sockaddr *)&ss, on_connected);
  if (rc) {
    answer_failure(x, f, rc);
    drop_flow(f);
  }
}

/* ---- time and shutdown ------------------------------------------------------------------ */

void exit_tcp_sweep(exit_ctx *x, uint64_t now) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->tcp_list) {
    tcp_flow *f = list_entry(it, tcp_flow, link);
    if (f->st == F_CONNECTING && now >= f->deadline) {
      answer_failure(x, f, UV_ETIMEDOUT);
      drop_flow(f);
    }
  }
  close_idle_listeners(x, false);
}

void exit_tcp_end_peer(exit_ctx *x, exit_peer *p) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->tcp_list) {
    tcp_flow *f = list_entry(it, tcp_flow, link);
    if (f->peer == p) drop_flow(f);
  }
  list_each_safe(it, tmp, &x->conns) {
    exit_conn *c = list_entry(it, exit_conn, link);
    if (c->peer == p && c->r) relay_abort(c->r); /* on_relay_done unlinks it later */
  }
}

void exit_tcp_stop(exit_ctx *x) {
  while (!list_empty(&x->tcp_list)) drop_flow(list_entry(x->tcp_list.next, tcp_flow, link));
  close_idle_listeners(x, true);
  while (!list_empty(&x->conns)) {
    exit_conn *c = list_entry(x->conns.next, exit_conn, link);
    list_remove(&c->link);
    c->x = NULL;
    relay_abort(c->r);
  }
}
