/* Loading a config: section and key tables, one handler per key, then whole-file validation
 * (config_validate.c). Unknown names are errors with the nearest valid name. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "awg/itag.h"
#include "config/config_internal.h"
#include "config/ini.h"
#include "util/log.h"

app_config *cfg_load_config(load_ctx *L) { return L->c; }
cfg_peer *cfg_load_peer(load_ctx *L) { return L->peer; }

/* ---- helpers ---------------------------------------------------------------------------- */

void *cfg_grow(void *arr, size_t n, size_t size) {
  if (n >= CFG_MAX_LIST * 64) return NULL;
  return realloc(arr, (n + 1) * size);
}

static int set_uint(char *v, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen) {
  return cfg_parse_uint(v, min, max, out, err, errlen);
}

static int parse_key(const char *v, uint8_t out[AWG_KEY_LEN], char *err, size_t errlen) {
  char why[160];
  if (key_from_base64(v, out, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  if (sodium_is_zero(out, AWG_KEY_LEN)) {
    snprintf(err, errlen, "is all zeros, which is not a key (generate one with `awgproxy genkey`)");
    return -1;
  }
  return 0;
}

/* ---- [Interface] ------------------------------------------------------------------------ */

static int k_private_key(load_ctx *L, char *v, char *err, size_t n) {
  if (parse_key(v, L->c->private_key, err, n)) return -1;
  L->c->has_private_key = true;
  if (key_public_from_private(L->c->private_key, L->c->public_key) != 0) {
    snprintf(err, n, "is not a usable Curve25519 private key (its public key is zero)");
    return -1;
  }
  return 0;
}

static int k_listen_port(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t p;
  if (set_uint(v, 0, 65535, &p, err, n)) return -1;
  L->c->listen_port = (uint16_t)p;
  L->c->has_listen_port = true;
  return 0;
}

static int k_address(load_ctx *L, char *v, char *err, size_t n) {
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  if (cnt <= 0) {
    snprintf(err, n,
             cnt < 0 ? "lists more than %d addresses" : "is empty; expected e.g. 10.0.0.2/32",
             CFG_MAX_LIST);
    return -1;
  }
  for (int i = 0; i < cnt; i++) {
    cfg_cidr a;
    if (cfg_parse_address(items[i], &a, err, n)) return -1;
    cfg_cidr *arr = cfg_grow(L->c->addresses, L->c->n_addresses, sizeof *arr);
    if (!arr) return snprintf(err, n, "too many addresses"), -1;
    L->c->addresses = arr;
    arr[L->c->n_addresses++] = a;
  }
  return 0;
}

static int k_dns(load_ctx *L, char *v, char *err, size_t n) {
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  if (cnt < 0) return snprintf(err, n, "lists more than %d entries", CFG_MAX_LIST), -1;
  for (int i = 0; i < cnt; i++) {
    cfg_ip ip;
    if (cfg_parse_ip(items[i], &ip) != 0) {
      /* wg-quick treats non-IP entries as search domains; a proxy has no use for them. */
      diag_add(L->d, DIAG_WARNING, L->key_line,
               "DNS entry '%.100s' is not an IP address: wg-quick uses it as a search domain, "
               "awgproxy ignores it",
               items[i]);
      continue;
    }
    cfg_ip *arr = cfg_grow(L->c->dns, L->c->n_dns, sizeof *arr);
    if (!arr) return snprintf(err, n, "too many DNS servers"), -1;
    L->c->dns = arr;
    arr[L->c->n_dns++] = ip;
  }
  return 0;
}

static int k_mtu(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t m;
  if (set_uint(v, 576, 65535, &m, err, n)) return -1;
  L->c->mtu = (uint32_t)m;
  L->c->mtu_explicit = true;
  return 0;
}

static int awg_uint(load_ctx *L, char *v, uint64_t max, uint32_t *out, char *err, size_t n) {
  uint64_t x;
  if (set_uint(v, 0, max, &x, err, n)) return -1;
  *out = (uint32_t)x;
  return 0;
}

static int k_jc(load_ctx *L, char *v, char *err, size_t n) {
  return awg_uint(L, v, AWG_MAX_PREHANDSHAKE_DATAGRAMS, &L->c->awg.jc, err, n);
}
static int k_jmin(load_ctx *L, char *v, char *err, size_t n) {
  return awg_uint(L, v, AWG_MAX_DATAGRAM, &L->c->awg.jmin, err, n);
}
static int k_jmax(load_ctx *L, char *v, char *err, size_t n) {
  return awg_uint(L, v, AWG_MAX_DATAGRAM, &L->c->awg.jmax, err, n);
}

static int k_s(load_ctx *L, int i, char *v, char *err, size_t n) {
  return awg_uint(L, v, AWG_MAX_PADDING, &L->c->awg.s[i], err, n);
}
static int k_s1(load_ctx *L, char *v, char *e, size_t n) { return k_s(L, 0, v, e, n); }
static int k_s2(load_ctx *L, char *v, char *e, size_t n) { return k_s(L, 1, v, e, n); }
static int k_s3(load_ctx *L, char *v, char *e, size_t n) { return k_s(L, 2, v, e, n); }
static int k_s4(load_ctx *L, char *v, char *e, size_t n) { return k_s(L, 3, v, e, n); }

static int k_h(load_ctx *L, int i, char *v, char *err, size_t n) {
  return awg_hrange_parse(v, &L->c->awg.h[i], err, n);
}
static int k_h1(load_ctx *L, char *v, char *e, size_t n) { return k_h(L, 0, v, e, n); }
static int k_h2(load_ctx *L, char *v, char *e, size_t n) { return k_h(L, 1, v, e, n); }
static int k_h3(load_ctx *L, char *v, char *e, size_t n) { return k_h(L, 2, v, e, n); }
static int k_h4(load_ctx *L, char *v, char *e, size_t n) { return k_h(L, 3, v, e, n); }

static int k_i(load_ctx *L, int i, char *v, char *err, size_t n) {
  awg_itemplate *t = NULL;
  if (awg_itemplate_compile(v, &t, err, n) != 0) return -1;
  if (!t && *v)
    diag_add(L->d, DIAG_WARNING, L->key_line,
             "I%d = '%.40s' holds no <tag>, so the slot stays unset (did you mean <b 0x…>?)", i + 1,
             v);
  awg_itemplate_free(L->c->awg.i[i]);
  L->c->awg.i[i] = t;
  return 0;
}
static int k_i1(load_ctx *L, char *v, char *e, size_t n) { return k_i(L, 0, v, e, n); }
static int k_i2(load_ctx *L, char *v, char *e, size_t n) { return k_i(L, 1, v, e, n); }
static int k_i3(load_ctx *L, char *v, char *e, size_t n) { return k_i(L, 2, v, e, n); }
static int k_i4(load_ctx *L, char *v, char *e, size_t n) { return k_i(L, 3, v, e, n); }
static int k_i5(load_ctx *L, char *v, char *e, size_t n) { return k_i(L, 4, v, e, n); }

static int k_ignored(load_ctx *L, char *v, char *err, size_t n) { return 0; }

static const key_spec interface_keys[] = {
    {"PrivateKey", k_private_key, 0},
    {"ListenPort", k_listen_port, 0},
    {"Address", k_address, KEY_LIST},
    {"DNS", k_dns, KEY_LIST},
    {"MTU", k_mtu, 0},
    {"Jc", k_jc, 0},
    {"Jmin", k_jmin, 0},
    {"Jmax", k_jmax, 0},
    {"S1", k_s1, 0},
    {"S2", k_s2, 0},
    {"S3", k_s3, 0},
    {"S4", k_s4, 0},
    {"H1", k_h1, 0},
    {"H2", k_h2, 0},
    {"H3", k_h3, 0},
    {"H4", k_h4, 0},
    {"I1", k_i1, 0},
    {"I2", k_i2, 0},
    {"I3", k_i3, 0},
    {"I4", k_i4, 0},
    {"I5", k_i5, 0},
    {"HeaderProtectionKey", cfg_k_header_protection_key, 0},
    {"ContentPaddingAddition", cfg_k_content_padding, 0},
    {"RandomTrailers", cfg_k_random_trailers, 0},
    {"DisableCookies", cfg_k_disable_cookies, 0},
    {"RekeyAfterTime", cfg_k_rekey_after_time, 0},
    {"RekeyTimeout", cfg_k_rekey_timeout, 0},
    {"RejectAfterTime", cfg_k_reject_after_time, 0},
    {"KeepaliveTimeout", cfg_k_keepalive_timeout, 0},
    {"MaxHandshakeAttempts", cfg_k_max_handshake_attempts, 0},
    {"PostUp", k_ignored, KEY_LIST | KEY_WGQUICK_ONLY},
    {"PostDown", k_ignored, KEY_LIST | KEY_WGQUICK_ONLY},
    {"PreUp", k_ignored, KEY_LIST | KEY_WGQUICK_ONLY},
    {"PreDown", k_ignored, KEY_LIST | KEY_WGQUICK_ONLY},
    {"Table", k_ignored, KEY_WGQUICK_ONLY},
    {"SaveConfig", k_ignored, KEY_WGQUICK_ONLY},
    {"FwMark", k_ignored, KEY_WGQUICK_ONLY},
    {NULL, NULL, 0},
};

/* ---- [Peer] ----------------------------------------------------------------------------- */

static int k_public_key(load_ctx *L, char *v, char *err, size_t n) {
  return parse_key(v, L->peer->public_key, err, n);
}

static int k_psk(load_ctx *L, char *v, char *err, size_t n) {
  if (parse_key(v, L->peer->psk, err, n)) return -1;
  L->peer->has_psk = !sodium_is_zero(L->peer->psk, AWG_KEY_LEN);
  return 0;
}

static int k_endpoint(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_hostport(v, &L->peer->endpoint, err, n)) return -1;
  L->peer->has_endpoint = true;
  return 0;
}

static int k_allowed_ips(load_ctx *L, char *v, char *err, size_t n) {
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  if (cnt < 0) return snprintf(err, n, "lists more than %d prefixes on one line", CFG_MAX_LIST), -1;
  for (int i = 0; i < cnt; i++) {
    cfg_cidr a;
    if (cfg_parse_cidr(items[i], &a, err, n)) return -1;
    cfg_cidr *arr = cfg_grow(L->peer->allowed_ips, L->peer->n_allowed_ips, sizeof *arr);
    if (!arr) return snprintf(err, n, "too many prefixes"), -1;
    L->peer->allowed_ips = arr;
    arr[L->peer->n_allowed_ips++] = a;
  }
  return 0;
}

/* The exit rules: list keys, each line appends. */
static int add_exit_rules(load_ctx *L, char *v, cfg_exit_rule **arr, size_t *n, char *err,
                          size_t errlen) {
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  if (cnt < 0)
    return snprintf(err, errlen, "lists more than %d rules on one line", CFG_MAX_LIST), -1;
  if (cnt == 0) return snprintf(err, errlen, "is empty; expected e.g. 203.0.113.0/24 or *:443"), -1;
  for (int i = 0; i < cnt; i++) {
    cfg_exit_rule r;
    if (cfg_parse_exit_rule(items[i], &r, err, errlen)) {
      cfg_domain_rule dr;
      char why[8];
      if (strchr(items[i], '.') && cfg_parse_domain_rule(items[i], &dr, why, sizeof why) == 0 &&
          !isdigit((unsigned char)dr.name[strlen(dr.name) - 1]))
        snprintf(err, errlen,
                 "'%.80s' is a domain name; put domain patterns in ExitAllowDomain or "
                 "ExitDenyDomain",
                 items[i]);
      return -1;
    }
    cfg_exit_rule *a = cfg_grow(*arr, *n, sizeof *a);
    if (!a) return snprintf(err, errlen, "too many rules"), -1;
    *arr = a;
    a[(*n)++] = r;
  }
  return 0;
}

static int add_domain_rules(load_ctx *L, char *v, cfg_domain_rule **arr, size_t *n, char *err,
                            size_t errlen) {
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  if (cnt < 0)
    return snprintf(err, errlen, "lists more than %d patterns on one line", CFG_MAX_LIST), -1;
  if (cnt == 0)
    return snprintf(err, errlen, "is empty; expected e.g. example.com or *.example.com"), -1;
  for (int i = 0; i < cnt; i++) {
    cfg_domain_rule r;
    if (cfg_parse_domain_rule(items[i], &r, err, errlen)) return -1;
    cfg_domain_rule *a = cfg_grow(*arr, *n, sizeof *a);
    if (!a) return snprintf(err, errlen, "too many patterns"), -1;
    *arr = a;
    a[(*n)++] = r;
  }
  return 0;
}

static int k_exit_allow(load_ctx *L, char *v, char *err, size_t n) {
  return add_exit_rules(L, v, &L->peer->exit_allow, &L->peer->n_exit_allow, err, n);
}
static int k_exit_deny(load_ctx *L, char *v, char *err, size_t n) {
  return add_exit_rules(L, v, &L->peer->exit_deny, &L->peer->n_exit_deny, err, n);
}
static int k_allow_domain(load_ctx *L, char *v, char *err, size_t n) {
  return add_domain_rules(L, v, &L->peer->allow_domains, &L->peer->n_allow_domains, err, n);
}
static int k_deny_domain(load_ctx *L, char *v, char *err, size_t n) {
  return add_domain_rules(L, v, &L->peer->deny_domains, &L->peer->n_deny_domains, err, n);
}

static int k_peer_max_conns(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t m;
  if (cfg_parse_uint(v, 1, CFG_MAX_CONNECTIONS_LIMIT, &m, err, n)) return -1;
  L->peer->max_connections = (uint32_t)m;
  return 0;
}

static int k_upload_limit(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_rate(v, &L->peer->upload_limit, err, n);
}
static int k_download_limit(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_rate(v, &L->peer->download_limit, err, n);
}

static int k_transport(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_transport(v, &L->peer->transport, err, n);
}
static int k_congestion(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_congestion(v, &L->peer->congestion, err, n);
}
static int k_quic_server(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_ip(v, &L->peer->quic_server) != 0)
    return snprintf(err, n, "'%.64s' is not an IP address (the server's tunnel address)", v), -1;
  L->peer->has_quic_server = true;
  return 0;
}
static int k_peer_quic_port(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_port(v, &L->peer->quic_port, err, n);
}

static int k_peer_stream_window(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_window(v, &L->peer->quic_stream_window, err, n);
}
static int k_peer_conn_window(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_window(v, &L->peer->quic_conn_window, err, n);
}

static int k_quic_protection(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_quic_protection(v, &L->peer->quic_tunnel_protection, err, n);
}

static int k_repair(load_ctx *L, char *v, char *err, size_t n) {
  bool on;
  if (cfg_parse_bool(v, &on) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use on or off", v), -1;
  L->peer->no_repair = !on;
  return 0;
}

static const key_spec peer_keys[] = {
    {"PublicKey", k_public_key, 0},
    {"PresharedKey", k_psk, 0},
    {"Endpoint", k_endpoint, 0},
    {"AllowedIPs", k_allowed_ips, KEY_LIST},
    {"PersistentKeepalive", cfg_k_persistent_keepalive, 0},
    {"ExitAllow", k_exit_allow, KEY_LIST},
    {"ExitDeny", k_exit_deny, KEY_LIST},
    {"ExitAllowDomain", k_allow_domain, KEY_LIST},
    {"ExitDenyDomain", k_deny_domain, KEY_LIST},
    {"MaxConnections", k_peer_max_conns, 0},
    {"UploadLimit", k_upload_limit, 0},
    {"DownloadLimit", k_download_limit, 0},
    {"Transport", k_transport, 0},
    {"Congestion", k_congestion, 0},
    {"QuicServer", k_quic_server, 0},
    {"QuicPort", k_peer_quic_port, 0},
    {"QuicStreamWindow", k_peer_stream_window, 0},
    {"QuicConnWindow", k_peer_conn_window, 0},
    {"QuicProtection", k_quic_protection, 0},
    {"Repair", k_repair, 0},
    {"EndpointPorts", cfg_k_endpoint_ports, 0},
    {"HopInterval", cfg_k_hop_interval, 0},
    {"TlsEndpoint", cfg_k_tls_endpoint, 0},
    {"TlsServerName", cfg_k_tls_server_name, 0},
    {"Carrier", cfg_k_carrier, 0},
    {"TlsVerify", cfg_k_tls_verify, 0},
    {"UdpRetry", cfg_k_udp_retry, 0},
    {NULL, NULL, 0},
};

static const section_spec sections[] = {
    {"Interface", SEC_INTERFACE, interface_keys, false},
    {"Peer", SEC_PEER, peer_keys, true},
    {"Socks", SEC_SOCKS, cfg_socks_keys, false},
    {"Forward", SEC_FORWARD, cfg_forward_keys, true},
    {"Server", SEC_SERVER, cfg_server_keys, false},
    {"Log", SEC_LOG, cfg_log_keys, false},
    {"Metrics", SEC_METRICS, cfg_metrics_keys, false},
    {"Control", SEC_CONTROL, cfg_control_keys, false},
    {"Http", SEC_HTTP, cfg_http_keys, false},
    {"Client", SEC_CLIENT, cfg_client_keys, false},
    {NULL, SEC_NONE, NULL, false},
};

int cfg_interface_line(const int *iface_lines, const char *key) {
  for (size_t i = 0; interface_keys[i].name; i++)
    if (strcasecmp(interface_keys[i].name, key) == 0) return iface_lines[i];
  return 0;
}

/* ---- the loader ------------------------------------------------------------------------- */

static const char *nearest(const char *name, const char *const *cands, size_t ncand) {
  const char *best = NULL;
  size_t best_d = (size_t)-1;
  for (size_t i = 0; i < ncand; i++) {
    size_t d = cfg_edit_distance(name, cands[i]);
    if (d < best_d) best_d = d, best = cands[i];
  }
  return best;
}

static void finish_section(load_ctx *L) {
  if (!L->sec) return;
  if (L->sec->id == SEC_INTERFACE) memcpy(L->iface_lines, L->seen, sizeof L->seen);
  if (L->sec->id == SEC_PEER && !L->seen[0])
    diag_add(L->d, DIAG_ERROR, L->sec_line,
             "[Peer] has no PublicKey; every peer needs the other side's public key");
  if (L->sec->id == SEC_FORWARD) {
    if (!L->fwd_has_listen)
      diag_add(L->d, DIAG_ERROR, L->sec_line,
               "[Forward] has no Listen; add e.g. Listen = 127.0.0.1:8080");
    if (!L->fwd_has_target)
      diag_add(L->d, DIAG_ERROR, L->sec_line,
               "[Forward] has no Target; add the address to reach through the tunnel, e.g. "
               "Target = 10.0.0.1:80");
  }
}

/* Our own sections: shared by every server of a config set (config_set.c). */
static bool own_section(sec_id id) {
  return id != SEC_INTERFACE && id != SEC_PEER && id != SEC_SERVER && id != SEC_NONE;
}

static int on_section(load_ctx *L, const ini_item *it) {
  finish_section(L);
  memset(L->seen, 0, sizeof L->seen);
  L->sec = NULL;
  L->sec_line = it->line;
  for (const section_spec *s = sections; s->name; s++) {
    if (strcasecmp(s->name, it->name) != 0) continue;
    if (own_section(s->id) && !L->opts->own_line) L->opts->own_line = it->line;
    if (L->opts->front && !own_section(s->id)) {
      L->sec_line = -1; /* the front-end reads our sections only; the file was loaded already */
      return 0;
    }
    if (s->id == SEC_CLIENT && !L->c->client_line) L->c->client_line = it->line;
    if (!s->repeatable) {
      int *first = &L->section_seen[s->id];
      if (*first) {
        diag_add(L->d, DIAG_ERROR, it->line,
                 "section [%s] appears twice (first at line %d); merge them", s->name, *first);
        L->sec_line = -1; /* its keys are skipped, not blamed as "before any section" */
        return 0;
      }
      *first = it->line;
    }
    L->sec = s;
    if (s->id == SEC_PEER) {
      cfg_peer *arr = cfg_grow(L->c->peers, L->c->n_peers, sizeof *arr);
      if (!arr) return diag_add(L->d, DIAG_ERROR, it->line, "too many peers"), -1;
      L->c->peers = arr;
      L->peer = &arr[L->c->n_peers++];
      memset(L->peer, 0, sizeof *L->peer);
      L->peer->line = it->line;
      L->peer->quic_tunnel_protection = true; /* QuicProtection's default (config.h) */
    } else if (s->id == SEC_FORWARD) {
      cfg_forward *arr = cfg_grow(L->c->forwards, L->c->n_forwards, sizeof *arr);
      if (!arr) return diag_add(L->d, DIAG_ERROR, it->line, "too many forwards"), -1;
      L->c->forwards = arr;
      L->fwd = &arr[L->c->n_forwards++];
      memset(L->fwd, 0, sizeof *L->fwd);
      L->fwd->line = it->line;
      L->fwd_has_listen = L->fwd_has_target = false;
    }
    return 0;
  }
  const char *names[SEC_COUNT];
  size_t k = 0;
  for (const section_spec *s = sections; s->name; s++) names[k++] = s->name;
  diag_add(L->d, DIAG_ERROR, it->line, "unknown section [%.64s]; did you mean [%s]?", it->name,
           nearest(it->name, names, k));
  L->sec_line = -1; /* keys of an unknown section are skipped silently */
  return 0;
}

/* A set's front-end takes each key of our sections from one file: the same key in two files would
 * leave the choice to the order of -c options. */
static bool front_key_taken(load_ctx *L, cfg_front_merge *fm, size_t idx, int line) {
  cfg_key_where *w = &fm->keys[L->sec->id][idx];
  if (w->line && w->file != fm->file) {
    diag_add(L->d, DIAG_ERROR, line,
             "[%s] %s is also set in %s:%d; with several configs each key of [Socks], [Forward], "
             "[Http], [Control], [Metrics], [Log] and [Client] belongs in one file only",
             L->sec->name, L->sec->keys[idx].name, fm->paths[w->file], w->line);
    return true;
  }
  if (!w->line) *w = (cfg_key_where){.file = fm->file, .line = line};
  return false;
}

static int on_key(load_ctx *L, const ini_item *it) {
  if (!L->sec) {
    if (L->sec_line == -1) return 0;
    diag_add(L->d, DIAG_ERROR, it->line,
             "'%.64s' appears before any section; put it under [Interface] or [Peer]", it->name);
    return 0;
  }
  const key_spec *keys = L->sec->keys;
  size_t idx = 0;
  for (; keys[idx].name; idx++)
    if (strcasecmp(keys[idx].name, it->name) == 0) break;
  if (!keys[idx].name) {
    const char *names[MAX_KEYS_PER_SECTION];
    size_t k = 0;
    for (; keys[k].name; k++) names[k] = keys[k].name;
    diag_add(L->d, DIAG_ERROR, it->line, "unknown key '%.64s' in [%s]; did you mean '%s'?",
             it->name, L->sec->name, nearest(it->name, names, k));
    return 0;
  }
  const key_spec *ks = &keys[idx];
  if (L->seen[idx] && !(ks->flags & KEY_LIST)) {
    diag_add(L->d, DIAG_ERROR, it->line, "%s is set twice in this section (first at line %d)",
             ks->name, L->seen[idx]);
    return 0;
  }
  if (!L->seen[idx]) L->seen[idx] = it->line;
  if (L->opts->front && front_key_taken(L, L->opts->front, idx, it->line)) return 0;
  if (ks->flags & KEY_WGQUICK_ONLY) {
    diag_add(L->d, DIAG_WARNING, it->line,
             "%s is a wg-quick setting; awgproxy needs no system changes and ignores it", ks->name);
    return 0;
  }
  L->key_line = it->line;
  char err[400];
  err[0] = '\0';
  char *value = (char *)it->value;
  if (ks->fn(L, value, err, sizeof err) != 0)
    diag_add(L->d, DIAG_ERROR, it->line, "%s: %s", ks->name, err);
  return 0;
}

static int on_item(void *ud, const ini_item *it) {
  load_ctx *L = ud;
  return it->kind == INI_SECTION ? on_section(L, it) : on_key(L, it);
}

void config_init(app_config *c) {
  memset(c, 0, sizeof *c);
  awg_params_init(&c->awg);
  c->socks_handshake_timeout = 10;
  c->connect_timeout = 15;
  c->idle_timeout = 300;
  c->tunnel_wait = 10;
  c->server_socks_port = 1080;
  c->http_header_timeout = CFG_DEFAULT_HTTP_HEADER_TIMEOUT;
  c->http_max_connections = CFG_DEFAULT_HTTP_MAX_CONNECTIONS;
  c->socks_max_connections = CFG_DEFAULT_SOCKS_MAX_CONNECTIONS;
  c->server_max_connections = CFG_DEFAULT_MAX_CONNECTIONS;
  c->server_peer_max_connections = CFG_DEFAULT_PEER_MAX_CONNECTIONS;
  c->server_quic = true;
  c->server_quic_port = CFG_DEFAULT_QUIC_PORT;
  c->log_level = -1;
  c->log_format = -1;
  c->client_probe_interval = CFG_DEFAULT_PROBE_INTERVAL;
  c->client_probe_failures = CFG_DEFAULT_PROBE_FAILURES;
  c->client_failback = true;
}

static void peer_free(cfg_peer *p) {
  sodium_memzero(p->psk, sizeof p->psk);
  free(p->allowed_ips);
  free(p->exit_allow);
  free(p->exit_deny);
  free(p->allow_domains);
  free(p->deny_domains);
}

void config_retain_peers(app_config *c, bool (*keep)(const cfg_peer *p, void *ctx), void *ctx) {
  size_t n = 0;
  for (size_t i = 0; i < c->n_peers; i++) {
    if (!keep(&c->peers[i], ctx)) {
      peer_free(&c->peers[i]);
      continue;
    }
    if (n != i) c->peers[n] = c->peers[i];
    n++;
  }
  c->n_peers = n;
}

void config_free(app_config *c) {
  sodium_memzero(c->private_key, sizeof c->private_key);
  for (size_t i = 0; i < c->n_peers; i++) peer_free(&c->peers[i]);
  free(c->peers);
  free(c->addresses);
  free(c->dns);
  free(c->socks_listen);
  if (c->socks_users) sodium_memzero(c->socks_users, c->n_socks_users * sizeof *c->socks_users);
  free(c->socks_users);
  free(c->forwards);
  free(c->http_listen);
  awg_params_free(&c->awg);
  memset(c, 0, sizeof *c);
}

/* The loader does not know the role; [Client] beside [Server] can only be a mistake. */
static void check_roles(const load_ctx *L) {
  int srv = L->section_seen[SEC_SERVER], cli = L->section_seen[SEC_CLIENT];
  if (srv && cli)
    diag_add(L->d, DIAG_ERROR, cli,
             "[Client] is for `awgproxy client` and [Server] (line %d) for `awgproxy server`; a "
             "file is for one of them: remove the section that does not belong",
             srv);
}

int config_load_buffer(app_config *c, const char *text, size_t len, const char *path,
                       diag_list *d) {
  cfg_load_opts single = {0};
  return cfg_load_text(c, text, len, path, d, &single);
}

int cfg_load_text(app_config *c, const char *text, size_t len, const char *path, diag_list *d,
                  cfg_load_opts *o) {
  if (!o->front) snprintf(c->path, sizeof c->path, "%s", path);
  char *buf = malloc(len + 1);
  if (!buf) return diag_add(d, DIAG_ERROR, 0, "out of memory"), -1;
  memcpy(buf, text, len);
  load_ctx L = {.c = c, .d = d, .opts = o};
  int err_line = 0;
  char err[300];
  int rc = ini_parse(buf, len, on_item, &L, &err_line, err, sizeof err);
  if (rc == -1 && err_line)
    diag_add(d, DIAG_ERROR, err_line, "%s", err);
  else
    finish_section(&L);
  sodium_memzero(buf, len + 1); /* it held the private key */
  free(buf);
  if (o->front) return d->errors ? -1 : 0; /* validated once, merged (config_set.c) */
  check_roles(&L);
  if (!d->errors) config_validate(c, d, L.iface_lines, o->set_member);
  return d->errors ? -1 : 0;
}

static void warn_permissions(int fd, diag_list *d) {
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 077))
    diag_add(d, DIAG_WARNING, 0,
             "the file holds a private key and is readable by others (mode %03o); run chmod 600",
             (unsigned)(st.st_mode & 0777));
}

int config_load_file(app_config *c, const char *path, diag_list *d) {
  char *buf = NULL;
  size_t got = 0;
  if (cfg_read_file(path, &buf, &got, d) != 0) return -1;
  int rc = config_load_buffer(c, buf, got, path, d);
  sodium_memzero(buf, got);
  free(buf);
  return rc;
}

int cfg_read_file(const char *path, char **out, size_t *out_len, diag_list *d) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    diag_add(d, DIAG_ERROR, 0, "cannot open: %s", strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    diag_add(d, DIAG_ERROR, 0, "not a regular file");
    return -1;
  }
  if (st.st_size > INI_MAX_FILE) {
    close(fd);
    diag_add(d, DIAG_ERROR, 0, "is %lld bytes; a config is at most %d bytes", (long long)st.st_size,
             INI_MAX_FILE);
    return -1;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  warn_permissions(fd, d);
  close(fd);
  if (!buf || got != (size_t)st.st_size) {
    if (buf) sodium_memzero(buf, got);
    free(buf);
    diag_add(d, DIAG_ERROR, 0, "could not read the whole file");
    return -1;
  }
  *out = buf;
  *out_len = got;
  return 0;
}
