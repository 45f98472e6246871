#include "socks/socks_server.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/streams.h"
#include "socks/udp_assoc.h"
#include "stream/relay.h"
#include "stream/stream_uv.h"
#include "util/log.h"

#define HS_BUF 1100 /* greeting + auth + the longest request (SOCKS4a: 8 + 256 + 256) */
#define MAX_LISTENERS 16

typedef enum {
  ST_GREETING,
  ST_AUTH,
  ST_REQUEST,
  ST_AUTH_CHECK,
  ST_DIALING,
  ST_UDP, /* UDP ASSOCIATE: the TCP connection only keeps the association alive */
  ST_DONE
} sess_state;

typedef struct {
  uv_tcp_t tcp;
  struct socks_server *srv;
} listener;

struct socks_server {
  uv_loop_t *loop;
  const awg_config *cfg;
  dialer_env env;
  listener lst[MAX_LISTENERS];
  size_t n_lst, closing;
  socks_stats stats;
  bool stopping;
};

typedef struct {
  struct socks_server *srv;
  stream *client;
  uv_timer_t timer; /* handshake timeout */
  bool timer_closed;
  sess_state st;
  int version;
  uint8_t buf[HS_BUF];
  size_t len;
  socks_addr dst;
  dial_req *dial;
  udp_assoc *udp;
  socks5_userpass up;
  uv_work_t work;
  bool auth_ok, closing_client, work_pending;
  char sid[OBS_SID_LEN + 1]; /* random id tying this connection's log events together */
} session;

/* ---- session lifetime ------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  session *s = h->data;
  s->timer_closed = true;
  if (!s->client && !s->work_pending) free(s);
}

static void end_handshake_timer(session *s) {
  if (!uv_is_closing((uv_handle_t *)&s->timer)) uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void on_client_closed(stream *c) {
  session *s = c->user;
  s->client = NULL;
  s->srv->stats.active--;
  if (s->timer_closed && !s->work_pending) free(s);
}

/* Ends a session that never reached the relay. */
static void abort_session(session *s) {
  s->st = ST_DONE;
  if (s->dial) dial_cancel(s->dial), s->dial = NULL;
  if (s->udp) udp_assoc_stop(s->udp), s->udp = NULL, obs_stream_closed(OBS_STREAM_SOCKS_UDP);
  sodium_memzero(&s->up, sizeof s->up);
  end_handshake_timer(s);
  if (s->client && !s->closing_client) {
    s->closing_client = true;
    stream_close(s->client);
  }
}

/* A failure reply has been flushed: the session is over. */
static void on_client_shutdown(stream *c) { abort_session(c->user); }

static void count_reply(session *s, uint8_t rep) {
  if (rep < 9) s->srv->stats.replies[rep]++;
}

/* Sends a failure reply, then closes once it is flushed. */
static void fail(session *s, uint8_t rep5, const char *reason) {
  uint8_t out[262];
  size_t n;
  count_reply(s, rep5);
  if (s->version == 4) n = socks4_build_reply(SOCKS4_REP_REJECTED, NULL, out);
  else n = socks5_build_reply(rep5, NULL, out, sizeof out);
  if (log_enabled(LOG_DEBUG)) {
    char dst[300];
    socks_addr_format(&s->dst, dst, sizeof dst);
    LOG_D("socks", "request_failed", "sid", s->sid, "dst", dst, "reply", socks5_rep_name(rep5),
          "reason", reason, NULL);
  } else {
    LOG_I("socks", "request_failed", "sid", s->sid, "reply", socks5_rep_name(rep5), "reason",
          reason, NULL);
  }
  stream_write(s->client, out, n);
  stream_shutdown(s->client);
  s->st = ST_DONE;
  end_handshake_timer(s);
  if (s->dial) dial_cancel(s->dial), s->dial = NULL;
  /* on_client_shutdown closes the session once the reply is flushed. */
}

/* ctx: the session id, heap-allocated (the session is gone while the relay runs), or NULL. */
static void on_relay_done(void *ctx, const relay_result *r) {
  obs_stream_closed(OBS_STREAM_SOCKS_TCP);
  if (log_enabled(LOG_DEBUG)) {
    char up[24], down[24];
    snprintf(up, sizeof up, "%llu", (unsigned long long)r->a_to_b);
    snprintf(down, sizeof down, "%llu", (unsigned long long)r->b_to_a);
    LOG_D("socks", "stream_closed", "sid", ctx ? (const char *)ctx : "-", "bytes_up", up,
          "bytes_down", down, "idle_timeout", r->idle_timeout ? "yes" : "no", "error",
          r->error ? uv_err_name(r->error) : "none", NULL);
  }
  free(ctx);
}

/* ---- connecting ------------------------------------------------------------------------- */

static void on_dialed(void *ctx, stream *remote, uint8_t rep, const char *reason) {
  session *s = ctx;
  s->dial = NULL;
  if (!remote) return fail(s, rep, reason);
  uint8_t out[262];
  size_t n = s->version == 4 ? socks4_build_reply(SOCKS4_REP_GRANTED, NULL, out)
                             : socks5_build_reply(SOCKS5_REP_SUCCEEDED, NULL, out, sizeof out);
  count_reply(s, SOCKS5_REP_SUCCEEDED);
  stream_write(s->client, out, n);
  if (s->len) stream_write(remote, s->buf, s->len); /* data the client sent ahead of the reply */
  s->len = 0;
  s->st = ST_DONE;
  end_handshake_timer(s);
  if (log_enabled(LOG_DEBUG)) {
    char dst[300];
    socks_addr_format(&s->dst, dst, sizeof dst);
    LOG_D("socks", "connected", "sid", s->sid, "dst", dst, NULL);
  }
  stream *client = s->client;
  /* The relay owns both streams from here; keep the session until the client handle closes. */
  char *sid = strdup(s->sid);
  obs_stream_opened(OBS_STREAM_SOCKS_TCP);
  relay *r = relay_start(s->srv->loop, client, remote, (uint64_t)s->srv->cfg->idle_timeout * 1000,
                         on_relay_done, sid);
  if (!r) obs_stream_closed(OBS_STREAM_SOCKS_TCP), free(sid);
  s->client = NULL;
  s->srv->stats.active--;
  if (s->timer_closed) free(s);
  else s->st = ST_DONE; /* freed by on_timer_closed */
}

static void start_connect(session *s) {
  s->st = ST_DIALING;
  stream_read_stop(s->client);
  s->dial = dial_start(&s->srv->env, &s->dst, on_dialed, s);
  if (!s->dial) fail(s, SOCKS5_REP_GENERAL_FAILURE, "out of memory");
}

/* ---- handshake -------------------------------------------------------------------------- */

static void consume(session *s, size_t n) {
  memmove(s->buf, s->buf + n, s->len - n);
  s->len -= n;
}

static void reply_method(session *s, uint8_t m) {
  uint8_t out[2] = {5, m};
  stream_write(s->client, out, 2);
}

static void start_udp(session *s) {
  uv_tcp_t *tcp = stream_uv_handle(s->client);
  struct sockaddr_storage local, peer;
  int ll = sizeof local, pl = sizeof peer;
  char err[200];
  if (uv_tcp_getsockname(tcp, (struct sockaddr *)&local, &ll) ||
      uv_tcp_getpeername(tcp, (struct sockaddr *)&peer, &pl))
    return fail(s, SOCKS5_REP_GENERAL_FAILURE, "cannot read the connection's addresses");
  socks_addr bnd;
  s->udp = udp_assoc_start(s->srv->loop, s->srv->env.res, (struct sockaddr *)&local,
                           (struct sockaddr *)&peer, &s->dst, &bnd, err, sizeof err);
  if (!s->udp) return fail(s, SOCKS5_REP_GENERAL_FAILURE, "UDP relay unavailable");
  uint8_t out[262];
  size_t n = socks5_build_reply(SOCKS5_REP_SUCCEEDED, &bnd, out, sizeof out);
  count_reply(s, SOCKS5_REP_SUCCEEDED);
  stream_write(s->client, out, n);
  s->st = ST_UDP;
  obs_stream_opened(OBS_STREAM_SOCKS_UDP);
  end_handshake_timer(s);
  LOG_D("socks", "udp_associate", "sid", s->sid, NULL);
}

static void handle_v5_request(session *s, const socks5_request *rq) {
  s->dst = rq->addr;
  if (rq->cmd == SOCKS_CMD_UDP_ASSOCIATE) return start_udp(s);
  if (rq->cmd != SOCKS_CMD_CONNECT)
    return fail(s, SOCKS5_REP_CMD_NOT_SUPPORTED, "command not supported (BIND)");
  start_connect(s);
}

static void auth_work(uv_work_t *w) {
  session *s = w->data;
  const awg_config *c = s->srv->cfg;
  s->auth_ok = false;
  for (size_t i = 0; i < c->n_socks_users; i++) {
    /* Every user is checked the same way so the time does not tell whether a name exists. */
    bool name = sodium_memcmp(c->socks_users[i].user, s->up.user, sizeof s->up.user) == 0;
    bool pass = crypto_pwhash_str_verify(c->socks_users[i].hash, s->up.pass, strlen(s->up.pass)) == 0;
    if (name && pass) s->auth_ok = true;
  }
}

static void process(session *s);

static void auth_done(uv_work_t *w, int status) {
  session *s = w->data;
  s->work_pending = false;
  sodium_memzero(&s->up, sizeof s->up);
  if (!s->client) {
    if (s->timer_closed) free(s);
    return;
  }
  if (s->st == ST_DONE) return;
  uint8_t out[2] = {1, s->auth_ok ? 0 : 1};
  stream_write(s->client, out, 2);
  if (!s->auth_ok) {
    LOG_W("socks", "auth_failed", "sid", s->sid, "reason", "wrong user name or password", NULL);
    s->srv->stats.handshake_failures++;
    stream_shutdown(s->client);
    s->st = ST_DONE;
    end_handshake_timer(s);
    return;
  }
  s->st = ST_REQUEST;
  stream_read_start(s->client);
  process(s);
}

static void bad_input(session *s, const char *what) {
  s->srv->stats.handshake_failures++;
  LOG_I("socks", "handshake_failed", "sid", s->sid, "reason", what, NULL);
  abort_session(s);
}

static void step_greeting(session *s) {
  if (s->buf[0] == 4) {
    s->version = 4;
    s->st = ST_REQUEST;
    return;
  }
  socks5_greeting g;
  size_t used;
  socks_status st = socks5_parse_greeting(s->buf, s->len, &g, &used);
  if (st == SOCKS_NEED_MORE) return;
  if (st != SOCKS_DONE) return bad_input(s, "malformed greeting or unknown SOCKS version");
  s->version = 5;
  consume(s, used);
  bool need_auth = s->srv->cfg->n_socks_users > 0;
  if (need_auth && g.offers_userpass) {
    reply_method(s, SOCKS5_METHOD_USERPASS);
    s->st = ST_AUTH;
  } else if (!need_auth && g.offers_none) {
    reply_method(s, SOCKS5_METHOD_NONE);
    s->st = ST_REQUEST;
  } else {
    reply_method(s, SOCKS5_METHOD_NO_ACCEPTABLE);
    s->srv->stats.handshake_failures++;
    LOG_I("socks", "handshake_failed", "sid", s->sid, "reason",
          need_auth ? "client does not offer username/password" : "no usable method", NULL);
    stream_shutdown(s->client);
    s->st = ST_DONE;
    end_handshake_timer(s);
  }
}

static void step_auth(session *s) {
  size_t used;
  socks_status st = socks5_parse_userpass(s->buf, s->len, &s->up, &used);
  if (st == SOCKS_NEED_MORE) return;
  if (st != SOCKS_DONE) return bad_input(s, "malformed username/password message");
  sodium_memzero(s->buf, used);
  consume(s, used);
  s->st = ST_AUTH_CHECK;
  stream_read_stop(s->client);
  s->work.data = s;
  s->work_pending = true;
  if (uv_queue_work(s->srv->loop, &s->work, auth_work, auth_done) != 0) {
    s->work_pending = false;
    bad_input(s, "cannot check the password");
  }
}

static void step_request(session *s) {
  size_t used;
  if (s->version == 4) {
    socks4_request rq;
    socks_status st = socks4_parse_request(s->buf, s->len, &rq, &used);
    if (st == SOCKS_NEED_MORE) return;
    if (st == SOCKS_ERR_COMMAND) return fail(s, SOCKS5_REP_CMD_NOT_SUPPORTED, "command not supported");
    if (st != SOCKS_DONE) return bad_input(s, "malformed SOCKS4 request");
    consume(s, used);
    s->dst = rq.addr;
    if (s->srv->cfg->n_socks_users)
      return fail(s, SOCKS5_REP_NOT_ALLOWED, "SOCKS4 has no password; use SOCKS5");
    if (rq.cmd != SOCKS_CMD_CONNECT) return fail(s, SOCKS5_REP_CMD_NOT_SUPPORTED, "BIND");
    return start_connect(s);
  }
  socks5_request rq;
  socks_status st = socks5_parse_request(s->buf, s->len, &rq, &used);
  if (st == SOCKS_NEED_MORE) return;
  if (st == SOCKS_ERR_ATYP) return fail(s, SOCKS5_REP_ATYP_NOT_SUPPORTED, "address type");
  if (st != SOCKS_DONE) return fail(s, SOCKS5_REP_GENERAL_FAILURE, "malformed request");
  consume(s, used);
  handle_v5_request(s, &rq);
}

static void process(session *s) {
  for (;;) {
    sess_state before = s->st;
    size_t len = s->len;
    if (!s->len && s->st != ST_DONE) return;
    switch (s->st) {
      case ST_GREETING: step_greeting(s); break;
      case ST_AUTH: step_auth(s); break;
      case ST_REQUEST: step_request(s); break;
      default: return;
    }
    if (s->st == before && s->len == len) return; /* needs more bytes */
  }
}

static void on_client_read(stream *c, const uint8_t *data, size_t n) {
  session *s = c->user;
  if (!n) return abort_session(s); /* EOF before the relay: nothing more to do */
  if (s->st == ST_DONE || s->st == ST_UDP) return; /* after a reply: discard */
  if (s->len + n > sizeof s->buf) return bad_input(s, "handshake too long");
  memcpy(s->buf + s->len, data, n);
  s->len += n;
  if (s->st == ST_GREETING || s->st == ST_AUTH || s->st == ST_REQUEST) process(s);
}

static void on_client_error(stream *c, int err) { abort_session(c->user); }

static void on_hs_timeout(uv_timer_t *t) {
  session *s = t->data;
  if (s->st == ST_DIALING || s->st == ST_AUTH_CHECK) return; /* the dialer has its own limits */
  bad_input(s, "handshake timed out");
}

/* ---- listeners -------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status) {
  listener *l = server->data;
  struct socks_server *srv = l->srv;
  if (status < 0 || srv->stopping) return;
  uv_tcp_t *tcp = malloc(sizeof *tcp);
  session *s = calloc(1, sizeof *s);
  if (!tcp || !s || uv_tcp_init(srv->loop, tcp) != 0) {
    free(tcp);
    free(s);
    return;
  }
  if (uv_accept(server, (uv_stream_t *)tcp) != 0 || !(s->client = stream_uv_wrap(tcp))) {
    uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
    free(s);
    return;
  }
  uv_tcp_nodelay(tcp, 1);
  s->srv = srv;
  obs_session_id(s->sid);
  srv->stats.accepted++;
  srv->stats.active++;
  s->client->user = s;
  s->client->on_read = on_client_read;
  s->client->on_error = on_client_error;
  s->client->on_closed = on_client_closed;
  s->client->on_shutdown = on_client_shutdown;
  uv_timer_init(srv->loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_hs_timeout, (uint64_t)srv->cfg->socks_handshake_timeout * 1000, 0);
  stream_read_start(s->client);
}

static int listen_one(struct socks_server *srv, const cfg_hostport *hp, char *err, size_t errlen) {
  listener *l = &srv->lst[srv->n_lst];
  struct sockaddr_storage ss;
  int rc = strchr(hp->host, ':') ? uv_ip6_addr(hp->host, hp->port, (struct sockaddr_in6 *)&ss)
                                 : uv_ip4_addr(hp->host, hp->port, (struct sockaddr_in *)&ss);
  if (!rc) rc = uv_tcp_init(srv->loop, &l->tcp);
  if (rc) return snprintf(err, errlen, "SOCKS listener %s: %s", hp->host, uv_strerror(rc)), -1;
  l->srv = srv;
  l->tcp.data = l;
  srv->n_lst++;
  rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
  if (rc) {
    char a[300];
    cfg_format_hostport(hp, a, sizeof a);
    snprintf(err, errlen, "cannot listen for SOCKS on %s: %s (is another proxy running there?)", a,
             uv_strerror(rc));
    return -1;
  }
  char a[300];
  cfg_format_hostport(hp, a, sizeof a);
  LOG_I("socks", "listening", "address", a, "auth",
        srv->cfg->n_socks_users ? "username/password" : "none", NULL);
  return 0;
}

socks_server *socks_server_start(uv_loop_t *loop, const awg_config *cfg, const dialer_env *env,
                                 char *err, size_t errlen) {
  struct socks_server *srv = calloc(1, sizeof *srv);
  if (!srv) return snprintf(err, errlen, "out of memory"), NULL;
  srv->loop = loop;
  srv->cfg = cfg;
  srv->env = *env;
  for (size_t i = 0; i < cfg->n_socks_listen && i < MAX_LISTENERS; i++)
    if (listen_one(srv, &cfg->socks_listen[i], err, errlen) != 0) {
      socks_server_stop(srv);
      return NULL;
    }
  return srv;
}

static void on_listener_closed(uv_handle_t *h) {
  struct socks_server *srv = ((listener *)h->data)->srv;
  if (--srv->closing == 0) free(srv);
}

void socks_server_stop(socks_server *srv) {
  if (!srv) return;
  srv->stopping = true;
  srv->closing = srv->n_lst;
  for (size_t i = 0; i < srv->n_lst; i++) uv_close((uv_handle_t *)&srv->lst[i].tcp, on_listener_closed);
  if (!srv->closing) free(srv);
}

void socks_server_get_stats(const socks_server *srv, socks_stats *out) { *out = srv->stats; }
