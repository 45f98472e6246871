/* One probe of one server (server_set.h): a TCP connection through that server's own tunnel to
 * its tunnel address, port 1080, then the SOCKS5 greeting offering "no authentication". What
 * comes back classifies the server's SOCKS service, the connection's round trip is its RTT, and
 * anything at all (a refusal too) proves the tunnel alive. It always uses the lwIP path: a
 * connection attempt is what any client's traffic looks like, and it measures the tunnel alone. */
#include <stdlib.h>
#include <string.h>

#include "client/server_set_internal.h"
#include "util/log.h"

struct server_probe {
  srv *v;
  dial_req *req;
  stream *s;
  uv_timer_t timer;    /* the connect's deadline, then the SOCKS answer's */
  uint64_t started_ns; /* when the dial, then the greeting, went out */
  double rtt_ms;
  uint8_t got[2];
  size_t n_got;
};

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

/* Ends the probe: what it still holds is let go, and the timer's close frees the object. */
static void release(server_probe *p) {
  p->v->probe = NULL;
  if (p->req) dial_cancel(p->req);
  if (p->s) {
    p->s->user = NULL;
    stream_close(p->s);
  }
  uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

static void finish(server_probe *p, bool ok, socks_class cls) {
  srv *v = p->v;
  double rtt = p->rtt_ms;
  release(p);
  server_set_probed(v, ok, rtt, cls);
}

static void on_deadline(uv_timer_t *t) {
  server_probe *p = t->data;
  /* Connected but no SOCKS answer: the tunnel works, whatever listens does not speak. */
  if (p->s) {
    LOG_D("client", "probe_no_answer", "server", p->v->name, NULL);
    return finish(p, true, SOCKS_CLASS_NOT_A_PROXY);
  }
  finish(p, false, SOCKS_CLASS_UNKNOWN);
}

/* The greeting's round trip is one tunnel RTT, free of a handshake the connect may have waited
 * for, so it replaces the connect's time as the server's RTT. */
static void note_answer_rtt(server_probe *p) {
  p->rtt_ms = (double)(uv_hrtime() - p->started_ns) / 1e6;
}

static socks_class classify(const uint8_t *b, size_t n) {
  if (n < 2 || b[0] != 5) return SOCKS_CLASS_NOT_A_PROXY;
  if (b[1] == 0) return SOCKS_CLASS_VALID;
  return b[1] == 0xFF ? SOCKS_CLASS_AUTH_REQUIRED : SOCKS_CLASS_NOT_A_PROXY;
}

static void on_read(stream *s, const uint8_t *data, size_t len) {
  server_probe *p = s->user;
  if (!p) return;
  if (len == 0) { /* closed early */
    LOG_D("client", "probe_closed", "server", p->v->name, "bytes", p->n_got ? "1" : "0", NULL);
    return finish(p, true, classify(p->got, p->n_got));
  }
  if (p->n_got == 0) note_answer_rtt(p);
  size_t take = len < 2 - p->n_got ? len : 2 - p->n_got;
  memcpy(p->got + p->n_got, data, take);
  p->n_got += take;
  if (p->n_got < 2) return;
  if (log_enabled(LOG_DEBUG)) {
    char hex[8];
    snprintf(hex, sizeof hex, "%02x%02x", p->got[0], p->got[1]);
    LOG_D("client", "probe_answer", "server", p->v->name, "bytes", hex, NULL);
  }
  finish(p, true, classify(p->got, 2));
}

static void on_error(stream *s, int err) {
  server_probe *p = s->user;
  if (!p) return;
  LOG_D("client", "probe_error", "server", p->v->name, "error", uv_strerror(err), NULL);
  finish(p, true, p->n_got ? classify(p->got, p->n_got) : SOCKS_CLASS_NOT_A_PROXY);
}

static void on_closed(stream *s) { (void)s; }
static void on_nothing(stream *s) { (void)s; }

static void on_dialed(void *ctx, stream *s, dial_error err, const char *reason) {
  server_probe *p = ctx;
  p->req = NULL;
  p->rtt_ms = (double)(uv_hrtime() - p->started_ns) / 1e6;
  if (!s) {
    /* A refusal (RST) or an ICMP error came back through the tunnel: it is alive. */
    if (err == DIAL_ERR_REFUSED || err == DIAL_ERR_HOST_UNREACHABLE ||
        err == DIAL_ERR_NET_UNREACHABLE || err == DIAL_ERR_NOT_ALLOWED)
      return finish(p, true, SOCKS_CLASS_NOT_LISTENING);
    LOG_D("client", "probe_failed", "server", p->v->name, "reason", reason, NULL);
    return finish(p, false, SOCKS_CLASS_UNKNOWN);
  }
  p->s = s;
  s->user = p;
  s->on_read = on_read;
  s->on_error = on_error;
  s->on_closed = on_closed;
  s->on_drain = on_nothing;
  s->on_shutdown = on_nothing;
  static const uint8_t greeting[3] = {5, 1, 0};
  /* The answer gets its own PROBE_TIMEOUT_MS: a connect that waited for a handshake on a slow
   * path must not leave it a fraction of a second and misclassify the service. */
  p->started_ns = uv_hrtime();
  uv_timer_start(&p->timer, on_deadline, PROBE_TIMEOUT_MS, 0);
  stream_read_start(s);
  if (stream_write(s, greeting, sizeof greeting) != 0) {
    LOG_D("client", "probe_write_failed", "server", p->v->name, NULL);
    finish(p, true, SOCKS_CLASS_NOT_A_PROXY);
  }
}

void server_probe_start(srv *v) {
  dial_dest d;
  if (v->probe || !upstream_service_dest(&v->up, PROBE_PORT, &d)) return;
  server_probe *p = calloc(1, sizeof *p);
  if (!p) return;
  p->v = v;
  p->started_ns = uv_hrtime();
  uv_timer_init(v->set->loop, &p->timer);
  p->timer.data = p;
  v->probe = p;
  p->req = dialer_start(v->up.dl_ip, &d, on_dialed, p);
  if (!p->req) {
    v->probe = NULL;
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    return;
  }
  uv_timer_start(&p->timer, on_deadline, PROBE_TIMEOUT_MS, 0);
}

void server_probe_cancel(srv *v) {
  if (v->probe) release(v->probe);
}
