/* The exit's core: the lwIP input hooks, the "as if local" input path, the policy with the
 * host's addresses, and the exit's lifecycle. Addresses and tuples: exit_addr.c; packets built
 * for the tunnel: exit_send.c. */
#include "exit/exit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/ipstack.h"
#include "exit/exit_internal.h"
#include "exit/exit_quic.h"
#include "exit/exit_peer.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip_hooks.h"
#include "util/fd_limit.h"
#include "util/log.h"
#include "util/bytes.h"
#include "util/list.h"

static exit_ctx *g_exit;
static int g_depth; /* > 0 while a foreign packet is inside lwIP */

/* ---- policy ---------------------------------------------------------------------------- */

bool exit_allowed(exit_ctx *x, const char *proto, const exit_tuple *t) {
  exit_verdict v = exit_policy_check(&x->policy, t->dst.family, t->dst.a);
  if (v == EXIT_ALLOW) return true;
  x->stats.denied++;
  if (log_enabled(LOG_DEBUG)) {
    char dst[64];
    exit_addr_format(&t->dst, t->dport, dst, sizeof dst);
    LOG_D("exit", "denied", "proto", proto, "dst", dst, "reason", exit_verdict_str(v), NULL);
  }
  return false;
}

/* The host's own interface addresses join the policy's "own" list (refreshed periodically). */
static void refresh_host_addresses(exit_ctx *x) {
  uv_interface_address_t *ifs = NULL;
  int n = 0;
  x->next_host_refresh = uv_now(x->loop) + EXIT_HOST_REFRESH_MS;
  if (uv_interface_addresses(&ifs, &n) != 0) return;
  exit_policy_clear_host(&x->policy);
  for (int i = 0; i < n; i++) {
    if (ifs[i].address.address4.sin_family == AF_INET)
      exit_policy_add_host(&x->policy, AF_INET, (const uint8_t *)&ifs[i].address.address4.sin_addr);
    else if (ifs[i].address.address6.sin6_family == AF_INET6)
      exit_policy_add_host(&x->policy, AF_INET6,
                           (const uint8_t *)&ifs[i].address.address6.sin6_addr);
  }
  uv_free_interface_addresses(ifs, n);
}

/* ---- input ------------------------------------------------------------------------------ */

bool exit_in_foreign_input(void) { return g_depth > 0; }

static int spare_ip6_slot(struct netif *n) {
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
    if (n->ip6_addr_state[i] == IP6_ADDR_INVALID) return i;
  return -1;
}

void exit_input_as_local(exit_ctx *x, struct pbuf *p, const exit_addr *dst) {
  struct netif *n = x->nif;
  g_depth++;
  if (dst->family == AF_INET) {
    /* Set the field directly: netif_set_ipaddr would abort every PCB on the old address. */
    ip4_addr_t *own = ip_2_ip4(&n->ip_addr);
    u32_t saved = own->addr;
    memcpy(&own->addr, dst->a, 4);
    ip4_input(p, n);
    own->addr = saved;
  } else {
    int i = spare_ip6_slot(n);
    if (i < 0) {
      x->stats.dropped++;
      pbuf_free(p);
    } else {
      /* The same for IPv6, in a free address slot; its state is set directly for the same
       * reason (netif_ip6_addr_set_state aborts PCBs when an address becomes invalid). */
      ip_addr_t *slot = &n->ip6_addr[i];
      exit_addr_to_ip(dst, slot);
      n->ip6_addr_state[i] = IP6_ADDR_PREFERRED;
      ip6_input(p, n);
      n->ip6_addr_state[i] = IP6_ADDR_INVALID;
      ip_addr_set_zero_ip6(slot);
    }
  }
  g_depth--;
}

/* A TCP segment with SYN and none of ACK, RST, FIN: the start of a new connection. */
static bool is_syn(const uint8_t *th) { return (th[13] & 0x17) == 0x02; }

int exit_hook_ip4_input(struct pbuf *p, struct netif *inp) {
  exit_ctx *x = g_exit;
  if (!x || g_depth || inp != x->nif) return 0;
  uint8_t h[60 + 20];
  size_t n = pbuf_copy_partial(p, h, sizeof h, 0);
  if (n < 20) return 0;
  size_t ihl = (size_t)(h[0] & 15) * 4;
  if (ihl < 20 || n < ihl) return 0;
  const uint8_t *dst = h + 16;
  if (!memcmp(dst, &ip_2_ip4(&inp->ip_addr)->addr, 4)) return 0; /* ours: lwIP as usual */
  if (dst[0] == 0 || dst[0] >= 224) return 0; /* multicast, broadcast, reserved: lwIP drops */
  exit_addr da = {.family = AF_INET};
  memcpy(da.a, dst, 4);
  bool fragment = (be16_load(h + 6) & 0x3FFF) != 0;
  if (h[9] == IP_PROTO_TCP && !fragment && n >= ihl + 20 && is_syn(h + ihl)) {
    exit_tcp_syn(x, p, h, ihl);
    return 1;
  }
  exit_input_as_local(x, p, &da);
  return 1;
}

int exit_hook_ip6_input(struct pbuf *p, struct netif *inp) {
  exit_ctx *x = g_exit;
  if (!x || g_depth || inp != x->nif) return 0;
  uint8_t h[40 + 20];
  size_t n = pbuf_copy_partial(p, h, sizeof h, 0);
  if (n < 40) return 0;
  const uint8_t *dst = h + 24;
  if (dst[0] == 0xFF) return 0; /* multicast */
  for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
    if (ip6_addr_isvalid(netif_ip6_addr_state(inp, i)) &&
        !memcmp(dst, netif_ip6_addr(inp, i)->addr, 16))
      return 0;
  static const uint8_t zero[16];
  if (!memcmp(dst, zero, 16)) return 0;
  exit_addr da = {.family = AF_INET6};
  memcpy(da.a, dst, 16);
  if (h[6] == IP6_NEXTH_TCP && n >= 60 && is_syn(h + 40)) {
    exit_tcp_syn(x, p, h, 40);
    return 1;
  }
  exit_input_as_local(x, p, &da);
  return 1;
}

/* Output to an IPv4 peer when the netif has no IPv4 address of its own (lwIP's default route
 * needs one): the exit still answers IPv4 packets from the foreign addresses they were sent to. */
struct netif *exit_hook_ip4_route(const struct ip4_addr *dest) {
  exit_ctx *x = g_exit;
  if (!x || ip4_addr_isloopback(dest) || !ip4_addr_isany_val(*netif_ip4_addr(x->nif))) return NULL;
  return x->nif;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* Every exit connection holds a file descriptor: make room for [Server] MaxConnections (plus
 * listeners, DNS, ping sockets). */
static void raise_fd_limit(const app_config *cfg) {
  uint64_t need = (uint64_t)cfg->server_max_connections + 512;
  fd_limit_ensure(need, need, "exit", "[Server] MaxConnections");
}

static void on_sweep(uv_timer_t *t) {
  exit_ctx *x = t->data;
  uint64_t now = uv_now(x->loop);
  exit_tcp_sweep(x, now);
  exit_udp_sweep(x, now);
  exit_icmp_sweep(x, now);
  if (now >= x->next_host_refresh) refresh_host_addresses(x);
}

exit_ctx *exit_start(uv_loop_t *loop, tunnel *tun, const app_config *cfg, char *err,
                     size_t errlen) {
  if (g_exit) return snprintf(err, errlen, "only one exit per process"), NULL;
  exit_ctx *x = calloc(1, sizeof *x);
  if (!x) return snprintf(err, errlen, "out of memory"), NULL;
  x->loop = loop;
  x->cfg = cfg;
  x->tun = tun;
  list_init(&x->tcp_list);
  list_init(&x->conns);
  list_init(&x->udp_list);
  list_init(&x->dns_list);
  list_init(&x->echo_list);
  x->nif = ipstack_netif(tunnel_ipstack(tun));
  ipstack_trust_inbound(tunnel_ipstack(tun)); /* every packet comes sealed from a peer device */
  exit_policy_init(&x->policy, cfg->server_allow_private, cfg->addresses, cfg->n_addresses);
  refresh_host_addresses(x);
  raise_fd_limit(cfg);
  if (exit_udp_start(x) != 0) {
    free(x);
    return snprintf(err, errlen, "cannot create the exit's lwIP PCBs"), NULL;
  }
  exit_icmp_start(x);
  exit_peer *none = NULL;
  bool built = exit_peers_build(x, &none) == 0;
  if (!built) snprintf(err, errlen, "out of memory building the per-peer table");
  if (!built || exit_socks_start(x, err, errlen) != 0 || exit_quic_start(x, err, errlen) != 0) {
    exit_socks_stop(x);
    exit_peers_free(x);
    exit_udp_stop(x);
    exit_icmp_stop(x);
    free(x);
    return NULL;
  }
  uv_timer_init(loop, &x->sweep);
  x->sweep.data = x;
  uv_timer_start(&x->sweep, on_sweep, 1000, 1000);
  g_exit = x;
  if (spare_ip6_slot(x->nif) < 0)
    LOG_W("exit", "no_ipv6_exit", "msg",
          "every IPv6 address slot is taken by Address entries: IPv6 destinations are dropped",
          NULL);
  const char *echo = x->ping4 && x->ping6 ? "proxied"
                     : x->ping4           ? "proxied for IPv4, prohibited for IPv6"
                     : x->ping6           ? "proxied for IPv6, prohibited for IPv4"
                                          : "answered with administratively prohibited "
                                            "(net.ipv4.ping_group_range excludes our group)";
  LOG_I("exit", "started", "allow_private", cfg->server_allow_private ? "yes" : "no", "icmp_echo",
        echo, NULL);
  return x;
}

static void on_sweep_closed(uv_handle_t *h) { free(h->data); }

void exit_stop(exit_ctx *x) {
  if (!x) return;
  if (g_exit == x) g_exit = NULL;
  x->stopping = true;
  exit_quic_stop(x);
  exit_socks_stop(x);
  exit_tcp_stop(x);
  exit_udp_stop(x);
  exit_icmp_stop(x);
  exit_peers_free(x); /* peers still held by closing flows go with their last reference */
  uv_timer_stop(&x->sweep);
  uv_close((uv_handle_t *)&x->sweep, on_sweep_closed);
}

void exit_reload(exit_ctx *x, const app_config *cfg) {
  x->cfg = cfg;
  exit_policy_init(&x->policy, cfg->server_allow_private, cfg->addresses, cfg->n_addresses);
  refresh_host_addresses(x);
  raise_fd_limit(cfg);
  exit_peer *removed = NULL;
  if (exit_peers_build(x, &removed) != 0)
    LOG_E("exit", "reload_incomplete", "error",
          "out of memory: the flows of peers left out are refused", NULL);
  /* Removed peers: every flow and connection of theirs ends now, on every transport. */
  while (removed) {
    exit_peer *p = removed;
    removed = exit_peer_next_removed(p);
    exit_tcp_end_peer(x, p);
    exit_udp_end_peer(x, p);
    exit_socks_end_peer(x, p);
    exit_quic_end_peer(x, p);
    exit_peer_put(p);
  }
  exit_icmp_end_stale(x);
}

void exit_get_stats(const exit_ctx *x, exit_stats *out) {
  *out = x->stats;
  exit_peers_stats(x, out);
}
