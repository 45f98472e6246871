/* The server set's state, shared by server_set.c (selection), server_probe.c (probes) and
 * select_dialer.c (the dialer and UDP opener that follow the selection). Internal. */
#ifndef AWGPROXY_CLIENT_SERVER_SET_INTERNAL_H
#define AWGPROXY_CLIENT_SERVER_SET_INTERNAL_H

#include "client/server_set.h"

#define PROBE_TIMEOUT_MS 5000
#define PROBE_PORT 1080

typedef struct server_probe server_probe;

typedef struct srv {
  struct server_set *set;
  size_t index;
  const char *name;
  upstream up;
  srv_state state;
  socks_class socks;
  uint32_t fails; /* failed probes in a row */
  double rtt_ms;
  uint64_t next_probe_ms; /* uv_now */
  uint64_t probes_ok, probes_failed, failovers_from;
  server_probe *probe; /* in flight, NULL otherwise */
  bool pinned;         /* [Socks] User entries are pinned to it: it stays in use */
} srv;

struct server_set {
  uv_loop_t *loop;
  srv *srv;
  size_t n;
  int selected;      /* index, -1 = none */
  bool disconnected; /* ctl disconnect: nothing selected until ctl connect */
  int want;          /* Select = NAME's index (or ctl connect NAME's), -1 = auto */
  bool failback;
  uint64_t probe_interval_ms;
  uint32_t probe_failures;
  uint64_t failovers;
  uv_timer_t tick;
  resolver *res; /* the front-ends' resolver, through the selected server */
  dialer *dl;
  dgram_opener *dg;
  bool socks_forward;    /* [Socks] Mode = forward: auto only picks Valid SOCKS services */
  dialer **pin_dl;       /* [n]: each server alone, for pinned users */
  dgram_opener **pin_dg; /* [n] */
  dialer *none_dl;       /* a pin to a server that is not there */
  dgram_opener *none_dg;
};

/* server_probe.c: starts a probe of v (v->probe set); it reports to server_set_probed. */
void server_probe_start(srv *v);
void server_probe_cancel(srv *v);
/* server_set.c: a probe ended: ok (the tunnel answered) with rtt and class, or failed. */
void server_set_probed(srv *v, bool ok, double rtt_ms, socks_class cls);
/* server_set.c: a race was won by `winner` while the selected server stayed silent. */
void server_set_race_won(struct server_set *s, size_t winner);
/* server_set.c: the best server that is up other than `except` (-1 = none). */
int server_set_best_other(const struct server_set *s, int except);

/* select_dialer.c: fixed = SEL_FOLLOW follows the selection (and races); an index is that server
 * only (a pinned user's); -1 is none (an unknown pin: every stream fails). Disconnected, all
 * fail. */
#define SEL_FOLLOW (-2)
dialer *select_dialer_new(struct server_set *s, int fixed);
dgram_opener *select_dgram_new(struct server_set *s, int fixed);

#endif
