#include "stream/dialer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stream/stream_lwip.h"

#define STAGGER_MS 250 /* RFC 8305 "Connection Attempt Delay" */

typedef struct {
  struct dial_req *d;
  stream *s;
} attempt;

struct dial_req {
  dialer_env env;
  socks_addr dst;
  dial_cb cb;
  void *ctx;
  resolver_query *rq;
  dns_answer addrs[RESOLVER_MAX_ADDRS];
  size_t n, next, in_flight;
  attempt att[RESOLVER_MAX_ADDRS];
  uv_timer_t stagger, deadline, tunnel_wait;
  int open_handles;
  bool done, cancelled;
  uint64_t started; /* uv_hrtime at dial_start: the tunnel is alive if a packet came since */
  bool late_probe;  /* the tunnel-wait check asked for a fresh proof of life */
  stream *result;
  uint8_t rep;
  const char *reason;
};

static void on_handle_closed(uv_handle_t *h) {
  struct dial_req *d = h->data;
  if (--d->open_handles) return;
  if (!d->cancelled) d->cb(d->ctx, d->result, d->rep, d->reason);
  else if (d->result) stream_close(d->result);
  free(d);
}

/* Stops everything; the callback runs once the timers are closed (always asynchronously). */
static void finish(struct dial_req *d, stream *s, uint8_t rep, const char *reason) {
  if (d->done) {
    if (s) stream_close(s);
    return;
  }
  d->done = true;
  d->result = s;
  d->rep = rep;
  d->reason = reason;
  if (d->rq) resolver_cancel(d->rq), d->rq = NULL;
  for (size_t i = 0; i < d->n; i++)
    if (d->att[i].s && d->att[i].s != s) stream_close(d->att[i].s), d->att[i].s = NULL;
  uv_close((uv_handle_t *)&d->stagger, on_handle_closed);
  uv_close((uv_handle_t *)&d->deadline, on_handle_closed);
  uv_close((uv_handle_t *)&d->tunnel_wait, on_handle_closed);
}

static void start_next(struct dial_req *d);

static void on_attempt(void *ctx, stream *s, int status) {
  attempt *a = ctx;
  struct dial_req *d = a->d;
  a->s = NULL;
  d->in_flight--;
  if (status == 0) {
    finish(d, s, SOCKS5_REP_SUCCEEDED, "connected");
    return;
  }
  const char *reason;
  uint8_t rep = socks5_rep_for_uv(status, &reason);
  /* Keep the most telling failure: anything beats a general failure. */
  if (!d->reason || d->rep == SOCKS5_REP_GENERAL_FAILURE) d->rep = rep, d->reason = reason;
  if (d->next < d->n) start_next(d);
  else if (!d->in_flight) finish(d, NULL, d->rep, d->reason);
}

static void start_next(struct dial_req *d) {
  while (d->next < d->n && !d->done) {
    size_t i = d->next++;
    attempt *a = &d->att[i];
    a->d = d;
    d->in_flight++;
    a->s = stream_lwip_connect(d->env.loop, d->addrs[i].family, d->addrs[i].addr, d->dst.port,
                               on_attempt, a);
    if (a->s) return;
    d->in_flight--;
    if (!d->reason) d->rep = SOCKS5_REP_GENERAL_FAILURE, d->reason = "no free connection slots";
  }
  if (!d->in_flight && !d->done) finish(d, NULL, d->rep, d->reason ? d->reason : "no address");
}

static void on_stagger(uv_timer_t *t) {
  struct dial_req *d = t->data;
  if (d->next < d->n) {
    start_next(d);
    uv_timer_start(&d->stagger, on_stagger, STAGGER_MS, 0);
  }
}

static void begin_attempts(struct dial_req *d) {
  start_next(d);
  if (!d->done && d->next < d->n) uv_timer_start(&d->stagger, on_stagger, STAGGER_MS, 0);
}

/* Up = a usable session and proof of life since this dial began (tunnel_probe asked for it). */
static bool tunnel_alive(const struct dial_req *d) {
  return tunnel_is_up(d->env.tun) && tunnel_last_rx(d->env.tun) >= d->started;
}

static void on_deadline(uv_timer_t *t) {
  struct dial_req *d = t->data;
  if (!tunnel_alive(d))
    finish(d, NULL, SOCKS5_REP_GENERAL_FAILURE, "tunnel down: no session with the server");
  else
    finish(d, NULL, SOCKS5_REP_TTL_EXPIRED, "connection timed out");
}

#define LATE_PROBE_MS 1500 /* a round trip plus the server's handshake work, generously */

/* Nothing came back since the dial began. If the last word from the server was recent, no probe
 * was sent at the start: send one now and give it a round trip before calling the tunnel down. */
static void on_tunnel_wait(uv_timer_t *t) {
  struct dial_req *d = t->data;
  if (tunnel_alive(d)) return;
  if (!d->late_probe && tunnel_is_up(d->env.tun)) {
    d->late_probe = true;
    d->started = uv_hrtime();
    tunnel_probe(d->env.tun, true);
    uv_timer_start(&d->tunnel_wait, on_tunnel_wait, LATE_PROBE_MS, 0);
    return;
  }
  finish(d, NULL, SOCKS5_REP_GENERAL_FAILURE, "tunnel down: no session with the server");
}

static void on_resolved(void *ctx, int status, const resolver_result *res) {
  struct dial_req *d = ctx;
  d->rq = NULL;
  if (status != DNS_OK || !res->n) {
    /* A definite answer (or an invalid name) is the name's fault; only a resolver that never
     * answered may mean the tunnel is down. */
    if (status == DNS_ERR_SERVFAIL && !tunnel_alive(d))
      finish(d, NULL, SOCKS5_REP_GENERAL_FAILURE, "tunnel down: no session with the server");
    else
      finish(d, NULL, SOCKS5_REP_HOST_UNREACHABLE,
             status == DNS_ERR_NXDOMAIN ? "name does not exist"
             : status == DNS_ERR_NODATA ? "name has no address"
             : status == DNS_ERR_NAME   ? "not a valid DNS name"
                                        : "name resolution failed");
    return;
  }
  d->n = res->n;
  memcpy(d->addrs, res->addrs, res->n * sizeof *res->addrs);
  begin_attempts(d);
}

static void on_start(uv_timer_t *t) {
  struct dial_req *d = t->data;
  if (d->dst.type != SOCKS_ADDR_DOMAIN) {
    begin_attempts(d);
    return;
  }
  d->rq = resolver_lookup(d->env.res, d->dst.domain, on_resolved, d);
}

dial_req *dial_start(const dialer_env *env, const socks_addr *dst, dial_cb cb, void *ctx) {
  struct dial_req *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->env = *env;
  d->dst = *dst;
  d->cb = cb;
  d->ctx = ctx;
  d->rep = SOCKS5_REP_GENERAL_FAILURE;
  if (dst->type != SOCKS_ADDR_DOMAIN) {
    d->n = 1;
    d->addrs[0].family = dst->type == SOCKS_ADDR_IPV4 ? AF_INET : AF_INET6;
    memcpy(d->addrs[0].addr, dst->ip, dst->type == SOCKS_ADDR_IPV4 ? 4 : 16);
  }
  uv_timer_t *timers[] = {&d->stagger, &d->deadline, &d->tunnel_wait};
  for (int i = 0; i < 3; i++) uv_timer_init(env->loop, timers[i]), timers[i]->data = d;
  d->open_handles = 3;
  d->started = uv_hrtime();
  tunnel_probe(env->tun, false);
  uv_timer_start(&d->deadline, on_deadline, env->connect_timeout_ms, 0);
  if (env->tunnel_wait_ms < env->connect_timeout_ms)
    uv_timer_start(&d->tunnel_wait, on_tunnel_wait, env->tunnel_wait_ms, 0);
  uv_timer_start(&d->stagger, on_start, 0, 0); /* so that cb never runs inside dial_start */
  return d;
}

void dial_cancel(dial_req *d) {
  d->cancelled = true;
  finish(d, NULL, 0, NULL);
}
