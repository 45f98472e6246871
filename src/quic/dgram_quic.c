#include "quic/dgram_quic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "quic/quic_proto.h"

typedef struct qopener qopener;

typedef struct {
  dgram_flow base;
  qopener *o;
  uint64_t id; /* valid while used */
  uint64_t uses;
  uint64_t last_use; /* ms: the last datagram either way (or the close) */
  bool used;
  dgram_recv_cb cb;
  void *ctx;
} qflow;

struct qopener {
  dgram_opener base;
  dgram_quic_send_fn send_fn;
  dgram_quic_clock_fn clock_fn;
  void *ctx;
  size_t n_open;
  size_t next_slot; /* where the search for a free slot starts: spreads the reuse */
  qflow flows[DGRAM_QUIC_FLOWS_MAX];
};

static const dgram_ops quic_ops;

static dgram_flow *q_open(dgram_opener *base, dgram_recv_cb cb, void *ctx) {
  qopener *o = (qopener *)base;
  if (o->n_open == DGRAM_QUIC_FLOWS_MAX) return NULL;
  uint64_t now = o->clock_fn(o->ctx);
  for (size_t k = 0; k < DGRAM_QUIC_FLOWS_MAX; k++) {
    size_t i = (o->next_slot + k) % DGRAM_QUIC_FLOWS_MAX;
    qflow *f = &o->flows[i];
    if (f->used || (f->uses && now - f->last_use < DGRAM_QUIC_QUIET_MS)) continue;
    f->used = true;
    f->id = i + DGRAM_QUIC_FLOWS_MAX * f->uses++;
    f->cb = cb;
    f->ctx = ctx;
    f->last_use = now;
    o->n_open++;
    o->next_slot = i + 1;
    return &f->base;
  }
  return NULL;
}

static int q_send(dgram_flow *base, const dial_dest *to, const uint8_t *data, size_t len) {
  qflow *f = (qflow *)base;
  if (to->type == DIAL_DEST_NAME) return -1; /* the server drops names: resolve first */
  uint8_t hdr[QP_DGRAM_HDR_MAX];
  size_t hlen = qp_build_dgram_header(f->id, to, hdr, sizeof hdr);
  if (!hlen) return -1;
  f->last_use = f->o->clock_fn(f->o->ctx);
  return f->o->send_fn(f->o->ctx, hdr, hlen, data, len);
}

static void q_close(dgram_flow *base) {
  qflow *f = (qflow *)base;
  f->used = false;
  f->last_use = f->o->clock_fn(f->o->ctx);
  f->cb = NULL;
  f->ctx = NULL;
  f->o->n_open--;
}

void dgram_quic_input(dgram_opener *base, const uint8_t *frame, size_t len) {
  qopener *o = (qopener *)base;
  uint64_t id;
  dial_dest from;
  size_t hlen;
  if (qp_parse_dgram(frame, len, &id, &from, &hlen) != QP_DONE) return;
  if (from.type == DIAL_DEST_NAME) return; /* a source is always an address */
  qflow *f = &o->flows[id % DGRAM_QUIC_FLOWS_MAX];
  if (!f->used || f->id != id) return;
  f->last_use = o->clock_fn(o->ctx);
  f->cb(f->ctx, &from, frame + hlen, len - hlen);
}

size_t dgram_quic_open_flows(const dgram_opener *base) { return ((const qopener *)base)->n_open; }

static void q_destroy(dgram_opener *base) { free(base); }

static const dgram_ops quic_ops = {q_open, q_send, q_close, q_destroy, "quic"};

dgram_opener *dgram_quic_new(dgram_quic_send_fn send_fn, dgram_quic_clock_fn clock_fn, void *ctx) {
  qopener *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->base.ops = &quic_ops;
  o->send_fn = send_fn;
  o->clock_fn = clock_fn;
  o->ctx = ctx;
  for (size_t i = 0; i < DGRAM_QUIC_FLOWS_MAX; i++) {
    o->flows[i].base.ops = &quic_ops;
    o->flows[i].o = o;
  }
  return &o->base;
}
