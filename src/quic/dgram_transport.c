#include "quic/dgram_transport.h"

#include <stdlib.h>

#include "quic/dgram_quic.h"

typedef struct {
  dgram_opener base;
  dgram_opener *ip;
  dgram_opener *quic; /* owned */
  quic_client *qc;
} topener;

/* Flows are those of ip or quic (their ops): this opener only chooses. */
static dgram_flow *t_open(dgram_opener *base, dgram_recv_cb cb, void *ctx) {
  topener *t = (topener *)base;
  if (quic_client_route(t->qc) != QUIC_ROUTE_IP) {
    dgram_flow *f = dgram_open(t->quic, cb, ctx);
    if (f || !quic_client_may_fall_back(t->qc)) return f;
  }
  return dgram_open(t->ip, cb, ctx);
}

static int t_send(dgram_flow *f, const dial_dest *to, const uint8_t *data, size_t len) {
  return -1; /* never called: flows carry their implementation's ops */
}

static void t_close(dgram_flow *f) {}

static void t_destroy(dgram_opener *base) {
  topener *t = (topener *)base;
  quic_client_set_dgram_sink(t->qc, NULL, NULL);
  dgram_opener_destroy(t->quic);
  free(t);
}

static const dgram_ops transport_ops = {t_open, t_send, t_close, t_destroy, "transport"};

static int send_frame(void *ctx, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t len) {
  return quic_client_send_dgram(ctx, hdr, hlen, data, len);
}

static uint64_t clock_ms(void *ctx) { return quic_client_now_ms(ctx); }

static void on_frame(void *ctx, const uint8_t *frame, size_t len) {
  dgram_quic_input(ctx, frame, len);
}

dgram_opener *dgram_transport_new(dgram_opener *ip, quic_client *qc) {
  topener *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->quic = dgram_quic_new(send_frame, clock_ms, qc);
  if (!t->quic) {
    free(t);
    return NULL;
  }
  t->base.ops = &transport_ops;
  t->ip = ip;
  t->qc = qc;
  quic_client_set_dgram_sink(qc, on_frame, t->quic);
  return &t->base;
}
