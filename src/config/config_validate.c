/* Whole-config rules that no single key can check: required keys, consistency between keys,
 * the obfuscation rules (awg-obfuscation.md §7, decisions.md) and sizes that outgrow a path MTU. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "awg/itag.h"
#include "awg/obfs.h"
#include "config/config.h"
#include "config/config_internal.h"

/* UDP payload that fits a 1500-byte IPv4 path without fragmentation (1500 - 20 - 8). */
#define PATH_UDP_PAYLOAD 1472

const char *const cfg_obfuscation_keys[CFG_N_OBFUSCATION_KEYS] = {"Jc",
                                                                  "Jmin",
                                                                  "Jmax",
                                                                  "S1",
                                                                  "S2",
                                                                  "S3",
                                                                  "S4",
                                                                  "H1",
                                                                  "H2",
                                                                  "H3",
                                                                  "H4",
                                                                  "I1",
                                                                  "I2",
                                                                  "I3",
                                                                  "I4",
                                                                  "I5",
                                                                  "HeaderProtectionKey"};

/* awg_params_validate names the parameter in its message; point at that parameter's line. */
static int line_for_message(const char *msg, const int *iface_lines) {
  const char *best = NULL;
  int line = 0;
  for (size_t i = 0; i < CFG_N_OBFUSCATION_KEYS; i++) {
    const char *p = msg;
    size_t n = strlen(cfg_obfuscation_keys[i]);
    while ((p = strstr(p, cfg_obfuscation_keys[i])) != NULL) {
      bool word =
          (p == msg || !((p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= 'a' && p[-1] <= 'z'))) &&
          !((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9'));
      if (word && (!best || p < best) && cfg_interface_line(iface_lines, cfg_obfuscation_keys[i])) {
        best = p;
        line = cfg_interface_line(iface_lines, cfg_obfuscation_keys[i]);
      }
      p += n;
    }
  }
  return line;
}

static void validate_interface(app_config *c, diag_list *d, const int *lines) {
  if (!c->has_private_key)
    diag_add(d, DIAG_ERROR, 0,
             "[Interface] has no PrivateKey; generate one with `awgproxy genkey` and add "
             "PrivateKey = <key>");
  if (c->n_addresses == 0)
    diag_add(d, DIAG_ERROR, 0,
             "[Interface] has no Address; the tunnel needs its own address, e.g. "
             "Address = 10.8.0.2/32 (ask the server's operator)");
  char err[512];
  if (awg_params_validate(&c->awg, err, sizeof err) != 0)
    diag_add(d, DIAG_ERROR, line_for_message(err, lines), "%s", err);
}

static void validate_mtu(app_config *c, diag_list *d, const int *lines) {
  int mline = cfg_interface_line(lines, "MTU");
  if (!c->mtu_explicit)
    c->mtu = CFG_DEFAULT_MTU > c->awg.s[3] + 576 ? CFG_DEFAULT_MTU - c->awg.s[3] : 576;
  bool v6 = false;
  for (size_t i = 0; i < c->n_addresses; i++) v6 |= c->addresses[i].family == AF_INET6;
  if (v6 && c->mtu < 1280)
    diag_add(d, DIAG_ERROR, mline ? mline : cfg_interface_line(lines, "S4"),
             "MTU %u is below 1280, the minimum for IPv6, and an IPv6 Address is set; raise MTU "
             "or lower S4",
             c->mtu);
  uint64_t transport = (uint64_t)c->awg.s[3] + 32 + c->mtu;
  if (transport > AWG_MAX_DATAGRAM) {
    diag_add(
        d, DIAG_ERROR, mline ? mline : cfg_interface_line(lines, "S4"),
        "S4 + 32 + MTU = %llu bytes is more than a UDP datagram can carry (%d); lower MTU or S4",
        (unsigned long long)transport, AWG_MAX_DATAGRAM);
  } else if (transport > PATH_UDP_PAYLOAD && c->awg.s[3] + 32 + 576 > PATH_UDP_PAYLOAD) {
    diag_add(d, DIAG_WARNING, cfg_interface_line(lines, "S4"),
             "S4 = %u leaves no room for full-size transport datagrams within the %d-byte UDP "
             "payload of a 1500-byte path; they will be fragmented",
             c->awg.s[3], PATH_UDP_PAYLOAD);
  } else if (transport > PATH_UDP_PAYLOAD)
    diag_add(d, DIAG_WARNING, mline ? mline : cfg_interface_line(lines, "S4"),
             "S4 + 32 + MTU = %llu bytes: full-size transport datagrams exceed the %d-byte UDP "
             "payload of a 1500-byte path and will be fragmented or dropped; use MTU = %d or less",
             (unsigned long long)transport, PATH_UDP_PAYLOAD,
             (int)(PATH_UDP_PAYLOAD - 32 - (int)c->awg.s[3]));
}

/* The PRD asks for a warning for every size that can outgrow the path MTU. */
static void warn_sizes(const app_config *c, diag_list *d, const int *lines) {
  const awg_params *p = &c->awg;
  if (p->jc && !p->jmin && !p->jmax)
    diag_add(d, DIAG_WARNING, cfg_interface_line(lines, "Jc"),
             "Jc = %u but Jmin and Jmax are not set: the junk datagrams will be empty; set e.g. "
             "Jmin = 40 and Jmax = 70",
             p->jc);
  if (p->jc && p->jmax > PATH_UDP_PAYLOAD)
    diag_add(d, DIAG_WARNING, cfg_interface_line(lines, "Jmax"),
             "Jmax = %u: junk datagrams up to %u bytes exceed the %d-byte UDP payload of a "
             "1500-byte path and will be fragmented",
             p->jmax, p->jmax, PATH_UDP_PAYLOAD);
  static const unsigned base[3] = {148, 92, 64};
  static const char *const what[3] = {"handshake initiations", "handshake responses",
                                      "cookie replies"};
  for (int k = 0; k < 3; k++) {
    unsigned size = p->s[k] + base[k];
    char name[3] = {'S', (char)('1' + k), 0};
    if (size > PATH_UDP_PAYLOAD)
      diag_add(d, DIAG_WARNING, cfg_interface_line(lines, name),
               "%s = %u makes %s %u bytes, more than the %d-byte UDP payload of a 1500-byte path",
               name, p->s[k], what[k], size, PATH_UDP_PAYLOAD);
  }
  for (int i = 0; i < AWG_NUM_I; i++) {
    if (!p->i[i]) continue;
    size_t size = awg_itemplate_size(p->i[i]);
    char name[3] = {'I', (char)('1' + i), 0};
    if (size > PATH_UDP_PAYLOAD)
      diag_add(d, DIAG_WARNING, cfg_interface_line(lines, name),
               "%s expands to %zu bytes, more than the %d-byte UDP payload of a 1500-byte path",
               name, size, PATH_UDP_PAYLOAD);
  }
}

/* AWG 3.x spec R26: with RandomTrailers and header protection, a receiver tests every datagram
 * longer than a padded handshake against H1..H3 with a meaningless mask, so wide ranges lose
 * transport packets at random (sum of |H1..H3| / 2^32 of them). */
static void warn_trailer_losses(const app_config *c, diag_list *d, const int *lines) {
  const awg_params *p = &c->awg;
  if (!p->v3.random_trailers || !p->v3.header_protection) return;
  uint64_t covered = 0;
  for (int k = 0; k < 3; k++) covered += (uint64_t)p->h[k].end - p->h[k].start + 1;
  double share = (double)covered / 4294967296.0;
  if (share > 1e-4)
    diag_add(d, DIAG_WARNING, cfg_interface_line(lines, "RandomTrailers"),
             "with RandomTrailers and HeaderProtectionKey, H1-H3 cover %.3g%% of all values: "
             "about that share of transport packets is mistaken for a handshake and dropped by "
             "the receiver; narrow H1-H3 to a few thousand values in all (e.g. H1 = "
             "1000000-1000999)",
             share * 100);
}

static bool cidr_overlap(const cfg_cidr *a, const cfg_cidr *b) {
  if (a->family != b->family) return false;
  int bits = a->prefix < b->prefix ? a->prefix : b->prefix;
  for (int i = 0; bits > 0; i++, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xFF : (uint8_t)(0xFF << (8 - bits));
    if ((a->addr[i] & mask) != (b->addr[i] & mask)) return false;
  }
  return true;
}

static void validate_peers(const app_config *c, diag_list *d) {
  for (size_t i = 0; i < c->n_peers; i++) {
    const cfg_peer *p = &c->peers[i];
    if (c->has_private_key && memcmp(p->public_key, c->public_key, AWG_KEY_LEN) == 0)
      diag_add(d, DIAG_ERROR, p->line,
               "this peer's PublicKey is this interface's own public key; use the other side's");
    for (size_t j = 0; j < i; j++) {
      const cfg_peer *q = &c->peers[j];
      if (memcmp(p->public_key, q->public_key, AWG_KEY_LEN) == 0 &&
          !sodium_is_zero(p->public_key, AWG_KEY_LEN))
        diag_add(d, DIAG_ERROR, p->line, "the same PublicKey is used by the peer at line %d",
                 q->line);
      for (size_t a = 0; a < p->n_allowed_ips; a++)
        for (size_t b = 0; b < q->n_allowed_ips; b++)
          if (cidr_overlap(&p->allowed_ips[a], &q->allowed_ips[b]) &&
              p->allowed_ips[a].prefix == q->allowed_ips[b].prefix) {
            char buf[64];
            cfg_format_cidr(&p->allowed_ips[a], buf, sizeof buf);
            diag_add(d, DIAG_ERROR, p->line,
                     "AllowedIPs %s is also given to the peer at line %d; a prefix belongs to one "
                     "peer",
                     buf, q->line);
          }
    }
    if (p->n_allowed_ips == 0)
      diag_add(d, DIAG_WARNING, p->line,
               "this peer has no AllowedIPs; no traffic can be sent to it or accepted from it");
  }
}

/* True when the whole prefix lies in RFC 1918 or ULA space, which the exit refuses unless
 * [Server] AllowPrivate = yes: such an ExitAllow entry would do nothing. */
static bool only_private(const cfg_exit_rule *r) {
  if (r->any) return false;
  const uint8_t *a = r->net.addr;
  unsigned p = r->net.prefix;
  if (r->net.family == AF_INET6) return p >= 7 && (a[0] & 0xFE) == 0xFC;
  return (p >= 8 && a[0] == 10) || (p >= 12 && a[0] == 172 && (a[1] & 0xF0) == 16) ||
         (p >= 16 && a[0] == 192 && a[1] == 168);
}

static void validate_exit(const app_config *c, diag_list *d) {
  if (c->server_peer_max_connections > c->server_max_connections)
    diag_add(d, DIAG_WARNING, 0,
             "[Server] MaxConnectionsPerPeer = %u is above MaxConnections = %u, the cap for all "
             "peers together, which then applies first",
             c->server_peer_max_connections, c->server_max_connections);
  for (size_t i = 0; i < c->n_peers; i++) {
    const cfg_peer *p = &c->peers[i];
    if (p->max_connections > c->server_max_connections)
      diag_add(d, DIAG_WARNING, p->line,
               "this peer's MaxConnections = %u is above [Server] MaxConnections = %u, the cap "
               "for all peers together",
               p->max_connections, c->server_max_connections);
    for (size_t k = 0; k < p->n_exit_allow && !c->server_allow_private; k++)
      if (only_private(&p->exit_allow[k])) {
        char buf[96];
        cfg_format_exit_rule(&p->exit_allow[k], buf, sizeof buf);
        diag_add(d, DIAG_WARNING, p->line,
                 "ExitAllow %s is a private range, which the exit refuses to every peer unless "
                 "[Server] AllowPrivate = yes; a peer's allow list cannot open it",
                 buf);
      }
  }
}

static bool is_loopback(const cfg_hostport *h) {
  cfg_ip ip;
  if (cfg_parse_ip(h->host, &ip) != 0) return false;
  if (ip.family == AF_INET) return ip.addr[0] == 127;
  static const uint8_t lo6[16] = {[15] = 1};
  return memcmp(ip.addr, lo6, 16) == 0;
}

static void validate_socks(app_config *c, diag_list *d) {
  if (c->n_socks_listen == 0) {
    c->socks_listen = calloc(1, sizeof *c->socks_listen);
    if (!c->socks_listen) return;
    cfg_parse_hostport(CFG_DEFAULT_SOCKS, c->socks_listen, NULL, 0);
    c->n_socks_listen = 1;
  }
  for (size_t i = 0; i < c->n_socks_listen; i++) {
    char buf[300];
    cfg_format_hostport(&c->socks_listen[i], buf, sizeof buf);
    if (!is_loopback(&c->socks_listen[i]) && c->n_socks_users == 0)
      diag_add(d, DIAG_WARNING, 0,
               "[Socks] Listen = %s is reachable from other machines and no User is set: anyone "
               "who can reach it can use your tunnel; add User = NAME:HASH (awgproxy passwd)",
               buf);
    for (size_t j = 0; j < i; j++)
      if (strcmp(c->socks_listen[i].host, c->socks_listen[j].host) == 0 &&
          c->socks_listen[i].port == c->socks_listen[j].port)
        diag_add(d, DIAG_ERROR, 0, "[Socks] Listen = %s is given twice", buf);
  }
}

static bool same_hostport(const cfg_hostport *a, const cfg_hostport *b) {
  return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Two listeners on one TCP (or UDP) address cannot both start. */
static void validate_listeners(const app_config *c, diag_list *d) {
  for (size_t i = 0; i < c->n_forwards; i++) {
    const cfg_forward *f = &c->forwards[i];
    char buf[300];
    cfg_format_hostport(&f->listen, buf, sizeof buf);
    for (size_t k = 0; f->proto == FWD_TCP && k < c->n_socks_listen; k++)
      if (same_hostport(&f->listen, &c->socks_listen[k]))
        diag_add(d, DIAG_ERROR, f->line, "[Forward] Listen = %s is also a [Socks] Listen address",
                 buf);
    for (size_t j = 0; j < i; j++)
      if (c->forwards[j].proto == f->proto && same_hostport(&f->listen, &c->forwards[j].listen))
        diag_add(d, DIAG_ERROR, f->line,
                 "[Forward] Listen = %s is used by the [Forward] at line %d", buf,
                 c->forwards[j].line);
  }
}

/* [Http] Listen: like [Socks] Listen (open to others without User: a warning), and no address
 * shared with a SOCKS or TCP [Forward] listener. */
static void validate_http(const app_config *c, diag_list *d) {
  for (size_t i = 0; i < c->n_http_listen; i++) {
    const cfg_hostport *h = &c->http_listen[i];
    char buf[300];
    cfg_format_hostport(h, buf, sizeof buf);
    if (!is_loopback(h) && c->n_socks_users == 0)
      diag_add(d, DIAG_WARNING, 0,
               "[Http] Listen = %s is reachable from other machines and no [Socks] User is set: "
               "anyone who can reach it can use your tunnel; add User = NAME:HASH to [Socks] "
               "(awgproxy passwd)",
               buf);
    for (size_t j = 0; j < i; j++)
      if (same_hostport(h, &c->http_listen[j]))
        diag_add(d, DIAG_ERROR, 0, "[Http] Listen = %s is given twice", buf);
    for (size_t k = 0; k < c->n_socks_listen; k++)
      if (same_hostport(h, &c->socks_listen[k]))
        diag_add(d, DIAG_ERROR, 0, "[Http] Listen = %s is also a [Socks] Listen address", buf);
    for (size_t k = 0; k < c->n_forwards; k++)
      if (c->forwards[k].proto == FWD_TCP && same_hostport(h, &c->forwards[k].listen))
        diag_add(d, DIAG_ERROR, c->forwards[k].line,
                 "[Forward] Listen = %s is also an [Http] Listen address", buf);
  }
}

/* Mode = forward hands the SOCKS dialogue to the server's SOCKS service: a local login would be
 * a second one that the application cannot answer. */
void config_validate_mode(const app_config *c, diag_list *d) {
  if (c->socks_mode != SOCKS_MODE_FORWARD || c->n_socks_users == 0) return;
  diag_add(d, DIAG_ERROR, c->socks_users[0].line,
           "[Socks] User is not allowed with [Socks] Mode = forward: the connection is relayed to "
           "the server's SOCKS service as it is, and any login runs end to end; remove the User "
           "lines or use Mode = connect");
}

/* SocksAuth asks the peers for a login on the tunnel's SOCKS service: there must be logins. */
static void validate_socks_auth(const app_config *c, diag_list *d) {
  if (c->server_socks_auth && !c->n_socks_users)
    diag_add(d, DIAG_ERROR, 0,
             "[Server] SocksAuth = on needs [Socks] User entries (awgproxy passwd makes the hash); "
             "add one or set SocksAuth = off");
}

void config_validate_front(app_config *c, diag_list *d) {
  validate_socks(c, d);
  validate_listeners(c, d);
  validate_http(c, d);
}

void config_validate(app_config *c, diag_list *d, const int *iface_lines, bool set_member) {
  validate_interface(c, d, iface_lines);
  validate_mtu(c, d, iface_lines);
  warn_sizes(c, d, iface_lines);
  warn_trailer_losses(c, d, iface_lines);
  validate_peers(c, d);
  validate_exit(c, d);
  validate_socks_auth(c, d);
  if (!set_member) {
    config_validate_front(c, d);
    config_validate_mode(c, d);
  }
  cfg_validate_hop(c, d);
  cfg_validate_tls(c, d);
}
