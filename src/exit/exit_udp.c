/* UDP (and ICMP echo) through the exit, and the DNS responder on the server's tunnel address.
 *
 * lwIP raw PCBs see every UDP and ICMP packet before lwIP's own UDP/ICMP code. While a packet to
 * a foreign address is inside lwIP (exit_input_as_local) they take it: UDP goes out through one
 * connected OS socket per flow, ICMP echo through exit_icmp.c (or is answered "administratively
 * prohibited"), other ICMP to foreign addresses is dropped. UDP to one
 * of our own addresses, port 53, is answered by the DNS responder; anything else addressed to us
 * is left to lwIP. Doing this in raw PCBs rather than in the input hook means lwIP has already
 * checked and reassembled the packet. */
#include <stdlib.h>
#include <string.h>

#include "exit/exit_dns.h"
#include "exit/exit_internal.h"
#include "exit/exit_peer.h"
#include "observe/streams.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/raw.h"
#include "util/log.h"
#include "util/bytes.h"
#include "util/list.h"

struct udp_flow {
  udp_flow *hnext; /* hash chain */
  list_node link;  /* on x->udp_list */
  exit_ctx *x;     /* NULL once unlinked */
  exit_tuple t;
  uint64_t last;   /* uv_now of the last datagram either way */
  exit_peer *peer; /* holds a connection slot */
  uv_udp_t udp;
};

typedef struct {
  uv_udp_send_t req;
  size_t len;
  uint8_t data[];
} udp_send;

struct dns_req {
  list_node link; /* on x->dns_list */
  exit_ctx *x;    /* NULL once detached (stop) */
  uv_getaddrinfo_t req;
  exit_addr client, server;
  exit_peer *peer; /* held (exit_peer_hold) while the lookup runs; may be NULL */
  uint16_t cport;
  exit_dns_query q;
  uint8_t msg[EXIT_DNS_MAX_MSG]; /* the query up to the end of its question */
};

#define DNS_TTL 30
#define DNS_MAX_ANSWERS 16

/* ---- flows ------------------------------------------------------------------------------ */

static udp_flow **bucket(exit_ctx *x, const exit_tuple *t) {
  return &x->udp_buckets[exit_tuple_hash(t) % EXIT_HASH_BUCKETS];
}

static udp_flow *lookup(exit_ctx *x, const exit_tuple *t) {
  for (udp_flow *f = *bucket(x, t); f; f = f->hnext)
    if (exit_tuple_equal(&f->t, t)) return f;
  return NULL;
}

static void on_flow_closed(uv_handle_t *h) { free(h->data); }

static void close_flow(udp_flow *f) {
  exit_ctx *x = f->x;
  if (x) {
    for (udp_flow **pp = bucket(x, &f->t); *pp; pp = &(*pp)->hnext)
      if (*pp == f) {
        *pp = f->hnext;
        break;
      }
    list_remove(&f->link);
    f->x = NULL;
    x->stats.udp_flows--;
    obs_stream_closed(OBS_STREAM_EXIT_UDP);
  }
  if (f->peer) exit_conn_release(x, f->peer), f->peer = NULL;
  uv_close((uv_handle_t *)&f->udp, on_flow_closed);
}

/* A quoted IP + UDP header of a datagram the peer sent on this flow, for ICMP errors. */
static size_t fake_quote(const udp_flow *f, uint8_t *q) {
  size_t n;
  if (f->t.src.family == AF_INET6) {
    memset(q, 0, 48);
    q[0] = 0x60;
    q[5] = 8;
    q[6] = 17;
    q[7] = 64;
    memcpy(q + 8, f->t.src.a, 16);
    memcpy(q + 24, f->t.dst.a, 16);
    n = 40;
  } else {
    memset(q, 0, 28);
    q[0] = 0x45;
    q[3] = 28;
    q[8] = 64;
    q[9] = 17;
    memcpy(q + 12, f->t.src.a, 4);
    memcpy(q + 16, f->t.dst.a, 4);
    u16_t sum = inet_chksum(q, 20);
    memcpy(q + 10, &sum, 2);
    n = 20;
  }
  q[n] = (uint8_t)(f->t.sport >> 8), q[n + 1] = (uint8_t)f->t.sport;
  q[n + 2] = (uint8_t)(f->t.dport >> 8), q[n + 3] = (uint8_t)f->t.dport;
  q[n + 5] = 8;
  return n + 8;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  udp_flow *f = h->data;
  static char spare[1];
  /* Every read is consumed before the next allocation (one loop thread), so one buffer serves
   * all flows. */
  *buf = f->x ? uv_buf_init((char *)f->x->rbuf, sizeof f->x->rbuf) : uv_buf_init(spare, 1);
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
  udp_flow *f = h->data;
  exit_ctx *x = f->x;
  if (!x) return;
  if (n == UV_ECONNREFUSED) { /* the destination answered ICMP port unreachable */
    uint8_t q[48];
    exit_send_unreach(x, q, fake_quote(f, q), EXIT_ICMP4_PORT, EXIT_ICMP6_PORT);
    return;
  }
  if (n <= 0 || (flags & UV_UDP_PARTIAL)) return;
  if (!exit_peer_udp_budget(x, f->peer, false, (size_t)n)) return; /* over DownloadLimit */
  f->last = uv_now(x->loop);
  exit_send_udp(x, &f->t.dst, f->t.dport, &f->t.src, f->t.sport, (const uint8_t *)buf->base,
                (size_t)n);
}

/* *uv_err is 0 when a connection cap refused the flow (nothing to tell the peer). */
static udp_flow *open_flow(exit_ctx *x, exit_peer *peer, const exit_tuple *t, int *uv_err) {
  if (x->stats.udp_flows >= EXIT_MAX_UDP_FLOWS) { /* make room: the least recently used goes */
    udp_flow *old = NULL;
    list_node *it, *tmp;
    list_each_safe(it, tmp, &x->udp_list) {
      udp_flow *f = list_entry(it, udp_flow, link);
      if (!old || f->last < old->last) old = f;
    }
    if (old) close_flow(old);
  }
  if (!exit_conn_acquire(x, peer)) return *uv_err = 0, NULL;
  udp_flow *f = calloc(1, sizeof *f);
  if (!f) return exit_conn_release(x, peer), *uv_err = UV_ENOMEM, NULL;
  f->t = *t;
  f->peer = peer;
  f->last = uv_now(x->loop);
  uv_udp_init(x->loop, &f->udp);
  f->udp.data = f;
  struct sockaddr_storage ss;
  exit_addr_to_sockaddr(&t->dst, t->dport, &ss);
  int rc = uv_udp_connect(&f->udp, (const struct sockaddr *)&ss);
  if (!rc) rc = uv_udp_recv_start(&f->udp, on_alloc, on_recv);
  if (rc) {
    *uv_err = rc;
    exit_conn_release(x, peer);
    f->peer = NULL;
    uv_close((uv_handle_t *)&f->udp, on_flow_closed);
    return NULL;
  }
  udp_flow **b = bucket(x, t);
  f->hnext = *b;
  *b = f;
  list_push_front(&x->udp_list, &f->link);
  f->x = x;
  x->stats.udp_flows++;
  x->stats.udp_flows_total++;
  obs_stream_opened(OBS_STREAM_EXIT_UDP);
  return f;
}

static void on_sent(uv_udp_send_t *req, int status) { free(req); }

static void flow_send(udp_flow *f, const uint8_t *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(&f->udp, &b, 1, NULL);
  if (rc >= 0 || (rc != UV_EAGAIN && rc != UV_ENOBUFS)) return; /* sent, or lost like UDP is */
  if (f->udp.send_queue_count >= 64) return;
  udp_send *s = malloc(sizeof *s + len);
  if (!s) return;
  memcpy(s->data, data, len);
  b = uv_buf_init((char *)s->data, (unsigned)len);
  if (uv_udp_send(&s->req, &f->udp, &b, 1, NULL, on_sent) != 0) free(s);
}

/* ---- DNS on our own address ------------------------------------------------------------- */

static void dns_reply(exit_ctx *x, const uint8_t *msg, const exit_dns_query *q, int rcode,
                      const uint8_t (*addrs)[16], size_t n, const exit_addr *server,
                      const exit_addr *client, uint16_t cport) {
  uint8_t out[EXIT_DNS_MAX_MSG];
  size_t len = exit_dns_build_response(msg, q, rcode, addrs, n, DNS_TTL, out, sizeof out);
  if (len) exit_send_udp(x, server, 53, client, cport, out, len);
}

static void dns_unlink(dns_req *r) {
  exit_ctx *x = r->x;
  if (!x) return;
  list_remove(&r->link);
  x->n_dns--;
  r->x = NULL;
}

/* The server's answer for an allowed name: with ExitAllowDomain, the peer may now reach the
 * addresses by IP (exit_peer_learn). */
static void learn_answers(exit_ctx *x, exit_peer *p, int family, const uint8_t (*addrs)[16],
                          size_t n) {
  if (!p || !exit_peer_learns(p)) return;
  for (size_t i = 0; i < n; i++) {
    exit_addr a = {.family = family};
    memcpy(a.a, addrs[i], family == AF_INET6 ? 16 : 4);
    exit_peer_learn(x, p, &a);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  dns_req *r = req->data;
  exit_ctx *x = r->x;
  if (x) {
    dns_unlink(r);
    int want = r->q.qtype == EXIT_DNS_TYPE_AAAA ? AF_INET6 : AF_INET;
    uint8_t addrs[DNS_MAX_ANSWERS][16];
    size_t n = 0;
    int rcode = EXIT_DNS_NOERROR;
    if (status == UV_EAI_NONAME || status == UV_EAI_NODATA)
      rcode = EXIT_DNS_NXDOMAIN;
    else if (status < 0)
      rcode = EXIT_DNS_SERVFAIL;
    for (struct addrinfo *ai = status == 0 ? res : NULL; ai && n < DNS_MAX_ANSWERS;
         ai = ai->ai_next) {
      if (ai->ai_family != want) continue;
      const uint8_t *a = want == AF_INET6
                             ? (const uint8_t *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                             : (const uint8_t *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
      size_t alen = want == AF_INET6 ? 16 : 4;
      bool dup = false;
      for (size_t i = 0; i < n && !dup; i++) dup = !memcmp(addrs[i], a, alen);
      if (!dup) memcpy(addrs[n++], a, alen);
    }
    if (status != UV_ECANCELED) {
      learn_answers(x, r->peer, want, (const uint8_t(*)[16])addrs, n);
      dns_reply(x, r->msg, &r->q, rcode, (const uint8_t(*)[16])addrs, n, &r->server, &r->client,
                r->cport);
    }
    if (log_enabled(LOG_DEBUG)) {
      char cnt[16];
      snprintf(cnt, sizeof cnt, "%zu", n);
      LOG_D("exit", "dns_answered", "qtype", want == AF_INET6 ? "AAAA" : "A", "rcode",
            rcode == EXIT_DNS_NOERROR    ? "NOERROR"
            : rcode == EXIT_DNS_NXDOMAIN ? "NXDOMAIN"
                                         : "SERVFAIL",
            "answers", cnt, NULL);
    }
  }
  if (res) uv_freeaddrinfo(res);
  if (r->peer) exit_peer_put(r->peer);
  free(r);
}

static void dns_query(exit_ctx *x, const uint8_t *msg, size_t len, const exit_addr *server,
                      const exit_addr *client, uint16_t cport) {
  x->stats.dns_queries++;
  exit_dns_query q;
  int rcode = exit_dns_parse_query(msg, len, &q);
  if (rcode < 0) return;
  exit_peer *peer = exit_peer_lookup(x, client);
  /* A name the peer's domain rules deny: REFUSED ("refuses for policy reasons", RFC 1035). */
  if (rcode == EXIT_DNS_NOERROR && q.name[0] && (!peer || !exit_permit_name(x, peer, q.name))) {
    x->stats.dns_refused++;
    return dns_reply(x, msg, &q, EXIT_DNS_REFUSED, NULL, 0, server, client, cport);
  }
  bool lookup_it = rcode == EXIT_DNS_NOERROR && q.name[0] &&
                   (q.qtype == EXIT_DNS_TYPE_A || q.qtype == EXIT_DNS_TYPE_AAAA);
  if (lookup_it && x->n_dns >= EXIT_MAX_DNS_PENDING) rcode = EXIT_DNS_SERVFAIL, lookup_it = false;
  if (!lookup_it) /* other types: NOERROR with no answers; errors as parsed */
    return dns_reply(x, msg, &q, rcode, NULL, 0, server, client, cport);
  dns_req *r = calloc(1, sizeof *r);
  if (!r) return dns_reply(x, msg, &q, EXIT_DNS_SERVFAIL, NULL, 0, server, client, cport);
  r->q = q;
  memcpy(r->msg, msg, q.qend);
  r->server = *server;
  r->client = *client;
  r->cport = cport;
  r->req.data = r;
  r->peer = peer;
  /* Both families in one lookup: "no address of this type" (NODATA) and "no such name"
   * (NXDOMAIN) then differ as they should. */
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  if (uv_getaddrinfo(x->loop, &r->req, on_resolved, q.name, NULL, &hints) != 0) {
    free(r);
    return dns_reply(x, msg, &q, EXIT_DNS_SERVFAIL, NULL, 0, server, client, cport);
  }
  exit_peer_hold(peer);
  r->x = x;
  list_push_front(&x->dns_list, &r->link);
  x->n_dns++;
}

/* ---- the raw PCBs ----------------------------------------------------------------------- */

static bool is_own_address(exit_ctx *x, const ip_addr_t *ip) {
  if (!IP_IS_V6(ip)) return ip4_addr_cmp(ip_2_ip4(ip), netif_ip4_addr(x->nif));
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
    if (ip6_addr_isvalid(netif_ip6_addr_state(x->nif, i)) &&
        !memcmp(ip_2_ip6(ip)->addr, netif_ip6_addr(x->nif, i)->addr, 16))
      return true;
  return false;
}

static void send_unreach_pbuf(exit_ctx *x, struct pbuf *p, uint8_t code4, uint8_t code6) {
  uint8_t q[1280];
  size_t n = pbuf_copy_partial(p, q, sizeof q, 0);
  exit_send_unreach(x, q, n, code4, code6);
}

static u8_t on_raw_udp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  exit_ctx *x = arg;
  bool foreign = exit_in_foreign_input();
  size_t hl = ip_current_header_tot_len();
  uint8_t uh[8];
  if (pbuf_copy_partial(p, uh, 8, (u16_t)hl) != 8) {
    if (!foreign) return 0;
    pbuf_free(p);
    return 1;
  }
  exit_tuple t;
  exit_addr_from_ip(ip_current_src_addr(), &t.src);
  exit_addr_from_ip(ip_current_dest_addr(), &t.dst);
  t.sport = be16_load(uh);
  t.dport = be16_load(uh + 2);
  bool dns = !foreign && t.dport == 53 && is_own_address(x, ip_current_dest_addr());
  if (!foreign && !dns) return 0; /* ours, for lwIP's UDP */
  /* From here on the packet is ours. */
  size_t ulen = be16_load(uh + 4);
  udp_flow *f = dns ? NULL : lookup(x, &t);
  exit_peer *peer = f ? f->peer : NULL;
  if (!dns && !f) {
    peer = exit_peer_lookup(x, &t.src);
    if (!peer || !exit_permit(x, peer, "udp", &t.dst, t.dport, NULL)) {
      if (!peer) x->stats.denied++; /* no peer owns the source (e.g. left out by a reload) */
      send_unreach_pbuf(x, p, EXIT_ICMP4_PROHIBITED, EXIT_ICMP6_PROHIBITED);
      pbuf_free(p);
      return 1;
    }
  }
  /* The checksum is not verified (exit_tcp_syn says why). */
  bool ok = ulen >= 8 && hl + ulen <= p->tot_len && t.sport && t.dport;
  if (ok) {
    pbuf_remove_header(p, (u16_t)hl);
    if (p->tot_len > ulen) pbuf_realloc(p, (u16_t)ulen);
  }
  if (!ok) {
    x->stats.dropped++;
    pbuf_free(p);
    return 1;
  }
  size_t n = pbuf_copy_partial(p, x->rbuf, (u16_t)(ulen - 8), 8);
  pbuf_free(p);
  if (dns) {
    dns_query(x, x->rbuf, n, &t.dst, &t.src, t.sport);
    return 1;
  }
  if (!exit_peer_udp_budget(x, peer, true, n)) return 1; /* over UploadLimit */
  if (!f) {
    int err = 0;
    f = open_flow(x, peer, &t, &err);
    if (!f && !err) return 1; /* a connection cap: dropped, counted */
    if (!f) {
      /* e.g. no route for this family on the host */
      uint8_t q[48];
      udp_flow tmp = {.t = t};
      bool noroute = err == UV_ENETUNREACH || err == UV_EAFNOSUPPORT || err == UV_EADDRNOTAVAIL;
      exit_send_unreach(x, q, fake_quote(&tmp, q), noroute ? EXIT_ICMP4_NET : EXIT_ICMP4_HOST,
                        noroute ? EXIT_ICMP6_NOROUTE : EXIT_ICMP6_ADDR);
      x->stats.dropped++;
      return 1;
    }
  }
  f->last = uv_now(x->loop);
  flow_send(f, x->rbuf, n);
  return 1;
}

static u8_t on_raw_icmp(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr) {
  exit_ctx *x = arg;
  if (!exit_in_foreign_input()) return 0; /* ours (echo to the tunnel address): lwIP answers */
  size_t hl = ip_current_header_tot_len();
  uint8_t *icmp = x->rbuf;
  size_t n = pbuf_copy_partial(p, icmp, 65535, (u16_t)hl);
  bool v6 = IP_IS_V6(ip_current_dest_addr());
  if (n >= 8 && icmp[0] == (v6 ? 128 : 8) && icmp[1] == 0) { /* echo request */
    exit_tuple t = {.sport = 0, .dport = 0};
    exit_addr_from_ip(ip_current_src_addr(), &t.src);
    exit_addr_from_ip(ip_current_dest_addr(), &t.dst);
    exit_peer *peer = exit_peer_lookup(x, &t.src);
    if (!peer) x->stats.denied++;
    if (!peer || !exit_permit(x, peer, "icmp", &t.dst, 0, NULL) ||
        !exit_icmp_echo(x, &t.src, &t.dst, icmp, n)) {
      x->stats.icmp_prohibited++;
      send_unreach_pbuf(x, p, EXIT_ICMP4_PROHIBITED, EXIT_ICMP6_PROHIBITED);
    }
  }
  pbuf_free(p); /* errors and anything else to foreign addresses end here */
  return 1;
}

int exit_udp_start(exit_ctx *x) {
  x->raw_udp4 = raw_new_ip_type(IPADDR_TYPE_V4, IP_PROTO_UDP);
  x->raw_udp6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_UDP);
  x->raw_icmp4 = raw_new_ip_type(IPADDR_TYPE_V4, IP_PROTO_ICMP);
  x->raw_icmp6 = raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_ICMP6);
  if (!x->raw_udp4 || !x->raw_udp6 || !x->raw_icmp4 || !x->raw_icmp6) {
    exit_udp_stop(x);
    return -1;
  }
  raw_recv(x->raw_udp4, on_raw_udp, x);
  raw_recv(x->raw_udp6, on_raw_udp, x);
  raw_recv(x->raw_icmp4, on_raw_icmp, x);
  raw_recv(x->raw_icmp6, on_raw_icmp, x);
  return 0;
}

void exit_udp_sweep(exit_ctx *x, uint64_t now) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->udp_list) {
    udp_flow *f = list_entry(it, udp_flow, link);
    if (now - f->last >= EXIT_UDP_IDLE_MS) close_flow(f);
  }
}

void exit_udp_end_peer(exit_ctx *x, exit_peer *p) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &x->udp_list) {
    udp_flow *f = list_entry(it, udp_flow, link);
    if (f->peer == p) close_flow(f);
  }
}

void exit_udp_stop(exit_ctx *x) {
  struct raw_pcb **pcbs[] = {&x->raw_udp4, &x->raw_udp6, &x->raw_icmp4, &x->raw_icmp6};
  for (size_t i = 0; i < 4; i++)
    if (*pcbs[i]) raw_remove(*pcbs[i]), *pcbs[i] = NULL;
  while (!list_empty(&x->udp_list)) close_flow(list_entry(x->udp_list.next, udp_flow, link));
  while (!list_empty(&x->dns_list)) {
    dns_req *r = list_entry(x->dns_list.next, dns_req, link);
    dns_unlink(r);
    uv_cancel((uv_req_t *)&r->req); /* on_resolved frees it either way */
  }
}
