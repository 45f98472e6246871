/* The configuration model: an AmneziaWG / wg-quick file ([Interface], [Peer]) plus our own
 * sections ([Socks], [Http], [Forward], [Server], [Log]). Loading validates everything and reports
 * problems as `FILE:LINE: error: …` diagnostics. docs/config-reference.md documents each key. */
#ifndef AWGPROXY_CONFIG_CONFIG_H
#define AWGPROXY_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "awg/awg_params.h"
#include "util/keys.h"

#define CFG_DEFAULT_MTU 1420
#define CFG_DEFAULT_SOCKS "127.0.0.1:1080"
#define CFG_DEFAULT_HTTP_HEADER_TIMEOUT 10
#define CFG_DEFAULT_HTTP_MAX_CONNECTIONS 1024
#define CFG_MAX_HOST 253
#define CFG_MAX_LIST 256 /* entries per list key (Address, AllowedIPs, DNS, Listen, …) */

typedef struct {
  int family; /* AF_INET or AF_INET6 */
  uint8_t addr[16];
  uint8_t prefix;
} cfg_cidr;

typedef struct {
  int family;
  uint8_t addr[16];
} cfg_ip;

/* One exit rule of a [Peer] (ExitAllow / ExitDeny): a destination prefix, optionally limited to a
 * port range. */
typedef struct {
  bool any;                  /* '*': every address of both families (net unused) */
  cfg_cidr net;              /* host bits cleared */
  uint16_t port_lo, port_hi; /* 0, 0: every port, and protocols without ports (ICMP) */
} cfg_exit_rule;

/* A domain pattern (ExitAllowDomain / ExitDenyDomain): "example.com" matches that name only,
 * "*.example.com" (suffix = true, name "example.com") every name below it but not itself. */
typedef struct {
  char name[CFG_MAX_HOST + 1]; /* lower case, no trailing dot */
  bool suffix;
} cfg_domain_rule;

#define CFG_DEFAULT_MAX_CONNECTIONS 8192     /* [Server] MaxConnections */
#define CFG_DEFAULT_PEER_MAX_CONNECTIONS 512 /* [Server] MaxConnectionsPerPeer */
#define CFG_MAX_CONNECTIONS_LIMIT 1048576
#define CFG_DEFAULT_SOCKS_MAX_CONNECTIONS 4096 /* [Socks] MaxConnections */
#define CFG_MAX_THREADS 64                     /* [Server] Threads; WG_SHARDS_MAX */
#define CFG_MIN_RATE 1000ULL                   /* bytes/s: 8kbit */
#define CFG_MAX_RATE 125000000000ULL           /* bytes/s: 1000gbit */

/* host:port as written; host is an IP literal or a DNS name (resolved when the daemon starts). */
typedef struct {
  char host[CFG_MAX_HOST + 1];
  uint16_t port;
  bool host_is_ip;
} cfg_hostport;

/* [Peer] Transport: how streams reach the server (docs/spec/quic-transport.md). */
typedef enum { CFG_TRANSPORT_AUTO = 0, CFG_TRANSPORT_QUIC, CFG_TRANSPORT_IP } cfg_transport;
/* [Peer] Congestion: the QUIC transport's congestion controller for what this end sends (a
 * client's uploads, a server's downloads to that peer). Zero, the default, is BBR: under random
 * loss it keeps more of the clean rate than CUBIC (docs/decisions.md). */
typedef enum { CFG_CC_BBR = 0, CFG_CC_CUBIC, CFG_CC_RENO } cfg_congestion;
#define CFG_DEFAULT_QUIC_PORT 443

/* [Peer] Carrier: what carries the AWG datagrams to the server (docs/config-reference.md). */
typedef enum {
  CFG_CARRIER_DEFAULT = 0,
  CFG_CARRIER_UDP,
  CFG_CARRIER_TLS,
  CFG_CARRIER_AUTO
} cfg_carrier;
#define CFG_DEFAULT_UDP_RETRY 300 /* [Peer] UdpRetry, seconds */
#define CFG_TLS_LISTEN_MAX 4      /* [Server] TlsListen lines */
#define CFG_PATH_MAX 511

/* Port ranges for port hopping (config_hop.c): [Server] ExtraPorts, [Peer] EndpointPorts. */
#define CFG_PORT_RANGES_MAX 8
#define CFG_EXTRA_PORTS_MAX 256 /* a socket per port and family (and worker): bounded */
typedef struct {
  uint16_t lo[CFG_PORT_RANGES_MAX], hi[CFG_PORT_RANGES_MAX];
  uint8_t n;
} cfg_port_ranges;

typedef struct {
  uint8_t public_key[AWG_KEY_LEN];
  bool has_psk;
  uint8_t psk[AWG_KEY_LEN];
  bool has_endpoint;
  cfg_hostport endpoint;
  cfg_cidr *allowed_ips;
  size_t n_allowed_ips;
  uint16_t persistent_keepalive;     /* seconds, 0 = off; the start of the range */
  uint16_t persistent_keepalive_max; /* the end of an AWG 3.x range A-B; 0 = same as the start */
  /* The server's exit rules and limits for this peer (docs/config-reference.md §7.1) */
  cfg_exit_rule *exit_allow, *exit_deny;
  size_t n_exit_allow, n_exit_deny;
  cfg_domain_rule *allow_domains, *deny_domains;
  size_t n_allow_domains, n_deny_domains;
  uint32_t max_connections; /* 0 = [Server] MaxConnectionsPerPeer */
  uint64_t upload_limit;    /* bytes/s the peer may send out through the exit, 0 = none */
  uint64_t download_limit;  /* bytes/s the exit may send back to the peer, 0 = none */
  /* The client's QUIC transport to this server */
  cfg_transport transport;
  cfg_congestion congestion;
  bool has_quic_server; /* QuicServer: the server's tunnel address; else derived (config_quic.c) */
  cfg_ip quic_server;
  uint16_t quic_port; /* QuicPort, 0 = CFG_DEFAULT_QUIC_PORT */
  /* QuicProtection = tunnel (the default): 1-RTT packets protected by the tunnel's AEAD alone
   * (quic/quic_protect.h); quic: QUIC's own AES-GCM inside the tunnel too */
  bool quic_tunnel_protection;
  /* QuicStreamWindow / QuicConnWindow: ceilings of the receive windows; 0 = the defaults */
  uint64_t quic_stream_window, quic_conn_window;
  /* Repair = off: no loss repair with this peer (device/tunnel_repair.h); on by default */
  bool no_repair;
  /* Port hopping (our extension): EndpointPorts, the server ports to move among, and
   * HopInterval, seconds between moves (a draw from [hop_min, hop_max] per hop; 30-60 when
   * EndpointPorts is set without it). n = 0: no hopping. */
  cfg_port_ranges endpoint_ports;
  uint32_t hop_min, hop_max;
  /* The TLS carrier (config_tls.c, issue 12): TlsEndpoint, TlsServerName (SNI; "" = the
   * endpoint's host when it is a name), Carrier, TlsVerify, UdpRetry (seconds) */
  bool has_tls_endpoint;
  cfg_hostport tls_endpoint;
  char tls_server_name[CFG_MAX_HOST + 1];
  cfg_carrier carrier; /* CFG_CARRIER_DEFAULT: auto with a TlsEndpoint, udp without */
  bool tls_verify;
  uint32_t udp_retry;
  int line; /* where its [Peer] header is */
} cfg_peer;

#define CFG_SERVER_NAME_MAX 63 /* a server's name in a config set (config_set.h) */
/* The names of a set's servers: 1-63 of A-Z a-z 0-9 . _ - @ + (the rule of add-peer's # Name),
 * so that a name fits User = NAME:HASH:SERVER, a URL and JSON as it is (config_client.c). */
bool cfg_server_name_ok(const char *s);

typedef struct {
  char user[256];
  char hash[256]; /* `awgproxy passwd` output; never the password itself */
  /* User = NAME:HASH:SERVER pins the user to that server of a config set; "" = not pinned */
  char server[CFG_SERVER_NAME_MAX + 1];
  int line;
} cfg_socks_user;

/* [Socks] Mode: connect = our SOCKS server dials through the tunnel; forward = each local
 * connection is relayed byte for byte to the chosen server's SOCKS service (its tunnel address,
 * port 1080), so the SOCKS dialogue and its authentication run end to end. */
typedef enum { SOCKS_MODE_CONNECT = 0, SOCKS_MODE_FORWARD } cfg_socks_mode;

#define CFG_DEFAULT_PROBE_INTERVAL 60 /* [Client] ProbeInterval, seconds */
#define CFG_DEFAULT_PROBE_FAILURES 2  /* [Client] ProbeFailures */

typedef enum { FWD_TCP, FWD_UDP } cfg_fwd_proto;

typedef struct {
  cfg_fwd_proto proto;
  cfg_hostport listen;
  cfg_hostport target;
  int line;
} cfg_forward;

typedef struct {
  /* [Interface] */
  bool has_private_key;
  uint8_t private_key[AWG_KEY_LEN];
  uint8_t public_key[AWG_KEY_LEN];
  bool has_listen_port;
  uint16_t listen_port;
  cfg_cidr *addresses;
  size_t n_addresses;
  cfg_ip *dns;
  size_t n_dns;
  uint32_t mtu; /* effective: explicit, or 1420 - S4 (decisions.md #7) */
  bool mtu_explicit;
  awg_params awg;
  /* [Peer]… */
  cfg_peer *peers;
  size_t n_peers;
  /* [Socks] */
  cfg_hostport *socks_listen;
  size_t n_socks_listen;
  cfg_socks_user *socks_users;
  size_t n_socks_users;
  uint32_t socks_handshake_timeout; /* seconds */
  bool socks_fast_open;             /* [Socks] FastOpen (socks_session.h) */
  uint32_t socks_max_connections;   /* [Socks] MaxConnections: client connections at once */
  uint32_t connect_timeout;         /* seconds */
  uint32_t idle_timeout;            /* seconds, 0 = never */
  uint32_t tunnel_wait;             /* seconds a new stream waits for the tunnel */
  cfg_socks_mode socks_mode;        /* [Socks] Mode */
  /* [Client]: a client with several servers (config_set.h); ignored with one */
  uint32_t client_probe_interval; /* seconds between two probes of a server */
  uint32_t client_probe_failures; /* failed probes in a row before a server counts as down */
  char client_select[CFG_SERVER_NAME_MAX + 1]; /* Select = NAME; "" = auto (the best server) */
  bool client_failback; /* back to the Select'ed (or first) server when it answers again */
  int client_line;      /* line of the [Client] header, 0 = none: a server refuses the section */
  /* [Http]: the HTTP proxy front-end (src/http/), off unless Listen is set */
  cfg_hostport *http_listen;
  size_t n_http_listen;
  uint32_t http_header_timeout;  /* seconds from a request's first byte to its complete head */
  uint32_t http_max_connections; /* client connections at once, relays included */
  /* [Forward]… */
  cfg_forward *forwards;
  size_t n_forwards;
  /* [Server] */
  uint16_t server_socks_port; /* SOCKS5 on the tunnel address, 0 = off */
  bool server_socks_auth;     /* [Server] SocksAuth: that service asks for [Socks] User logins */
  bool has_local_socks;
  cfg_hostport local_socks;             /* e.g. 127.0.0.1:1081 */
  bool server_allow_private;            /* the exit may reach RFC 1918 / ULA destinations */
  uint32_t server_max_sessions;         /* peers with a live session at once, 0 = no cap (tunnel) */
  uint32_t server_max_connections;      /* exit TCP connections + UDP flows, all peers together */
  uint32_t server_peer_max_connections; /* the same per peer, unless its MaxConnections says */
  bool server_quic;          /* [Server] Quic: the QUIC endpoint on the tunnel addresses */
  uint16_t server_quic_port; /* [Server] QuicPort */
  uint64_t server_quic_stream_window, server_quic_conn_window; /* 0 = the defaults */
  uint32_t server_threads;     /* [Server] Threads: worker processes, 0 = auto (one per core) */
  cfg_port_ranges extra_ports; /* [Server] ExtraPorts: more UDP ports for hopping peers */
  /* [Server] TLS carrier (config_tls.c): listeners, certificate (files, or self-signed for
   * TlsName), and what a prober that is not a peer is shown */
  cfg_hostport tls_listen[CFG_TLS_LISTEN_MAX];
  size_t n_tls_listen;
  char tls_cert[CFG_PATH_MAX + 1], tls_key[CFG_PATH_MAX + 1];
  char tls_name[CFG_MAX_HOST + 1];
  char tls_decoy[CFG_PATH_MAX + 1]; /* a directory served as a static site */
  cfg_hostport tls_decoy_upstream;  /* a web server the decoy passes probers to */
  bool has_tls_decoy_upstream;
  /* [Metrics] Prometheus endpoint, off unless Listen is set */
  bool has_metrics;
  cfg_hostport metrics_listen;
  /* [Control] HTTP+JSON API: a unix socket path or a loopback host:port, off unless set */
  char control_path[108];
  bool has_control_tcp;
  cfg_hostport control_listen;
  /* [Log] */
  int log_level;  /* -1 = not set */
  int log_format; /* -1 = not set */
  char path[512];
} app_config;

/* Port hopping (config_hop.c). The number of ports in r, and the i-th (0-based, in order). */
uint32_t cfg_port_ranges_count(const cfg_port_ranges *r);
uint16_t cfg_port_ranges_at(const cfg_port_ranges *r, uint32_t i);
/* [Server] ExtraPorts as the list of ports to bind besides ListenPort (which is left out), in
 * order, without repeats; returns how many were written to out[max]. */
size_t cfg_extra_port_list(const app_config *c, uint16_t *out, size_t max);

/* A list of diagnostics collected while loading. */
typedef enum { DIAG_ERROR, DIAG_WARNING } diag_kind;
typedef struct {
  diag_kind kind;
  int line; /* 0 = the file as a whole */
  char msg[512];
} diag;
typedef struct {
  diag *items;
  size_t n, cap;
  size_t errors, warnings;
} diag_list;

void diag_list_free(diag_list *d);
/* Prints every diagnostic as `FILE:LINE: error|warning: message`. */
void diag_list_print(const diag_list *d, const char *path, FILE *out);

void config_init(app_config *c);
/* Keeps the peers keep() says yes to, in order, and frees the others (a server worker keeps its
 * own share, daemon/workers.h). */
void config_retain_peers(app_config *c, bool (*keep)(const cfg_peer *p, void *ctx), void *ctx);
void config_free(app_config *c); /* wipes keys */

/* Loads and validates. Returns 0 when there are no errors (warnings may exist). */
int config_load_file(app_config *c, const char *path, diag_list *d);
int config_load_buffer(app_config *c, const char *text, size_t len, const char *path, diag_list *d);

/* Where the client sends QUIC for peer p: its QuicServer, else the first host of the client's
 * first IPv4 Address prefix (10.66.0.2/24 -> 10.66.0.1), or x.y.z.1 for a /31 or /32 (the
 * common convention for the server's tunnel address); port QuicPort. False when the client has
 * no Address to derive it from. */
bool config_quic_server(const app_config *c, const cfg_peer *p, cfg_ip *addr, uint16_t *port);

/* The carrier peer p uses (config_tls.c): Carrier as written, else auto with a TlsEndpoint and
 * udp without. */
cfg_carrier cfg_peer_carrier(const cfg_peer *p);
const char *cfg_carrier_name(cfg_carrier c);

/* Writes the validation summary (no secrets) as human-readable lines: "PATH: OK", then the
 * tunnel's part ([Interface], peers, [Server]) and the front-end's ([Socks], [Http], [Forward],
 * [Metrics], [Control]), which a config set prints per server and once merged (config_set.h). */
void config_print_summary(const app_config *c, FILE *out);
void config_print_tunnel_summary(const app_config *c, FILE *out);
void config_print_front_summary(const app_config *c, FILE *out);

/* The [Interface] keys of the obfuscation layer (Jc … I5, HeaderProtectionKey), as written. */
#define CFG_N_OBFUSCATION_KEYS 17
extern const char *const cfg_obfuscation_keys[CFG_N_OBFUSCATION_KEYS];

/* Parsers shared with the CLI and tests. Each returns 0 or -1 with a reason in err. */
int cfg_parse_cidr(const char *s, cfg_cidr *out, char *err, size_t errlen);
int cfg_parse_ip(const char *s, cfg_ip *out);
int cfg_parse_hostport(const char *s, cfg_hostport *out, char *err, size_t errlen);
void cfg_format_cidr(const cfg_cidr *c, char *buf, size_t len);
void cfg_format_hostport(const cfg_hostport *h, char *buf, size_t len);
/* Exit rules: "CIDR", "CIDR:PORT", "CIDR:LO-HI", "[V6CIDR]:PORT", "*", "*:PORT". */
int cfg_parse_exit_rule(const char *s, cfg_exit_rule *out, char *err, size_t errlen);
void cfg_format_exit_rule(const cfg_exit_rule *r, char *buf, size_t len);
/* Domain patterns: "example.com" or "*.example.com" (case-insensitive, a trailing dot ignored). */
int cfg_parse_domain_rule(const char *s, cfg_domain_rule *out, char *err, size_t errlen);
/* A bandwidth: "off", or a whole number with a unit: kbit, mbit, gbit (bits per second) or KB/s,
 * MB/s, GB/s (bytes per second), all powers of 1000. *out is in bytes per second, 0 for off. */
int cfg_parse_rate(const char *s, uint64_t *out, char *err, size_t errlen);
void cfg_format_rate(uint64_t bytes_per_s, char *buf, size_t len);

#endif
