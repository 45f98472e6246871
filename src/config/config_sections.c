/* The keys of awgproxy's own sections: [Socks], [Http], [Forward], [Server], [Metrics], [Control]
 * and [Log] (docs/config-reference.md §8-§12); config.c reads the file with these tables. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config/config_internal.h"
#include "util/log.h"

/* ---- [Socks] ---------------------------------------------------------------------------- */

/* Listen = ADDR:PORT[, ADDR:PORT…] appended to *list (IP literals only). */
static int listen_list(char *v, cfg_hostport **list, size_t *count, const char *example, char *err,
                       size_t n) {
  char *items[CFG_MAX_LIST];
  int cnt = cfg_split_list(v, items, CFG_MAX_LIST);
  if (cnt <= 0) return snprintf(err, n, "is empty; expected e.g. %s", example), -1;
  for (int i = 0; i < cnt; i++) {
    cfg_hostport hp;
    if (cfg_parse_hostport(items[i], &hp, err, n)) return -1;
    if (!hp.host_is_ip) {
      snprintf(err, n, "'%s' must be an IP address to listen on (e.g. 127.0.0.1 or [::1])",
               hp.host);
      return -1;
    }
    cfg_hostport *arr = cfg_grow(*list, *count, sizeof *arr);
    if (!arr) return snprintf(err, n, "too many listeners"), -1;
    *list = arr;
    arr[(*count)++] = hp;
  }
  return 0;
}

static int k_socks_listen(load_ctx *L, char *v, char *err, size_t n) {
  return listen_list(v, &L->c->socks_listen, &L->c->n_socks_listen, "127.0.0.1:1080", err, n);
}

/* User = NAME:HASH[:SERVER]. NAME cannot hold ':' and HASH never does (`awgproxy passwd` writes
 * $argon2id$v=19$m=…,t=…,p=…$SALT$HASH in base64), so the first colon ends NAME and a second one
 * starts SERVER. */
static int split_user(char *v, char **hash, char **server, char *err, size_t n) {
  char *colon = strchr(v, ':');
  if (!colon || colon == v || !colon[1]) {
    snprintf(err, n, "expected NAME:HASH, where HASH is the output of `awgproxy passwd`");
    return -1;
  }
  *colon = '\0';
  *hash = colon + 1;
  *server = strchr(*hash, ':');
  if (*server) *(*server)++ = '\0';
  if (strlen(v) > 255 || strlen(*hash) > 255)
    return snprintf(err, n, "user name or hash too long"), -1;
  if (strncmp(*hash, "$argon2id$", 10) != 0) {
    snprintf(err, n,
             "the password for '%.64s' must be stored hashed: run `awgproxy passwd` and paste "
             "its output after the colon",
             v);
    return -1;
  }
  return 0;
}

/* The pin's server must exist; config_set.c checks that once every file is read. */
static int check_pin(load_ctx *L, const char *server, char *err, size_t n) {
  if (!server) return 0;
  if (!cfg_server_name_ok(server))
    return snprintf(err, n,
                    "'%.64s' after the hash is not a server name (NAME:HASH:SERVER, SERVER being "
                    "a config's file name without .conf: 1-63 of A-Z a-z 0-9 . _ - @ +)",
                    server),
           -1;
  if (!L->opts->set_member)
    return snprintf(err, n,
                    "pinning a user to server '%.64s' needs several configs (awgproxy client -c "
                    "a.conf -c b.conf, or -c DIR/); remove ':%.64s'",
                    server, server),
           -1;
  return 0;
}

static int k_socks_user(load_ctx *L, char *v, char *err, size_t n) {
  char *hash, *server;
  if (split_user(v, &hash, &server, err, n) || check_pin(L, server, err, n)) return -1;
  for (size_t i = 0; i < L->c->n_socks_users; i++)
    if (strcmp(L->c->socks_users[i].user, v) == 0)
      return snprintf(err, n, "user '%.64s' is listed twice", v), -1;
  cfg_socks_user *arr = cfg_grow(L->c->socks_users, L->c->n_socks_users, sizeof *arr);
  if (!arr) return snprintf(err, n, "too many users"), -1;
  L->c->socks_users = arr;
  cfg_socks_user *u = &arr[L->c->n_socks_users++];
  /* Zero-filled: the SOCKS server compares the whole user[] buffer in constant time. */
  memset(u, 0, sizeof *u);
  snprintf(u->user, sizeof u->user, "%s", v);
  snprintf(u->hash, sizeof u->hash, "%s", hash);
  if (server) snprintf(u->server, sizeof u->server, "%s", server);
  u->line = L->key_line;
  return 0;
}

static int k_socks_mode(load_ctx *L, char *v, char *err, size_t n) {
  if (strcasecmp(v, "connect") == 0)
    L->c->socks_mode = SOCKS_MODE_CONNECT;
  else if (strcasecmp(v, "forward") == 0)
    L->c->socks_mode = SOCKS_MODE_FORWARD;
  else
    return snprintf(err, n, "'%.32s' is not a mode; use connect or forward", v), -1;
  return 0;
}

static int k_seconds(char *v, uint64_t min, uint32_t *out, char *err, size_t n) {
  uint64_t sec;
  if (cfg_parse_uint(v, min, 86400 * 7, &sec, err, n)) return -1;
  *out = (uint32_t)sec;
  return 0;
}
static int k_hs_timeout(load_ctx *L, char *v, char *e, size_t n) {
  return k_seconds(v, 1, &L->c->socks_handshake_timeout, e, n);
}
static int k_conn_timeout(load_ctx *L, char *v, char *e, size_t n) {
  return k_seconds(v, 1, &L->c->connect_timeout, e, n);
}
static int k_idle_timeout(load_ctx *L, char *v, char *e, size_t n) {
  return k_seconds(v, 0, &L->c->idle_timeout, e, n); /* 0 = never */
}
static int k_tunnel_wait(load_ctx *L, char *v, char *e, size_t n) {
  return k_seconds(v, 1, &L->c->tunnel_wait, e, n);
}

static int k_fast_open(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_bool(v, &L->c->socks_fast_open) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use on or off", v), -1;
  return 0;
}

static int k_socks_max_conns(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t m;
  if (cfg_parse_uint(v, 1, CFG_MAX_CONNECTIONS_LIMIT, &m, err, n)) return -1;
  L->c->socks_max_connections = (uint32_t)m;
  return 0;
}

const key_spec cfg_socks_keys[] = {
    {"Listen", k_socks_listen, KEY_LIST},
    {"User", k_socks_user, KEY_LIST},
    {"HandshakeTimeout", k_hs_timeout, 0},
    {"ConnectTimeout", k_conn_timeout, 0},
    {"IdleTimeout", k_idle_timeout, 0},
    {"TunnelWait", k_tunnel_wait, 0},
    {"FastOpen", k_fast_open, 0},
    {"MaxConnections", k_socks_max_conns, 0},
    {"Mode", k_socks_mode, 0},
    {NULL, NULL, 0},
};

/* ---- [Http] ----------------------------------------------------------------------------- */

static int k_http_listen(load_ctx *L, char *v, char *err, size_t n) {
  return listen_list(v, &L->c->http_listen, &L->c->n_http_listen, "127.0.0.1:8080", err, n);
}
static int k_http_header_timeout(load_ctx *L, char *v, char *e, size_t n) {
  return k_seconds(v, 1, &L->c->http_header_timeout, e, n);
}
static int k_http_max_conns(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t m;
  if (cfg_parse_uint(v, 1, CFG_MAX_CONNECTIONS_LIMIT, &m, err, n)) return -1;
  L->c->http_max_connections = (uint32_t)m;
  return 0;
}

const key_spec cfg_http_keys[] = {
    {"Listen", k_http_listen, KEY_LIST},
    {"HeaderTimeout", k_http_header_timeout, 0},
    {"MaxConnections", k_http_max_conns, 0},
    {NULL, NULL, 0},
};

/* ---- [Forward] -------------------------------------------------------------------------- */

static int k_fwd_listen(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_hostport(v, &L->fwd->listen, err, n)) return -1;
  if (!L->fwd->listen.host_is_ip)
    return snprintf(err, n, "'%s' must be an IP address to listen on", L->fwd->listen.host), -1;
  L->fwd_has_listen = true;
  return 0;
}

static int k_fwd_target(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_hostport(v, &L->fwd->target, err, n)) return -1;
  L->fwd_has_target = true;
  return 0;
}

static int k_fwd_proto(load_ctx *L, char *v, char *err, size_t n) {
  if (strcasecmp(v, "tcp") == 0)
    L->fwd->proto = FWD_TCP;
  else if (strcasecmp(v, "udp") == 0)
    L->fwd->proto = FWD_UDP;
  else
    return snprintf(err, n, "'%.32s' is not a protocol; use tcp or udp", v), -1;
  return 0;
}

const key_spec cfg_forward_keys[] = {
    {"Listen", k_fwd_listen, 0},
    {"Target", k_fwd_target, 0},
    {"Protocol", k_fwd_proto, 0},
    {NULL, NULL, 0},
};

/* ---- [Server] --------------------------------------------------------------------------- */

static int k_server_socks(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t p;
  if (strcasecmp(v, "off") == 0) return L->c->server_socks_port = 0, 0;
  if (cfg_parse_uint(v, 0, 65535, &p, err, n)) return -1;
  L->c->server_socks_port = (uint16_t)p;
  return 0;
}

static int k_local_socks(load_ctx *L, char *v, char *err, size_t n) {
  if (strcasecmp(v, "off") == 0) return L->c->has_local_socks = false, 0;
  if (cfg_parse_hostport(v, &L->c->local_socks, err, n)) return -1;
  if (!L->c->local_socks.host_is_ip)
    return snprintf(err, n, "'%s' must be an IP address to listen on", L->c->local_socks.host), -1;
  L->c->has_local_socks = true;
  return 0;
}

static int k_allow_private(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_bool(v, &L->c->server_allow_private) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use yes or no", v), -1;
  return 0;
}

static int k_server_socks_auth(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_bool(v, &L->c->server_socks_auth) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use on or off", v), -1;
  return 0;
}

static int k_server_cap(char *v, uint32_t *out, char *err, size_t n) {
  uint64_t m;
  if (cfg_parse_uint(v, 1, CFG_MAX_CONNECTIONS_LIMIT, &m, err, n)) return -1;
  *out = (uint32_t)m;
  return 0;
}
static int k_max_sessions(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t m;
  if (cfg_parse_uint(v, 0, CFG_MAX_CONNECTIONS_LIMIT, &m, err, n)) return -1;
  L->c->server_max_sessions = (uint32_t)m;
  return 0;
}
static int k_max_conns(load_ctx *L, char *v, char *err, size_t n) {
  return k_server_cap(v, &L->c->server_max_connections, err, n);
}
static int k_max_conns_per_peer(load_ctx *L, char *v, char *err, size_t n) {
  return k_server_cap(v, &L->c->server_peer_max_connections, err, n);
}

static int k_server_quic(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_bool(v, &L->c->server_quic) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use on or off", v), -1;
  return 0;
}
static int k_server_quic_port(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_port(v, &L->c->server_quic_port, err, n);
}

static int k_server_stream_window(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_window(v, &L->c->server_quic_stream_window, err, n);
}
static int k_server_conn_window(load_ctx *L, char *v, char *err, size_t n) {
  return cfg_parse_window(v, &L->c->server_quic_conn_window, err, n);
}

static int k_server_threads(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t t;
  if (strcasecmp(v, "auto") == 0) return L->c->server_threads = 0, 0;
  if (cfg_parse_uint(v, 1, CFG_MAX_THREADS, &t, err, n)) return -1;
  L->c->server_threads = (uint32_t)t;
  return 0;
}

const key_spec cfg_server_keys[] = {
    {"Socks", k_server_socks, 0},
    {"SocksAuth", k_server_socks_auth, 0},
    {"LocalSocks", k_local_socks, 0},
    {"AllowPrivate", k_allow_private, 0},
    {"MaxSessions", k_max_sessions, 0},
    {"MaxConnections", k_max_conns, 0},
    {"MaxConnectionsPerPeer", k_max_conns_per_peer, 0},
    {"Quic", k_server_quic, 0},
    {"QuicPort", k_server_quic_port, 0},
    {"QuicStreamWindow", k_server_stream_window, 0},
    {"QuicConnWindow", k_server_conn_window, 0},
    {"Threads", k_server_threads, 0},
    {"ExtraPorts", cfg_k_extra_ports, 0},
    {"TlsListen", cfg_k_tls_listen, KEY_LIST},
    {"TlsCert", cfg_k_tls_cert, 0},
    {"TlsKey", cfg_k_tls_key, 0},
    {"TlsName", cfg_k_tls_name, 0},
    {"TlsDecoy", cfg_k_tls_decoy, 0},
    {"TlsDecoyUpstream", cfg_k_tls_decoy_upstream, 0},
    {NULL, NULL, 0},
};

/* ---- [Metrics], [Control] ------------------------------------------------------------- */

static int k_metrics_listen(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_hostport(v, &L->c->metrics_listen, err, n)) return -1;
  if (!L->c->metrics_listen.host_is_ip)
    return snprintf(err, n, "'%s' must be an IP address (e.g. 127.0.0.1:9100)",
                    L->c->metrics_listen.host),
           -1;
  L->c->has_metrics = true;
  return 0;
}

const key_spec cfg_metrics_keys[] = {
    {"Listen", k_metrics_listen, 0},
    {NULL, NULL, 0},
};

static int k_control_listen(load_ctx *L, char *v, char *err, size_t n) {
  if (v[0] == '/') {
    if (strlen(v) >= sizeof L->c->control_path)
      return snprintf(err, n, "socket path is longer than %zu bytes",
                      sizeof L->c->control_path - 1),
             -1;
    strcpy(L->c->control_path, v);
    return 0;
  }
  if (cfg_parse_hostport(v, &L->c->control_listen, err, n)) return -1;
  cfg_ip ip;
  if (cfg_parse_ip(L->c->control_listen.host, &ip) != 0 ||
      !((ip.family == AF_INET && ip.addr[0] == 127) ||
        (ip.family == AF_INET6 && !memcmp(ip.addr, (const uint8_t[16]){[15] = 1}, 16))))
    return snprintf(err, n,
                    "the control API can change the running proxy: use a unix socket path "
                    "(/run/awgproxy.sock) or a loopback address (127.0.0.1:PORT)"),
           -1;
  L->c->has_control_tcp = true;
  return 0;
}

const key_spec cfg_control_keys[] = {
    {"Listen", k_control_listen, 0},
    {NULL, NULL, 0},
};

/* ---- [Log] ------------------------------------------------------------------------------ */

static int k_log_level(load_ctx *L, char *v, char *err, size_t n) {
  int l = log_level_parse(v);
  if (l < 0)
    return snprintf(err, n, "'%.32s' is not a level; use error, warn, info or debug", v), -1;
  L->c->log_level = l;
  return 0;
}

static int k_log_format(load_ctx *L, char *v, char *err, size_t n) {
  if (strcasecmp(v, "logfmt") == 0)
    L->c->log_format = LOG_FORMAT_LOGFMT;
  else if (strcasecmp(v, "json") == 0)
    L->c->log_format = LOG_FORMAT_JSON;
  else
    return snprintf(err, n, "'%.32s' is not a format; use logfmt or json", v), -1;
  return 0;
}

const key_spec cfg_log_keys[] = {
    {"Level", k_log_level, 0},
    {"Format", k_log_format, 0},
    {NULL, NULL, 0},
};
