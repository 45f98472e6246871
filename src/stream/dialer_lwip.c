#include "stream/dialer_lwip.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stream/dial_error.h"
#include "stream/stream_lwip.h"

#define STAGGER_MS 250 /* RFC 8305 "Connection Attempt Delay" */

typedef struct {
  dialer base;
  dialer_lwip_env env;
} lwip_dialer;

typedef struct lwip_req lwip_req;

typedef struct {
  lwip_req *d;
  stream *s;
} attempt;

struct lwip_req {
  dial_req base;
  dialer_lwip_env env; /* a copy: a request never needs its dialer */
  dial_dest dst;
  dial_cb cb;
  void *ctx;
  resolver_query *rq;
  dns_answer addrs[RESOLVER_MAX_ADDRS];
  size_t n, next, in_flight;
  attempt att[RESOLVER_MAX_ADDRS];
  uv_timer_t stagger, deadline, tunnel_wait, probe;
  int open_handles;
  bool done, cancelled;
  uint64_t started;  /* uv_hrtime at start: the tunnel is alive if a packet came since */
  uint64_t probe_at; /* uv_hrtime when a handshake probe was sent (0 = none): the TunnelWait
                      * check then sends no second one */
  stream *result;
  dial_error err;
  const char *reason;
};

static const char *const TUNNEL_DOWN_REASON = "tunnel down: no session with the server";

static void on_handle_closed(uv_handle_t *h) {
  lwip_req *d = h->data;
  if (--d->open_handles) return;
  if (!d->cancelled)
    d->cb(d->ctx, d->result, d->err, d->reason);
  else if (d->result)
    stream_close(d->result);
  free(d);
}

/* Stops everything; the callback runs once the timers are closed (always asynchronously). */
static void finish(lwip_req *d, stream *s, dial_error err, const char *reason) {
  if (d->done) {
    if (s) stream_close(s);
    return;
  }
  d->done = true;
  d->result = s;
  d->err = err;
  d->reason = reason;
  if (d->rq) resolver_cancel(d->rq), d->rq = NULL;
  for (size_t i = 0; i < d->n; i++)
    if (d->att[i].s && d->att[i].s != s) stream_close(d->att[i].s), d->att[i].s = NULL;
  uv_close((uv_handle_t *)&d->stagger, on_handle_closed);
  uv_close((uv_handle_t *)&d->deadline, on_handle_closed);
  uv_close((uv_handle_t *)&d->tunnel_wait, on_handle_closed);
  uv_close((uv_handle_t *)&d->probe, on_handle_closed);
}

static void start_next(lwip_req *d);

/* Up = a usable session and proof of life since this dial began: the SYN's answer, a DNS reply,
 * or the answer to a probe. */
static bool tunnel_alive(const lwip_req *d) {
  return tunnel_is_up(d->env.tun) && tunnel_last_rx(d->env.tun) >= d->started;
}

static void on_attempt(void *ctx, stream *s, int status) {
  attempt *a = ctx;
  lwip_req *d = a->d;
  a->s = NULL;
  d->in_flight--;
  if (status == 0) {
    finish(d, s, DIAL_OK, "connected");
    return;
  }
  dial_error err = dial_error_from_uv(status);
  /* A SYN that nothing answered, with nothing else heard from the tunnel either: the tunnel is
   * what failed, not the destination. */
  if (err == DIAL_ERR_TIMEOUT && !tunnel_alive(d)) err = DIAL_ERR_TUNNEL_DOWN;
  /* Keep the most telling failure: anything beats a general failure. */
  if (!d->reason || d->err == DIAL_ERR_GENERAL) d->err = err, d->reason = dial_error_reason(err);
  if (d->next < d->n)
    start_next(d);
  else if (!d->in_flight)
    finish(d, NULL, d->err, d->reason);
}

static void start_next(lwip_req *d) {
  while (d->next < d->n && !d->done) {
    size_t i = d->next++;
    attempt *a = &d->att[i];
    a->d = d;
    d->in_flight++;
    a->s = stream_lwip_connect(d->env.loop, ipstack_netif(tunnel_ipstack(d->env.tun)),
                               d->addrs[i].family, d->addrs[i].addr, d->dst.port, on_attempt, a);
    if (a->s) return;
    d->in_flight--;
    if (!d->reason) d->err = DIAL_ERR_GENERAL, d->reason = "no free connection slots";
  }
  if (!d->in_flight && !d->done) finish(d, NULL, d->err, d->reason ? d->reason : "no address");
}

static void on_stagger(uv_timer_t *t) {
  lwip_req *d = t->data;
  if (d->next < d->n) {
    start_next(d);
    uv_timer_start(&d->stagger, on_stagger, STAGGER_MS, 0);
  }
}

static void begin_attempts(lwip_req *d) {
  start_next(d);
  if (!d->done && d->next < d->n) uv_timer_start(&d->stagger, on_stagger, STAGGER_MS, 0);
}

static void on_deadline(uv_timer_t *t) {
  lwip_req *d = t->data;
  if (!tunnel_alive(d))
    finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, TUNNEL_DOWN_REASON);
  else
    finish(d, NULL, DIAL_ERR_TIMEOUT, "connection timed out");
}

#define LATE_PROBE_MS 1500 /* a round trip plus the server's handshake work, generously */

/* No answer of any kind for a round trip and a second since the dial began: the session may be
 * dead (a restarted server forgot it), so a handshake is now the right probe. A live tunnel has
 * answered the SYN (or the DNS query) long before: connections never cost a handshake. */
static void on_probe(uv_timer_t *t) {
  lwip_req *d = t->data;
  if (tunnel_alive(d) || !tunnel_is_up(d->env.tun)) return; /* no session: the SYN started one */
  d->probe_at = uv_hrtime(); /* the TunnelWait check needs no second probe */
  tunnel_probe(d->env.tun, true);
}

/* Proof that the server is alive now, not only since the dial began: a packet within the last
 * LATE_PROBE_MS, or a handshake completed after our probe (answered at once, it is already older
 * than LATE_PROBE_MS when TunnelWait comes seconds later). */
static bool tunnel_alive_now(const lwip_req *d) {
  if (!tunnel_alive(d)) return false;
  if (uv_hrtime() - tunnel_last_rx(d->env.tun) < LATE_PROBE_MS * 1000000ull) return true;
  return d->probe_at && tunnel_last_handshake(d->env.tun) >= d->probe_at;
}

/* Nothing came back since the dial began. If the last word from the server was recent, no probe
 * was sent at the start: send one now and give it a round trip before calling the tunnel down. */
static void on_tunnel_wait(uv_timer_t *t) {
  lwip_req *d = t->data;
  /* Heard from lately, not merely since the dial began: a loop that is behind (a sanitizer
   * build, a busy machine) reads datagrams the server sent before a blackhole seconds later. */
  if (tunnel_alive_now(d)) return;
  if (!d->probe_at && tunnel_is_up(d->env.tun)) {
    d->started = d->probe_at = uv_hrtime();
    tunnel_probe(d->env.tun, true);
    uv_timer_start(&d->tunnel_wait, on_tunnel_wait, LATE_PROBE_MS, 0);
    return;
  }
  finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, TUNNEL_DOWN_REASON);
}

static void on_resolved(void *ctx, int status, const resolver_result *res) {
  lwip_req *d = ctx;
  d->rq = NULL;
  if (status != DNS_OK || !res->n) {
    /* A definite answer (or an invalid name) is the name's fault; only a resolver that never
     * answered may mean the tunnel is down. */
    if (status == DNS_ERR_SERVFAIL && !tunnel_alive(d))
      finish(d, NULL, DIAL_ERR_TUNNEL_DOWN, TUNNEL_DOWN_REASON);
    else
      finish(d, NULL, DIAL_ERR_NAME_NOT_FOUND,
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
  lwip_req *d = t->data;
  if (d->dst.type != DIAL_DEST_NAME) {
    begin_attempts(d);
    return;
  }
  d->rq = resolver_lookup(d->env.res, d->dst.name, on_resolved, d);
}

static dial_req *lwip_start(dialer *dl, const dial_dest *dst, dial_cb cb, void *ctx) {
  const dialer_lwip_env *env = &((lwip_dialer *)dl)->env;
  lwip_req *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->base.ops = dl->ops;
  d->env = *env;
  d->dst = *dst;
  d->cb = cb;
  d->ctx = ctx;
  d->err = DIAL_ERR_GENERAL;
  if (dst->type != DIAL_DEST_NAME) {
    d->n = 1;
    d->addrs[0].family = dst->type == DIAL_DEST_IPV4 ? AF_INET : AF_INET6;
    memcpy(d->addrs[0].addr, dst->ip, dst->type == DIAL_DEST_IPV4 ? 4 : 16);
  }
  uv_timer_t *timers[] = {&d->stagger, &d->deadline, &d->tunnel_wait, &d->probe};
  for (int i = 0; i < 4; i++) uv_timer_init(env->loop, timers[i]), timers[i]->data = d;
  d->open_handles = 4;
  d->started = uv_hrtime();
  uv_timer_start(&d->probe, on_probe, tunnel_probe_delay_ms(env->tun), 0);
  uv_timer_start(&d->deadline, on_deadline, env->connect_timeout_ms, 0);
  if (env->tunnel_wait_ms < env->connect_timeout_ms)
    uv_timer_start(&d->tunnel_wait, on_tunnel_wait, env->tunnel_wait_ms, 0);
  uv_timer_start(&d->stagger, on_start, 0, 0); /* so that cb never runs inside start */
  return &d->base;
}

static void lwip_cancel(dial_req *r) {
  lwip_req *d = (lwip_req *)r;
  d->cancelled = true;
  finish(d, NULL, DIAL_OK, NULL);
}

static void lwip_destroy(dialer *dl) { free(dl); }

static const dialer_ops lwip_dialer_ops = {lwip_start, lwip_cancel, lwip_destroy, "lwip"};

dialer *dialer_lwip_new(const dialer_lwip_env *env) {
  lwip_dialer *dl = calloc(1, sizeof *dl);
  if (!dl) return NULL;
  dl->base.ops = &lwip_dialer_ops;
  dl->env = *env;
  return &dl->base;
}
