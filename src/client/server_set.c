/* Selection among several servers: probes on a timer, the choice, failover and ctl connect /
 * disconnect (server_set.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/server_set_internal.h"
#include "device/ipstack.h"
#include "util/log.h"

#define TICK_MS 500
#define FIRST_PROBE_MS 300 /* the first round, once handshakes have had a moment */

const char *srv_state_name(srv_state st) {
  return st == SRV_UP ? "up" : st == SRV_DOWN ? "down" : "unknown";
}

const char *socks_class_name(socks_class c) {
  static const char *const names[] = {"Unknown", "Valid", "AuthenticationRequired", "NotAProxy",
                                      "NotListening"};
  return c <= SOCKS_CLASS_NOT_LISTENING ? names[c] : "Unknown";
}

static uint64_t now_ms(const server_set *s) { return uv_now(s->loop); }

/* Better: up before unknown before down; then the lower RTT (unknown RTTs last). */
static bool better(const srv *a, const srv *b) {
  static const int rank[] = {[SRV_UP] = 0, [SRV_UNKNOWN] = 1, [SRV_DOWN] = 2};
  if (rank[a->state] != rank[b->state]) return rank[a->state] < rank[b->state];
  double ra = a->rtt_ms < 0 ? 1e12 : a->rtt_ms, rb = b->rtt_ms < 0 ? 1e12 : b->rtt_ms;
  return ra < rb;
}

/* Auto may take this server: it is up and, in forward mode, offers SOCKS without a login (a
 * server asking for one is only used when named). */
static bool eligible(const server_set *s, const srv *v) {
  return v->state == SRV_UP && (!s->socks_forward || v->socks == SOCKS_CLASS_VALID);
}

int server_set_best_other(const server_set *s, int except) {
  int best = -1;
  for (size_t i = 0; i < s->n; i++) {
    if ((int)i == except || !eligible(s, &s->srv[i])) continue;
    if (best < 0 || better(&s->srv[i], &s->srv[best])) best = (int)i;
  }
  return best;
}

static void retarget_resolver(server_set *s) {
  if (s->selected < 0) return;
  upstream *u = &s->srv[s->selected].up;
  resolver_retarget(s->res, ipstack_netif(tunnel_ipstack(u->tun)), u->cfg->dns, u->cfg->n_dns);
}

/* Servers neither selected nor holding pinned users keep no QUIC connection (quiet standby). */
static void update_standby(server_set *s) {
  for (size_t i = 0; i < s->n; i++)
    quic_client_set_standby(s->srv[i].up.quic, (int)i != s->selected && !s->srv[i].pinned);
}

/* Makes i the selected server (-1: none); new streams go to i. A server left because it is down
 * loses its streams, which would otherwise linger on a dead path. One left for a better one (a
 * first probe, a failback, ctl connect) keeps them: a download in progress is not cut for a
 * preference, and the server's QUIC connection ends once its last stream has (quiet standby). */
static void select_server(server_set *s, int i, const char *reason) {
  if (i == s->selected) return;
  int old = s->selected;
  s->selected = i;
  if (old >= 0 && s->srv[old].state == SRV_DOWN) {
    srv *o = &s->srv[old];
    upstream_abort_streams(&o->up, "the client left this server: it is down");
    if (i >= 0) { /* a failover, not a first choice or a failback */
      o->failovers_from++;
      s->failovers++;
    }
  }
  retarget_resolver(s);
  update_standby(s);
  char rtt[24] = "";
  if (i >= 0 && s->srv[i].rtt_ms >= 0) snprintf(rtt, sizeof rtt, "%.1f", s->srv[i].rtt_ms);
  LOG_I("client", "server_selected", "server", i >= 0 ? s->srv[i].name : "none", "previous",
        old >= 0 ? s->srv[old].name : "none", "reason", reason, rtt[0] ? "rtt_ms" : NULL, rtt,
        NULL);
}

/* The selection after something changed: keep the current one while it is not down (sticky),
 * except for a failback to the wanted server. */
static void reselect(server_set *s, const char *reason) {
  if (s->disconnected) return;
  if (s->want >= 0) {
    srv *w = &s->srv[s->want];
    bool take =
        w->state != SRV_DOWN && (s->selected < 0 || s->srv[s->selected].state == SRV_DOWN ||
                                 (s->failback && w->state == SRV_UP && s->selected != s->want));
    if (take) return select_server(s, s->want, reason);
  }
  if (s->selected >= 0 && s->srv[s->selected].state != SRV_DOWN &&
      !(s->socks_forward && s->srv[s->selected].state == SRV_UP &&
        !eligible(s, &s->srv[s->selected])))
    return;
  int best = server_set_best_other(s, -1);
  if (best >= 0) return select_server(s, best, reason);
  /* Nothing is up: stay where we are; at the start, take the first server until probes say. */
  if (s->selected < 0) select_server(s, s->want >= 0 ? s->want : 0, "nothing probed yet");
}

void server_set_probed(srv *v, bool ok, double rtt_ms, socks_class cls) {
  server_set *s = v->set;
  srv_state before = v->state;
  v->next_probe_ms = now_ms(s) + s->probe_interval_ms;
  if (ok) {
    v->probes_ok++;
    v->fails = 0;
    v->state = SRV_UP;
    v->rtt_ms = rtt_ms;
    v->socks = cls;
  } else {
    v->probes_failed++;
    v->fails++;
    v->socks = SOCKS_CLASS_UNKNOWN;
    if (v->fails >= s->probe_failures)
      v->state = SRV_DOWN;
    else
      v->next_probe_ms = now_ms(s); /* confirm at once */
  }
  if (v->state != before) {
    char rtt[24];
    snprintf(rtt, sizeof rtt, "%.1f", v->rtt_ms);
    LOG_I("client", "server_state", "server", v->name, "state", srv_state_name(v->state), "socks",
          socks_class_name(v->socks), ok ? "rtt_ms" : NULL, rtt, NULL);
  }
  /* auto at the start: the first server whose probe completes wins (in forward mode, the first
   * that offers SOCKS without a login). */
  bool first_answer = ok && eligible(s, v) && s->want < 0 && !s->disconnected && s->selected >= 0 &&
                      (int)v->index != s->selected && !eligible(s, &s->srv[s->selected]) &&
                      s->srv[s->selected].state != SRV_DOWN;
  if (first_answer) return select_server(s, (int)v->index, "first to answer");
  if (v->state != before)
    reselect(s, v->state == SRV_DOWN ? "selected server is down" : "failback");
}

void server_set_race_won(server_set *s, size_t winner) {
  if (s->disconnected || (int)winner == s->selected) return;
  if (s->selected >= 0) {
    srv *o = &s->srv[s->selected];
    o->state = SRV_DOWN; /* it stayed silent while another answered; probes will tell */
    o->fails = s->probe_failures;
    o->next_probe_ms = now_ms(s);
  }
  select_server(s, (int)winner, "selected server did not answer, another did");
}

/* A server whose tunnel brought authenticated data within the last interval is alive without
 * asking: its SOCKS class is known from an earlier probe, and its RTT is QUIC's when QUIC runs
 * with it. Only servers the client does not hear from get probe traffic. */
static bool heard_lately(const srv *v, uint64_t interval_ms) {
  if (v->state != SRV_UP || v->socks == SOCKS_CLASS_UNKNOWN) return false;
  uint64_t last = tunnel_last_rx(v->up.tun), now = uv_hrtime();
  return last && now - last < interval_ms * 1000000;
}

static void on_tick(uv_timer_t *t) {
  server_set *s = t->data;
  uint64_t now = now_ms(s);
  for (size_t i = 0; i < s->n; i++) {
    srv *v = &s->srv[i];
    if (v->probe || now < v->next_probe_ms) continue;
    if (!heard_lately(v, s->probe_interval_ms)) {
      server_probe_start(v);
      continue;
    }
    quic_client_status qs;
    quic_client_status_get(v->up.quic, &qs);
    double rtt = qs.up && qs.conn.rtt_ns ? (double)qs.conn.rtt_ns / 1e6 : v->rtt_ms;
    server_set_probed(v, true, rtt, v->socks);
  }
}

server_set *server_set_start(uv_loop_t *loop, const char *const *names,
                             const app_config *const *cfgs, size_t n, const app_config *front,
                             char *err, size_t errlen) {
  server_set *s = calloc(1, sizeof *s);
  if (s) s->srv = calloc(n, sizeof *s->srv);
  if (!s || !s->srv) {
    if (s) free(s);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->loop = loop;
  s->selected = -1;
  s->want = -1;
  s->failback = front->client_failback;
  s->probe_interval_ms = (uint64_t)front->client_probe_interval * 1000;
  s->probe_failures = front->client_probe_failures ? front->client_probe_failures : 1;
  for (size_t i = 0; i < n; i++) {
    srv *v = &s->srv[i];
    v->set = s;
    v->index = i;
    v->name = names[i];
    v->rtt_ms = -1;
    v->next_probe_ms = uv_now(loop) + FIRST_PROBE_MS;
    char e[256];
    if (upstream_start(&v->up, loop, cfgs[i], front, e, sizeof e) != 0) {
      snprintf(err, errlen, "server %s: %s", names[i], e);
      s->n = i;
      server_set_stop(s);
      return NULL;
    }
    s->n = i + 1;
    if (front->client_select[0] && !strcasecmp(front->client_select, names[i])) s->want = (int)i;
    for (size_t k = 0; k < front->n_socks_users; k++)
      if (!strcasecmp(front->socks_users[k].server, names[i])) v->pinned = true;
  }
  s->socks_forward = front->socks_mode == SOCKS_MODE_FORWARD;
  s->res = resolver_create(loop, NULL, NULL, 0);
  s->dl = select_dialer_new(s, SEL_FOLLOW);
  s->dg = select_dgram_new(s, SEL_FOLLOW);
  s->none_dl = select_dialer_new(s, -1);
  s->none_dg = select_dgram_new(s, -1);
  s->pin_dl = calloc(n, sizeof *s->pin_dl);
  s->pin_dg = calloc(n, sizeof *s->pin_dg);
  bool pins_ok = s->pin_dl && s->pin_dg;
  for (size_t i = 0; pins_ok && i < n; i++) {
    s->pin_dl[i] = select_dialer_new(s, (int)i);
    s->pin_dg[i] = select_dgram_new(s, (int)i);
    pins_ok = s->pin_dl[i] && s->pin_dg[i];
  }
  if (!s->res || !s->dl || !s->dg || !s->none_dl || !s->none_dg || !pins_ok) {
    snprintf(err, errlen, "out of memory");
    server_set_stop(s);
    return NULL;
  }
  reselect(s, "start");
  uv_timer_init(loop, &s->tick);
  s->tick.data = s;
  uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
  return s;
}

static void on_tick_closed(uv_handle_t *h) { free(h->data); }

void server_set_stop(server_set *s) {
  if (!s) return;
  dialer_destroy(s->dl);
  dgram_opener_destroy(s->dg);
  dialer_destroy(s->none_dl);
  dgram_opener_destroy(s->none_dg);
  for (size_t i = 0; i < s->n; i++) {
    if (s->pin_dl) dialer_destroy(s->pin_dl[i]);
    if (s->pin_dg) dgram_opener_destroy(s->pin_dg[i]);
  }
  free(s->pin_dl);
  free(s->pin_dg);
  resolver_destroy(s->res);
  for (size_t i = 0; i < s->n; i++) {
    server_probe_cancel(&s->srv[i]);
    upstream_stop(&s->srv[i].up);
  }
  free(s->srv);
  if (uv_is_active((uv_handle_t *)&s->tick) || s->tick.loop) {
    s->tick.data = s;
    uv_close((uv_handle_t *)&s->tick, on_tick_closed);
  } else {
    free(s);
  }
}

dialer *server_set_dialer(server_set *s) { return s->dl; }
dgram_opener *server_set_dgram(server_set *s) { return s->dg; }
resolver *server_set_resolver(server_set *s) { return s->res; }
size_t server_set_count(const server_set *s) { return s->n; }
uint64_t server_set_failovers(const server_set *s) { return s->failovers; }

int server_set_reload_server(server_set *s, size_t i, const app_config *cfg,
                             tunnel_reload_stats *st, char *err, size_t errlen) {
  upstream *u = &s->srv[i].up;
  if (tunnel_reload(u->tun, cfg, st, err, errlen) != 0) return -1;
  u->cfg = cfg;
  return 0;
}

const upstream *server_set_selected(const server_set *s) {
  return s->selected >= 0 ? &s->srv[s->selected].up : NULL;
}

void server_set_status(const server_set *s, size_t i, server_status *out) {
  const srv *v = &s->srv[i];
  *out = (server_status){
      v->name,      v->up.cfg,        v->state,          v->socks, v->rtt_ms, (int)i == s->selected,
      v->probes_ok, v->probes_failed, v->failovers_from, &v->up};
}

int server_set_connect(server_set *s, const char *name, char *err, size_t errlen) {
  int want = -1;
  if (name && *name) {
    for (size_t i = 0; i < s->n; i++)
      if (!strcasecmp(s->srv[i].name, name)) want = (int)i;
    if (want < 0) return snprintf(err, errlen, "no server named '%s'", name), -1;
  }
  s->want = want;
  s->disconnected = false;
  if (want >= 0) {
    select_server(s, want, "ctl connect");
  } else {
    int best = server_set_best_other(s, -1);
    select_server(s, best >= 0 ? best : 0, "ctl connect");
  }
  return 0;
}

void server_set_disconnect(server_set *s) {
  s->disconnected = true;
  select_server(s, -1, "ctl disconnect");
  for (size_t i = 0; i < s->n; i++) /* pinned users' streams on the other servers too */
    upstream_abort_streams(&s->srv[i].up, "ctl disconnect");
}

bool server_set_route(server_set *s, const char *name, dialer **dl, dgram_opener **dg,
                      resolver **res) {
  for (size_t i = 0; i < s->n; i++) {
    if (strcasecmp(s->srv[i].name, name) != 0) continue;
    *dl = s->pin_dl[i];
    *dg = s->pin_dg[i];
    *res = s->srv[i].up.res;
    return true;
  }
  *dl = s->none_dl;
  *dg = s->none_dg;
  return false;
}
