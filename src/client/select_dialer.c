/* The dialer and UDP opener of a client with several servers: each new stream or flow goes to
 * the selected server (server_set.h). A stream whose server has heard nothing through its tunnel
 * for a round trip plus a second is raced on the best other server that is up; the first to
 * connect wins, the other attempt is cancelled. */
#include <stdlib.h>

#include "client/server_set_internal.h"

/* ---- streams ------------------------------------------------------------------------------ */

typedef struct sel_req sel_req;
typedef struct {
  sel_req *r;
  int server;    /* index in the set */
  dial_req *req; /* running, NULL once it answered */
  bool failed;
  dial_error err;
  const char *reason;
} attempt;

struct sel_req {
  dial_req base;
  server_set *set;
  dial_dest dst;
  dial_cb cb;
  void *ctx;
  attempt a, b; /* the selected server's attempt, and the race's */
  uint64_t started_ns;
  uv_timer_t timer; /* the race's start; or, disconnected, the answer's */
};

typedef struct {
  dialer base;
  server_set *set;
  int fixed; /* SEL_FOLLOW, a server's index, or -1 */
} sel_dialer;

/* The server a new stream or datagram goes to now, -1 for none. */
static int target_of(const server_set *s, int fixed) {
  if (s->disconnected) return -1;
  return fixed == SEL_FOLLOW ? s->selected : fixed;
}

static void on_req_closed(uv_handle_t *h) { free(h->data); }

static void cancel_attempt(attempt *a) {
  if (a->req) dial_cancel(a->req);
  a->req = NULL;
}

static void finish(sel_req *r, stream *s, dial_error err, const char *reason) {
  cancel_attempt(&r->a);
  cancel_attempt(&r->b);
  uv_timer_stop(&r->timer);
  r->cb(r->ctx, s, err, reason);
  uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

static bool running(const attempt *a) { return a->req != NULL; }

static void on_attempt(void *ctx, stream *s, dial_error err, const char *reason) {
  attempt *a = ctx;
  sel_req *r = a->r;
  a->req = NULL;
  if (s) {
    /* finish first: it cancels the other attempt, which leaving a server would otherwise fail
     * under us */
    server_set *set = r->set;
    bool raced = a == &r->b;
    size_t winner = (size_t)a->server;
    finish(r, s, DIAL_OK, NULL);
    if (raced) server_set_race_won(set, winner);
    return;
  }
  a->failed = true;
  a->err = err;
  a->reason = reason;
  attempt *other = a == &r->a ? &r->b : &r->a;
  if (running(other)) return; /* it may still connect */
  /* Both answered (or no race): the selected server's own answer is the one to report. */
  attempt *report = r->a.failed ? &r->a : a;
  finish(r, NULL, report->err, report->reason);
}

static bool start_attempt(sel_req *r, attempt *a, int server) {
  a->r = r;
  a->server = server;
  a->req = dialer_start(r->set->srv[server].up.dl, &r->dst, on_attempt, a);
  return a->req != NULL;
}

/* The race: the selected server has heard nothing since this stream started. */
static void on_race(uv_timer_t *t) {
  sel_req *r = t->data;
  if (!running(&r->a)) return;
  tunnel *tun = r->set->srv[r->a.server].up.tun;
  if (tunnel_last_rx(tun) > r->started_ns) return; /* it answers: just slow */
  int other = server_set_best_other(r->set, r->a.server);
  if (other >= 0) start_attempt(r, &r->b, other);
}

static void on_disconnected(uv_timer_t *t) {
  sel_req *r = t->data;
  finish(r, NULL, DIAL_ERR_TUNNEL_DOWN,
         r->set->disconnected ? "disconnected (awgproxy ctl connect)"
                              : "the user's pinned server is not running");
}

static const dialer_ops sel_ops;

static dial_req *sel_start(dialer *d, const dial_dest *dst, dial_cb cb, void *ctx) {
  server_set *s = ((sel_dialer *)d)->set;
  int fixed = ((sel_dialer *)d)->fixed, target = target_of(s, fixed);
  sel_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->base.ops = &sel_ops;
  r->set = s;
  r->dst = *dst;
  r->cb = cb;
  r->ctx = ctx;
  r->started_ns = uv_hrtime();
  uv_timer_init(s->loop, &r->timer);
  r->timer.data = r;
  if (target < 0) {
    uv_timer_start(&r->timer, on_disconnected, 0, 0);
    return &r->base;
  }
  if (!start_attempt(r, &r->a, target)) {
    uv_close((uv_handle_t *)&r->timer, on_req_closed);
    return NULL;
  }
  /* A pinned user's streams never leave from another server: no race for them. */
  if (fixed == SEL_FOLLOW)
    uv_timer_start(&r->timer, on_race, tunnel_probe_delay_ms(s->srv[target].up.tun), 0);
  return &r->base;
}

static void sel_cancel(dial_req *base) {
  sel_req *r = (sel_req *)base;
  cancel_attempt(&r->a);
  cancel_attempt(&r->b);
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

static void sel_destroy(dialer *d) { free(d); }

static const dialer_ops sel_ops = {sel_start, sel_cancel, sel_destroy, "servers"};

dialer *select_dialer_new(server_set *s, int fixed) {
  sel_dialer *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->base.ops = &sel_ops;
  d->set = s;
  d->fixed = fixed;
  return &d->base;
}

/* ---- UDP flows ---------------------------------------------------------------------------- */

typedef struct {
  dgram_opener base;
  server_set *set;
  int fixed;
} sel_opener;

typedef struct {
  dgram_flow base;
  server_set *set;
  int fixed;
  dgram_recv_cb cb;
  void *ctx;
  int server; /* where inner was opened, -1 = nowhere yet */
  dgram_flow *inner;
} sel_flow;

static const dgram_ops sel_dgram_ops;

static void on_inner_reply(void *ctx, const dial_dest *from, const uint8_t *data, size_t len) {
  sel_flow *f = ctx;
  f->cb(f->ctx, from, data, len);
}

static dgram_flow *f_open(dgram_opener *o, dgram_recv_cb cb, void *ctx) {
  sel_flow *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->base.ops = &sel_dgram_ops;
  f->set = ((sel_opener *)o)->set;
  f->fixed = ((sel_opener *)o)->fixed;
  f->cb = cb;
  f->ctx = ctx;
  f->server = -1;
  return &f->base;
}

/* A flow follows the selection: after a change its datagrams leave through the new server (the
 * old server's flow is closed, its late replies are gone with it). */
static int f_send(dgram_flow *base, const dial_dest *to, const uint8_t *data, size_t len) {
  sel_flow *f = (sel_flow *)base;
  int sel = target_of(f->set, f->fixed);
  if (sel < 0) return -1;
  if (sel != f->server) {
    dgram_close(f->inner);
    f->inner = dgram_open(f->set->srv[sel].up.dg, on_inner_reply, f);
    f->server = f->inner ? sel : -1;
    if (!f->inner) return -1;
  }
  return dgram_send(f->inner, to, data, len);
}

static void f_close(dgram_flow *base) {
  sel_flow *f = (sel_flow *)base;
  dgram_close(f->inner);
  free(f);
}

static void f_destroy(dgram_opener *o) { free(o); }

static const dgram_ops sel_dgram_ops = {f_open, f_send, f_close, f_destroy, "servers"};

dgram_opener *select_dgram_new(server_set *s, int fixed) {
  sel_opener *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->base.ops = &sel_dgram_ops;
  o->set = s;
  o->fixed = fixed;
  return &o->base;
}
