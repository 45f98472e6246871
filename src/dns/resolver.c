#include "dns/resolver.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "device/ipstack.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"
#include "util/rng.h"

#define CACHE_SLOTS 1024
#define MAX_TRIES 4
static const uint64_t retry_ms[MAX_TRIES] = {1000, 1500, 2000, 2500}; /* 7 s in all */
#define NEG_TTL_MAX 60
#define POS_TTL_MAX 3600
#define UDP_MAX 1232 /* no EDNS0: answers over 512 bytes come truncated (TC) anyway */

typedef struct {
  char name[DNS_MAX_NAME + 1];
  uint64_t expires; /* uv_now ms */
  int status;
  resolver_result res;
} cache_entry;

typedef struct {
  struct resolver_query *q;
  uint16_t qtype, id;
  struct udp_pcb *pcb;
  bool done;
  int status;
  dns_answer ans[DNS_MAX_ANSWERS];
  size_t n;
  uint32_t ttl;
} subquery;

struct resolver_query {
  resolver *r;
  char name[DNS_MAX_NAME + 1];
  resolver_cb cb;
  void *ctx;
  subquery sub[2]; /* AAAA, A */
  uv_timer_t timer;
  int tries;
  bool finished;
};

struct resolver {
  uv_loop_t *loop;
  struct netif *nif;
  cfg_ip servers[8];
  size_t n_servers;
  cache_entry *cache;
  resolver_stats stats;
};

/* Public resolvers used when the config sets no DNS (documented in docs/config-reference.md);
 * still queried through the tunnel only. */
static const uint8_t fallback4a[4] = {1, 1, 1, 1}, fallback4b[4] = {8, 8, 8, 8};

static void set_servers(resolver *r, const cfg_ip *servers, size_t n_servers) {
  r->n_servers = 0;
  for (size_t i = 0; i < n_servers && r->n_servers < 8; i++)
    r->servers[r->n_servers++] = servers[i];
  if (!r->n_servers) {
    r->servers[0].family = r->servers[1].family = AF_INET;
    memcpy(r->servers[0].addr, fallback4a, 4);
    memcpy(r->servers[1].addr, fallback4b, 4);
    r->n_servers = 2;
  }
}

resolver *resolver_create(uv_loop_t *loop, struct netif *nif, const cfg_ip *servers,
                          size_t n_servers) {
  resolver *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->nif = nif;
  r->cache = calloc(CACHE_SLOTS, sizeof *r->cache);
  if (!r->cache) return free(r), NULL;
  r->loop = loop;
  set_servers(r, servers, n_servers);
  return r;
}

void resolver_retarget(resolver *r, struct netif *nif, const cfg_ip *servers, size_t n_servers) {
  r->nif = nif;
  set_servers(r, servers, n_servers);
  memset(r->cache, 0, CACHE_SLOTS * sizeof *r->cache);
}

void resolver_destroy(resolver *r) {
  if (!r) return;
  free(r->cache);
  free(r);
}

void resolver_get_stats(const resolver *r, resolver_stats *out) { *out = r->stats; }

/* ---- cache ------------------------------------------------------------------------------ */

static size_t hash_name(const char *s) {
  size_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (size_t)(unsigned char)(*s | 0x20)) * 16777619u;
  return h % CACHE_SLOTS;
}

static cache_entry *cache_find(resolver *r, const char *name) {
  cache_entry *e = &r->cache[hash_name(name)];
  if (!e->name[0] || strcasecmp(e->name, name) != 0) return NULL;
  return e->expires > uv_now(r->loop) ? e : NULL;
}

static void cache_put(resolver *r, const char *name, int status, const resolver_result *res,
                      uint32_t ttl) {
  cache_entry *e = &r->cache[hash_name(name)]; /* direct-mapped: a collision replaces */
  uint32_t max = status == DNS_OK ? POS_TTL_MAX : NEG_TTL_MAX;
  if (ttl > max) ttl = max;
  if (!ttl) return;
  strcpy(e->name, name);
  e->status = status;
  e->res = *res;
  e->expires = uv_now(r->loop) + (uint64_t)ttl * 1000;
}

/* ---- queries ---------------------------------------------------------------------------- */

static void close_sub(subquery *s) {
  if (s->pcb) udp_remove(s->pcb), s->pcb = NULL;
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

static void release(struct resolver_query *q) {
  close_sub(&q->sub[0]);
  close_sub(&q->sub[1]);
  uv_close((uv_handle_t *)&q->timer, on_timer_closed);
}

/* Merge: IPv6 and IPv4 alternating, IPv6 first (RFC 8305 §4). */
static void merge(const struct resolver_query *q, resolver_result *out) {
  const subquery *v6 = &q->sub[0], *v4 = &q->sub[1];
  size_t i6 = 0, i4 = 0;
  out->n = 0;
  while (out->n < RESOLVER_MAX_ADDRS && (i6 < v6->n || i4 < v4->n)) {
    if (i6 < v6->n) out->addrs[out->n++] = v6->ans[i6++];
    if (out->n < RESOLVER_MAX_ADDRS && i4 < v4->n) out->addrs[out->n++] = v4->ans[i4++];
  }
}

static void complete(struct resolver_query *q) {
  if (q->finished) return;
  q->finished = true;
  resolver *r = q->r;
  resolver_result res;
  merge(q, &res);
  int status = DNS_OK;
  uint32_t ttl = q->sub[0].ttl < q->sub[1].ttl ? q->sub[0].ttl : q->sub[1].ttl;
  if (!res.n) {
    /* The more definite answer wins: no such name, then no address, then failure. */
    int a = q->sub[0].status, b = q->sub[1].status;
    status = (a == DNS_ERR_NXDOMAIN || b == DNS_ERR_NXDOMAIN) ? DNS_ERR_NXDOMAIN
             : (a == DNS_ERR_NODATA && b == DNS_ERR_NODATA)   ? DNS_ERR_NODATA
                                                              : DNS_ERR_SERVFAIL;
    r->stats.failures++;
  }
  if (status != DNS_ERR_SERVFAIL) cache_put(r, q->name, status, &res, ttl);
  q->cb(q->ctx, status, &res);
  release(q);
}

static void sub_done(subquery *s, int status) {
  s->done = true;
  s->status = status;
  close_sub(s);
  struct resolver_query *q = s->q;
  /* One family's addresses are enough to start connecting once the other has also answered
   * or failed; an NXDOMAIN ends both. */
  if (status == DNS_ERR_NXDOMAIN || (q->sub[0].done && q->sub[1].done)) complete(q);
}

static void on_udp(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                   u16_t port) {
  subquery *s = arg;
  uint8_t buf[UDP_MAX];
  size_t len = pbuf_copy_partial(p, buf, sizeof buf, 0);
  pbuf_free(p);
  if (s->done || port != 53) return;
  s->n = 0;
  int st = dns_parse_response(buf, len, s->id, s->q->name, s->qtype, s->ans, &s->n, &s->ttl);
  if (st == DNS_ERR_MISMATCH || st == DNS_ERR_MALFORMED) return; /* not ours: keep waiting */
  sub_done(s, st);
}

static void send_sub(resolver *r, subquery *s, int try) {
  if (s->done) return;
  close_sub(s); /* a fresh port and id per try */
  const cfg_ip *srv = &r->servers[(size_t)try % r->n_servers];
  s->pcb = udp_new_ip_type(srv->family == AF_INET6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
  if (!s->pcb) return;
  if (r->nif) udp_bind_netif(s->pcb, r->nif);
  udp_recv(s->pcb, on_udp, s);
  uint16_t id;
  rng_bytes(rng_fast(), &id, sizeof id);
  s->id = id;
  uint8_t msg[DNS_MAX_NAME + 32];
  int len = dns_build_query(s->id, s->q->name, s->qtype, msg, sizeof msg);
  struct pbuf *p = len > 0 ? pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM) : NULL;
  if (!p) return;
  memcpy(p->payload, msg, (size_t)len);
  ip_addr_t dst;
  ipstack_ip_from_bytes(&dst, srv->family, srv->addr);
  udp_sendto(s->pcb, p, &dst, 53);
  pbuf_free(p);
  r->stats.queries++;
}

static void on_retry(uv_timer_t *t) {
  struct resolver_query *q = t->data;
  if (++q->tries >= MAX_TRIES) {
    for (int i = 0; i < 2; i++)
      if (!q->sub[i].done) q->sub[i].done = true, q->sub[i].status = DNS_ERR_SERVFAIL;
    complete(q);
    return;
  }
  for (int i = 0; i < 2; i++) send_sub(q->r, &q->sub[i], q->tries);
  uv_timer_start(&q->timer, on_retry, retry_ms[q->tries], 0);
}

static bool literal(const char *name, resolver_result *res) {
  cfg_ip ip;
  if (cfg_parse_ip(name, &ip) != 0) return false;
  res->n = 1;
  res->addrs[0].family = ip.family;
  memcpy(res->addrs[0].addr, ip.addr, 16);
  res->addrs[0].ttl = 0;
  return true;
}

resolver_query *resolver_lookup(resolver *r, const char *name, resolver_cb cb, void *ctx) {
  resolver_result res = {0};
  if (literal(name, &res)) {
    cb(ctx, DNS_OK, &res);
    return NULL;
  }
  if (!dns_name_valid(name) || strlen(name) > DNS_MAX_NAME) {
    cb(ctx, DNS_ERR_NAME, &res);
    return NULL;
  }
  const cache_entry *e = cache_find(r, name);
  if (e) {
    r->stats.cache_hits++;
    cb(ctx, e->status, &e->res);
    return NULL;
  }
  struct resolver_query *q = calloc(1, sizeof *q);
  if (!q) {
    cb(ctx, DNS_ERR_SERVFAIL, &res);
    return NULL;
  }
  q->r = r;
  strcpy(q->name, name);
  q->cb = cb;
  q->ctx = ctx;
  q->sub[0] = (subquery){.q = q, .qtype = DNS_TYPE_AAAA, .ttl = UINT32_MAX};
  q->sub[1] = (subquery){.q = q, .qtype = DNS_TYPE_A, .ttl = UINT32_MAX};
  uv_timer_init(r->loop, &q->timer);
  q->timer.data = q;
  for (int i = 0; i < 2; i++) send_sub(r, &q->sub[i], 0);
  uv_timer_start(&q->timer, on_retry, retry_ms[0], 0);
  return q;
}

void resolver_cancel(resolver_query *q) {
  if (!q || q->finished) return;
  q->finished = true;
  release(q);
}
