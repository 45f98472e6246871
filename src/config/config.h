/* The configuration model: an AmneziaWG / wg-quick file ([Interface], [Peer]) plus our own
 * sections ([Socks], [Forward], [Server], [Log]). Loading validates everything and reports
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

/* host:port as written; host is an IP literal or a DNS name (resolved when the daemon starts). */
typedef struct {
  char host[CFG_MAX_HOST + 1];
  uint16_t port;
  bool host_is_ip;
} cfg_hostport;

typedef struct {
  uint8_t public_key[AWG_KEY_LEN];
  bool has_psk;
  uint8_t psk[AWG_KEY_LEN];
  bool has_endpoint;
  cfg_hostport endpoint;
  cfg_cidr *allowed_ips;
  size_t n_allowed_ips;
  uint16_t persistent_keepalive; /* seconds, 0 = off */
  int line;                      /* where its [Peer] header is */
} cfg_peer;

typedef struct {
  char user[256];
  char hash[256]; /* `awgproxy passwd` output; never the password itself */
} cfg_socks_user;

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
  uint32_t mtu;          /* effective: explicit, or 1420 - S4 (decisions.md #7) */
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
  uint32_t connect_timeout;         /* seconds */
  uint32_t idle_timeout;            /* seconds, 0 = never */
  uint32_t tunnel_wait;             /* seconds a new stream waits for the tunnel */
  /* [Forward]… */
  cfg_forward *forwards;
  size_t n_forwards;
  /* [Server] */
  uint16_t server_socks_port;  /* SOCKS5 on the tunnel address, 0 = off */
  bool has_local_socks;
  cfg_hostport local_socks;    /* e.g. 127.0.0.1:1081 */
  bool server_allow_private;   /* the exit may reach RFC 1918 / ULA destinations */
  uint32_t server_max_sessions; /* peers with a live session at once, 0 = no cap (tunnel) */
  /* [Metrics] Prometheus endpoint, off unless Listen is set */
  bool has_metrics;
  cfg_hostport metrics_listen;
  /* [Control] HTTP+JSON API: a unix socket path or a loopback host:port, off unless set */
  char control_path[108];
  bool has_control_tcp;
  cfg_hostport control_listen;
  /* [Log] */
  int log_level;               /* -1 = not set */
  int log_format;              /* -1 = not set */
  char path[512];
} awg_config;

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

void config_init(awg_config *c);
void config_free(awg_config *c); /* wipes keys */

/* Loads and validates. Returns 0 when there are no errors (warnings may exist). */
int config_load_file(awg_config *c, const char *path, diag_list *d);
int config_load_buffer(awg_config *c, const char *text, size_t len, const char *path,
                       diag_list *d);

/* Writes the validation summary (no secrets) as human-readable lines. */
void config_print_summary(const awg_config *c, FILE *out);

/* Parsers shared with the CLI and tests. Each returns 0 or -1 with a reason in err. */
int cfg_parse_cidr(const char *s, cfg_cidr *out, char *err, size_t errlen);
int cfg_parse_ip(const char *s, cfg_ip *out);
int cfg_parse_hostport(const char *s, cfg_hostport *out, char *err, size_t errlen);
void cfg_format_cidr(const cfg_cidr *c, char *buf, size_t len);
void cfg_format_hostport(const cfg_hostport *h, char *buf, size_t len);

#endif
