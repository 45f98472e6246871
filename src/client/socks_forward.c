#include "client/socks_forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  dialer base;
  uv_loop_t *loop;
  upstream_pick_fn pick;
  void *ctx;
} fwd_dialer;

/* A request that fails without dialing (no server picked): answered from the loop. */
typedef struct {
  dial_req base;
  uv_timer_t timer;
  dial_cb cb;
  void *ctx;
  const char *reason;
} failed_req;

static void on_failed_closed(uv_handle_t *h) { free(h->data); }

static void on_fail(uv_timer_t *t) {
  failed_req *r = t->data;
  r->cb(r->ctx, NULL, DIAL_ERR_TUNNEL_DOWN, r->reason);
  uv_close((uv_handle_t *)&r->timer, on_failed_closed);
}

static void failed_cancel(dial_req *base) {
  failed_req *r = (failed_req *)base;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_failed_closed);
}

static const dialer_ops failed_ops = {NULL, failed_cancel, NULL, "socks-forward"};

static dial_req *fail_later(fwd_dialer *d, dial_cb cb, void *ctx, const char *reason) {
  failed_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->base.ops = &failed_ops;
  r->cb = cb;
  r->ctx = ctx;
  r->reason = reason;
  uv_timer_init(d->loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_fail, 0, 0);
  return &r->base;
}

/* The request handed out is the picked server's own lwIP dialer request: cancelling it goes
 * straight there. */
static dial_req *fwd_start(dialer *base, const dial_dest *ignored, dial_cb cb, void *ctx) {
  (void)ignored;
  fwd_dialer *d = (fwd_dialer *)base;
  const upstream *u = d->pick(d->ctx);
  if (!u) return fail_later(d, cb, ctx, "no server selected (awgproxy ctl connect)");
  dial_dest dst;
  if (!upstream_service_dest(u, SOCKS_FORWARD_PORT, &dst))
    return fail_later(d, cb, ctx, "the server's tunnel address is unknown (set QuicServer)");
  return dialer_start(u->dl_ip, &dst, cb, ctx);
}

static void fwd_destroy(dialer *d) { free(d); }

static const dialer_ops fwd_ops = {fwd_start, NULL, fwd_destroy, "socks-forward"};

dialer *socks_forward_dialer_new(uv_loop_t *loop, upstream_pick_fn pick, void *ctx) {
  fwd_dialer *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->base.ops = &fwd_ops;
  d->loop = loop;
  d->pick = pick;
  d->ctx = ctx;
  return &d->base;
}

app_config *socks_forward_config(const app_config *cfg) {
  app_config *fc = malloc(sizeof *fc);
  cfg_forward *f = calloc(cfg->n_socks_listen ? cfg->n_socks_listen : 1, sizeof *f);
  if (!fc || !f) return free(fc), free(f), NULL;
  *fc = *cfg;
  for (size_t i = 0; i < cfg->n_socks_listen; i++) {
    f[i].proto = FWD_TCP;
    f[i].listen = cfg->socks_listen[i];
    snprintf(f[i].target.host, sizeof f[i].target.host, "0.0.0.0"); /* ignored: see fwd_start */
    f[i].target.port = SOCKS_FORWARD_PORT;
    f[i].target.host_is_ip = true;
  }
  fc->forwards = f;
  fc->n_forwards = cfg->n_socks_listen;
  return fc;
}

void socks_forward_config_free(app_config *fc) {
  if (!fc) return;
  free(fc->forwards);
  free(fc);
}
