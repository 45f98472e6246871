#include "wg_pair.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "wg/messages.h"

void wg_pair_key(uint8_t out[32], uint8_t seed) {
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

void wg_pair_init(wg_pair *p, const uint8_t *psk, const wg_tunables *tun) {
  uint8_t ka[32], kb[32];
  memset(p, 0, sizeof *p);
  det_rng_init(&p->rng_a, 0xa);
  det_rng_init(&p->rng_b, 0xb);
  wg_pair_key(ka, 1);
  wg_pair_key(kb, 2);
  wg_device_init(&p->a, ka, tun, &p->rng_a.rng);
  wg_device_init(&p->b, kb, tun, &p->rng_b.rng);
  assert_int_equal(wg_peer_init(&p->a_b, &p->a, p->b.keys.pub, psk, 0), WG_OK);
  assert_int_equal(wg_peer_init(&p->b_a, &p->b, p->a.keys.pub, psk, 0), WG_OK);
  p->now = 1000 * WG_NS_PER_SEC;
  p->wall = UINT64_C(1700000000) * WG_NS_PER_SEC;
  memcpy(p->src_a, "\xc0\x00\x02\x01\xca\x6c", 6);
  memcpy(p->src_b, "\xc0\x00\x02\x02\xca\x6d", 6);
}

void wg_pair_free(wg_pair *p) {
  wg_peer_remove(&p->a_b);
  wg_peer_remove(&p->b_a);
  wg_device_wipe(&p->a);
  wg_device_wipe(&p->b);
}

wg_pair_dir wg_pair_direction(wg_pair *p, bool a_initiates) {
  wg_pair_dir d;
  d.ip = a_initiates ? &p->a_b : &p->b_a;
  d.rp = a_initiates ? &p->b_a : &p->a_b;
  d.idev = a_initiates ? &p->a : &p->b;
  d.rdev = a_initiates ? &p->b : &p->a;
  d.isrc = a_initiates ? p->src_a : p->src_b;
  d.rsrc = a_initiates ? p->src_b : p->src_a;
  return d;
}

void wg_pair_handshake(wg_pair *p, bool a_initiates) {
  wg_pair_dir d = wg_pair_direction(p, a_initiates);
  uint8_t init[WG_MSG_INIT_LEN], resp[WG_MSG_RESPONSE_LEN];
  wg_peer *got = NULL;
  assert_int_equal(wg_peer_create_initiation(d.ip, WG_PAIR_TYPE_INIT, p->now, p->wall, false, init),
                   WG_OK);
  assert_int_equal(
      wg_device_consume_initiation(d.rdev, init, sizeof init, d.isrc, 6, false, p->now, &got),
      WG_OK);
  assert_ptr_equal(got, d.rp);
  assert_int_equal(wg_peer_create_response(d.rp, WG_PAIR_TYPE_RESP, p->now, resp), WG_OK);
  assert_int_equal(
      wg_device_consume_response(d.idev, resp, sizeof resp, d.rsrc, 6, false, p->now, &got), WG_OK);
  assert_ptr_equal(got, d.ip);
  assert_true(wg_peer_poll(d.ip, p->now) & WG_ACT_SEND_KEEPALIVE);
  assert_int_equal(wg_pair_transfer(d.ip, d.rdev, d.rp, WG_PAIR_TYPE_DATA, NULL, 0, p->now), WG_OK);
  assert_null(d.rp->next);
  assert_non_null(d.rp->current);
}

size_t wg_pair_seal(wg_peer *from, uint32_t type, const void *pt, size_t len, uint64_t now,
                    uint8_t *buf, size_t cap) {
  size_t padded = wg_padded_len(len, 1420);
  assert_true(wg_transport_len(padded) <= cap);
  if (len) memcpy(buf + WG_DATA_PAYLOAD, pt, len);
  assert_int_equal(wg_peer_encrypt(from, type, buf, len, padded, now), WG_OK);
  assert_int_equal(le32_load(buf), type);
  return wg_transport_len(padded);
}

wg_result wg_pair_transfer(wg_peer *from, wg_device *to, wg_peer *expected, uint32_t type,
                           const void *pt, size_t len, uint64_t now) {
  uint8_t buf[2048];
  size_t n = wg_pair_seal(from, type, pt, len, now, buf, sizeof buf), pt_len = 99;
  wg_peer *got = NULL;
  wg_result r = wg_device_decrypt(to, buf, n, now, &got, &pt_len);
  if (r != WG_OK) return r;
  assert_ptr_equal(got, expected);
  assert_int_equal(pt_len, wg_padded_len(len, 1420));
  if (len) assert_memory_equal(buf + WG_DATA_PAYLOAD, pt, len);
  for (size_t i = len; i < pt_len; i++) assert_int_equal(buf[WG_DATA_PAYLOAD + i], 0);
  return WG_OK;
}
