#include "socks/socks_server.h"

#include <stdio.h>
#include <stdlib.h>

#include "socks/socks_listen_uv.h"
#include "socks/udp_assoc.h"
#include "util/log.h"
#include "util/fd_limit.h"

/* Descriptors asked for beyond the cap: a burst of connections past it still holds one each
 * until answered, and a bare close for want of one would read as a crash to the application. */
#define SOCKS_FD_ROOM 65536

#define MAX_LISTENERS 16

struct socks_server {
  uv_loop_t *loop;
  dialer *dl;
  dgram_opener *dg;
  resolver *res;
  bool fast_open;              /* [Socks] FastOpen */
  const cfg_socks_user *users; /* the config's, for their pins */
  size_t n_users;
  socks_pin_fn pin; /* NULL: nobody is pinned */
  void *pin_ctx;
  socks_service *svc;
  socks_uv_listener *lst[MAX_LISTENERS];
  size_t n_lst;
};

/* ---- the connector: through the tunnel -------------------------------------------------- */

/* The ways a client's streams take: its pinned server's, or the front-ends' own. */
static socks_route route_of(const struct socks_server *srv, const socks_origin *o) {
  socks_route r = {srv->dl, srv->dg, srv->res};
  if (!srv->pin || o->user < 0 || (size_t)o->user >= srv->n_users) return r;
  const char *server = srv->users[o->user].server;
  if (server[0]) srv->pin(srv->pin_ctx, server, &r);
  return r;
}

static void *tunnel_connect(void *env, const socks_origin *o, const dial_dest *dst,
                            socks_connect_cb cb, void *ctx) {
  struct socks_server *srv = env;
  dial_dest dd = *dst;
  if (srv->fast_open) dd.flags |= DIAL_EARLY;
  return dialer_start(route_of(srv, o).dl, &dd, cb, ctx);
}

static void tunnel_cancel(void *req) { dial_cancel(req); }

static void *tunnel_udp_start(void *env, const socks_origin *o, const socks_addr *hint,
                              socks_addr *bnd, char *err, size_t errlen) {
  struct socks_server *srv = env;
  if (o->local.ss_family != o->peer.ss_family ||
      (o->local.ss_family != AF_INET && o->local.ss_family != AF_INET6))
    return snprintf(err, errlen, "cannot read the connection's addresses"), NULL;
  socks_route r = route_of(srv, o);
  return udp_assoc_start(srv->loop, r.res, r.dg, (const struct sockaddr *)&o->local,
                         (const struct sockaddr *)&o->peer, hint, bnd, err, errlen);
}

static void tunnel_udp_stop(void *a) { udp_assoc_stop(a); }

/* ---- listeners -------------------------------------------------------------------------- */

socks_server *socks_server_start(uv_loop_t *loop, const app_config *cfg, dialer *dl,
                                 dgram_opener *dg, resolver *res, char *err, size_t errlen) {
  struct socks_server *srv = calloc(1, sizeof *srv);
  if (!srv) return snprintf(err, errlen, "out of memory"), NULL;
  srv->loop = loop;
  srv->dl = dl;
  srv->dg = dg;
  srv->res = res;
  srv->fast_open = cfg->socks_fast_open;
  srv->users = cfg->socks_users;
  srv->n_users = cfg->n_socks_users;
  socks_service_cfg sc = {
      .loop = loop,
      .log_component = "socks",
      .users = cfg->socks_users,
      .n_users = cfg->n_socks_users,
      .handshake_timeout_ms = (uint64_t)cfg->socks_handshake_timeout * 1000,
      .idle_timeout_ms = (uint64_t)cfg->idle_timeout * 1000,
      .fast_open = cfg->socks_fast_open,
      .max_connections = cfg->socks_max_connections,
      .conn = {.env = srv,
               .connect = tunnel_connect,
               .cancel = tunnel_cancel,
               .udp_start = tunnel_udp_start,
               .udp_stop = tunnel_udp_stop},
  };
  /* Each connection holds a descriptor; the tunnel's own streams hold none. */
  fd_limit_ensure((uint64_t)cfg->socks_max_connections + 256, SOCKS_FD_ROOM, "socks",
                  "[Socks] MaxConnections");
  srv->svc = socks_service_create(&sc);
  if (!srv->svc) {
    free(srv);
    return snprintf(err, errlen, "out of memory"), NULL;
  }
  for (size_t i = 0; i < cfg->n_socks_listen && i < MAX_LISTENERS; i++) {
    const cfg_hostport *hp = &cfg->socks_listen[i];
    srv->lst[i] = socks_uv_listen(loop, srv->svc, hp, err, errlen);
    if (!srv->lst[i]) {
      socks_server_stop(srv);
      return NULL;
    }
    srv->n_lst++;
    char a[300];
    cfg_format_hostport(hp, a, sizeof a);
    LOG_I("socks", "listening", "address", a, "auth",
          cfg->n_socks_users ? "username/password" : "none", NULL);
  }
  return srv;
}

void socks_server_stop(socks_server *srv) {
  if (!srv) return;
  for (size_t i = 0; i < srv->n_lst; i++) socks_uv_listener_close(srv->lst[i]);
  /* Sessions end now, cancelling their dialer requests while the dialer still exists. */
  socks_service_stop(srv->svc);
  free(srv);
}

void socks_server_set_pins(socks_server *srv, socks_pin_fn fn, void *ctx) {
  srv->pin = fn;
  srv->pin_ctx = ctx;
}

void socks_server_get_stats(const socks_server *srv, socks_stats *out) {
  socks_service_get_stats(srv->svc, out);
}
