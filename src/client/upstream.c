#include "client/upstream.h"

#include <stdio.h>
#include <string.h>

#include "device/path_probe.h"
#include "lwip/netif.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "carrier/tls_client.h"
#include "quic/dgram_transport.h"
#include "quic/dialer_transport.h"
#include "stream/dgram_lwip.h"
#include "stream/dialer_lwip.h"

int upstream_start(upstream *u, uv_loop_t *loop, const app_config *cfg, const app_config *front,
                   char *err, size_t errlen) {
  memset(u, 0, sizeof *u);
  u->cfg = cfg;
  u->tun = tunnel_create(loop, cfg, err, errlen);
  if (!u->tun) return -1;
  u->tls = tls_client_start(loop, cfg, u->tun, err, errlen); /* NULL: UDP only */
  if (!u->tls && err[0]) goto fail;
  struct netif *nif = ipstack_netif(tunnel_ipstack(u->tun));
  u->res = resolver_create(loop, nif, cfg->dns, cfg->n_dns);
  if (!u->res) goto oom;
  dialer_lwip_env env = {loop, u->tun, u->res, (uint64_t)front->connect_timeout * 1000,
                         (uint64_t)front->tunnel_wait * 1000};
  u->dl_ip = dialer_lwip_new(&env);
  if (!u->dl_ip) goto oom;
  u->quic =
      quic_client_start(loop, u->tun, cfg, env.tunnel_wait_ms, env.connect_timeout_ms, err, errlen);
  if (!u->quic) goto fail;
  u->dl = dialer_transport_new(u->dl_ip, u->quic);
  u->dg_ip = dgram_lwip_new(nif);
  u->dg = u->dg_ip ? dgram_transport_new(u->dg_ip, u->quic) : NULL;
  if (!u->dl || !u->dg) goto oom;
  u->probe = path_probe_start(loop, u->tun, cfg); /* NULL: nothing to probe */
  return 0;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  upstream_stop(u);
  return -1;
}

void upstream_stop(upstream *u) {
  dialer_destroy(u->dl);
  dgram_opener_destroy(u->dg);
  quic_client_stop(u->quic);
  dialer_destroy(u->dl_ip);
  dgram_opener_destroy(u->dg_ip);
  path_probe_stop(u->probe);
  tls_client_stop(u->tls);
  tunnel_destroy(u->tun);
  resolver_destroy(u->res);
  memset(u, 0, sizeof *u);
}

bool upstream_service_dest(const upstream *u, uint16_t port, dial_dest *out) {
  cfg_ip addr;
  uint16_t quic_port;
  const app_config *c = u->cfg;
  if (!c->n_peers || !config_quic_server(c, &c->peers[0], &addr, &quic_port)) return false;
  *out =
      (dial_dest){.type = addr.family == AF_INET6 ? DIAL_DEST_IPV6 : DIAL_DEST_IPV4, .port = port};
  memcpy(out->ip, addr.addr, addr.family == AF_INET6 ? 16 : 4);
  return true;
}

/* lwIP calls each connection's error callback from tcp_abort (the stream then reports the reset
 * to its relay); the list changes under it, so walk again from the start after each abort. */
static void abort_lwip(struct netif *nif) {
  u8_t idx = netif_get_index(nif);
  for (bool again = true; again;) {
    again = false;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
      if (pcb->netif_idx != idx) continue;
      tcp_abort(pcb);
      again = true;
      break;
    }
  }
}

void upstream_abort_streams(upstream *u, const char *reason) {
  abort_lwip(ipstack_netif(tunnel_ipstack(u->tun)));
  quic_client_abort(u->quic, reason);
}
