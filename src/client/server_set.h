/* A client with several servers (issue 11): one upstream per config file, all kept in view by
 * probes, one of them selected for new streams.
 *
 *  - Probing: every [Client] ProbeInterval each server gets a probe through its own tunnel: a
 *    TCP connection to its tunnel address, port 1080, and the SOCKS5 greeting 05 01 00. The
 *    connection's round trip is the server's RTT; the answer classifies its SOCKS service
 *    (client/server_probe.h). A refused connection still proves the tunnel alive. No probe
 *    answer within 5 s is a failed probe; [Client] ProbeFailures of them in a row make the
 *    server down.
 *  - Selection: Select = NAME uses that server while it is not down; auto takes the first server
 *    whose probe completes (ties by RTT) and sticks to it. A down selected server is left for the
 *    best server that is up, at once: its streams are ended, new streams go to the new one. With
 *    Failback, a named server is taken back once a probe finds it up again.
 *  - Racing: a new stream on the selected server that has heard nothing through its tunnel for a
 *    round trip plus a second is also started on the best other server that is up; the first to
 *    connect wins, and a win by the other server moves the selection there (a server killed
 *    without a word is left within about a second of the next stream, not a probe interval).
 *  - ctl disconnect ends every stream and clears the selection: new streams fail with "tunnel
 *    down" (SOCKS 0x01) until ctl connect [NAME].
 * All on the loop thread. */
#ifndef AWGPROXY_CLIENT_SERVER_SET_H
#define AWGPROXY_CLIENT_SERVER_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client/upstream.h"
#include "config/config.h"

typedef struct server_set server_set;

typedef enum { SRV_UNKNOWN, SRV_UP, SRV_DOWN } srv_state;
typedef enum {
  SOCKS_CLASS_UNKNOWN,       /* not probed yet, or the last probe had no answer */
  SOCKS_CLASS_VALID,         /* 05 00: a SOCKS5 service without authentication */
  SOCKS_CLASS_AUTH_REQUIRED, /* 05 FF: it wants a method we did not offer (a password) */
  SOCKS_CLASS_NOT_A_PROXY,   /* something answered, not SOCKS5 */
  SOCKS_CLASS_NOT_LISTENING, /* the connection was refused: no service on the port */
} socks_class;

typedef struct {
  const char *name;
  const app_config *cfg;
  srv_state state;
  socks_class socks;
  double rtt_ms; /* the last successful probe's; < 0 = unknown */
  bool selected;
  uint64_t probes_ok, probes_failed, failovers_from; /* times the client left this server */
  const upstream *up;
} server_status;

/* Starts every server's tunnel. names[i] and cfgs[i] (n of them) are borrowed and must outlive
 * the set; front holds [Client]'s settings. NULL with err when a tunnel cannot start. */
server_set *server_set_start(uv_loop_t *loop, const char *const *names,
                             const app_config *const *cfgs, size_t n, const app_config *front,
                             char *err, size_t errlen);
/* After the front-ends stopped (their requests cancelled, their flows closed). */
void server_set_stop(server_set *s);

/* What the front-ends use: they follow the selection (and race, see above). */
dialer *server_set_dialer(server_set *s);
dgram_opener *server_set_dgram(server_set *s);
/* Resolves through the selected server's tunnel with its DNS (retargeted on each change). */
resolver *server_set_resolver(server_set *s);

size_t server_set_count(const server_set *s);
void server_set_status(const server_set *s, size_t i, server_status *out);
/* The selected server's upstream, NULL when disconnected. */
const upstream *server_set_selected(const server_set *s);
uint64_t server_set_failovers(const server_set *s);

/* ctl connect: name NULL or "" = auto. -1 with err for an unknown name. */
int server_set_connect(server_set *s, const char *name, char *err, size_t errlen);
/* ctl disconnect: every stream on every server ends, pinned users' too. */
void server_set_disconnect(server_set *s);
/* The ways through server name alone, for a [Socks] User pinned to it: no race, no failover
 * (its streams never leave from another server), failing while disconnected. An unknown name
 * (its file did not load) gets ways that always fail, and false. */
bool server_set_route(server_set *s, const char *name, dialer **dl, dgram_opener **dg,
                      resolver **res);

/* A reload: server i runs with cfg from now on (its peers as tunnel_reload applies them; the
 * restart-only keys must already be the running ones, config_keep_restart_only). cfg must stay
 * alive until the next reload or the set stops. -1 with err (out of memory): nothing changed. */
int server_set_reload_server(server_set *s, size_t i, const app_config *cfg,
                             tunnel_reload_stats *st, char *err, size_t errlen);

const char *srv_state_name(srv_state st);
const char *socks_class_name(socks_class c);

#endif
