/* Inbound checksums of the tunnel's IP stack (device/ipstack.h): verified by default, so a SYN
 * with a wrong TCP checksum gets no answer; skipped while the peers are trusted
 * (ipstack_trust_peers, a client whose server is awgproxy) or for good (ipstack_trust_inbound,
 * a server), so the same SYN is answered; checked again once the trust is withdrawn. Outbound
 * checksums are always right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include "device/ipstack.h"
#include "lwip/tcp.h"
#include "util/loop_turn.h"

static const uint8_t HERE[4] = {10, 9, 0, 1}, PEER[4] = {10, 9, 0, 2};
#define PORT 8080

static size_t n_out;
static uint8_t last_out[128];

static void on_output(void *ctx, const uint8_t *data, size_t len) {
  (void)ctx;
  n_out++;
  memcpy(last_out, data, len < sizeof last_out ? len : sizeof last_out);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  (void)arg, (void)err;
  tcp_abort(pcb);
  return ERR_ABRT;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) s += (uint32_t)p[n - 1] << 8;
  return s;
}

static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

/* A SYN from PEER:sport to HERE:PORT, with its checksums right, or the TCP one off by one. */
static size_t syn(uint8_t *pkt, uint16_t sport, bool bad_tcp_sum) {
  memset(pkt, 0, 40);
  pkt[0] = 0x45;
  pkt[3] = 40;
  pkt[8] = 64;
  pkt[9] = 6;
  memcpy(pkt + 12, PEER, 4);
  memcpy(pkt + 16, HERE, 4);
  uint16_t ipsum = fold(sum16(pkt, 20, 0));
  pkt[10] = (uint8_t)(ipsum >> 8), pkt[11] = (uint8_t)ipsum;
  uint8_t *t = pkt + 20;
  t[0] = (uint8_t)(sport >> 8), t[1] = (uint8_t)sport;
  t[2] = PORT >> 8, t[3] = PORT & 0xff;
  t[7] = 1;       /* seq 1 */
  t[12] = 5 << 4; /* header length */
  t[13] = 0x02;   /* SYN */
  t[14] = 0xff, t[15] = 0xff;
  uint32_t s = sum16(pkt + 12, 8, 0) + 6 + 20; /* pseudo-header */
  uint16_t tsum = fold(sum16(t, 20, s));
  if (bad_tcp_sum) tsum ^= 1;
  t[16] = (uint8_t)(tsum >> 8), t[17] = (uint8_t)tsum;
  return 40;
}

/* Whether the stack answered a SYN (its SYN-ACK, or anything) within a few loop turns. */
static bool answered(uv_loop_t *loop, ipstack *ip, uint16_t sport, bool bad) {
  uint8_t pkt[40];
  size_t before = n_out;
  ipstack_input(ip, pkt, syn(pkt, sport, bad));
  for (int i = 0; i < 5; i++) uv_run(loop, UV_RUN_NOWAIT);
  return n_out > before;
}

static void test_checksum_trust(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(loop_turn_start(&loop), 0);
  cfg_cidr addr = {.family = AF_INET, .prefix = 24};
  memcpy(addr.addr, HERE, 4);
  char err[200];
  ipstack *ip = ipstack_create(&loop, &addr, 1, 1420, on_output, NULL, err, sizeof err);
  assert_non_null(ip);
  struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
  ip_addr_t a;
  ipstack_ip_from_bytes(&a, AF_INET, HERE);
  assert_int_equal(tcp_bind(pcb, &a, PORT), ERR_OK);
  struct tcp_pcb *l = tcp_listen_with_backlog(pcb, 8);
  assert_non_null(l);
  tcp_accept(l, on_accept);

  assert_true(answered(&loop, ip, 1001, false)); /* a good SYN is answered */
  /* its SYN-ACK carries a right TCP checksum (pseudo-header + segment folds to 0) */
  size_t tcp_len = ((size_t)last_out[2] << 8 | last_out[3]) - 20;
  assert_true(tcp_len >= 20 && 20 + tcp_len <= sizeof last_out);
  assert_int_equal(
      fold(sum16(last_out + 20, tcp_len, sum16(last_out + 12, 8, 0) + 6 + (uint32_t)tcp_len)), 0);
  assert_false(answered(&loop, ip, 1002, true)); /* a bad one is dropped */
  ipstack_trust_peers(ip, true);
  assert_true(answered(&loop, ip, 1003, true)); /* trusted: not checked */
  ipstack_trust_peers(ip, false);
  assert_false(answered(&loop, ip, 1004, true)); /* checked again */
  ipstack_trust_inbound(ip);
  assert_true(answered(&loop, ip, 1005, true));
  ipstack_trust_peers(ip, false); /* the server's trust is not withdrawn by the peers' */
  assert_true(answered(&loop, ip, 1006, true));

  tcp_close(l);
  ipstack_destroy(ip);
  loop_turn_stop();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checksum_trust),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
