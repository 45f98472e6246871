/* The config loader, called directly: config_load_buffer on whole files (values, syntax variants,
 * diagnostics with line numbers) and the value parsers cfg_parse_cidr / cfg_parse_hostport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "awg/itag.h"
#include "config/config.h"
#include "util/keys.h"

#define PRIV_A "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
#define PUB_A "f+2up9Y6JpDbknlpCXSOhoOawuhaX718ejV2QsrxxV8="
#define PUB_B "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="
#define PUB_C "Oc0QUC+UmfrEGX7aIy1VRgKI6f7J0IhSrNfAOLZCKwI="
#define PUB_D "VqRGsC5fM0kyEjPLqzltyJtH5mwGZv6vDB44Bpf9xms="
#define PSK "GH6EpssP4GaWAj8TRLKwhKIpAy+h+V1P756aqunzflM="

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct {
  app_config c;
  diag_list d;
  int rc;
} loaded;

static void print_diags(const diag_list *d) {
  for (size_t i = 0; i < d->n; i++)
    print_message("  line %d %s: %s\n", d->items[i].line,
                  d->items[i].kind == DIAG_ERROR ? "error" : "warning", d->items[i].msg);
}

static void load_len(loaded *L, const char *text, size_t len) {
  memset(&L->d, 0, sizeof L->d);
  config_init(&L->c);
  L->rc = config_load_buffer(&L->c, text, len, "test.conf", &L->d);
}

static void load(loaded *L, const char *text) { load_len(L, text, strlen(text)); }

/* Loads text and requires it to be valid (warnings allowed). */
static void load_ok(loaded *L, const char *text) {
  load(L, text);
  if (L->rc != 0 || L->d.errors != 0) {
    print_diags(&L->d);
    fail_msg("config rejected (%zu errors)", L->d.errors);
  }
}

static void unload(loaded *L) {
  config_free(&L->c);
  diag_list_free(&L->d);
}

/* Requires a diagnostic of this kind at this line whose message contains `part`. */
static void expect_diag(const loaded *L, diag_kind kind, int line, const char *part) {
  for (size_t i = 0; i < L->d.n; i++) {
    const diag *it = &L->d.items[i];
    if (it->kind == kind && it->line == line && strstr(it->msg, part)) return;
  }
  print_diags(&L->d);
  fail_msg("no %s at line %d containing \"%s\"", kind == DIAG_ERROR ? "error" : "warning", line,
           part);
}

static void key(const char *b64, uint8_t out[AWG_KEY_LEN]) {
  char why[160];
  if (key_from_base64(b64, out, why, sizeof why) != 0) fail_msg("test key %s: %s", b64, why);
}

static void assert_key(const uint8_t got[AWG_KEY_LEN], const char *b64) {
  uint8_t want[AWG_KEY_LEN];
  key(b64, want);
  assert_memory_equal(got, want, AWG_KEY_LEN);
}

static void assert_cidr(const cfg_cidr *c, const char *text) {
  char buf[64];
  cfg_format_cidr(c, buf, sizeof buf);
  assert_string_equal(buf, text);
}

static void assert_hostport(const cfg_hostport *h, const char *host, uint16_t port, bool is_ip) {
  assert_string_equal(h->host, host);
  assert_int_equal(h->port, port);
  assert_int_equal(h->host_is_ip, is_ip);
}

/* ---- a full config --------------------------------------------------------------------------- */

static const char kFull[] =
    "[Interface]\n"
    "PrivateKey = " PRIV_A
    "\n"
    "ListenPort = 51820\n"
    "Address = 10.8.0.2/24, fd00:8::2/64\n"
    "DNS = 1.1.1.1, 2606:4700:4700::1111\n"
    "Jc = 4\n"
    "Jmin = 40\n"
    "Jmax = 70\n"
    "S1 = 15\n"
    "S2 = 18\n"
    "S3 = 20\n"
    "S4 = 23\n"
    "H1 = 100000-100100\n"
    "H2 = 200000\n"
    "H3 = 300000-300100\n"
    "H4 = 400000-4000000000\n"
    "I1 = <b 0xc0ffee><r 16><t>\n"
    "I3 = <rc 5><rd 6><c><dz 7><d><ds>\n"
    "\n"
    "[Peer]\n"
    "PublicKey = " PUB_B
    "\n"
    "PresharedKey = " PSK
    "\n"
    "AllowedIPs = 10.8.0.77/24, 192.168.1.1/32\n"
    "AllowedIPs = fd00:8::1234:5678/64, 0.0.0.0/0\n"
    "Endpoint = 192.0.2.1:51820\n"
    "PersistentKeepalive = 25\n"
    "\n"
    "[Peer]\n"
    "PublicKey = " PUB_C
    "\n"
    "AllowedIPs = 10.9.0.0/16\n"
    "Endpoint = [2001:db8::1]:443\n"
    "PersistentKeepalive = off\n"
    "\n"
    "[Peer]\n"
    "PublicKey = " PUB_D
    "\n"
    "AllowedIPs = ::/0\n"
    "Endpoint = vpn.example.com:65535\n"
    "\n"
    "[Socks]\n"
    "Listen = 127.0.0.1:1080, [::1]:1081\n"
    "User = alice:$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\n"
    "IdleTimeout = 0\n"
    "ConnectTimeout = 5\n"
    "\n"
    "[Forward]\n"
    "Listen = 127.0.0.1:8080\n"
    "Target = 10.8.0.1:80\n"
    "\n"
    "[Forward]\n"
    "Protocol = udp\n"
    "Listen = 127.0.0.1:5353\n"
    "Target = dns.internal:53\n"
    "\n"
    "[Server]\n"
    "Socks = off\n"
    "LocalSocks = 127.0.0.1:1081\n"
    "\n"
    "[Log]\n"
    "Level = debug\n"
    "Format = json\n";

static void test_full_config(void **state) {
  loaded L;
  load_ok(&L, kFull);
  app_config *c = &L.c;
  assert_int_equal(L.d.warnings, 0);
  assert_string_equal(c->path, "test.conf");

  assert_true(c->has_private_key);
  assert_key(c->private_key, PRIV_A);
  assert_key(c->public_key, PUB_A);
  assert_true(c->has_listen_port);
  assert_int_equal(c->listen_port, 51820);

  /* Interface addresses keep their host part. */
  assert_int_equal(c->n_addresses, 2);
  assert_int_equal(c->addresses[0].family, AF_INET);
  assert_cidr(&c->addresses[0], "10.8.0.2/24");
  assert_int_equal(c->addresses[1].family, AF_INET6);
  assert_cidr(&c->addresses[1], "fd00:8::2/64");

  assert_int_equal(c->n_dns, 2);
  assert_int_equal(c->dns[0].family, AF_INET);
  assert_memory_equal(c->dns[0].addr, "\x01\x01\x01\x01", 4);
  assert_int_equal(c->dns[1].family, AF_INET6);

  /* AWG parameters. */
  const awg_params *p = &c->awg;
  assert_int_equal(p->jc, 4);
  assert_int_equal(p->jmin, 40);
  assert_int_equal(p->jmax, 70);
  assert_int_equal(p->s[0], 15);
  assert_int_equal(p->s[1], 18);
  assert_int_equal(p->s[2], 20);
  assert_int_equal(p->s[3], 23);
  assert_int_equal(p->h[0].start, 100000);
  assert_int_equal(p->h[0].end, 100100);
  assert_int_equal(p->h[1].start, 200000);
  assert_int_equal(p->h[1].end, 200000);
  assert_int_equal(p->h[2].start, 300000);
  assert_int_equal(p->h[3].end, 4000000000u);
  assert_non_null(p->i[0]);
  assert_int_equal(awg_itemplate_size(p->i[0]), 3 + 16 + 4);
  assert_string_equal(awg_itemplate_text(p->i[0]), "<b 0xc0ffee><r 16><t>");
  assert_null(p->i[1]);
  assert_non_null(p->i[2]);
  assert_int_equal(awg_itemplate_size(p->i[2]), 5 + 6 + 4 + 7);
  assert_null(p->i[3]);
  assert_null(p->i[4]);
  assert_false(awg_params_is_plain(p));

  /* MTU not set: 1420 - S4. */
  assert_false(c->mtu_explicit);
  assert_int_equal(c->mtu, 1420 - 23);

  /* Peers. */
  assert_int_equal(c->n_peers, 3);
  const cfg_peer *a = &c->peers[0], *b = &c->peers[1], *d = &c->peers[2];
  assert_int_equal(a->line, 20);
  assert_int_equal(b->line, 28);
  assert_int_equal(d->line, 34);
  assert_key(a->public_key, PUB_B);
  assert_true(a->has_psk);
  assert_key(a->psk, PSK);
  assert_int_equal(a->n_allowed_ips, 4);          /* two AllowedIPs lines append */
  assert_cidr(&a->allowed_ips[0], "10.8.0.0/24"); /* host bits cleared, like wg */
  assert_cidr(&a->allowed_ips[1], "192.168.1.1/32");
  assert_cidr(&a->allowed_ips[2], "fd00:8::/64");
  assert_cidr(&a->allowed_ips[3], "0.0.0.0/0");
  assert_true(a->has_endpoint);
  assert_hostport(&a->endpoint, "192.0.2.1", 51820, true);
  assert_int_equal(a->persistent_keepalive, 25);

  assert_key(b->public_key, PUB_C);
  assert_false(b->has_psk);
  assert_int_equal(b->n_allowed_ips, 1);
  assert_cidr(&b->allowed_ips[0], "10.9.0.0/16");
  assert_true(b->has_endpoint);
  assert_hostport(&b->endpoint, "2001:db8::1", 443, true);
  assert_int_equal(b->persistent_keepalive, 0);

  assert_key(d->public_key, PUB_D);
  assert_cidr(&d->allowed_ips[0], "::/0");
  assert_hostport(&d->endpoint, "vpn.example.com", 65535, false);
  assert_int_equal(d->persistent_keepalive, 0);

  /* [Socks] */
  assert_int_equal(c->n_socks_listen, 2);
  assert_hostport(&c->socks_listen[0], "127.0.0.1", 1080, true);
  assert_hostport(&c->socks_listen[1], "::1", 1081, true);
  assert_int_equal(c->n_socks_users, 1);
  assert_string_equal(c->socks_users[0].user, "alice");
  assert_string_equal(c->socks_users[0].hash,
                      "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g");
  assert_int_equal(c->idle_timeout, 0);
  assert_int_equal(c->connect_timeout, 5);
  assert_int_equal(c->socks_handshake_timeout, 10); /* default */
  assert_int_equal(c->tunnel_wait, 10);             /* default */

  /* [Forward] */
  assert_int_equal(c->n_forwards, 2);
  assert_int_equal(c->forwards[0].proto, FWD_TCP);
  assert_int_equal(c->forwards[0].line, 45);
  assert_hostport(&c->forwards[0].listen, "127.0.0.1", 8080, true);
  assert_hostport(&c->forwards[0].target, "10.8.0.1", 80, true);
  assert_int_equal(c->forwards[1].proto, FWD_UDP);
  assert_hostport(&c->forwards[1].target, "dns.internal", 53, false);

  /* [Server], [Log] */
  assert_int_equal(c->server_socks_port, 0);
  assert_true(c->has_local_socks);
  assert_hostport(&c->local_socks, "127.0.0.1", 1081, true);
  assert_int_equal(c->log_level, 3);  /* LOG_DEBUG */
  assert_int_equal(c->log_format, 1); /* LOG_FORMAT_JSON */
  unload(&L);
}

static void test_minimal_defaults(void **state) {
  loaded L;
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\n");
  assert_false(L.c.has_listen_port);
  assert_int_equal(L.c.mtu, 1420);
  assert_false(L.c.mtu_explicit);
  assert_int_equal(L.c.n_peers, 0);
  assert_true(awg_params_is_plain(&L.c.awg));
  /* The default SOCKS listener is filled in. */
  assert_int_equal(L.c.n_socks_listen, 1);
  assert_hostport(&L.c.socks_listen[0], "127.0.0.1", 1080, true);
  assert_int_equal(L.c.server_socks_port, 1080);
  assert_int_equal(L.c.log_level, -1);
  assert_int_equal(L.c.log_format, -1);
  assert_int_equal(L.d.n, 0);
  unload(&L);
}

static void test_explicit_mtu(void **state) {
  loaded L;
  load_ok(&L,
          "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\nS4 = 100\nMTU = 1300\n");
  assert_true(L.c.mtu_explicit);
  assert_int_equal(L.c.mtu, 1300);
  assert_int_equal(L.d.warnings, 0);
  unload(&L);
  /* A large S4 makes the default MTU 1420 - S4. */
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\nS4 = 140\n");
  assert_int_equal(L.c.mtu, 1280);
  unload(&L);
}

/* ---- syntax variants ---------------------------------------------------------------------------
 */

static void test_case_insensitive_names(void **state) {
  loaded L;
  load_ok(&L,
          "[INTERFACE]\n"
          "privatekey = " PRIV_A
          "\n"
          "ADDRESS = 10.0.0.2/32\n"
          "jc = 2\n"
          "JMIN = 10\n"
          "jMaX = 20\n"
          "h1 = 5\n"
          "i1 = <r 4>\n"
          "[peer]\n"
          "PUBLICKEY = " PUB_B
          "\n"
          "allowedips = 10.0.0.1/32\n"
          "persistentkeepalive = OFF\n"
          "[fOrWaRd]\n"
          "protocol = UDP\n"
          "listen = 127.0.0.1:53\n"
          "target = 10.0.0.1:53\n");
  assert_true(L.c.has_private_key);
  assert_int_equal(L.c.n_addresses, 1);
  assert_int_equal(L.c.awg.jc, 2);
  assert_int_equal(L.c.awg.jmin, 10);
  assert_int_equal(L.c.awg.jmax, 20);
  assert_int_equal(L.c.awg.h[0].start, 5);
  assert_int_equal(awg_itemplate_size(L.c.awg.i[0]), 4);
  assert_int_equal(L.c.n_peers, 1);
  assert_key(L.c.peers[0].public_key, PUB_B);
  assert_int_equal(L.c.forwards[0].proto, FWD_UDP);
  unload(&L);
}

/* Port hopping: ranges and lists, the ListenPort left out of ExtraPorts, HopInterval's default,
 * and what needs another key. */
static void test_port_hopping_keys(void **state) {
  (void)state;
  loaded L;
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.1/24\nListenPort = 20000\n"
              "[Server]\nExtraPorts = 20000-20009, 30000\n");
  assert_int_equal(cfg_port_ranges_count(&L.c.extra_ports), 11);
  uint16_t ports[CFG_EXTRA_PORTS_MAX];
  assert_int_equal(cfg_extra_port_list(&L.c, ports, CFG_EXTRA_PORTS_MAX), 10); /* not 20000 */
  assert_int_equal(ports[0], 20001);
  assert_int_equal(ports[9], 30000);
  unload(&L);

  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.2/32\n"
              "[Peer]\nPublicKey = " PUB_B
              "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.0.2.1:20000\n"
              "EndpointPorts = 20000-20099\n");
  assert_int_equal(cfg_port_ranges_count(&L.c.peers[0].endpoint_ports), 100);
  assert_int_equal(L.c.peers[0].hop_min, 30);
  assert_int_equal(L.c.peers[0].hop_max, 60);
  unload(&L);

  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.2/32\n"
              "[Peer]\nPublicKey = " PUB_B
              "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.0.2.1:20000\n"
              "HopInterval = 5\nEndpointPorts = 20000-20001\n");
  assert_int_equal(L.c.peers[0].hop_min, 5); /* set before EndpointPorts: kept */
  assert_int_equal(L.c.peers[0].hop_max, 5);
  unload(&L);

  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.2/32\n"
           "[Peer]\nPublicKey = " PUB_B
           "\nAllowedIPs = 0.0.0.0/0\n"
           "EndpointPorts = 20000-20099\nHopInterval = 60-30\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 8, "HopInterval: range 60-30 ends before it starts");
  unload(&L);

  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.2/32\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nEndpointPorts = 20000-20099\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 4, "EndpointPorts needs an Endpoint");
  unload(&L);

  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.2/32\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nHopInterval = 30-60\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 4, "HopInterval is set but EndpointPorts is not");
  unload(&L);

  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.1/24\nListenPort = 1000\n"
           "[Server]\nExtraPorts = 20000-29999\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 6, "ExtraPorts: holds 10000 ports; at most 256");
  unload(&L);

  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.1/24\n"
           "[Server]\nExtraPorts = 20000-20001, 0\n");
  assert_int_equal(L.rc, -1);
  unload(&L);
}

static void test_tls_carrier_keys(void **state) {
  (void)state;
  loaded L;
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.1/24\nListenPort = 51820\n"
              "[Server]\nTlsListen = 0.0.0.0:443, [::]:8443\nTlsName = www.example.org\n"
              "TlsDecoy = /srv/site\n");
  assert_int_equal(L.c.n_tls_listen, 2);
  assert_int_equal(L.c.tls_listen[1].port, 8443);
  assert_string_equal(L.c.tls_name, "www.example.org");
  assert_string_equal(L.c.tls_decoy, "/srv/site");
  assert_false(L.c.has_tls_decoy_upstream);
  unload(&L);
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.1/24\nListenPort = 51820\n"
              "[Server]\nTlsListen = 0.0.0.0:443\nTlsDecoyUpstream = www.example.org:8080\n");
  assert_true(L.c.has_tls_decoy_upstream);
  assert_string_equal(L.c.tls_decoy_upstream.host, "www.example.org");
  assert_int_equal(L.c.tls_decoy_upstream.port, 8080);
  unload(&L);
  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.1/24\n"
           "[Server]\nTlsListen = 0.0.0.0:443\nTlsDecoy = /srv\nTlsDecoyUpstream = 127.0.0.1:80\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 0, "TlsDecoy and TlsDecoyUpstream both set");
  unload(&L);

  /* A client: auto by default with a TlsEndpoint, udp without; tls and the rest as written. */
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.2/32\n"
              "[Peer]\nPublicKey = " PUB_B
              "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.0.2.1:51820\n"
              "TlsEndpoint = vpn.example.org:443\nUdpRetry = 60\n"
              "[Peer]\nPublicKey = " PUB_C
              "\nAllowedIPs = 10.9.0.0/16\nEndpoint = 192.0.2.2:51820\n"
              "[Peer]\nPublicKey = " PUB_D
              "\nAllowedIPs = 10.8.0.0/16\n"
              "TlsEndpoint = 192.0.2.3:443\nCarrier = TLS\nTlsServerName = cdn.example\n"
              "TlsVerify = on\n");
  assert_int_equal(cfg_peer_carrier(&L.c.peers[0]), CFG_CARRIER_AUTO);
  assert_int_equal(L.c.peers[0].udp_retry, 60);
  assert_string_equal(L.c.peers[0].tls_endpoint.host, "vpn.example.org");
  assert_int_equal(cfg_peer_carrier(&L.c.peers[1]), CFG_CARRIER_UDP);
  assert_int_equal(cfg_peer_carrier(&L.c.peers[2]), CFG_CARRIER_TLS);
  assert_string_equal(L.c.peers[2].tls_server_name, "cdn.example");
  assert_true(L.c.peers[2].tls_verify);
  unload(&L);

  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.2/32\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nCarrier = tls\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 4, "Carrier = tls needs TlsEndpoint");
  unload(&L);
  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.2/32\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nCarrier = quic\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 7, "'quic' is not a carrier; use auto, udp or tls");
  unload(&L);
  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.1/24\n"
           "[Server]\nTlsListen = example.org:443\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 5, "must be an IP address and port");
  unload(&L);
  load(&L, "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.1/24\n"
           "[Server]\nTlsListen = 0.0.0.0:443\nTlsCert = /etc/cert.pem\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 0, "TlsCert and TlsKey go together");
  unload(&L);
  load(&L,
       "[Interface]\nPrivateKey = " PRIV_A
       "\nAddress = 10.0.0.1/24\n"
       "[Server]\nTlsListen = 1.1.1.1:1, 1.1.1.1:2, 1.1.1.1:3\nTlsListen = 1.1.1.1:4, 1.1.1.1:5\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 6, "more than 4 TlsListen addresses");
  unload(&L);
}

static void test_comments(void **state) {
  loaded L;
  /* `;` starts a comment only at the beginning of a line (as in wg-quick). */
  load(&L,
       "[Interface]\n"
       "PrivateKey = " PRIV_A
       "\n"
       "Address = 10.0.0.2/32\n"
       "ListenPort = 51820 ; trailing\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 4, "ListenPort: '51820 ; trailing' is not a whole number");
  unload(&L);

  load_ok(&L,
          "# a whole-line comment\n"
          "; an ini-style comment\n"
          "   # indented comment\n"
          "[Interface] # comment after a section\n"
          "PrivateKey = " PRIV_A
          " # comment after a key\n"
          "Address = 10.0.0.2/32#no space before it\n"
          "ListenPort = 51820 #\n"
          "DNS = # everything is a comment: an empty list\n"
          "I1 = <b 0x01> # <r 100000> is a comment\n");
  assert_int_equal(L.c.listen_port, 51820);
  assert_int_equal(L.c.n_addresses, 1);
  assert_cidr(&L.c.addresses[0], "10.0.0.2/32");
  assert_int_equal(L.c.n_dns, 0);
  assert_int_equal(awg_itemplate_size(L.c.awg.i[0]), 1);
  unload(&L);
}

static void test_crlf(void **state) {
  loaded L;
  load_ok(&L,
          "[Interface]\r\n"
          "PrivateKey = " PRIV_A
          "\r\n"
          "Address = 10.0.0.2/32\r\n"
          "MTU = 1400\r\n"
          "\r\n"
          "[Peer]\r\n"
          "PublicKey = " PUB_B
          "\r\n"
          "Endpoint = vpn.example.com:51820\r\n"
          "AllowedIPs = 0.0.0.0/0\r\n");
  assert_int_equal(L.c.mtu, 1400);
  assert_key(L.c.peers[0].public_key, PUB_B);
  assert_hostport(&L.c.peers[0].endpoint, "vpn.example.com", 51820, false);
  assert_int_equal(L.c.peers[0].line, 6);
  unload(&L);
  /* Line numbers stay right with CRLF. */
  load(&L, "[Interface]\r\nPrivateKey = " PRIV_A "\r\nAddress = 10.0.0.2/32\r\nMTU = x\r\n");
  expect_diag(&L, DIAG_ERROR, 4, "MTU: 'x' is not a whole number");
  unload(&L);
}

static void test_bom(void **state) {
  loaded L;
  load_ok(&L, "\xEF\xBB\xBF[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\n");
  assert_true(L.c.has_private_key);
  unload(&L);
  /* A BOM anywhere else is not skipped. */
  load(&L, "[Interface]\n\xEF\xBB\xBFPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 2, "unknown key");
  unload(&L);
}

static void test_no_final_newline(void **state) {
  loaded L;
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\nMTU = 1300");
  assert_int_equal(L.c.mtu, 1300);
  unload(&L);
}

static void test_address_lines_append(void **state) {
  loaded L;
  load_ok(&L,
          "[Interface]\n"
          "PrivateKey = " PRIV_A
          "\n"
          "Address = 10.0.0.2/32\n"
          "Address = fd00::2/128, 10.1.0.2/16\n"
          "Address = ,, 10.2.0.2/8 ,\n");
  assert_int_equal(L.c.n_addresses, 4);
  assert_cidr(&L.c.addresses[0], "10.0.0.2/32");
  assert_cidr(&L.c.addresses[1], "fd00::2/128");
  assert_cidr(&L.c.addresses[2], "10.1.0.2/16");
  assert_cidr(&L.c.addresses[3], "10.2.0.2/8");
  unload(&L);
}

static void test_whitespace_around_values(void **state) {
  loaded L;
  load_ok(&L,
          "  [ Interface ]  \n"
          "\tPrivateKey\t=\t" PRIV_A
          "\t\n"
          "Address=10.0.0.2/32\n"
          "ListenPort   =   1234   \n");
  assert_int_equal(L.c.listen_port, 1234);
  unload(&L);
}

/* ---- diagnostics ----------------------------------------------------------------------------- */

static void test_errors_have_lines(void **state) {
  loaded L;
  load(&L,
       "[Interface]\n"
       "PrivateKey = " PRIV_A
       "\n"
       "Address = 10.0.0.2/33\n"
       "Jc = 128\n"
       "Bogus = 1\n"
       "Address = 10.0.0.3/32\n"
       "[Peer]\n"
       "AllowedIPs = 10.0.0.1/32\n");
  assert_int_equal(L.rc, -1);
  assert_int_equal(L.d.errors, 4);
  expect_diag(&L, DIAG_ERROR, 3, "prefix length in '10.0.0.2/33'");
  expect_diag(&L, DIAG_ERROR, 4, "Jc: 128 is out of range; allowed: 0 to 127");
  expect_diag(&L, DIAG_ERROR, 5, "unknown key 'Bogus' in [Interface]; did you mean");
  expect_diag(&L, DIAG_ERROR, 7, "[Peer] has no PublicKey");
  unload(&L);
}

/* [Peer] and [Server] QuicStreamWindow / QuicConnWindow: sizes with K/M/G, bounded 64K..1G. */
static void test_quic_windows(void **state) {
  loaded L;
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.2/24\n"
              "[Server]\nQuicStreamWindow = 16M\nQuicConnWindow = 65536\n"
              "[Peer]\nPublicKey = " PUB_B
              "\nAllowedIPs = 0.0.0.0/0\n"
              "QuicStreamWindow = 512k\nQuicConnWindow = 1G\n");
  assert_int_equal(L.c.server_quic_stream_window, 16u << 20);
  assert_int_equal(L.c.server_quic_conn_window, 65536);
  assert_int_equal(L.c.peers[0].quic_stream_window, 512u << 10);
  assert_int_equal(L.c.peers[0].quic_conn_window, 1u << 30);
  assert_true(L.c.peers[0].quic_tunnel_protection); /* QuicProtection's default: tunnel */
  unload(&L);
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
              "\nAddress = 10.0.0.2/24\n"
              "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nQuicProtection = quic\n");
  assert_false(L.c.peers[0].quic_tunnel_protection);
  unload(&L);

  const char *bad[] = {"63K", "2G", "8 MB", "-1", "", "M", "99999999999", "8.5M"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "[Interface]\nPrivateKey = " PRIV_A
             "\nAddress = 10.0.0.2/24\n"
             "[Peer]\nPublicKey = " PUB_B
             "\nAllowedIPs = 0.0.0.0/0\n"
             "QuicStreamWindow = %s\n",
             bad[i]);
    load(&L, text);
    assert_int_equal(L.rc, -1);
    expect_diag(&L, DIAG_ERROR, 7, "is not a window size");
    unload(&L);
  }
}

/* Where the client sends QUIC by default: the .1 of its IPv4 prefix, else ::1 of its IPv6 one. */
static void quic_server_is(const char *address, const char *want) {
  loaded L;
  char text[512];
  snprintf(text, sizeof text,
           "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = %s\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0, ::/0\n",
           address);
  load_ok(&L, text);
  cfg_ip ip;
  uint16_t port;
  bool ok = config_quic_server(&L.c, &L.c.peers[0], &ip, &port);
  if (!want) {
    assert_false(ok);
  } else {
    char got[INET6_ADDRSTRLEN];
    assert_true(ok);
    inet_ntop(ip.family, ip.addr, got, sizeof got);
    assert_string_equal(got, want);
    assert_int_equal(port, 443);
  }
  unload(&L);
}

static void test_quic_server_guess(void **state) {
  quic_server_is("10.8.0.2/24", "10.8.0.1");
  quic_server_is("10.8.0.2/32", "10.8.0.1");
  quic_server_is("10.8.0.1/24", NULL);
  quic_server_is("fd00:1::2/64", "fd00:1::1");
  quic_server_is("fd00:1:0:0:5::7/128", "fd00:1::1");
  quic_server_is("fd00:1::1/64", NULL);
  quic_server_is("fd00:1::2/64, 10.8.0.2/24", "10.8.0.1");
}

static void test_whole_file_errors(void **state) {
  loaded L;
  load(&L, "");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 0, "has no PrivateKey");
  expect_diag(&L, DIAG_ERROR, 0, "has no Address");
  unload(&L);
}

static void test_validation_points_at_parameter(void **state) {
  loaded L;
  load(&L,
       "[Interface]\n"
       "PrivateKey = " PRIV_A
       "\n"
       "Address = 10.0.0.2/32\n"
       "Jmax = 10\n"
       "Jc = 5\n"
       "Jmin = 20\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 6, "Jmin = 20 is greater than Jmax = 10");
  unload(&L);
  load(&L,
       "[Interface]\n"
       "PrivateKey = " PRIV_A
       "\n"
       "Address = 10.0.0.2/32\n"
       "H4 = 3\n");
  expect_diag(&L, DIAG_ERROR, 4, "H3 (3) and H4 (3) overlap");
  unload(&L);
}

static void test_warnings_keep_config_valid(void **state) {
  loaded L;
  load_ok(&L,
          "[Interface]\n"
          "PrivateKey = " PRIV_A
          "\n"
          "Address = 10.0.0.2/32\n"
          "PostUp = echo hi\n"
          "PostUp = echo again\n"
          "DNS = example.com\n"
          "S2 = 1400\n");
  assert_int_equal(L.d.warnings, 4);
  expect_diag(&L, DIAG_WARNING, 4, "PostUp is a wg-quick setting");
  expect_diag(&L, DIAG_WARNING, 5, "PostUp is a wg-quick setting");
  expect_diag(&L, DIAG_WARNING, 6, "DNS entry 'example.com'");
  expect_diag(&L, DIAG_WARNING, 7, "S2 = 1400 makes handshake responses 1492 bytes");
  unload(&L);
}

static void test_nul_byte(void **state) {
  static const char text[] = "[Interface]\nPrivateKey = " PRIV_A "\nAddr\0ess = 10.0.0.2/32\n";
  loaded L;
  load_len(&L, text, sizeof text - 1);
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 3, "NUL byte");
  unload(&L);
}

static void test_duplicate_section(void **state) {
  loaded L;
  load(&L,
       "[Interface]\n"
       "PrivateKey = " PRIV_A
       "\n"
       "Address = 10.0.0.2/32\n"
       "[Log]\n"
       "[Interface]\n"
       "MTU = 1300\n"
       "[Log]\n"
       "Level = info\n");
  assert_int_equal(L.rc, -1);
  expect_diag(&L, DIAG_ERROR, 5, "section [Interface] appears twice (first at line 1)");
  expect_diag(&L, DIAG_ERROR, 7, "section [Log] appears twice (first at line 4)");
  assert_int_equal(L.d.errors, 2); /* the keys in the repeats are not blamed again */
  unload(&L);
}

static void test_buffer_not_modified(void **state) {
  char text[] = "[Interface]\nPrivateKey = " PRIV_A " # c\nAddress = 10.0.0.2/32\n";
  char copy[sizeof text];
  memcpy(copy, text, sizeof text);
  loaded L;
  load_ok(&L, text);
  assert_memory_equal(text, copy, sizeof text);
  unload(&L);
}

/* ---- cfg_parse_cidr ----------------------------------------------------------------------------
 */

static void cidr_ok(const char *in, const char *want, int family) {
  cfg_cidr c;
  char err[256] = "";
  if (cfg_parse_cidr(in, &c, err, sizeof err) != 0) fail_msg("'%s' rejected: %s", in, err);
  assert_int_equal(c.family, family);
  assert_cidr(&c, want);
}

static void cidr_bad(const char *in, const char *part) {
  cfg_cidr c;
  char err[256] = "";
  if (cfg_parse_cidr(in, &c, err, sizeof err) == 0) fail_msg("'%s' accepted", in);
  if (!strstr(err, part)) fail_msg("'%s': message \"%s\" lacks \"%s\"", in, err, part);
}

static void test_parse_cidr(void **state) {
  cidr_ok("10.1.2.3/8", "10.0.0.0/8", AF_INET);
  cidr_ok("10.1.2.3/32", "10.1.2.3/32", AF_INET);
  cidr_ok("10.1.2.3", "10.1.2.3/32", AF_INET); /* no prefix: a host */
  cidr_ok("10.1.2.255/31", "10.1.2.254/31", AF_INET);
  cidr_ok("10.1.2.255/25", "10.1.2.128/25", AF_INET);
  cidr_ok("255.255.255.255/1", "128.0.0.0/1", AF_INET);
  cidr_ok("1.2.3.4/0", "0.0.0.0/0", AF_INET);
  cidr_ok("0.0.0.0/0", "0.0.0.0/0", AF_INET);
  cidr_ok("1.2.3.4/008", "1.0.0.0/8", AF_INET);
  cidr_ok("::/0", "::/0", AF_INET6);
  cidr_ok("::1", "::1/128", AF_INET6);
  cidr_ok("fd00::1234:5678/64", "fd00::/64", AF_INET6);
  cidr_ok("fd00:ffff::/17", "fd00:8000::/17", AF_INET6);
  cidr_ok("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/127",
          "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe/127", AF_INET6);
  cidr_ok("::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128", AF_INET6);

  cidr_bad("", "is not an IPv4 or IPv6 address");
  cidr_bad("/8", "is not an IPv4 or IPv6 address");
  cidr_bad("1.2.3", "'1.2.3' is not an IPv4 or IPv6 address");
  cidr_bad("1.2.3.256/8", "is not an IPv4");
  cidr_bad("example.com/8", "is not an IPv4");
  cidr_bad(" 1.2.3.4/8", "is not an IPv4");
  cidr_bad("1.2.3.4/", "prefix length in '1.2.3.4/': is empty");
  cidr_bad("1.2.3.4/33", "33 is out of range; allowed: 0 to 32");
  cidr_bad("1.2.3.4/-1", "is not a whole number");
  cidr_bad("1.2.3.4/+8", "is not a whole number");
  cidr_bad("1.2.3.4/8/8", "is not a whole number");
  cidr_bad("1.2.3.4/ 8", "is not a whole number");
  cidr_bad("1.2.3.4/99999999999999999999999", "too large");
  cidr_bad("::/129", "129 is out of range; allowed: 0 to 128");
  cidr_bad("fe80::1%eth0/64", "is not an IPv4 or IPv6 address");
  cidr_bad("1111:2222:3333:4444:5555:6666:7777:8888:9999/64", "is not an IPv4");
  cidr_bad("0000000000000000000000000000000000000000000000000000000000000000000/1", "too long");
}

static void test_parse_address_keeps_host(void **state) {
  /* Address lines go through the same parser without masking; check via a config. */
  loaded L;
  load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.1.2.3/8, fd00::5/64\n");
  assert_cidr(&L.c.addresses[0], "10.1.2.3/8");
  assert_cidr(&L.c.addresses[1], "fd00::5/64");
  unload(&L);
}

/* ---- cfg_parse_hostport ------------------------------------------------------------------------
 */

static void hp_ok(const char *in, const char *host, uint16_t port, bool is_ip) {
  cfg_hostport h;
  char err[256] = "";
  if (cfg_parse_hostport(in, &h, err, sizeof err) != 0) fail_msg("'%s' rejected: %s", in, err);
  assert_hostport(&h, host, port, is_ip);
  /* Formatting gives back a parseable form. */
  char buf[300];
  cfg_format_hostport(&h, buf, sizeof buf);
  cfg_hostport again;
  if (cfg_parse_hostport(buf, &again, err, sizeof err) != 0)
    fail_msg("'%s' formatted as '%s', which is rejected: %s", in, buf, err);
  assert_hostport(&again, host, port, is_ip);
}

static void hp_bad(const char *in, const char *part) {
  cfg_hostport h;
  char err[256] = "";
  if (cfg_parse_hostport(in, &h, err, sizeof err) == 0) fail_msg("'%s' accepted", in);
  if (!strstr(err, part)) fail_msg("'%s': message \"%s\" lacks \"%s\"", in, err, part);
}

static void test_parse_hostport(void **state) {
  hp_ok("192.0.2.1:51820", "192.0.2.1", 51820, true);
  hp_ok("0.0.0.0:1", "0.0.0.0", 1, true);
  hp_ok("[2001:db8::1]:443", "2001:db8::1", 443, true);
  hp_ok("[::1]:65535", "::1", 65535, true);
  hp_ok("[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80, true);
  hp_ok("vpn.example.com:51820", "vpn.example.com", 51820, false);
  hp_ok("localhost:1080", "localhost", 1080, false);
  hp_ok("my-host_1.example:8", "my-host_1.example", 8, false);
  hp_ok("example.com.:53", "example.com.", 53, false);
  hp_ok("1host.example:53", "1host.example", 53, false);
  hp_ok("192.0.2.1:00080", "192.0.2.1", 80, true);

  hp_bad("", "has no port");
  hp_bad("vpn.example.com", "'vpn.example.com' has no port");
  hp_bad("vpn.example.com:", "port in 'vpn.example.com:': is empty");
  hp_bad(":51820", "has an empty or overlong host");
  hp_bad("host:0", "0 is out of range; allowed: 1 to 65535");
  hp_bad("host:65536", "65536 is out of range");
  hp_bad("host:-1", "is not a whole number");
  hp_bad("host:80a", "is not a whole number");
  hp_bad("host: 80", "is not a whole number");
  hp_bad("2001:db8::1:51820", "put an IPv6 address in brackets");
  hp_bad("::1", "put an IPv6 address in brackets");
  hp_bad("[2001:db8::1]", "an IPv6 endpoint is written [address]:port");
  hp_bad("[2001:db8::1]51820", "an IPv6 endpoint is written [address]:port");
  hp_bad("[2001:db8::1:51820", "an IPv6 endpoint is written [address]:port");
  hp_bad("[]:80", "has an empty or overlong host");
  hp_bad("[192.0.2.1]:80", "'192.0.2.1' in brackets is not an IPv6 address");
  hp_bad("[vpn.example.com]:80", "in brackets is not an IPv6 address");
  hp_bad("[::1]:0", "0 is out of range");
  hp_bad("vpn..example.com:80", "is neither an IP address nor a valid host name");
  hp_bad(".example.com:80", "nor a valid host name");
  hp_bad("host name:80", "nor a valid host name");
  hp_bad("h\xc3\xa9llo.example:80", "nor a valid host name");
  hp_bad("192.0.2.300:80", "'192.0.2.300' is neither an IP address nor a valid host name");
  hp_bad("1.2.3:80", "nor a valid host name");
  hp_bad("12345:80", "nor a valid host name");

  char label[80], host63[80], overlong[300];
  memset(label, 'a', 64);
  snprintf(label + 64, sizeof label - 64, ".com:80");
  hp_bad(label, "nor a valid host name"); /* a 64-character label */
  memset(label, 'a', 63);
  snprintf(label + 63, sizeof label - 63, ".com:80");
  memset(host63, 'a', 63);
  snprintf(host63 + 63, sizeof host63 - 63, ".com");
  hp_ok(label, host63, 80, false); /* 63 is the maximum */
  memset(overlong, 'a', 254);
  for (int i = 50; i < 254; i += 50) overlong[i] = '.';
  snprintf(overlong + 254, sizeof overlong - 254, ":80");
  hp_bad(overlong, "has an empty or overlong host");
  overlong[253] = ':';
  snprintf(overlong + 254, sizeof overlong - 254, "80");
  cfg_hostport h;
  char err[256];
  assert_int_equal(cfg_parse_hostport(overlong, &h, err, sizeof err), 0); /* 253 is the maximum */
  assert_int_equal(strlen(h.host), 253);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config),
      cmocka_unit_test(test_minimal_defaults),
      cmocka_unit_test(test_quic_windows),
      cmocka_unit_test(test_quic_server_guess),
      cmocka_unit_test(test_explicit_mtu),
      cmocka_unit_test(test_case_insensitive_names),
      cmocka_unit_test(test_comments),
      cmocka_unit_test(test_port_hopping_keys),
      cmocka_unit_test(test_tls_carrier_keys),
      cmocka_unit_test(test_crlf),
      cmocka_unit_test(test_bom),
      cmocka_unit_test(test_no_final_newline),
      cmocka_unit_test(test_address_lines_append),
      cmocka_unit_test(test_whitespace_around_values),
      cmocka_unit_test(test_errors_have_lines),
      cmocka_unit_test(test_whole_file_errors),
      cmocka_unit_test(test_validation_points_at_parameter),
      cmocka_unit_test(test_warnings_keep_config_valid),
      cmocka_unit_test(test_nul_byte),
      cmocka_unit_test(test_duplicate_section),
      cmocka_unit_test(test_buffer_not_modified),
      cmocka_unit_test(test_parse_cidr),
      cmocka_unit_test(test_parse_address_keeps_host),
      cmocka_unit_test(test_parse_hostport),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
