/* The server's SOCKS5 service. [Server] Socks: a listening lwIP PCB on each of the server's tunnel
 * addresses (the netif's IPv4 address and its IPv6 addresses) at that port, so it exists only
 * inside the tunnel and never as an OS socket on the host; the client's peer is found from the
 * connection's source address. [Server] LocalSocks: a libuv listener on the server machine with
 * the server-wide policy. Both run the same SOCKS machine (socks/socks_session.h) with the direct
 * connector (exit_socks_connect.h).
 *
 * Authentication: peers inside the tunnel are already authenticated by their keys, so the tunnel
 * listener asks for nothing (method 0x00). LocalSocks requires a [Socks] User login when any is
 * configured. UDP ASSOCIATE is not offered on either (reply 0x07): peers inside the tunnel can
 * send UDP to any destination directly, through the exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit/exit_internal.h"
#include "exit/exit_peer.h"
#include "exit/exit_socks.h"
#include "exit/exit_socks_connect.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/tcp.h"
#include "socks/socks_listen_uv.h"
#include "stream/stream_lwip.h"
#include "util/log.h"

#define MAX_TUNNEL_LISTENERS (1 + LWIP_IPV6_NUM_ADDRESSES)

struct exit_socks {
  exit_ctx *x;
  exit_socks_env tun_env, local_env;
  socks_service *tun_svc, *local_svc;
  struct tcp_pcb *lpcb[MAX_TUNNEL_LISTENERS];
  size_t n_lpcb;
  socks_uv_listener *local;
};

static void origin_end(struct sockaddr_storage *ss, const ip_addr_t *ip, uint16_t port) {
  exit_addr a;
  exit_addr_from_ip(ip, &a);
  exit_addr_to_sockaddr(&a, port, ss);
}

static err_t on_accept(void *arg, struct tcp_pcb *newpcb, err_t err) {
  struct exit_socks *es = arg;
  if (!es || err != ERR_OK || !newpcb) return ERR_VAL;
  socks_origin o;
  origin_end(&o.local, &newpcb->local_ip, newpcb->local_port);
  origin_end(&o.peer, &newpcb->remote_ip, newpcb->remote_port);
  stream *s = stream_lwip_wrap(es->x->loop, newpcb);
  if (!s) {
    tcp_abort(newpcb);
    return ERR_ABRT;
  }
  socks_session_start(es->tun_svc, s, &o);
  return ERR_OK;
}

/* A listening PCB on one tunnel address; appends "addr:port" to list. */
static int listen_tunnel(struct exit_socks *es, const ip_addr_t *ip, uint16_t port, char *list,
                         size_t listlen, char *err, size_t errlen) {
  exit_addr a;
  exit_addr_from_ip(ip, &a);
  char name[64];
  exit_addr_format(&a, port, name, sizeof name);
  struct tcp_pcb *pcb = tcp_new_ip_type(IP_IS_V6(ip) ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
  struct tcp_pcb *lpcb = NULL;
  if (pcb && tcp_bind(pcb, ip, port) == ERR_OK) lpcb = tcp_listen_with_backlog(pcb, 255);
  if (!lpcb) {
    if (pcb) tcp_abort(pcb);
    snprintf(err, errlen,
             "cannot listen for SOCKS on %s inside the tunnel (port taken or out of memory); "
             "set [Server] Socks to another port or off",
             name);
    return -1;
  }
  tcp_arg(lpcb, es);
  tcp_accept(lpcb, on_accept);
  es->lpcb[es->n_lpcb++] = lpcb;
  size_t used = strlen(list);
  snprintf(list + used, listlen - used, "%s%s", used ? "," : "", name);
  return 0;
}

static int start_tunnel(struct exit_socks *es, char *list, size_t listlen, char *err,
                        size_t errlen) {
  const app_config *cfg = es->x->cfg;
  struct netif *nif = es->x->nif;
  uint16_t port = cfg->server_socks_port;
  if (!ip4_addr_isany_val(*netif_ip4_addr(nif)) &&
      listen_tunnel(es, netif_ip_addr4(nif), port, list, listlen, err, errlen) != 0)
    return -1;
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES && es->n_lpcb < MAX_TUNNEL_LISTENERS; i++)
    if (ip6_addr_isvalid(netif_ip6_addr_state(nif, i)) &&
        listen_tunnel(es, netif_ip_addr6(nif, i), port, list, listlen, err, errlen) != 0)
      return -1;
  return 0;
}

static bool is_loopback(const cfg_hostport *hp) {
  return strncmp(hp->host, "127.", 4) == 0 || strcmp(hp->host, "::1") == 0;
}

static socks_service *service(struct exit_socks *es, exit_socks_env *env, bool in_tunnel) {
  const app_config *cfg = es->x->cfg;
  env->x = es->x;
  env->tunnel = in_tunnel;
  socks_service_cfg sc = {
      .loop = es->x->loop,
      .log_component = "server_socks",
      .users = in_tunnel && !cfg->server_socks_auth ? NULL : cfg->socks_users,
      .n_users = in_tunnel && !cfg->server_socks_auth ? 0 : cfg->n_socks_users,
      .handshake_timeout_ms = (uint64_t)cfg->socks_handshake_timeout * 1000,
      .idle_timeout_ms = (uint64_t)cfg->idle_timeout * 1000,
      .conn = exit_socks_connector(env),
  };
  return socks_service_create(&sc);
}

int exit_socks_start(exit_ctx *x, char *err, size_t errlen) {
  const app_config *cfg = x->cfg;
  if (!cfg->server_socks_port && !cfg->has_local_socks) return 0;
  struct exit_socks *es = calloc(1, sizeof *es);
  if (!es) return snprintf(err, errlen, "out of memory"), -1;
  es->x = x;
  x->socks = es;
  char addrs[400] = "", local[300] = "off";
  if (cfg->server_socks_port) {
    if (!(es->tun_svc = service(es, &es->tun_env, true))) goto oom;
    if (start_tunnel(es, addrs, sizeof addrs, err, errlen) != 0) goto fail;
  }
  if (cfg->has_local_socks) {
    if (!(es->local_svc = service(es, &es->local_env, false))) goto oom;
    es->local = socks_uv_listen(x->loop, es->local_svc, &cfg->local_socks, err, errlen);
    if (!es->local) goto fail;
    cfg_format_hostport(&cfg->local_socks, local, sizeof local);
    if (!is_loopback(&cfg->local_socks))
      LOG_W("server_socks", "local_socks_exposed", "address", local, "msg",
            cfg->n_socks_users
                ? "LocalSocks is not a loopback address: other machines can log in with [Socks] "
                  "User and use the exit"
                : "LocalSocks is not a loopback address and no [Socks] User is set: anyone who "
                  "can reach it can use the exit; bind it to 127.0.0.1 or add User = NAME:HASH",
            NULL);
  }
  LOG_I("server_socks", "listening", "tunnel", cfg->server_socks_port ? addrs : "off", "local",
        local, "auth_tunnel",
        cfg->server_socks_auth ? "username/password (SocksAuth)"
                               : "none (peers are authenticated by their keys)",
        "auth_local",
        !cfg->has_local_socks ? "-"
        : cfg->n_socks_users  ? "username/password"
                              : "none",
        "udp_associate", "not offered", NULL);
  return 0;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  exit_socks_stop(x);
  return -1;
}

void exit_socks_end_peer(exit_ctx *x, exit_peer *p) {
  struct exit_socks *es = x->socks;
  if (!es || !es->tun_svc) return;
  size_t n = socks_service_end_matching(es->tun_svc, exit_socks_request_of, p, DIAL_ERR_NOT_ALLOWED,
                                        "peer removed by a reload");
  if (!n) return;
  char count[24];
  snprintf(count, sizeof count, "%zu", n);
  LOG_I("server_socks", "peer_streams_ended", "peer", exit_peer_name(p), "streams", count, "reason",
        "peer removed by a reload", NULL);
}

static void log_totals(const exit_ctx *x) {
  socks_stats st;
  if (!exit_socks_get_stats(x, &st)) return;
  uint64_t failed = 0;
  for (int i = 1; i < 9; i++) failed += st.replies[i];
  char acc[24], ok[24], bad[24], hs[24];
  snprintf(acc, sizeof acc, "%llu", (unsigned long long)st.accepted);
  snprintf(ok, sizeof ok, "%llu", (unsigned long long)st.replies[0]);
  snprintf(bad, sizeof bad, "%llu", (unsigned long long)failed);
  snprintf(hs, sizeof hs, "%llu", (unsigned long long)st.handshake_failures);
  LOG_I("server_socks", "stopped", "accepted", acc, "succeeded", ok, "failed", bad,
        "handshake_failures", hs, NULL);
}

void exit_socks_stop(exit_ctx *x) {
  struct exit_socks *es = x->socks;
  if (!es) return;
  log_totals(x);
  x->socks = NULL;
  for (size_t i = 0; i < es->n_lpcb; i++) {
    tcp_arg(es->lpcb[i], NULL);
    if (tcp_close(es->lpcb[i]) != ERR_OK) tcp_abort(es->lpcb[i]);
  }
  socks_uv_listener_close(es->local);
  /* Every request is cancelled or released here, while x still exists. */
  socks_service_stop(es->tun_svc);
  socks_service_stop(es->local_svc);
  free(es);
}

static void add_stats(const socks_service *svc, socks_stats *out) {
  if (!svc) return;
  socks_stats st;
  socks_service_get_stats(svc, &st);
  out->accepted += st.accepted;
  out->active += st.active;
  out->handshake_failures += st.handshake_failures;
  for (int i = 0; i < 9; i++) out->replies[i] += st.replies[i];
}

bool exit_socks_get_stats(const exit_ctx *x, socks_stats *out) {
  memset(out, 0, sizeof *out);
  if (!x || !x->socks) return false;
  add_stats(x->socks->tun_svc, out);
  add_stats(x->socks->local_svc, out);
  return true;
}
