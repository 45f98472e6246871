/* The config loader, called directly: config_load_buffer on whole files (values, defaults, syntax
 * variants, diagnostics with line numbers). The transport keys are in test_config_transport.c,
 * the address parsers in test_config_addresses.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>

#include "awg/itag.h"
#include "config/config.h"
#include "config_fixture.h"

#define PRIV_A "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
#define PUB_A "f+2up9Y6JpDbknlpCXSOhoOawuhaX718ejV2QsrxxV8="
#define PUB_B "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="
#define PUB_C "Oc0QUC+UmfrEGX7aIy1VRgKI6f7J0IhSrNfAOLZCKwI="
#define PUB_D "VqRGsC5fM0kyEjPLqzltyJtH5mwGZv6vDB44Bpf9xms="
#define PSK "GH6EpssP4GaWAj8TRLKwhKIpAy+h+V1P756aqunzflM="

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
  cfx_loaded L;
  cfx_load_ok(&L, kFull);
  app_config *c = &L.c;
  assert_int_equal(L.d.warnings, 0);
  assert_string_equal(c->path, "test.conf");

  assert_true(c->has_private_key);
  cfx_assert_key(c->private_key, PRIV_A);
  cfx_assert_key(c->public_key, PUB_A);
  assert_true(c->has_listen_port);
  assert_int_equal(c->listen_port, 51820);

  /* Interface addresses keep their host part. */
  assert_int_equal(c->n_addresses, 2);
  assert_int_equal(c->addresses[0].family, AF_INET);
  cfx_assert_cidr(&c->addresses[0], "10.8.0.2/24");
  assert_int_equal(c->addresses[1].family, AF_INET6);
  cfx_assert_cidr(&c->addresses[1], "fd00:8::2/64");

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
  cfx_assert_key(a->public_key, PUB_B);
  assert_true(a->has_psk);
  cfx_assert_key(a->psk, PSK);
  assert_int_equal(a->n_allowed_ips, 4);              /* two AllowedIPs lines append */
  cfx_assert_cidr(&a->allowed_ips[0], "10.8.0.0/24"); /* host bits cleared, like wg */
  cfx_assert_cidr(&a->allowed_ips[1], "192.168.1.1/32");
  cfx_assert_cidr(&a->allowed_ips[2], "fd00:8::/64");
  cfx_assert_cidr(&a->allowed_ips[3], "0.0.0.0/0");
  assert_true(a->has_endpoint);
  cfx_assert_hostport(&a->endpoint, "192.0.2.1", 51820, true);
  assert_int_equal(a->persistent_keepalive, 25);

  cfx_assert_key(b->public_key, PUB_C);
  assert_false(b->has_psk);
  assert_int_equal(b->n_allowed_ips, 1);
  cfx_assert_cidr(&b->allowed_ips[0], "10.9.0.0/16");
  assert_true(b->has_endpoint);
  cfx_assert_hostport(&b->endpoint, "2001:db8::1", 443, true);
  assert_int_equal(b->persistent_keepalive, 0);

  cfx_assert_key(d->public_key, PUB_D);
  cfx_assert_cidr(&d->allowed_ips[0], "::/0");
  cfx_assert_hostport(&d->endpoint, "vpn.example.com", 65535, false);
  assert_int_equal(d->persistent_keepalive, 0);

  /* [Socks] */
  assert_int_equal(c->n_socks_listen, 2);
  cfx_assert_hostport(&c->socks_listen[0], "127.0.0.1", 1080, true);
  cfx_assert_hostport(&c->socks_listen[1], "::1", 1081, true);
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
  cfx_assert_hostport(&c->forwards[0].listen, "127.0.0.1", 8080, true);
  cfx_assert_hostport(&c->forwards[0].target, "10.8.0.1", 80, true);
  assert_int_equal(c->forwards[1].proto, FWD_UDP);
  cfx_assert_hostport(&c->forwards[1].target, "dns.internal", 53, false);

  /* [Server], [Log] */
  assert_int_equal(c->server_socks_port, 0);
  assert_true(c->has_local_socks);
  cfx_assert_hostport(&c->local_socks, "127.0.0.1", 1081, true);
  assert_int_equal(c->log_level, 3);  /* LOG_DEBUG */
  assert_int_equal(c->log_format, 1); /* LOG_FORMAT_JSON */
  cfx_unload(&L);
}

static void test_minimal_defaults(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\n");
  assert_false(L.c.has_listen_port);
  assert_int_equal(L.c.mtu, 1420);
  assert_false(L.c.mtu_explicit);
  assert_int_equal(L.c.n_peers, 0);
  assert_true(awg_params_is_plain(&L.c.awg));
  /* The default SOCKS listener is filled in. */
  assert_int_equal(L.c.n_socks_listen, 1);
  cfx_assert_hostport(&L.c.socks_listen[0], "127.0.0.1", 1080, true);
  assert_int_equal(L.c.server_socks_port, 1080);
  assert_int_equal(L.c.log_level, -1);
  assert_int_equal(L.c.log_format, -1);
  assert_int_equal(L.d.n, 0);
  cfx_unload(&L);
}

static void test_explicit_mtu(void **state) {
  cfx_loaded L;
  cfx_load_ok(
      &L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\nS4 = 100\nMTU = 1300\n");
  assert_true(L.c.mtu_explicit);
  assert_int_equal(L.c.mtu, 1300);
  assert_int_equal(L.d.warnings, 0);
  cfx_unload(&L);
  /* A large S4 makes the default MTU 1420 - S4. */
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\nS4 = 140\n");
  assert_int_equal(L.c.mtu, 1280);
  cfx_unload(&L);
}

/* ---- syntax variants ------------------------------------------------------------------------ */

static void test_case_insensitive_names(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L,
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
  cfx_assert_key(L.c.peers[0].public_key, PUB_B);
  assert_int_equal(L.c.forwards[0].proto, FWD_UDP);
  cfx_unload(&L);
}

static void test_comments(void **state) {
  cfx_loaded L;
  /* `;` starts a comment only at the beginning of a line (as in wg-quick). */
  cfx_load(&L,
           "[Interface]\n"
           "PrivateKey = " PRIV_A
           "\n"
           "Address = 10.0.0.2/32\n"
           "ListenPort = 51820 ; trailing\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 4, "ListenPort: '51820 ; trailing' is not a whole number");
  cfx_unload(&L);

  cfx_load_ok(&L,
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
  cfx_assert_cidr(&L.c.addresses[0], "10.0.0.2/32");
  assert_int_equal(L.c.n_dns, 0);
  assert_int_equal(awg_itemplate_size(L.c.awg.i[0]), 1);
  cfx_unload(&L);
}

static void test_crlf(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L,
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
  cfx_assert_key(L.c.peers[0].public_key, PUB_B);
  cfx_assert_hostport(&L.c.peers[0].endpoint, "vpn.example.com", 51820, false);
  assert_int_equal(L.c.peers[0].line, 6);
  cfx_unload(&L);
  /* Line numbers stay right with CRLF. */
  cfx_load(&L, "[Interface]\r\nPrivateKey = " PRIV_A "\r\nAddress = 10.0.0.2/32\r\nMTU = x\r\n");
  cfx_expect_diag(&L, DIAG_ERROR, 4, "MTU: 'x' is not a whole number");
  cfx_unload(&L);
}

static void test_bom(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L, "\xEF\xBB\xBF[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\n");
  assert_true(L.c.has_private_key);
  cfx_unload(&L);
  /* A BOM anywhere else is not skipped. */
  cfx_load(&L, "[Interface]\n\xEF\xBB\xBFPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 2, "unknown key");
  cfx_unload(&L);
}

static void test_no_final_newline(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A "\nAddress = 10.0.0.2/32\nMTU = 1300");
  assert_int_equal(L.c.mtu, 1300);
  cfx_unload(&L);
}

static void test_address_lines_append(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L,
              "[Interface]\n"
              "PrivateKey = " PRIV_A
              "\n"
              "Address = 10.0.0.2/32\n"
              "Address = fd00::2/128, 10.1.0.2/16\n"
              "Address = ,, 10.2.0.2/8 ,\n");
  assert_int_equal(L.c.n_addresses, 4);
  cfx_assert_cidr(&L.c.addresses[0], "10.0.0.2/32");
  cfx_assert_cidr(&L.c.addresses[1], "fd00::2/128");
  cfx_assert_cidr(&L.c.addresses[2], "10.1.0.2/16");
  cfx_assert_cidr(&L.c.addresses[3], "10.2.0.2/8");
  cfx_unload(&L);
}

static void test_whitespace_around_values(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L,
              "  [ Interface ]  \n"
              "\tPrivateKey\t=\t" PRIV_A
              "\t\n"
              "Address=10.0.0.2/32\n"
              "ListenPort   =   1234   \n");
  assert_int_equal(L.c.listen_port, 1234);
  cfx_unload(&L);
}

/* ---- diagnostics ----------------------------------------------------------------------------- */

static void test_errors_have_lines(void **state) {
  cfx_loaded L;
  cfx_load(&L,
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
  cfx_expect_diag(&L, DIAG_ERROR, 3, "prefix length in '10.0.0.2/33'");
  cfx_expect_diag(&L, DIAG_ERROR, 4, "Jc: 128 is out of range; allowed: 0 to 127");
  cfx_expect_diag(&L, DIAG_ERROR, 5, "unknown key 'Bogus' in [Interface]; did you mean");
  cfx_expect_diag(&L, DIAG_ERROR, 7, "[Peer] has no PublicKey");
  cfx_unload(&L);
}

static void test_whole_file_errors(void **state) {
  cfx_loaded L;
  cfx_load(&L, "");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 0, "has no PrivateKey");
  cfx_expect_diag(&L, DIAG_ERROR, 0, "has no Address");
  cfx_unload(&L);
}

static void test_validation_points_at_parameter(void **state) {
  cfx_loaded L;
  cfx_load(&L,
           "[Interface]\n"
           "PrivateKey = " PRIV_A
           "\n"
           "Address = 10.0.0.2/32\n"
           "Jmax = 10\n"
           "Jc = 5\n"
           "Jmin = 20\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 6, "Jmin = 20 is greater than Jmax = 10");
  cfx_unload(&L);
  cfx_load(&L,
           "[Interface]\n"
           "PrivateKey = " PRIV_A
           "\n"
           "Address = 10.0.0.2/32\n"
           "H4 = 3\n");
  cfx_expect_diag(&L, DIAG_ERROR, 4, "H3 (3) and H4 (3) overlap");
  cfx_unload(&L);
}

static void test_warnings_keep_config_valid(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L,
              "[Interface]\n"
              "PrivateKey = " PRIV_A
              "\n"
              "Address = 10.0.0.2/32\n"
              "PostUp = echo hi\n"
              "PostUp = echo again\n"
              "DNS = example.com\n"
              "S2 = 1400\n");
  assert_int_equal(L.d.warnings, 4);
  cfx_expect_diag(&L, DIAG_WARNING, 4, "PostUp is a wg-quick setting");
  cfx_expect_diag(&L, DIAG_WARNING, 5, "PostUp is a wg-quick setting");
  cfx_expect_diag(&L, DIAG_WARNING, 6, "DNS entry 'example.com'");
  cfx_expect_diag(&L, DIAG_WARNING, 7, "S2 = 1400 makes handshake responses 1492 bytes");
  cfx_unload(&L);
}

static void test_nul_byte(void **state) {
  static const char text[] = "[Interface]\nPrivateKey = " PRIV_A "\nAddr\0ess = 10.0.0.2/32\n";
  cfx_loaded L;
  cfx_load_len(&L, text, sizeof text - 1);
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 3, "NUL byte");
  cfx_unload(&L);
}

static void test_duplicate_section(void **state) {
  cfx_loaded L;
  cfx_load(&L,
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
  cfx_expect_diag(&L, DIAG_ERROR, 5, "section [Interface] appears twice (first at line 1)");
  cfx_expect_diag(&L, DIAG_ERROR, 7, "section [Log] appears twice (first at line 4)");
  assert_int_equal(L.d.errors, 2); /* the keys in the repeats are not blamed again */
  cfx_unload(&L);
}

static void test_buffer_not_modified(void **state) {
  char text[] = "[Interface]\nPrivateKey = " PRIV_A " # c\nAddress = 10.0.0.2/32\n";
  char copy[sizeof text];
  memcpy(copy, text, sizeof text);
  cfx_loaded L;
  cfx_load_ok(&L, text);
  assert_memory_equal(text, copy, sizeof text);
  cfx_unload(&L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config),
      cmocka_unit_test(test_minimal_defaults),
      cmocka_unit_test(test_explicit_mtu),
      cmocka_unit_test(test_case_insensitive_names),
      cmocka_unit_test(test_comments),
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
