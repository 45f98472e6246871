#include "exit/exit_quic_udp.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "exit/exit_peer.h"
#include "quic/quic_proto.h"
#include "util/log.h"
#include "util/sockaddr.h"

#define MAX_FLOWS 256 /* per connection */
#define SWEEP_MS 5000

typedef struct qflow qflow;
struct qflow {
  exit_quic_flows *f;
  qflow *next;
  uint64_t id;
  uv_udp_t sock[2]; /* IPv4, IPv6; opened on first use */
  bool open[2];
  uint64_t last_use;
  bool dead;
};

struct exit_quic_flows {
  exit_ctx *x;
  exit_peer *p; /* held */
  exit_quic_reply_fn fn;
  void *ctx;
  qflow *flows;
  size_t n;
  uv_timer_t sweep;
  unsigned handles; /* open uv handles (the sweep timer and the sockets) */
  bool freeing;
  uint8_t rbuf[65536];
};

static void maybe_free(exit_quic_flows *f) {
  if (f->freeing && f->handles == 0) {
    exit_peer_put(f->p);
    free(f);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  qflow *fl = h->data;
  exit_quic_flows *f = fl->f;
  for (int i = 0; i < 2; i++)
    if ((uv_handle_t *)&fl->sock[i] == h) fl->open[i] = false;
  if (!fl->open[0] && !fl->open[1]) free(fl);
  f->handles--;
  maybe_free(f);
}

static void flow_close(exit_quic_flows *f, qflow *fl) {
  fl->dead = true;
  exit_conn_release(f->x, f->p);
  bool any = false;
  for (int i = 0; i < 2; i++) {
    if (!fl->open[i]) continue;
    any = true;
    uv_udp_recv_stop(&fl->sock[i]);
    uv_close((uv_handle_t *)&fl->sock[i], on_handle_closed);
  }
  if (!any) free(fl);
  f->n--;
}

static void on_sweep(uv_timer_t *t) {
  exit_quic_flows *f = t->data;
  uint64_t now = uv_now(f->x->loop);
  for (qflow **pp = &f->flows; *pp;) {
    qflow *fl = *pp;
    if (now - fl->last_use >= EXIT_UDP_IDLE_MS) {
      *pp = fl->next;
      flow_close(f, fl);
    } else {
      pp = &fl->next;
    }
  }
}

exit_quic_flows *exit_quic_flows_new(exit_ctx *x, exit_peer *p, exit_quic_reply_fn fn, void *ctx) {
  exit_quic_flows *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->x = x;
  f->p = p;
  exit_peer_hold(p);
  f->fn = fn;
  f->ctx = ctx;
  uv_timer_init(x->loop, &f->sweep);
  f->sweep.data = f;
  f->handles = 1;
  return f;
}

static void on_sweep_closed(uv_handle_t *h) {
  exit_quic_flows *f = h->data;
  f->handles--;
  maybe_free(f);
}

void exit_quic_flows_free(exit_quic_flows *f) {
  if (!f) return;
  f->freeing = true;
  while (f->flows) {
    qflow *fl = f->flows;
    f->flows = fl->next;
    flow_close(f, fl);
  }
  uv_close((uv_handle_t *)&f->sweep, on_sweep_closed);
}

size_t exit_quic_flows_count(const exit_quic_flows *f) { return f ? f->n : 0; }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  qflow *fl = h->data;
  *buf = uv_buf_init((char *)fl->f->rbuf, sizeof fl->f->rbuf);
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags) {
  qflow *fl = h->data;
  exit_quic_flows *f = fl->f;
  if (n < 0 || !from || fl->dead || f->freeing || (flags & UV_UDP_PARTIAL)) return;
  if (!exit_peer_udp_budget(f->x, f->p, false, (size_t)n)) return;
  dial_dest src;
  memset(&src, 0, sizeof src);
  size_t alen;
  const uint8_t *ip = sockaddr_ip(from, &alen);
  if (!ip) return;
  src.type = alen == 16 ? DIAL_DEST_IPV6 : DIAL_DEST_IPV4;
  memcpy(src.ip, ip, alen);
  if (!(src.port = sockaddr_port(from))) return;
  uint8_t hdr[QP_DGRAM_HDR_MAX];
  size_t hlen = qp_build_dgram_header(fl->id, &src, hdr, sizeof hdr);
  if (!hlen) return;
  fl->last_use = uv_now(f->x->loop);
  f->fn(f->ctx, hdr, hlen, (const uint8_t *)buf->base, (size_t)n);
}

static qflow *flow_get(exit_quic_flows *f, uint64_t id) {
  for (qflow *fl = f->flows; fl; fl = fl->next)
    if (fl->id == id) return fl;
  if (f->n >= MAX_FLOWS || !exit_conn_acquire(f->x, f->p)) return NULL;
  qflow *fl = calloc(1, sizeof *fl);
  if (!fl) {
    exit_conn_release(f->x, f->p);
    return NULL;
  }
  fl->f = f;
  fl->id = id;
  fl->next = f->flows;
  f->flows = fl;
  f->n++;
  if (!uv_is_active((uv_handle_t *)&f->sweep))
    uv_timer_start(&f->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  return fl;
}

static uv_udp_t *flow_socket(exit_quic_flows *f, qflow *fl, int family) {
  int i = family == AF_INET6;
  if (fl->open[i]) return &fl->sock[i];
  if (uv_udp_init_ex(f->x->loop, &fl->sock[i], (unsigned)family) != 0) return NULL;
  fl->sock[i].data = fl;
  fl->open[i] = true;
  f->handles++;
  /* Bound to an ephemeral port by the first send; receiving starts after it. */
  return &fl->sock[i];
}

void exit_quic_flows_input(exit_quic_flows *f, const uint8_t *d, size_t len) {
  if (f->freeing || exit_peer_gone(f->p)) return;
  uint64_t id;
  dial_dest dst;
  size_t hlen;
  if (qp_parse_dgram(d, len, &id, &dst, &hlen) != QP_DONE) return;
  if (dst.type == DIAL_DEST_NAME) return;
  exit_addr to;
  memset(&to, 0, sizeof to);
  to.family = dst.type == DIAL_DEST_IPV6 ? AF_INET6 : AF_INET;
  memcpy(to.a, dst.ip, to.family == AF_INET6 ? 16 : 4);
  if (!exit_permit(f->x, f->p, "udp", &to, dst.port, NULL)) return;
  if (!exit_peer_udp_budget(f->x, f->p, true, len - hlen)) return;
  qflow *fl = flow_get(f, id);
  if (!fl) return;
  uv_udp_t *s = flow_socket(f, fl, to.family);
  if (!s) return;
  struct sockaddr_storage ss;
  exit_addr_to_sockaddr(&to, dst.port, &ss);
  uv_buf_t b = uv_buf_init((char *)d + hlen, (unsigned)(len - hlen));
  uv_udp_try_send(s, &b, 1, (const struct sockaddr *)&ss);
  if (!uv_is_active((uv_handle_t *)s)) uv_udp_recv_start(s, on_alloc, on_recv);
  fl->last_use = uv_now(f->x->loop);
}
