#include "socks/socks_session.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe/streams.h"
#include "socks/socks_users.h"
#include "stream/dial_error.h"
#include "stream/relay.h"
#include "util/log.h"
#include "util/list.h"

#define HS_BUF 1100    /* greeting + auth + the longest request (SOCKS4a: 8 + 256 + 256) */
#define LINGER_MS 1000 /* after a final failure reply, for the client to close first */

typedef enum {
  ST_GREETING,
  ST_AUTH,
  ST_REQUEST,
  ST_AUTH_CHECK,
  ST_DIALING,
  ST_UDP, /* UDP ASSOCIATE: the TCP connection only keeps the association alive */
  ST_DONE
} sess_state;

typedef struct session session;
typedef struct relay_entry relay_entry;

struct socks_service {
  socks_service_cfg cfg; /* cfg.users points at our own copy */
  socks_stats stats;
  list_node sessions; /* session.link: before the relay */
  list_node relays;   /* relay_entry.link: relaying */
  size_t live;        /* sessions and relays not yet freed */
  bool stopping;
};

struct session {
  list_node link; /* on svc->sessions */
  socks_service *svc;
  stream *client;
  socks_origin origin;
  uv_timer_t timer; /* handshake timeout */
  bool timer_closed;
  sess_state st;
  int version;
  uint8_t buf[HS_BUF];
  size_t len;
  socks_addr dst;
  void *req;      /* connector request while ST_DIALING */
  uint8_t *early; /* client bytes read while dialing (owned; handed to the relay) */
  size_t early_len, early_cap;
  void *udp;
  socks5_userpass up;
  uv_work_t work;
  bool auth_ok, closing_client, work_pending;
  int user_index;            /* set off the loop by auth_work, read in auth_done */
  bool over_cap;             /* arrived past [Socks] MaxConnections: its request gets a failure */
  bool in_read;              /* inside on_client_read */
  char sid[OBS_SID_LEN + 1]; /* random id tying this connection's log events together */
};

/* A relay the service started: kept so that stopping can end it and give back its request. */
struct relay_entry {
  list_node link;     /* on svc->relays until the service stops */
  socks_service *svc; /* NULL once the service stopped (the request was released then) */
  relay *r;
  void *req; /* released when the relay is over (connector.release set), else NULL */
  void (*release)(void *req);
  const char *component;
  bool ended;     /* socks_service_end_matching reset it */
  bool fast_open; /* success was answered before the connect was known */
  char sid[OBS_SID_LEN + 1];
};

#define COMP(s) ((s)->svc->cfg.log_component)

static void service_unref(socks_service *svc) {
  if (--svc->live || !svc->stopping) return;
  if (svc->cfg.users)
    sodium_memzero((void *)svc->cfg.users, svc->cfg.n_users * sizeof *svc->cfg.users);
  free((void *)svc->cfg.users);
  free(svc);
}

/* ---- session lifetime ------------------------------------------------------------------- */

static void maybe_free(session *s) {
  if (s->client || !s->timer_closed || s->work_pending) return;
  socks_service *svc = s->svc;
  list_remove(&s->link);
  free(s->early);
  free(s);
  service_unref(svc);
}

static void on_timer_closed(uv_handle_t *h) {
  session *s = h->data;
  s->timer_closed = true;
  maybe_free(s);
}

static void end_handshake_timer(session *s) {
  if (!uv_is_closing((uv_handle_t *)&s->timer)) uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void on_client_closed(stream *c) {
  session *s = c->user;
  s->client = NULL;
  s->svc->stats.active--;
  maybe_free(s);
}

static void cancel_request(session *s) {
  if (s->req) s->svc->cfg.conn.cancel(s->req), s->req = NULL;
}

static void abort_session(session *s);

static void on_deferred_close(uv_timer_t *t) { abort_session(t->data); }

/* Ends a session that never reached the relay. While the client stream is delivering data the
 * close waits for the next loop turn: an lwIP stream closed from inside its receive callback
 * would free the connection under lwIP's feet. The handshake timer is open whenever the client
 * stream is (it is only closed here and once the relay took the stream). */
static void abort_session(session *s) {
  s->st = ST_DONE;
  cancel_request(s);
  if (s->udp) {
    s->svc->cfg.conn.udp_stop(s->udp);
    s->udp = NULL;
    obs_stream_closed(OBS_STREAM_SOCKS_UDP);
  }
  sodium_memzero(&s->up, sizeof s->up);
  if (s->client && !s->closing_client) {
    if (s->in_read && !uv_is_closing((uv_handle_t *)&s->timer)) {
      stream_read_stop(s->client);
      uv_timer_start(&s->timer, on_deferred_close, 0, 0);
      return;
    }
    s->closing_client = true;
    stream_close(s->client);
  }
  end_handshake_timer(s);
}

static void on_hs_timeout(uv_timer_t *t);

/* The last reply has been written: half-close, then close once the client has closed its side
 * too (EOF in on_client_read) or LINGER_MS have passed. Closing at once could reset the
 * connection before the reply reaches the client (lwIP, with data still unread, aborts). */
static void close_after_reply(session *s) {
  s->st = ST_DONE;
  cancel_request(s);
  if (!uv_is_closing((uv_handle_t *)&s->timer))
    uv_timer_start(&s->timer, on_hs_timeout, LINGER_MS, 0);
  stream_read_start(s->client);
  stream_shutdown(s->client);
}

static void count_reply(session *s, uint8_t rep) {
  if (rep < 9) s->svc->stats.replies[rep]++;
}

/* Sends a failure reply, then closes once it is flushed. */
static void fail(session *s, uint8_t rep5, const char *reason) {
  uint8_t out[262];
  size_t n;
  count_reply(s, rep5);
  if (s->version == 4)
    n = socks4_build_reply(SOCKS4_REP_REJECTED, NULL, out);
  else
    n = socks5_build_reply(rep5, NULL, out, sizeof out);
  if (log_enabled(LOG_DEBUG)) {
    char dst[300];
    socks_addr_format(&s->dst, dst, sizeof dst);
    LOG_D(COMP(s), "request_failed", "sid", s->sid, "dst", dst, "reply", socks5_rep_name(rep5),
          "reason", reason, NULL);
  } else {
    LOG_I(COMP(s), "request_failed", "sid", s->sid, "reply", socks5_rep_name(rep5), "reason",
          reason, NULL);
  }
  stream_write(s->client, out, n);
  close_after_reply(s);
}

/* Past the cap, a request is answered at once, never dialled. */
static bool refuse_over_cap(session *s) {
  if (!s->over_cap) return false;
  s->svc->stats.over_cap++;
  fail(s, SOCKS5_REP_GENERAL_FAILURE, "too many connections ([Socks] MaxConnections)");
  return true;
}

/* ---- relaying --------------------------------------------------------------------------- */

static void on_relay_done(void *ctx, const relay_result *r) {
  relay_entry *e = ctx;
  obs_stream_closed(OBS_STREAM_SOCKS_TCP);
  relay_log_result(e->component, "stream_closed", "sid", e->sid, r);
  if (e->fast_open && r->error && !r->b_to_a) {
    /* most likely the connect itself failed (fast open answered success before knowing) */
    dial_error de = dial_error_from_uv(r->error);
    LOG_I(e->component, "request_failed", "sid", e->sid, "reply",
          socks5_rep_name(socks5_rep_for_dial(de)), "reason", uv_strerror(r->error), "fast_open",
          "yes", NULL);
  }
  socks_service *svc = e->svc;
  if (svc) {
    list_remove(&e->link);
    if (e->req) e->release(e->req);
    free(e);
    service_unref(svc);
    return;
  }
  free(e);
}

/* Hands both streams to a relay; the session's part is over. */
static void start_relay(session *s, stream *remote, void *req) {
  socks_service *svc = s->svc;
  const socks_connector *cn = &svc->cfg.conn;
  stream *client = s->client;
  /* From here the session no longer hears from the client stream (not even its close). */
  client->on_read = NULL, client->on_error = NULL, client->on_shutdown = NULL;
  client->on_closed = NULL, client->on_drain = NULL;
  if (req && cn->wrap) cn->wrap(req, &client, &remote);
  if (s->len) stream_write(remote, s->buf, s->len); /* data the client sent ahead of the reply */
  s->len = 0;
  if (s->early_len) stream_write(remote, s->early, s->early_len); /* read while dialing */
  s->early_len = 0;
  relay_entry *e = calloc(1, sizeof *e);
  obs_stream_opened(OBS_STREAM_SOCKS_TCP);
  relay *r =
      e ? relay_start(svc->cfg.loop, client, remote, svc->cfg.idle_timeout_ms, on_relay_done, e)
        : NULL;
  if (!r) {
    if (!e) stream_close(client), stream_close(remote);
    obs_stream_closed(OBS_STREAM_SOCKS_TCP);
    free(e);
    if (req) cn->release(req);
  } else {
    e->svc = svc;
    e->r = r;
    e->req = req;
    e->release = cn->release;
    e->component = svc->cfg.log_component;
    e->fast_open = svc->cfg.fast_open;
    memcpy(e->sid, s->sid, sizeof e->sid);
    list_push_front(&svc->relays, &e->link);
    svc->live++;
  }
  /* The relay owns the client stream now; the session only waits for its timer to close. */
  s->client = NULL;
  svc->stats.active--;
  maybe_free(s);
}

static void reply_success(session *s) {
  uint8_t out[262];
  size_t n = s->version == 4 ? socks4_build_reply(socks4_rep_for_dial(DIAL_OK), NULL, out)
                             : socks5_build_reply(SOCKS5_REP_SUCCEEDED, NULL, out, sizeof out);
  count_reply(s, SOCKS5_REP_SUCCEEDED);
  stream_write(s->client, out, n);
}

/* Fast open: success was answered already, so a failed connect can only close the connection;
 * the log still says why. */
static void fast_open_failed(session *s, dial_error err, const char *reason) {
  char dst[300];
  socks_addr_format(&s->dst, dst, sizeof dst);
  LOG_I(COMP(s), "request_failed", "sid", s->sid, "dst", dst, "reply",
        socks5_rep_name(socks5_rep_for_dial(err)), "reason", reason, "fast_open", "yes", NULL);
  abort_session(s);
}

static void on_connected(void *ctx, stream *remote, dial_error err, const char *reason) {
  session *s = ctx;
  void *req = s->req;
  s->req = NULL;
  if (!remote && s->svc->cfg.fast_open) return fast_open_failed(s, err, reason);
  if (!remote) return fail(s, socks5_rep_for_dial(err), reason);
  if (!s->svc->cfg.fast_open) reply_success(s);
  s->st = ST_DONE;
  end_handshake_timer(s);
  if (log_enabled(LOG_DEBUG)) {
    char dst[300];
    socks_addr_format(&s->dst, dst, sizeof dst);
    LOG_D(COMP(s), "connected", "sid", s->sid, "dst", dst, NULL);
  }
  start_relay(s, remote, s->svc->cfg.conn.release ? req : NULL);
}

static void start_connect(session *s) {
  const socks_connector *cn = &s->svc->cfg.conn;
  if (refuse_over_cap(s)) return;
  s->st = ST_DIALING;
  /* Reading goes on while the connect runs: the client's next bytes (fast open's first bytes,
   * or a client's that does not wait for the reply) are kept in s->early. Stopping it here and
   * starting it again for the relay cost two more system calls per connection (libuv re-adds
   * the socket to epoll, which fails with EEXIST, then modifies it). */
  if (s->svc->cfg.fast_open) reply_success(s);
  dial_dest dst; /* the connector gets the neutral destination type */
  socks_addr_to_dial_dest(&s->dst, &dst);
  s->req = cn->connect(cn->env, &s->origin, &dst, on_connected, s);
  if (!s->req) fail(s, SOCKS5_REP_GENERAL_FAILURE, "out of memory");
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
  const socks_connector *cn = &s->svc->cfg.conn;
  if (!cn->udp_start)
    return fail(s, SOCKS5_REP_CMD_NOT_SUPPORTED, "command not supported here (UDP ASSOCIATE)");
  if (refuse_over_cap(s)) return;
  char err[200];
  socks_addr bnd;
  s->udp = cn->udp_start(cn->env, &s->origin, &s->dst, &bnd, err, sizeof err);
  if (!s->udp) return fail(s, SOCKS5_REP_GENERAL_FAILURE, "UDP relay unavailable");
  uint8_t out[262];
  size_t n = socks5_build_reply(SOCKS5_REP_SUCCEEDED, &bnd, out, sizeof out);
  count_reply(s, SOCKS5_REP_SUCCEEDED);
  stream_write(s->client, out, n);
  s->st = ST_UDP;
  obs_stream_opened(OBS_STREAM_SOCKS_UDP);
  uv_timer_stop(&s->timer); /* kept open for abort_session */
  LOG_D(COMP(s), "udp_associate", "sid", s->sid, NULL);
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
  const socks_service_cfg *c = &s->svc->cfg;
  s->user_index = socks_users_match(c->users, c->n_users, s->up.user, s->up.pass);
  s->auth_ok = s->user_index >= 0;
}

static void process(session *s);

static void auth_done(uv_work_t *w, int status) {
  session *s = w->data;
  s->work_pending = false;
  sodium_memzero(&s->up, sizeof s->up);
  if (!s->client) return maybe_free(s);
  if (s->st == ST_DONE) return;
  uint8_t out[2] = {1, s->auth_ok ? 0 : 1};
  stream_write(s->client, out, 2);
  if (!s->auth_ok) {
    LOG_W(COMP(s), "auth_failed", "sid", s->sid, "reason", "wrong user name or password", NULL);
    s->svc->stats.handshake_failures++;
    close_after_reply(s);
    return;
  }
  s->origin.user = s->user_index;
  s->st = ST_REQUEST;
  stream_read_start(s->client);
  process(s);
}

static void bad_input(session *s, const char *what) {
  s->svc->stats.handshake_failures++;
  LOG_I(COMP(s), "handshake_failed", "sid", s->sid, "reason", what, NULL);
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
  bool need_auth = s->svc->cfg.n_users > 0;
  if (need_auth && g.offers_userpass) {
    reply_method(s, SOCKS5_METHOD_USERPASS);
    s->st = ST_AUTH;
  } else if (!need_auth && g.offers_none) {
    reply_method(s, SOCKS5_METHOD_NONE);
    s->st = ST_REQUEST;
  } else {
    reply_method(s, SOCKS5_METHOD_NO_ACCEPTABLE);
    s->svc->stats.handshake_failures++;
    LOG_I(COMP(s), "handshake_failed", "sid", s->sid, "reason",
          need_auth ? "client does not offer username/password" : "no usable method", NULL);
    close_after_reply(s);
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
  if (uv_queue_work(s->svc->cfg.loop, &s->work, auth_work, auth_done) != 0) {
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
    if (st == SOCKS_ERR_COMMAND)
      return fail(s, SOCKS5_REP_CMD_NOT_SUPPORTED, "command not supported");
    if (st != SOCKS_DONE) return bad_input(s, "malformed SOCKS4 request");
    consume(s, used);
    s->dst = rq.addr;
    if (s->svc->cfg.n_users)
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
      case ST_GREETING:
        step_greeting(s);
        break;
      case ST_AUTH:
        step_auth(s);
        break;
      case ST_REQUEST:
        step_request(s);
        break;
      default:
        return;
    }
    if (s->st == before && s->len == len) return; /* needs more bytes */
  }
}

/* A client byte read while the connect runs waits here; past STREAM_HIGH_WATER reading stops
 * until the relay takes over (a chunk that crosses it is still kept whole). After a failed
 * connect it is dropped with the session. */
static void keep_early(session *s, const uint8_t *data, size_t n) {
  if (s->early_len + n > s->early_cap) {
    size_t cap = s->early_cap ? s->early_cap : 4096;
    while (cap < s->early_len + n) cap *= 2;
    uint8_t *b = realloc(s->early, cap);
    if (!b) return abort_session(s);
    s->early = b;
    s->early_cap = cap;
  }
  memcpy(s->early + s->early_len, data, n);
  s->early_len += n;
  if (s->early_len >= STREAM_HIGH_WATER) stream_read_stop(s->client);
}

static void client_read(session *s, const uint8_t *data, size_t n) {
  if (!n && s->st == ST_DIALING) {
    /* EOF after the request: the client half-closed; stop reading, the relay sends the EOF on */
    return stream_read_stop(s->client);
  }
  if (!n) return abort_session(s); /* EOF before the relay: nothing more to do */
  if (s->st == ST_DIALING) return keep_early(s, data, n);
  if (s->st == ST_DONE || s->st == ST_UDP) return; /* after a reply: discard */
  /* HS_BUF holds the longest whole handshake, so what does not fit can only be payload that a
   * client sent behind its request without waiting for the reply: it waits in s->early, behind
   * what stays in s->buf, and start_relay sends both on in that order. */
  size_t room = sizeof s->buf - s->len, k = n < room ? n : room;
  memcpy(s->buf + s->len, data, k);
  s->len += k;
  if (n > k) keep_early(s, data + k, n - k);
  if (s->st == ST_GREETING || s->st == ST_AUTH || s->st == ST_REQUEST) process(s);
  if (s->st == ST_DONE || s->st == ST_UDP) s->early_len = 0; /* after a reply: discard */
  bool waiting = s->st == ST_GREETING || s->st == ST_AUTH || s->st == ST_REQUEST;
  if (waiting && s->len == sizeof s->buf) bad_input(s, "handshake too long");
}

static void on_client_read(stream *c, const uint8_t *data, size_t n) {
  session *s = c->user;
  s->in_read = true;
  client_read(s, data, n);
  s->in_read = false;
}

static void on_client_error(stream *c, int err) { abort_session(c->user); }

static void on_hs_timeout(uv_timer_t *t) {
  session *s = t->data;
  if (s->st == ST_DIALING || s->st == ST_AUTH_CHECK) return; /* the connector has its own limits */
  if (s->st == ST_DONE) return abort_session(s); /* the linger after a final reply is over */
  bad_input(s, "handshake timed out");
}

/* ---- the service ------------------------------------------------------------------------ */

socks_service *socks_service_create(const socks_service_cfg *cfg) {
  socks_service *svc = calloc(1, sizeof *svc);
  if (!svc) return NULL;
  svc->cfg = *cfg;
  svc->cfg.users = NULL;
  list_init(&svc->sessions);
  list_init(&svc->relays);
  if (cfg->n_users) {
    cfg_socks_user *u = malloc(cfg->n_users * sizeof *u);
    if (!u) return free(svc), NULL;
    memcpy(u, cfg->users, cfg->n_users * sizeof *u);
    svc->cfg.users = u;
  }
  return svc;
}

void socks_session_start(socks_service *svc, stream *client, const socks_origin *origin) {
  session *s = svc->stopping ? NULL : calloc(1, sizeof *s);
  if (!s) {
    stream_close(client);
    return;
  }
  s->svc = svc;
  s->client = client;
  s->origin = *origin;
  s->origin.user = -1;
  /* Counted when it arrives: a connection past the cap still gets its handshake, so that the
   * application reads a reply instead of a bare close. */
  s->over_cap = svc->cfg.max_connections && svc->live >= svc->cfg.max_connections;
  obs_session_id(s->sid);
  svc->stats.accepted++;
  svc->stats.active++;
  svc->live++;
  list_push_front(&svc->sessions, &s->link);
  client->user = s;
  client->on_read = on_client_read;
  client->on_error = on_client_error;
  client->on_closed = on_client_closed;
  uv_timer_init(svc->cfg.loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_hs_timeout, svc->cfg.handshake_timeout_ms, 0);
  stream_read_start(client);
}

void socks_service_stop(socks_service *svc) {
  if (!svc || svc->stopping) return;
  svc->stopping = true;
  svc->live++; /* keeps svc while sessions below finish synchronously */
  list_node *it, *tmp;
  list_each_safe(it, tmp, &svc->sessions) abort_session(list_entry(it, session, link));
  /* Relays end from the loop; what their requests hold is given back now, while the owner of the
   * connector still exists. */
  while (!list_empty(&svc->relays)) {
    relay_entry *e = list_entry(svc->relays.next, relay_entry, link);
    list_remove(&e->link);
    e->svc = NULL;
    if (e->req) e->release(e->req), e->req = NULL;
    relay_abort(e->r);
    svc->live--;
  }
  service_unref(svc);
}

size_t socks_service_end_matching(socks_service *svc, bool (*match)(void *req, void *arg),
                                  void *arg, dial_error err, const char *reason) {
  if (!svc || svc->stopping) return 0;
  size_t n = 0;
  list_node *it, *tmp;
  list_each_safe(it, tmp, &svc->sessions) {
    session *s = list_entry(it, session, link);
    if (s->st != ST_DIALING || !s->req || !match(s->req, arg)) continue;
    fail(s, socks5_rep_for_dial(err), reason); /* cancels the request */
    n++;
  }
  /* A relay is unlinked only when it has closed (from the loop), so the list stays intact. */
  list_each_safe(it, tmp, &svc->relays) {
    relay_entry *e = list_entry(it, relay_entry, link);
    if (e->ended || !e->req || !match(e->req, arg)) continue;
    e->ended = true;
    LOG_D(e->component, "stream_ended", "sid", e->sid, "reason", reason, NULL);
    relay_abort(e->r);
    n++;
  }
  return n;
}

void socks_service_get_stats(const socks_service *svc, socks_stats *out) { *out = svc->stats; }
