#include "exit/exit_socks_connect.h"

#include <stdlib.h>
#include <string.h>

#include "exit/exit_peer.h"
#include "stream/dial_error.h"
#include "stream/stream_uv.h"

#define MAX_ADDRS 16 /* addresses of one name tried in turn */

typedef struct {
  exit_ctx *x;
  exit_peer *p;
  bool orphan; /* a tunnel client whose address no peer owns (any more): refused */
  bool has_slot;
  dial_dest dst;
  socks_connect_cb cb;
  void *ctx;
  uv_timer_t timer; /* first the asynchronous start, then the connect deadline */
  uv_getaddrinfo_t gai;
  bool gai_pending;
  uv_tcp_t *tcp; /* the attempt in progress (malloc'd) */
  uv_connect_t creq;
  exit_addr addrs[MAX_ADDRS];
  bool checked[MAX_ADDRS]; /* exit_permit already said yes */
  size_t n, next;
  int open;       /* the timer, an attempt's socket, a lookup in flight */
  bool done;      /* cb has run, or the request was cancelled */
  bool held;      /* succeeded: the session holds it until release */
  bool denied;    /* at least one address was refused by the policy */
  dial_error err; /* the most telling connect failure so far */
  const char *reason;
} sreq;

static void maybe_free(sreq *r) {
  if (!r->open && !r->held) free(r);
}

static void on_timer_closed(uv_handle_t *h) {
  sreq *r = h->data;
  r->open--;
  maybe_free(r);
}

static void on_tcp_closed(uv_handle_t *h) {
  sreq *r = h->data;
  free(h);
  r->open--;
  maybe_free(r);
}

static void close_attempt(sreq *r) {
  if (!r->tcp) return;
  r->tcp->data = r;
  uv_close((uv_handle_t *)r->tcp, on_tcp_closed);
  r->tcp = NULL;
}

static void release_slot(sreq *r) {
  if (r->has_slot) exit_conn_release(r->x, r->p), r->has_slot = false;
}

/* Stops everything in progress; what is still open closes from the loop. */
static void teardown(sreq *r) {
  if (!uv_is_closing((uv_handle_t *)&r->timer)) uv_close((uv_handle_t *)&r->timer, on_timer_closed);
  close_attempt(r);
  if (r->gai_pending) uv_cancel((uv_req_t *)&r->gai); /* on_gai still runs, with ECANCELED */
}

static void fail(sreq *r, dial_error err, const char *reason) {
  if (r->done) return;
  r->done = true;
  release_slot(r);
  teardown(r);
  r->cb(r->ctx, NULL, err, reason);
}

static void note_failure(sreq *r, int status) {
  dial_error err = dial_error_from_uv(status);
  const char *why = dial_error_reason(err);
  if (err == DIAL_ERR_NOT_ALLOWED) why = "prohibited by the server's firewall"; /* EACCES/EPERM */
  /* Keep the most telling failure: anything beats a general failure. */
  if (!r->reason || r->err == DIAL_ERR_GENERAL) r->err = err, r->reason = why;
}

static void try_next(sreq *r);

static void on_connected(uv_connect_t *req, int status) {
  sreq *r = req->data;
  if (status == UV_ECANCELED || r->done) return; /* closed by teardown */
  if (status < 0) {
    note_failure(r, status);
    close_attempt(r);
    try_next(r);
    return;
  }
  uv_tcp_t *tcp = r->tcp;
  r->tcp = NULL;
  r->open--; /* the stream owns the socket from here */
  uv_tcp_nodelay(tcp, 1);
  stream *s = stream_uv_wrap(tcp);
  if (!s) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    return fail(r, DIAL_ERR_GENERAL, "out of memory");
  }
  r->done = r->held = true;
  teardown(r);
  r->cb(r->ctx, s, DIAL_OK, "connected");
}

/* Tries the remaining addresses in order; each one is checked against the policy first. */
static void try_next(sreq *r) {
  const char *name = r->dst.type == DIAL_DEST_NAME ? r->dst.name : NULL;
  while (r->next < r->n && !r->done) {
    size_t i = r->next++;
    if (!r->checked[i] && !exit_permit(r->x, r->p, "tcp", &r->addrs[i], r->dst.port, name)) {
      r->denied = true;
      continue;
    }
    r->tcp = malloc(sizeof *r->tcp);
    if (!r->tcp) return fail(r, DIAL_ERR_GENERAL, "out of memory");
    uv_tcp_init(r->x->loop, r->tcp);
    r->open++;
    r->creq.data = r;
    struct sockaddr_storage ss;
    exit_addr_to_sockaddr(&r->addrs[i], r->dst.port, &ss);
    int rc = uv_tcp_connect(&r->creq, r->tcp, (const struct sockaddr *)&ss, on_connected);
    if (!rc) return;
    note_failure(r, rc);
    close_attempt(r);
  }
  if (r->done) return;
  if (r->reason)
    fail(r, r->err, r->reason);
  else if (r->denied)
    fail(r, DIAL_ERR_NOT_ALLOWED, "destination not allowed by the exit policy");
  else
    fail(r, DIAL_ERR_HOST_UNREACHABLE, "no address to connect to");
}

static void on_deadline(uv_timer_t *t) {
  sreq *r = t->data;
  if (r->gai_pending)
    fail(r, DIAL_ERR_NAME_NOT_FOUND, "name resolution timed out");
  else
    fail(r, DIAL_ERR_TIMEOUT, "connection timed out");
}

static const char *gai_reason(int status) {
  switch (status) {
    case UV_EAI_NONAME:
      return "name does not exist";
    case UV_EAI_NODATA:
    case UV_EAI_ADDRFAMILY:
      return "name has no address";
    case UV_EAI_AGAIN:
      return "name resolution failed temporarily";
    default:
      return "name resolution failed";
  }
}

static void add_addr(sreq *r, const struct sockaddr *sa) {
  exit_addr a = {.family = sa->sa_family};
  if (sa->sa_family == AF_INET)
    memcpy(a.a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  else if (sa->sa_family == AF_INET6)
    memcpy(a.a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  else
    return;
  for (size_t i = 0; i < r->n; i++)
    if (exit_addr_equal(&r->addrs[i], &a)) return;
  if (r->n < MAX_ADDRS) r->addrs[r->n++] = a;
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  sreq *r = req->data;
  r->gai_pending = false;
  r->open--;
  if (r->done) {
    uv_freeaddrinfo(res);
    return maybe_free(r);
  }
  if (status < 0) return fail(r, DIAL_ERR_NAME_NOT_FOUND, gai_reason(status));
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    if (ai->ai_addr) add_addr(r, ai->ai_addr);
  uv_freeaddrinfo(res);
  if (!r->n) return fail(r, DIAL_ERR_NAME_NOT_FOUND, "name has no address");
  try_next(r);
}

static bool take_slot(sreq *r) {
  if (!exit_conn_acquire(r->x, r->p)) {
    fail(r, DIAL_ERR_GENERAL, "connection limit reached");
    return false;
  }
  r->has_slot = true;
  return true;
}

/* Runs from the loop (the callback must never run inside connect). Order as in exit_peer.h:
 * the policy first, then a slot, which also keeps the peer valid while we wait. */
static void on_begin(uv_timer_t *t) {
  sreq *r = t->data;
  uv_timer_start(&r->timer, on_deadline, (uint64_t)r->x->cfg->connect_timeout * 1000, 0);
  /* NULL would mean local use (the server-wide policy only), never right for a tunnel client. */
  if (r->orphan) return fail(r, DIAL_ERR_NOT_ALLOWED, "no peer owns the client's tunnel address");
  if (r->dst.type != DIAL_DEST_NAME) {
    r->addrs[0].family = r->dst.type == DIAL_DEST_IPV4 ? AF_INET : AF_INET6;
    memcpy(r->addrs[0].a, r->dst.ip, r->dst.type == DIAL_DEST_IPV4 ? 4 : 16);
    r->n = 1;
    if (!exit_permit(r->x, r->p, "tcp", &r->addrs[0], r->dst.port, NULL))
      return fail(r, DIAL_ERR_NOT_ALLOWED, "destination not allowed by the exit policy");
    r->checked[0] = true;
    if (take_slot(r)) try_next(r);
    return;
  }
  if (!exit_permit_name(r->x, r->p, r->dst.name))
    return fail(r, DIAL_ERR_NOT_ALLOWED, "name not allowed by the exit policy");
  if (!take_slot(r)) return;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  r->gai.data = r;
  if (uv_getaddrinfo(r->x->loop, &r->gai, on_gai, r->dst.name, NULL, &hints) != 0)
    return fail(r, DIAL_ERR_NAME_NOT_FOUND, "name resolution failed");
  r->gai_pending = true;
  r->open++;
}

static bool addr_from_sockaddr(const struct sockaddr_storage *ss, exit_addr *out) {
  memset(out, 0, sizeof *out);
  out->family = ss->ss_family;
  if (ss->ss_family == AF_INET)
    memcpy(out->a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
  else if (ss->ss_family == AF_INET6)
    memcpy(out->a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
  else
    return false;
  return true;
}

static void *sc_connect(void *env, const socks_origin *o, const dial_dest *dst, socks_connect_cb cb,
                        void *ctx) {
  exit_socks_env *e = env;
  sreq *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->x = e->x;
  /* Tunnel clients are judged by their peer's rules; the tunnel already dropped any source
   * outside the peer's AllowedIPs, so the source names the peer. */
  exit_addr src;
  if (e->tunnel) {
    if (addr_from_sockaddr(&o->peer, &src)) r->p = exit_peer_lookup(e->x, &src);
    r->orphan = !r->p;
  }
  r->dst = *dst;
  r->cb = cb;
  r->ctx = ctx;
  uv_timer_init(e->x->loop, &r->timer);
  r->timer.data = r;
  r->open = 1;
  uv_timer_start(&r->timer, on_begin, 0, 0);
  return r;
}

static void sc_cancel(void *req) {
  sreq *r = req;
  if (r->done) return;
  r->done = true;
  release_slot(r);
  teardown(r);
}

static void sc_wrap(void *req, stream **client, stream **remote) {
  sreq *r = req;
  *client = exit_peer_throttle(r->x, r->p, *client, true);
  *remote = exit_peer_throttle(r->x, r->p, *remote, false);
}

static void sc_release(void *req) {
  sreq *r = req;
  release_slot(r);
  r->held = false;
  maybe_free(r);
}

bool exit_socks_request_of(void *req, void *peer) {
  const sreq *r = req;
  return r->p && r->p == peer;
}

socks_connector exit_socks_connector(exit_socks_env *env) {
  return (socks_connector){.env = env,
                           .connect = sc_connect,
                           .cancel = sc_cancel,
                           .wrap = sc_wrap,
                           .release = sc_release};
}
