/* The config keys of the tunnel's transports, loaded with config_load_buffer: port hopping
 * (ExtraPorts, EndpointPorts, HopInterval), the TLS carrier ([Server] Tls*, [Peer] Carrier and
 * TlsEndpoint), QUIC flow-control windows and protection, and where a client sends QUIC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "config/config.h"
#include "config_fixture.h"

#define PRIV_A "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
#define PUB_B "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="
#define PUB_C "Oc0QUC+UmfrEGX7aIy1VRgKI6f7J0IhSrNfAOLZCKwI="
#define PUB_D "VqRGsC5fM0kyEjPLqzltyJtH5mwGZv6vDB44Bpf9xms="

/* Port hopping: ranges and lists, the ListenPort left out of ExtraPorts, HopInterval's default,
 * and what needs another key. */
static void test_port_hopping_keys(void **state) {
  (void)state;
  cfx_loaded L;
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
                  "\nAddress = 10.0.0.1/24\nListenPort = 20000\n"
                  "[Server]\nExtraPorts = 20000-20009, 30000\n");
  assert_int_equal(cfg_port_ranges_count(&L.c.extra_ports), 11);
  uint16_t ports[CFG_EXTRA_PORTS_MAX];
  assert_int_equal(cfg_extra_port_list(&L.c, ports, CFG_EXTRA_PORTS_MAX), 10); /* not 20000 */
  assert_int_equal(ports[0], 20001);
  assert_int_equal(ports[9], 30000);
  cfx_unload(&L);

  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
                  "\nAddress = 10.0.0.2/32\n"
                  "[Peer]\nPublicKey = " PUB_B
                  "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.0.2.1:20000\n"
                  "EndpointPorts = 20000-20099\n");
  assert_int_equal(cfg_port_ranges_count(&L.c.peers[0].endpoint_ports), 100);
  assert_int_equal(L.c.peers[0].hop_min, 30);
  assert_int_equal(L.c.peers[0].hop_max, 60);
  cfx_unload(&L);

  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
                  "\nAddress = 10.0.0.2/32\n"
                  "[Peer]\nPublicKey = " PUB_B
                  "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.0.2.1:20000\n"
                  "HopInterval = 5\nEndpointPorts = 20000-20001\n");
  assert_int_equal(L.c.peers[0].hop_min, 5); /* set before EndpointPorts: kept */
  assert_int_equal(L.c.peers[0].hop_max, 5);
  cfx_unload(&L);

  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.2/32\n"
               "[Peer]\nPublicKey = " PUB_B
               "\nAllowedIPs = 0.0.0.0/0\n"
               "EndpointPorts = 20000-20099\nHopInterval = 60-30\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 8, "HopInterval: range 60-30 ends before it starts");
  cfx_unload(&L);

  cfx_load(&L,
           "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.2/32\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nEndpointPorts = 20000-20099\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 4, "EndpointPorts needs an Endpoint");
  cfx_unload(&L);

  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.2/32\n"
               "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nHopInterval = 30-60\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 4, "HopInterval is set but EndpointPorts is not");
  cfx_unload(&L);

  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.1/24\nListenPort = 1000\n"
               "[Server]\nExtraPorts = 20000-29999\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 6, "ExtraPorts: holds 10000 ports; at most 256");
  cfx_unload(&L);

  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.1/24\n"
               "[Server]\nExtraPorts = 20000-20001, 0\n");
  assert_int_equal(L.rc, -1);
  cfx_unload(&L);
}

static void test_tls_carrier_keys(void **state) {
  (void)state;
  cfx_loaded L;
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
                  "\nAddress = 10.0.0.1/24\nListenPort = 51820\n"
                  "[Server]\nTlsListen = 0.0.0.0:443, [::]:8443\nTlsName = www.example.org\n"
                  "TlsDecoy = /srv/site\n");
  assert_int_equal(L.c.n_tls_listen, 2);
  assert_int_equal(L.c.tls_listen[1].port, 8443);
  assert_string_equal(L.c.tls_name, "www.example.org");
  assert_string_equal(L.c.tls_decoy, "/srv/site");
  assert_false(L.c.has_tls_decoy_upstream);
  cfx_unload(&L);
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
                  "\nAddress = 10.0.0.1/24\nListenPort = 51820\n"
                  "[Server]\nTlsListen = 0.0.0.0:443\nTlsDecoyUpstream = www.example.org:8080\n");
  assert_true(L.c.has_tls_decoy_upstream);
  assert_string_equal(L.c.tls_decoy_upstream.host, "www.example.org");
  assert_int_equal(L.c.tls_decoy_upstream.port, 8080);
  cfx_unload(&L);
  cfx_load(&L,
           "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = 10.0.0.1/24\n"
           "[Server]\nTlsListen = 0.0.0.0:443\nTlsDecoy = /srv\nTlsDecoyUpstream = 127.0.0.1:80\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 0, "TlsDecoy and TlsDecoyUpstream both set");
  cfx_unload(&L);

  /* A client: auto by default with a TlsEndpoint, udp without; tls and the rest as written. */
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
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
  cfx_unload(&L);

  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.2/32\n"
               "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nCarrier = tls\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 4, "Carrier = tls needs TlsEndpoint");
  cfx_unload(&L);
  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.2/32\n"
               "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nCarrier = quic\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 7, "'quic' is not a carrier; use auto, udp or tls");
  cfx_unload(&L);
  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.1/24\n"
               "[Server]\nTlsListen = example.org:443\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 5, "must be an IP address and port");
  cfx_unload(&L);
  cfx_load(&L, "[Interface]\nPrivateKey = " PRIV_A
               "\nAddress = 10.0.0.1/24\n"
               "[Server]\nTlsListen = 0.0.0.0:443\nTlsCert = /etc/cert.pem\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 0, "TlsCert and TlsKey go together");
  cfx_unload(&L);
  cfx_load(
      &L,
      "[Interface]\nPrivateKey = " PRIV_A
      "\nAddress = 10.0.0.1/24\n"
      "[Server]\nTlsListen = 1.1.1.1:1, 1.1.1.1:2, 1.1.1.1:3\nTlsListen = 1.1.1.1:4, 1.1.1.1:5\n");
  assert_int_equal(L.rc, -1);
  cfx_expect_diag(&L, DIAG_ERROR, 6, "more than 4 TlsListen addresses");
  cfx_unload(&L);
}

/* [Peer] and [Server] QuicStreamWindow / QuicConnWindow: sizes with K/M/G, bounded 64K..1G. */
static void test_quic_windows(void **state) {
  cfx_loaded L;
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
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
  cfx_unload(&L);
  cfx_load_ok(&L, "[Interface]\nPrivateKey = " PRIV_A
                  "\nAddress = 10.0.0.2/24\n"
                  "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0\nQuicProtection = quic\n");
  assert_false(L.c.peers[0].quic_tunnel_protection);
  cfx_unload(&L);

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
    cfx_load(&L, text);
    assert_int_equal(L.rc, -1);
    cfx_expect_diag(&L, DIAG_ERROR, 7, "is not a window size");
    cfx_unload(&L);
  }
}

/* Where the client sends QUIC by default: the .1 of its IPv4 prefix, else ::1 of its IPv6 one. */
static void quic_server_is(const char *address, const char *want) {
  cfx_loaded L;
  char text[512];
  snprintf(text, sizeof text,
           "[Interface]\nPrivateKey = " PRIV_A
           "\nAddress = %s\n"
           "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 0.0.0.0/0, ::/0\n",
           address);
  cfx_load_ok(&L, text);
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
  cfx_unload(&L);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quic_windows),
      cmocka_unit_test(test_quic_server_guess),
      cmocka_unit_test(test_port_hopping_keys),
      cmocka_unit_test(test_tls_carrier_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
