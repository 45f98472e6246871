/* The validation summary that `awgproxy check` prints and the daemons log at start.
 * It never contains a private key or preshared key: peers are named by a short fingerprint. */
#include <stdio.h>
#include <string.h>

#include "awg/itag.h"
#include "config/config.h"

static void print_list_cidr(FILE *out, const cfg_cidr *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char buf[64];
    cfg_format_cidr(&a[i], buf, sizeof buf);
    fprintf(out, "%s%s", i ? ", " : "", buf);
  }
  if (!n) fputs("(none)", out);
}

/* AmneziaWG 3.x settings, only those that are set (the key itself is a secret: never shown). */
static void print_awg3(const awg3_params *v, FILE *out) {
  if (awg3_params_is_off(v)) return;
  fprintf(out, "  awg 3.x: header protection %s; random trailers %s; cookies %s",
          v->header_protection ? "on" : "off", v->random_trailers ? "on" : "off",
          v->disable_cookies ? "disabled" : "enabled");
  const struct {
    const char *name;
    awg3_range r;
  } ranges[] = {{"content padding", v->content_padding},
                {"RekeyAfterTime", v->rekey_after_time},
                {"RekeyTimeout", v->rekey_timeout},
                {"RejectAfterTime", v->reject_after_time},
                {"KeepaliveTimeout", v->keepalive_timeout},
                {"MaxHandshakeAttempts", v->max_handshake_attempts}};
  for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
    char buf[32];
    if (!awg3_range_is_set(ranges[i].r)) continue;
    awg3_range_format(ranges[i].r, buf, sizeof buf);
    fprintf(out, "; %s %s", ranges[i].name, buf);
  }
  fputc('\n', out);
}

static void print_obfuscation(const app_config *c, FILE *out) {
  const awg_params *p = &c->awg;
  if (awg_params_is_plain(p)) {
    fputs("  obfuscation: none (plain WireGuard wire format)\n", out);
    return;
  }
  fprintf(out, "  obfuscation: junk Jc=%u Jmin=%u Jmax=%u; padding S1=%u S2=%u S3=%u S4=%u\n",
          p->jc, p->jmin, p->jmax, p->s[0], p->s[1], p->s[2], p->s[3]);
  fputs("  headers:", out);
  for (int k = 0; k < 4; k++) {
    char buf[32];
    awg_hrange_format(p->h[k], buf, sizeof buf);
    fprintf(out, " H%d=%s", k + 1, buf);
  }
  fputc('\n', out);
  for (int i = 0; i < AWG_NUM_I; i++)
    if (p->i[i])
      fprintf(out, "  I%d: %zu bytes per initiation\n", i + 1, awg_itemplate_size(p->i[i]));
  print_awg3(&p->v3, out);
}

static void print_rules(FILE *out, const char *what, const cfg_exit_rule *r, size_t n) {
  if (!n) return;
  fprintf(out, "; %s ", what);
  for (size_t i = 0; i < n; i++) {
    char buf[96];
    cfg_format_exit_rule(&r[i], buf, sizeof buf);
    fprintf(out, "%s%s", i ? ", " : "", buf);
  }
}

static void print_domains(FILE *out, const char *what, const cfg_domain_rule *r, size_t n) {
  if (!n) return;
  fprintf(out, "; %s ", what);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%s%s%s", i ? ", " : "", r[i].suffix ? "*." : "", r[i].name);
}

/* The server's exit settings for this peer, on a line of their own. */
static void print_peer_exit(const cfg_peer *p, const app_config *c, FILE *out) {
  char up[32], down[32];
  cfg_format_rate(p->upload_limit, up, sizeof up);
  cfg_format_rate(p->download_limit, down, sizeof down);
  fprintf(out, "    exit: %s",
          p->n_exit_allow || p->n_allow_domains ? "allow-list mode" : "default policy");
  print_rules(out, "allow", p->exit_allow, p->n_exit_allow);
  print_domains(out, "allow names", p->allow_domains, p->n_allow_domains);
  print_rules(out, "deny", p->exit_deny, p->n_exit_deny);
  print_domains(out, "deny names", p->deny_domains, p->n_deny_domains);
  fprintf(out, "; max %u connections; upload %s, download %s\n",
          p->max_connections ? p->max_connections : c->server_peer_max_connections, up, down);
}

static void print_peer(const cfg_peer *p, FILE *out) {
  char fp[9], ep[300] = "(none: waits for the peer to connect)";
  key_fingerprint(p->public_key, fp);
  if (p->has_endpoint) cfg_format_hostport(&p->endpoint, ep, sizeof ep);
  fprintf(out, "  peer %s…: endpoint %s; allowed ", fp, ep);
  print_list_cidr(out, p->allowed_ips, p->n_allowed_ips);
  if (p->persistent_keepalive_max > p->persistent_keepalive)
    fprintf(out, "; keepalive every %u-%us", p->persistent_keepalive, p->persistent_keepalive_max);
  else if (p->persistent_keepalive)
    fprintf(out, "; keepalive every %us", p->persistent_keepalive);
  if (p->endpoint_ports.n)
    fprintf(out, "; hops among %u server ports every %u-%us",
            cfg_port_ranges_count(&p->endpoint_ports), p->hop_min, p->hop_max);
  if (p->has_tls_endpoint)
    fprintf(out, "; carrier %s, TLS to %s:%u%s", cfg_carrier_name(cfg_peer_carrier(p)),
            p->tls_endpoint.host, p->tls_endpoint.port, p->tls_verify ? " (verified)" : "");
  fprintf(out, "%s\n", p->has_psk ? "; preshared key set" : "");
}

void config_print_summary(const app_config *c, FILE *out) {
  fprintf(out, "%s: OK\n", c->path);
  config_print_tunnel_summary(c, out);
  config_print_front_summary(c, out);
}

void config_print_tunnel_summary(const app_config *c, FILE *out) {
  char fp[9];
  key_fingerprint(c->public_key, fp);
  fprintf(out, "  interface: public key %s…", fp);
  if (c->has_listen_port) fprintf(out, ", listen port %u", c->listen_port);
  if (c->extra_ports.n) {
    uint16_t ports[CFG_EXTRA_PORTS_MAX];
    fprintf(out, " + %zu extra (port hopping)", cfg_extra_port_list(c, ports, CFG_EXTRA_PORTS_MAX));
  }
  fprintf(out, ", MTU %u%s\n", c->mtu, c->mtu_explicit ? "" : " (default 1420 - S4)");
  fputs("  addresses: ", out);
  print_list_cidr(out, c->addresses, c->n_addresses);
  fputc('\n', out);
  fputs("  dns: ", out);
  for (size_t i = 0; i < c->n_dns; i++) {
    cfg_cidr tmp = {c->dns[i].family, {0}, 0};
    memcpy(tmp.addr, c->dns[i].addr, 16);
    char buf[64];
    cfg_format_cidr(&tmp, buf, sizeof buf);
    *strchr(buf, '/') = '\0';
    fprintf(out, "%s%s", i ? ", " : "", buf);
  }
  fputs(c->n_dns ? "\n" : "(none: names go to the server's resolver through the tunnel)\n", out);
  print_obfuscation(c, out);
  fprintf(out, "  peers: %zu\n", c->n_peers);
  for (size_t i = 0; i < c->n_peers; i++) {
    print_peer(&c->peers[i], out);
    print_peer_exit(&c->peers[i], c, out);
  }
  fprintf(out, "  server exit: private ranges %s; max %u connections (%u per peer); max sessions ",
          c->server_allow_private ? "allowed" : "refused", c->server_max_connections,
          c->server_peer_max_connections);
  if (c->server_max_sessions)
    fprintf(out, "%u\n", c->server_max_sessions);
  else
    fputs("no cap\n", out);
  if (c->server_threads)
    fprintf(out, "  server threads: %u worker process%s\n", c->server_threads,
            c->server_threads > 1 ? "es" : "");
  else
    fputs("  server threads: auto (one worker process per core; one without a ListenPort)\n", out);
  char up[300] = "";
  if (c->has_tls_decoy_upstream) {
    memcpy(up, "passed to ", 10);
    cfg_format_hostport(&c->tls_decoy_upstream, up + 10, sizeof up - 10);
  }
  for (size_t i = 0; i < c->n_tls_listen; i++) {
    char where[300];
    cfg_format_hostport(&c->tls_listen[i], where, sizeof where);
    fprintf(out, "  tls carrier: %s, certificate %s%s, decoy %s%s\n", where,
            c->tls_cert[0] ? c->tls_cert : "self-signed for ",
            c->tls_cert[0] ? "" : (c->tls_name[0] ? c->tls_name : c->tls_listen[0].host),
            up[0]             ? up
            : c->tls_decoy[0] ? c->tls_decoy
                              : "nginx's 404 page",
            i == 0 && c->server_threads != 1 ? " (one worker process)" : "");
  }
}

static size_t pinned_users(const app_config *c) {
  size_t n = 0;
  for (size_t i = 0; i < c->n_socks_users; i++) n += c->socks_users[i].server[0] != '\0';
  return n;
}

void config_print_front_summary(const app_config *c, FILE *out) {
  fputs("  socks:", out);
  for (size_t i = 0; i < c->n_socks_listen; i++) {
    char buf[300];
    cfg_format_hostport(&c->socks_listen[i], buf, sizeof buf);
    fprintf(out, " %s", buf);
  }
  fprintf(out, " (%s)\n", c->n_socks_users ? "username/password required" : "no authentication");
  if (c->socks_mode == SOCKS_MODE_FORWARD)
    fputs("  socks mode: forward (relayed as it is to the server's SOCKS service, port 1080)\n",
          out);
  if (pinned_users(c))
    fprintf(out, "  socks users pinned to a server: %zu of %zu\n", pinned_users(c),
            c->n_socks_users);
  if (c->n_http_listen) {
    fputs("  http proxy:", out);
    for (size_t i = 0; i < c->n_http_listen; i++) {
      char buf[300];
      cfg_format_hostport(&c->http_listen[i], buf, sizeof buf);
      fprintf(out, " %s", buf);
    }
    fprintf(out, " (%s; PAC at /proxy.pac)\n",
            c->n_socks_users ? "[Socks] User required" : "no authentication");
  }
  for (size_t i = 0; i < c->n_forwards; i++) {
    char l[300], t[300];
    cfg_format_hostport(&c->forwards[i].listen, l, sizeof l);
    cfg_format_hostport(&c->forwards[i].target, t, sizeof t);
    fprintf(out, "  forward %s %s -> %s (through the tunnel)\n",
            c->forwards[i].proto == FWD_TCP ? "tcp" : "udp", l, t);
  }
  if (c->has_metrics) {
    char m[300];
    cfg_format_hostport(&c->metrics_listen, m, sizeof m);
    fprintf(out, "  metrics: http://%s/metrics\n", m);
  }
  if (c->control_path[0]) {
    fprintf(out, "  control: unix socket %s (mode 0600)\n", c->control_path);
  } else if (c->has_control_tcp) {
    char m[300];
    cfg_format_hostport(&c->control_listen, m, sizeof m);
    fprintf(out, "  control: http://%s/\n", m);
  }
}
