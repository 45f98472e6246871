/* Noise_IKpsk2 handshake and transport between two in-process peers (src/wg/noise, peer,
 * device, keypair): full handshakes with and without psk, arbitrary type values, timestamp
 * replay and flood rules, wrong keys, single-byte corruption of every message. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "wg/device.h"
#include "wg/messages.h"
#include "wg/peer.h"
#include "wg_pair.h"

static const uint8_t PSK[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static const char PING[] = "\x45\x00\x00\x1c pretend this is an IPv4 packet";

static void exchange_both_ways(wg_pair *p) {
  for (int i = 0; i < 5; i++) {
    uint32_t type = 123456u + (uint32_t)i * 1000003u; /* any value, changing per packet */
    assert_int_equal(
        wg_pair_transfer(&p->a_b, &p->b, &p->b_a, type, PING, sizeof PING - (size_t)i, p->now),
        WG_OK);
    assert_int_equal(wg_pair_transfer(&p->b_a, &p->a, &p->a_b, ~type, PING, (size_t)i, p->now),
                     WG_OK);
  }
}

static bool keys_pair_up(wg_aead_ctx *seal, wg_aead_ctx *open) {
  uint8_t msg[sizeof PING + WG_AEAD_TAG_LEN], out[sizeof PING];
  assert_true(wg_aead_ctx_seal(seal, 77, msg, (const uint8_t *)PING, sizeof PING, NULL, 0));
  return wg_aead_ctx_open(open, 77, out, msg, sizeof msg, NULL, 0) &&
         memcmp(out, PING, sizeof PING) == 0;
}

static void handshake_and_transport(const uint8_t *psk) {
  wg_pair p;
  wg_pair_init(&p, psk, NULL);
  wg_pair_handshake(&p, true);
  exchange_both_ways(&p);
  /* The session keys match pairwise (what one side's send context seals, the other side's receive
   * context opens, and not its own send context) and the roles are right. */
  assert_true(keys_pair_up(p.a_b.current->send_aead, p.b_a.current->recv_aead));
  assert_true(keys_pair_up(p.b_a.current->send_aead, p.a_b.current->recv_aead));
  assert_false(keys_pair_up(p.a_b.current->send_aead, p.b_a.current->send_aead));
  assert_true(p.a_b.current->initiator);
  assert_false(p.b_a.current->initiator);
  assert_true(p.a_b.has_handshake && p.b_a.has_handshake);
  wg_pair_free(&p);
}

static void test_handshake_without_psk(void **state) { handshake_and_transport(NULL); }
static void test_handshake_with_psk(void **state) { handshake_and_transport(PSK); }

/* A psk on one side only: the response does not authenticate. */
static void test_psk_mismatch(void **state) {
  wg_pair p;
  uint8_t init[148], resp[92];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  memcpy(p.b_a.hs.psk, PSK, 32);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  assert_int_equal(wg_peer_create_response(&p.b_a, 2, p.now, resp), WG_OK);
  assert_int_equal(wg_device_consume_response(&p.a, resp, 92, p.src_b, 6, false, p.now, &got),
                   WG_ERR_DECRYPT);
  assert_null(p.a_b.current);
  wg_pair_free(&p);
}

/* Rewrite the type field of an initiation and fix mac1 (which covers it): the Noise part still
 * verifies, so the type value is not mixed into the handshake hash. */
static void test_type_not_mixed_into_handshake(void **state) {
  wg_pair p;
  uint8_t init[148];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 100062, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(le32_load(init), 100062);
  le32_store(init, 0xfffffffeu);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_ERR_MAC1);
  wg_cookie_add_macs(&p.a_b.cookie, init, 148, p.now);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  wg_pair_free(&p);
}

/* Transport headers are not authenticated: a different type value still decrypts. */
static void test_transport_type_not_authenticated(void **state) {
  wg_pair p;
  uint8_t buf[256];
  size_t n, pt_len;
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  n = wg_pair_seal(&p.a_b, 4, PING, sizeof PING, p.now, buf, sizeof buf);
  le32_store(buf, 400099);
  assert_int_equal(wg_device_decrypt(&p.b, buf, n, p.now, &got, &pt_len), WG_OK);
  assert_memory_equal(buf + 16, PING, sizeof PING);
  wg_pair_free(&p);
}

static void test_replayed_initiation(void **state) {
  wg_pair p;
  uint8_t init[148], old[148];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, old), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, old, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  p.now += WG_NS_PER_SEC;
  /* The very same message again: its timestamp is not newer. */
  assert_int_equal(wg_device_consume_initiation(&p.b, old, 148, p.src_a, 6, false, p.now, &got),
                   WG_ERR_STALE_TIMESTAMP);
  assert_ptr_equal(got, &p.b_a);
  /* A newer one is accepted; then the older one is stale as well. */
  p.now += 5 * WG_NS_PER_SEC;
  p.wall += 6 * WG_NS_PER_SEC;
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  p.now += WG_NS_PER_SEC;
  assert_int_equal(wg_device_consume_initiation(&p.b, old, 148, p.src_a, 6, false, p.now, &got),
                   WG_ERR_STALE_TIMESTAMP);
  wg_pair_free(&p);
}

static void test_initiation_flood(void **state) {
  wg_pair p;
  uint8_t i1[148], i2[148];
  wg_peer *got;
  wg_tunables tun;
  wg_tunables_default(&tun);
  tun.rekey_timeout = 0; /* let A send back-to-back initiations */
  wg_pair_init(&p, NULL, &tun);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, i1), WG_OK);
  assert_int_equal(
      wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall + 100 * WG_NS_PER_MS, false, i2), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, i1, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  /* Newer timestamp but only 10 ms later: more than 50 per second. */
  assert_int_equal(wg_device_consume_initiation(&p.b, i2, 148, p.src_a, 6, false,
                                                p.now + 10 * WG_NS_PER_MS, &got),
                   WG_ERR_FLOOD);
  assert_int_equal(wg_device_consume_initiation(&p.b, i2, 148, p.src_a, 6, false,
                                                p.now + 20 * WG_NS_PER_MS, &got),
                   WG_OK);
  wg_pair_free(&p);
}

static void test_wrong_static_keys(void **state) {
  wg_pair p;
  det_rng rng;
  wg_device c;
  wg_peer c_b, c_x;
  uint8_t kc[32], kx[32], init[148];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  det_rng_init(&rng, 0xc);
  wg_pair_key(kc, 3);
  wg_pair_key(kx, 4);
  wg_device_init(&c, kc, NULL, &rng.rng);
  /* C knows B's key but B does not know C. */
  assert_int_equal(wg_peer_init(&c_b, &c, p.b.keys.pub, NULL, 0), WG_OK);
  assert_int_equal(wg_peer_create_initiation(&c_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_ERR_UNKNOWN_PEER);
  assert_null(got);
  /* An initiation for another responder key fails mac1 at B. */
  wg_device_keys x;
  wg_device_keys_init(&x, kx);
  assert_int_equal(wg_peer_init(&c_x, &c, x.pub, NULL, 0), WG_OK);
  assert_int_equal(wg_peer_create_initiation(&c_x, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_ERR_MAC1);
  /* ... and, with a valid mac1 forged for B, fails to decrypt. */
  wg_cookie_maker forge;
  wg_cookie_maker_init(&forge, p.b.keys.pub);
  wg_cookie_add_macs(&forge, init, 148, p.now);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_ERR_DECRYPT);
  /* Our own public key, or a low-order point, cannot be a peer. */
  wg_peer bad;
  uint8_t zero[32] = {0};
  assert_int_equal(wg_peer_init(&bad, &c, c.keys.pub, NULL, 0), WG_ERR_BAD_KEY);
  assert_int_equal(wg_peer_init(&bad, &c, zero, NULL, 0), WG_ERR_BAD_KEY);
  wg_peer_remove(&c_b);
  wg_peer_remove(&c_x);
  wg_device_wipe(&c);
  wg_pair_free(&p);
}

/* Every single-byte flip of an initiation is rejected. Under load with a valid cookie held by A,
 * mac2 matters too; without load only bytes before mac2 are covered. */
static void flip_initiation(bool under_load) {
  wg_pair p;
  uint8_t init[148], bad[148], reply[64];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  if (under_load) {
    assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
    assert_int_equal(wg_device_create_cookie_reply(&p.b, 3, init, 148, p.src_a, 6, p.now, reply),
                     WG_OK);
    assert_int_equal(wg_device_consume_cookie_reply(&p.a, reply, 64, p.now, &got), WG_OK);
    p.now += 5 * WG_NS_PER_SEC;
    p.wall += 5 * WG_NS_PER_SEC;
  }
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  size_t covered = under_load ? 148 : WG_INIT_MAC2;
  for (size_t i = 0; i < covered; i++) {
    for (int bit = 0; bit < 8; bit += 7) {
      memcpy(bad, init, sizeof bad);
      bad[i] ^= (uint8_t)(1u << bit);
      wg_result r =
          wg_device_consume_initiation(&p.b, bad, 148, p.src_a, 6, under_load, p.now, &got);
      if (r == WG_OK) fail_msg("flipped byte %zu bit %d accepted", i, bit);
    }
  }
  assert_int_equal(
      wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, under_load, p.now, &got), WG_OK);
  wg_pair_free(&p);
}

static void test_initiation_flips(void **state) { flip_initiation(false); }
static void test_initiation_flips_under_load(void **state) { flip_initiation(true); }

/* Failed responses leave A's handshake intact, so the genuine one still works afterwards. */
static void test_response_flips(void **state) {
  wg_pair p;
  uint8_t init[148], resp[92], bad[92];
  wg_peer *got;
  wg_pair_init(&p, PSK, NULL);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  assert_int_equal(wg_peer_create_response(&p.b_a, 2, p.now, resp), WG_OK);
  for (size_t i = 0; i < WG_RESP_MAC2; i++) {
    memcpy(bad, resp, sizeof bad);
    bad[i] ^= 0x80;
    wg_result r = wg_device_consume_response(&p.a, bad, 92, p.src_b, 6, false, p.now, &got);
    if (r == WG_OK) fail_msg("flipped response byte %zu accepted", i);
  }
  assert_int_equal(wg_device_consume_response(&p.a, resp, 92, p.src_b, 6, false, p.now, &got),
                   WG_OK);
  /* Consumed once: a replay of the response finds no pending handshake. */
  assert_int_equal(wg_device_consume_response(&p.a, resp, 92, p.src_b, 6, false, p.now, &got),
                   WG_ERR_UNKNOWN_INDEX);
  wg_pair_free(&p);
}

static void test_transport_flips_and_replay(void **state) {
  wg_pair p;
  uint8_t msg[256], bad[256];
  size_t n, pt_len;
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  n = wg_pair_seal(&p.a_b, 4, PING, sizeof PING, p.now, msg, sizeof msg);
  for (size_t i = WG_DATA_RECEIVER; i < n; i++) {
    memcpy(bad, msg, n);
    bad[i] ^= 0x01;
    wg_result r = wg_device_decrypt(&p.b, bad, n, p.now, &got, &pt_len);
    if (r == WG_OK) fail_msg("flipped transport byte %zu accepted", i);
    if (i < WG_DATA_COUNTER) assert_int_equal(r, WG_ERR_UNKNOWN_INDEX);
  }
  /* Truncated messages. */
  memcpy(bad, msg, n);
  assert_int_equal(wg_device_decrypt(&p.b, bad, n - 1, p.now, &got, &pt_len), WG_ERR_DECRYPT);
  assert_int_equal(wg_device_decrypt(&p.b, bad, 31, p.now, &got, &pt_len), WG_ERR_SIZE);
  /* Genuine one once, then it is a replay. */
  memcpy(bad, msg, n);
  assert_int_equal(wg_device_decrypt(&p.b, bad, n, p.now, &got, &pt_len), WG_OK);
  memcpy(bad, msg, n);
  assert_int_equal(wg_device_decrypt(&p.b, bad, n, p.now, &got, &pt_len), WG_ERR_REPLAY);
  wg_pair_free(&p);
}

/* Out-of-order delivery within the window works; sessions roll over across handshakes and the
 * previous session still decrypts packets in flight. */
static void test_reordering_and_rotation(void **state) {
  wg_pair p;
  uint8_t m[3][128];
  size_t n[3], pt_len;
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  for (int i = 0; i < 3; i++)
    n[i] = wg_pair_seal(&p.a_b, 4, PING, sizeof PING, p.now, m[i], sizeof m[i]);
  assert_int_equal(wg_device_decrypt(&p.b, m[2], n[2], p.now, &got, &pt_len), WG_OK);
  assert_int_equal(wg_device_decrypt(&p.b, m[0], n[0], p.now, &got, &pt_len), WG_OK);
  /* A packet sealed with the old session, delivered after B initiated a new handshake. */
  n[1] = wg_pair_seal(&p.a_b, 4, PING, sizeof PING, p.now, m[1], sizeof m[1]);
  wg_keypair *old_b = p.b_a.current;
  p.now += 10 * WG_NS_PER_SEC;
  p.wall += 10 * WG_NS_PER_SEC;
  wg_pair_handshake(&p, false); /* B initiates this time */
  assert_ptr_equal(p.b_a.previous, old_b);
  assert_int_equal(wg_device_decrypt(&p.b, m[1], n[1], p.now, &got, &pt_len), WG_OK);
  exchange_both_ways(&p);
  /* A third handshake drops the oldest session: its index is no longer known. */
  n[0] = wg_pair_seal(&p.a_b, 4, PING, sizeof PING, p.now, m[0], sizeof m[0]);
  p.now += 10 * WG_NS_PER_SEC;
  p.wall += 10 * WG_NS_PER_SEC;
  wg_pair_handshake(&p, true);
  p.now += 10 * WG_NS_PER_SEC;
  p.wall += 10 * WG_NS_PER_SEC;
  wg_pair_handshake(&p, true);
  assert_int_equal(wg_device_decrypt(&p.b, m[0], n[0], p.now, &got, &pt_len), WG_ERR_UNKNOWN_INDEX);
  exchange_both_ways(&p);
  /* Never more than three keypairs and one handshake index per peer. */
  assert_true(p.a.index.count <= 4 && p.b.index.count <= 4);
  wg_pair_free(&p);
}

/* The responder cannot send before its session is confirmed by a packet from the initiator. */
static void test_responder_waits_for_confirmation(void **state) {
  wg_pair p;
  uint8_t init[148], resp[92], buf[128];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, false, p.now, &got),
                   WG_OK);
  assert_int_equal(wg_peer_create_response(&p.b_a, 2, p.now, resp), WG_OK);
  assert_non_null(p.b_a.next);
  assert_false(wg_peer_can_send(&p.b_a, p.now));
  assert_int_equal(wg_peer_encrypt(&p.b_a, 4, buf, 0, 0, p.now), WG_ERR_NO_SESSION);
  assert_true(wg_peer_poll(&p.b_a, p.now) & WG_ACT_INITIATE);
  assert_int_equal(wg_device_consume_response(&p.a, resp, 92, p.src_b, 6, false, p.now, &got),
                   WG_OK);
  assert_int_equal(wg_pair_transfer(&p.a_b, &p.b, &p.b_a, 4, PING, 20, p.now), WG_OK);
  assert_true(wg_peer_can_send(&p.b_a, p.now));
  assert_int_equal(wg_pair_transfer(&p.b_a, &p.a, &p.a_b, 4, PING, 20, p.now), WG_OK);
  wg_pair_free(&p);
}

static void test_response_without_initiation(void **state) {
  wg_pair p;
  uint8_t resp[92];
  wg_pair_init(&p, NULL, NULL);
  assert_int_equal(wg_peer_create_response(&p.b_a, 2, p.now, resp), WG_ERR_STATE);
  wg_pair_free(&p);
}

static void test_padded_len(void **state) {
  assert_int_equal(wg_padded_len(0, 1420), 0);
  assert_int_equal(wg_padded_len(1, 1420), 16);
  assert_int_equal(wg_padded_len(16, 1420), 16);
  assert_int_equal(wg_padded_len(84, 1420), 96);
  assert_int_equal(wg_padded_len(1415, 1420), 1420); /* capped at the MTU */
  assert_int_equal(wg_padded_len(1420, 1420), 1420);
  assert_int_equal(wg_padded_len(1505, 1420), 1516); /* tail 85 of an oversize packet -> 96 */
  assert_int_equal(wg_padded_len(17, 0), 32);
  assert_int_equal(wg_transport_len(96), 128);
}

/* Extra caller padding (AWG collision avoidance) is carried and decrypts as zeros. */
static void test_extra_padding(void **state) {
  wg_pair p;
  uint8_t buf[256];
  size_t pt_len;
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  wg_pair_handshake(&p, true);
  memcpy(buf + 16, PING, 20);
  size_t padded = wg_padded_len(20, 1420) + 16;
  assert_int_equal(wg_peer_encrypt(&p.a_b, 4, buf, 20, padded, p.now), WG_OK);
  assert_int_equal(wg_device_decrypt(&p.b, buf, wg_transport_len(padded), p.now, &got, &pt_len),
                   WG_OK);
  assert_int_equal(pt_len, 48);
  assert_memory_equal(buf + 16, PING, 20);
  for (size_t i = 20; i < 48; i++) assert_int_equal(buf[16 + i], 0);
  assert_int_equal(wg_peer_encrypt(&p.a_b, 4, buf, 20, 19, p.now), WG_ERR_BUFFER);
  wg_pair_free(&p);
}

static void test_result_strings(void **state) {
  assert_string_equal(wg_result_str(WG_OK), "ok");
  assert_string_equal(wg_result_str(WG_ERR_MAC1), "bad-mac1");
  for (int r = WG_OK; r <= WG_ERR_NO_MEMORY; r++)
    assert_string_not_equal(wg_result_str((wg_result)r), "unknown-result");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_without_psk),
      cmocka_unit_test(test_handshake_with_psk),
      cmocka_unit_test(test_psk_mismatch),
      cmocka_unit_test(test_type_not_mixed_into_handshake),
      cmocka_unit_test(test_transport_type_not_authenticated),
      cmocka_unit_test(test_replayed_initiation),
      cmocka_unit_test(test_initiation_flood),
      cmocka_unit_test(test_wrong_static_keys),
      cmocka_unit_test(test_initiation_flips),
      cmocka_unit_test(test_initiation_flips_under_load),
      cmocka_unit_test(test_response_flips),
      cmocka_unit_test(test_transport_flips_and_replay),
      cmocka_unit_test(test_reordering_and_rotation),
      cmocka_unit_test(test_responder_waits_for_confirmation),
      cmocka_unit_test(test_response_without_initiation),
      cmocka_unit_test(test_padded_len),
      cmocka_unit_test(test_extra_padding),
      cmocka_unit_test(test_result_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
