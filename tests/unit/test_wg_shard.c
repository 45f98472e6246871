/* A server sharded across workers (src/wg/shard.h): receiver indices stay in the worker's shard,
 * an initiation from another worker's peer is refused before any state changes (so the owner
 * can take the very same message), and seeded cookie checkers in two workers agree. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <netinet/in.h>
#include <sys/socket.h>

#include "det_rng.h"
#include "device/tunnel_handoff.h"
#include "util/bytes.h"
#include "wg/cookie.h"
#include "wg/messages.h"
#include "wg/shard.h"
#include "wg_pair.h"

static void test_indices_stay_in_shard(void **state) {
  (void)state;
  det_rng rng;
  det_rng_init(&rng, 9);
  static wg_index_entry entries[3000];
  for (unsigned shards = 2; shards <= 5; shards++) {
    for (unsigned shard = 0; shard < shards; shard++) {
      wg_index_table t;
      wg_index_table_init(&t);
      wg_index_table_set_shard(&t, shard, shards);
      for (size_t i = 0; i < 600; i++) {
        wg_index_entry *e = &entries[i];
        memset(e, 0, sizeof *e);
        e->kind = WG_INDEX_KEYPAIR;
        uint32_t idx = wg_index_insert(&t, e, &rng.rng);
        assert_int_equal(wg_shard_of_index(idx, shards), shard);
        assert_ptr_equal(wg_index_lookup(&t, idx, WG_INDEX_KEYPAIR), e);
      }
      assert_int_equal(t.count, 600);
    }
  }
  /* Not sharded: any index, shard 0 of 1 everywhere. */
  assert_int_equal(wg_shard_of_index(0xfffffffeu, 1), 0);
  uint8_t key[32] = {7, 0, 0, 0};
  assert_int_equal(wg_shard_of_key(key, 1), 0);
  assert_int_equal(wg_shard_of_key(key, 4), 3);
  assert_int_equal(wg_shard_of_key(key, 7), 0);
}

/* B runs as shard `other` of 2 while A's key maps to the other shard: refused, nothing consumed;
 * as the owner, B accepts the same message. */
static void test_initiation_for_another_shard(void **state) {
  (void)state;
  wg_pair p;
  uint8_t init[WG_MSG_INIT_LEN];
  wg_peer *got = (wg_peer *)1;
  wg_pair_init(&p, NULL, NULL);
  unsigned owner = wg_shard_of_key(p.a.keys.pub, 2);
  wg_device_set_shard(&p.b, 1 - owner, 2);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(
      wg_device_consume_initiation(&p.b, init, sizeof init, p.src_a, 6, false, p.now, &got),
      WG_ERR_OTHER_SHARD);
  assert_null(got);
  assert_int_equal(p.b.other_shard, owner);
  wg_device_set_shard(&p.b, owner, 2);
  assert_int_equal(
      wg_device_consume_initiation(&p.b, init, sizeof init, p.src_a, 6, false, p.now, &got), WG_OK);
  assert_ptr_equal(got, &p.b_a);
  wg_pair_free(&p);
}

/* A cookie handed out by one worker opens mac2 at the other, within the same 120 s epoch; a
 * checker with another seed (or none) does not accept it. */
static void test_seeded_cookies_agree(void **state) {
  (void)state;
  det_rng rng;
  det_rng_init(&rng, 4);
  uint8_t priv[32], seed[32], msg[WG_MSG_INIT_LEN], reply[WG_MSG_COOKIE_LEN];
  static const uint8_t src[6] = {192, 0, 2, 7, 0x10, 0x20};
  memset(priv, 0x42, sizeof priv);
  memset(seed, 0x5a, sizeof seed);
  wg_device_keys server;
  wg_device_keys_init(&server, priv);
  wg_cookie_checker w0, w1, other;
  wg_cookie_checker_init(&w0, &rng.rng);
  wg_cookie_checker_init(&w1, &rng.rng);
  wg_cookie_checker_init(&other, &rng.rng);
  wg_cookie_checker_set_seed(&w0, seed);
  wg_cookie_checker_set_seed(&w1, seed);
  seed[0] ^= 1;
  wg_cookie_checker_set_seed(&other, seed);
  wg_cookie_maker maker;
  wg_cookie_maker_init(&maker, server.pub);
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)i;
  uint64_t now = 1000 * WG_NS_PER_SEC;
  wg_cookie_add_macs(&maker, msg, sizeof msg, now);
  assert_int_equal(wg_cookie_check(&w0, &server, msg, sizeof msg, src, 6, true, now),
                   WG_ERR_NEED_COOKIE);
  assert_int_equal(wg_cookie_create_reply(&w0, &server, 3, msg, sizeof msg, src, 6, now, reply),
                   WG_OK);
  assert_int_equal(wg_cookie_consume_reply(&maker, reply, sizeof reply, now), WG_OK);
  now += WG_NS_PER_SEC;
  wg_cookie_add_macs(&maker, msg, sizeof msg, now);
  assert_int_equal(wg_cookie_check(&w1, &server, msg, sizeof msg, src, 6, true, now), WG_OK);
  assert_int_equal(wg_cookie_check(&w0, &server, msg, sizeof msg, src, 6, true, now), WG_OK);
  assert_int_equal(wg_cookie_check(&other, &server, msg, sizeof msg, src, 6, true, now),
                   WG_ERR_NEED_COOKIE);
  /* The next epoch has another secret, in every worker alike. */
  now += WG_COOKIE_SECRET_MAX_AGE;
  assert_int_equal(wg_cookie_check(&w1, &server, msg, sizeof msg, src, 6, true, now),
                   WG_ERR_NEED_COOKIE);
  wg_cookie_checker_wipe(&w0);
  wg_cookie_checker_wipe(&w1);
  wg_cookie_checker_wipe(&other);
}

/* The record a worker hands a datagram over in: encoded, parsed back; malformed ones refused. */
static void test_handoff_record(void **state) {
  (void)state;
  uint8_t buf[TUN_HANDOFF_HEADER + sizeof(struct sockaddr_in6) + 40];
  uint8_t msg[40];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 7);
  tun_handoff h = {
      .kind = AWG_MSG_TRANSPORT, .bare = true, .wire_len = 63, .msg = msg, .len = sizeof msg};
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)&h.from.ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(51820);
  h.from.len = sizeof *a;
  h.from.sock = 7; /* came in on the server's 7th extra port (port hopping) */
  tun_handoff_header(&h, buf);
  memcpy(buf + TUN_HANDOFF_HEADER, a, sizeof *a);
  memcpy(buf + TUN_HANDOFF_HEADER + sizeof *a, msg, sizeof msg);
  tun_handoff got;
  assert_int_equal(tun_handoff_parse(buf, sizeof buf, &got), 0);
  assert_int_equal(got.kind, AWG_MSG_TRANSPORT);
  assert_true(got.bare);
  assert_int_equal(got.wire_len, 63);
  assert_int_equal(got.len, sizeof msg);
  assert_memory_equal(got.msg, msg, sizeof msg);
  assert_int_equal(got.from.len, sizeof *a);
  assert_memory_equal(&got.from.ss, a, sizeof *a);
  assert_int_equal(got.from.sock, 7);
  /* Short, unknown kind, an address of the wrong size for its family. */
  assert_int_equal(tun_handoff_parse(buf, TUN_HANDOFF_HEADER + 10, &got), -1);
  buf[0] = 9;
  assert_int_equal(tun_handoff_parse(buf, sizeof buf, &got), -1);
  buf[0] = AWG_MSG_TRANSPORT;
  buf[3] = sizeof(struct sockaddr_in);
  assert_int_equal(tun_handoff_parse(buf, sizeof buf, &got), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_indices_stay_in_shard),
      cmocka_unit_test(test_initiation_for_another_shard),
      cmocka_unit_test(test_seeded_cookies_agree),
      cmocka_unit_test(test_handoff_record),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
