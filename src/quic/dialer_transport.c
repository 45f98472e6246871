#include "quic/dialer_transport.h"

#include <stdlib.h>

typedef struct {
  dialer base;
  dialer *ip;
  quic_client *qc;
} tdialer;

typedef struct {
  dial_req base;
  tdialer *d;
  dial_dest dst;
  dial_cb cb;
  void *ctx;
  quic_dial *qd;
  dial_req *ipd;
} treq;

static void on_ip(void *ctx, stream *s, dial_error err, const char *reason) {
  treq *r = ctx;
  r->ipd = NULL;
  r->cb(r->ctx, s, err, reason);
  free(r);
}

static void on_quic(void *ctx, stream *s, dial_error err, const char *reason) {
  treq *r = ctx;
  r->qd = NULL;
  if (err == DIAL_ERR_TUNNEL_DOWN && quic_client_may_fall_back(r->d->qc)) {
    r->ipd = dialer_start(r->d->ip, &r->dst, on_ip, r);
    if (r->ipd) return;
  }
  r->cb(r->ctx, s, err, reason);
  free(r);
}

static const dialer_ops transport_ops;

static dial_req *t_start(dialer *base, const dial_dest *dst, dial_cb cb, void *ctx) {
  tdialer *d = (tdialer *)base;
  treq *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->base.ops = &transport_ops;
  r->d = d;
  r->dst = *dst;
  r->cb = cb;
  r->ctx = ctx;
  if (quic_client_route(d->qc) != QUIC_ROUTE_IP)
    r->qd = quic_dial_start(d->qc, dst, on_quic, r);
  else
    r->ipd = dialer_start(d->ip, dst, on_ip, r);
  if (!r->qd && !r->ipd) {
    free(r);
    return NULL;
  }
  return &r->base;
}

static void t_cancel(dial_req *base) {
  treq *r = (treq *)base;
  if (r->qd) quic_dial_cancel(r->qd);
  if (r->ipd) dial_cancel(r->ipd);
  free(r);
}

static void t_destroy(dialer *base) { free(base); }

static const dialer_ops transport_ops = {t_start, t_cancel, t_destroy, "transport"};

dialer *dialer_transport_new(dialer *ip, quic_client *qc) {
  tdialer *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->base.ops = &transport_ops;
  d->ip = ip;
  d->qc = qc;
  return &d->base;
}
