/* The TLS carrier's keys (issue 12; docs/config-reference.md): [Peer] TlsEndpoint,
 * TlsServerName, Carrier, TlsVerify, UdpRetry and [Server] TlsListen, TlsCert, TlsKey, TlsName,
 * TlsDecoy, TlsDecoyUpstream. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

cfg_carrier cfg_peer_carrier(const cfg_peer *p) {
  if (p->carrier != CFG_CARRIER_DEFAULT) return p->carrier;
  return p->has_tls_endpoint ? CFG_CARRIER_AUTO : CFG_CARRIER_UDP;
}

const char *cfg_carrier_name(cfg_carrier c) {
  switch (c) {
    case CFG_CARRIER_TLS:
      return "tls";
    case CFG_CARRIER_AUTO:
      return "auto";
    default:
      return "udp";
  }
}

static int copy_text(char *dst, size_t cap, const char *v, const char *what, char *err, size_t n) {
  size_t len = strlen(v);
  if (len == 0) return snprintf(err, n, "%s is empty", what), -1;
  if (len >= cap) return snprintf(err, n, "%s is longer than %zu bytes", what, cap - 1), -1;
  memcpy(dst, v, len + 1);
  return 0;
}

/* ---- [Peer] --------------------------------------------------------------------------- */

int cfg_k_tls_endpoint(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_hostport(v, &L->peer->tls_endpoint, err, n)) return -1;
  L->peer->has_tls_endpoint = true;
  return 0;
}

int cfg_k_tls_server_name(load_ctx *L, char *v, char *err, size_t n) {
  return copy_text(L->peer->tls_server_name, sizeof L->peer->tls_server_name, v, "TlsServerName",
                   err, n);
}

int cfg_k_carrier(load_ctx *L, char *v, char *err, size_t n) {
  if (!strcasecmp(v, "udp"))
    L->peer->carrier = CFG_CARRIER_UDP;
  else if (!strcasecmp(v, "tls"))
    L->peer->carrier = CFG_CARRIER_TLS;
  else if (!strcasecmp(v, "auto"))
    L->peer->carrier = CFG_CARRIER_AUTO;
  else
    return snprintf(err, n, "'%.32s' is not a carrier; use auto, udp or tls", v), -1;
  return 0;
}

int cfg_k_tls_verify(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_bool(v, &L->peer->tls_verify) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use on or off", v), -1;
  return 0;
}

int cfg_k_udp_retry(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t s;
  if (cfg_parse_uint(v, 1, 86400, &s, err, n)) return -1;
  L->peer->udp_retry = (uint32_t)s;
  return 0;
}

/* ---- [Server] ------------------------------------------------------------------------- */

int cfg_k_tls_listen(load_ctx *L, char *v, char *err, size_t n) {
  app_config *c = L->c;
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  for (int i = 0; i < cnt; i++) {
    if (c->n_tls_listen == CFG_TLS_LISTEN_MAX)
      return snprintf(err, n, "more than %d TlsListen addresses", CFG_TLS_LISTEN_MAX), -1;
    cfg_hostport *h = &c->tls_listen[c->n_tls_listen];
    if (cfg_parse_hostport(items[i], h, err, n)) return -1;
    if (!h->host_is_ip)
      return snprintf(err, n, "'%.64s' must be an IP address and port (e.g. 0.0.0.0:443)",
                      items[i]),
             -1;
    c->n_tls_listen++;
  }
  if (cnt <= 0)
    return snprintf(err, n, "TlsListen takes ADDR:PORT[, ADDR:PORT…], at most %d",
                    CFG_TLS_LISTEN_MAX),
           -1;
  return 0;
}

int cfg_k_tls_cert(load_ctx *L, char *v, char *err, size_t n) {
  return copy_text(L->c->tls_cert, sizeof L->c->tls_cert, v, "TlsCert", err, n);
}
int cfg_k_tls_key(load_ctx *L, char *v, char *err, size_t n) {
  return copy_text(L->c->tls_key, sizeof L->c->tls_key, v, "TlsKey", err, n);
}
int cfg_k_tls_name(load_ctx *L, char *v, char *err, size_t n) {
  return copy_text(L->c->tls_name, sizeof L->c->tls_name, v, "TlsName", err, n);
}
int cfg_k_tls_decoy(load_ctx *L, char *v, char *err, size_t n) {
  return copy_text(L->c->tls_decoy, sizeof L->c->tls_decoy, v, "TlsDecoy", err, n);
}
int cfg_k_tls_decoy_upstream(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_hostport(v, &L->c->tls_decoy_upstream, err, n)) return -1;
  L->c->has_tls_decoy_upstream = true;
  return 0;
}
/* TlsCert and TlsKey come together; one decoy; Carrier = tls needs somewhere to connect. */
void cfg_validate_tls(const app_config *c, diag_list *d) {
  if (c->tls_decoy[0] && c->has_tls_decoy_upstream)
    diag_add(d, DIAG_ERROR, 0,
             "[Server] TlsDecoy and TlsDecoyUpstream both set: a prober sees one web site, "
             "keep the one you want");
  if (!!c->tls_cert[0] != !!c->tls_key[0])
    diag_add(d, DIAG_ERROR, 0,
             "[Server] TlsCert and TlsKey go together: set both (PEM files), or neither for a "
             "self-signed certificate");
  for (size_t i = 0; i < c->n_peers; i++) {
    const cfg_peer *p = &c->peers[i];
    if (p->carrier == CFG_CARRIER_TLS && !p->has_tls_endpoint)
      diag_add(d, DIAG_ERROR, p->line,
               "[Peer] Carrier = tls needs TlsEndpoint = host:port (the server's TlsListen)");
  }
}
