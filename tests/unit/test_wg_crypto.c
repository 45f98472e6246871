/* Primitive wrappers (src/wg/wg_crypto): TAI64N layout and whitening, HMAC-BLAKE2s key
 * handling, KDF output chaining, the AEAD nonce layout, X25519 low-order rejection. (The whole
 * chain is checked against real peers by test_wg_vectors.) */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <blake2.h>
#include <sodium.h>

#include "wg/wg_crypto.h"

static void test_tai64n(void **state) {
  uint8_t ts[12], later[12];
  static const uint8_t epoch[12] = {0x40, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0};
  wg_tai64n(ts, 0);
  assert_memory_equal(ts, epoch, 12);
  /* Nanoseconds are rounded down to a multiple of 2^24: 999999999 -> 59 * 2^24 = 0x3b000000. */
  wg_tai64n(ts, UINT64_C(1700000000) * 1000000000u + 999999999u);
  static const uint8_t expect[12] = {0x40, 0, 0, 0, 0x65, 0x53, 0xf1, 0x0a, 0x3b, 0, 0, 0};
  assert_memory_equal(ts, expect, 12);
  /* Byte order is time order, at whitened granularity. */
  wg_tai64n(later, UINT64_C(1700000001) * 1000000000u);
  assert_true(memcmp(later, ts, 12) > 0);
  wg_tai64n(later, UINT64_C(1700000000) * 1000000000u + 999999999u - 16777215u);
  assert_true(memcmp(later, ts, 12) <= 0);
}

/* RFC 2104: keys longer than the block are hashed first; shorter ones are zero-padded. */
static void test_hmac_keys(void **state) {
  uint8_t long_key[100], hashed[32], a[32], b[32], padded[64] = {0};
  for (size_t i = 0; i < sizeof long_key; i++) long_key[i] = (uint8_t)i;
  wg_hash(hashed, long_key, sizeof long_key, NULL, 0);
  wg_hmac(a, long_key, sizeof long_key, "msg", 3);
  wg_hmac(b, hashed, sizeof hashed, "msg", 3);
  assert_memory_equal(a, b, 32);
  memcpy(padded, hashed, 32);
  wg_hmac(b, padded, sizeof padded, "msg", 3);
  assert_memory_equal(a, b, 32);
  /* And it is not plain keyed BLAKE2s. */
  blake2s(b, "msg", hashed, 32, 3, 32);
  assert_memory_not_equal(a, b, 32);
}

static void test_kdf_chaining(void **state) {
  uint8_t ck[32], t1[32], t2[32], t3[32], u1[32], u2[32], prk[32], x[33];
  memset(ck, 7, sizeof ck);
  wg_kdf(t1, t2, t3, ck, "input", 5);
  wg_kdf(u1, u2, NULL, ck, "input", 5);
  assert_memory_equal(t1, u1, 32);
  assert_memory_equal(t2, u2, 32);
  /* T1 = HMAC(PRK, 0x1), T2 = HMAC(PRK, T1 || 0x2), T3 = HMAC(PRK, T2 || 0x3). */
  wg_hmac(prk, ck, 32, "input", 5);
  x[0] = 1;
  wg_hmac(u1, prk, 32, x, 1);
  assert_memory_equal(t1, u1, 32);
  memcpy(x, t2, 32);
  x[32] = 3;
  wg_hmac(u1, prk, 32, x, 33);
  assert_memory_equal(t3, u1, 32);
  /* Output may alias the chaining key. */
  wg_kdf(ck, NULL, NULL, ck, "input", 5);
  assert_memory_equal(ck, t1, 32);
}

static void test_aead_nonce_layout(void **state) {
  uint8_t key[32], nonce[12] = {0}, a[40], b[40], pt[24] = "twenty-four byte payload";
  memset(key, 3, sizeof key);
  uint64_t counter = UINT64_C(0x0102030405060708);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
  wg_aead_seal(a, key, counter, pt, sizeof pt, (const uint8_t *)"ad", 2);
  crypto_aead_chacha20poly1305_ietf_encrypt(b, NULL, pt, sizeof pt, (const uint8_t *)"ad", 2, NULL,
                                            nonce, key);
  assert_memory_equal(a, b, sizeof a);
  uint8_t out[24];
  assert_true(wg_aead_open(out, key, counter, a, sizeof a, (const uint8_t *)"ad", 2));
  assert_memory_equal(out, pt, sizeof pt);
  assert_false(wg_aead_open(out, key, counter + 1, a, sizeof a, (const uint8_t *)"ad", 2));
  assert_false(wg_aead_open(out, key, counter, a, 15, NULL, 0));
}

static void test_dh(void **state) {
  uint8_t a[32], b[32], pa[32], pb[32], s1[32], s2[32], zero[32] = {0};
  memset(a, 1, sizeof a);
  memset(b, 2, sizeof b);
  wg_clamp(a);
  wg_clamp(b);
  assert_int_equal(a[0] & 7, 0);
  assert_int_equal(a[31] & 0xc0, 0x40);
  wg_pubkey(pa, a);
  wg_pubkey(pb, b);
  assert_true(wg_dh(s1, a, pb));
  assert_true(wg_dh(s2, b, pa));
  assert_memory_equal(s1, s2, 32);
  assert_false(wg_dh(s1, a, zero)); /* low-order point */
  assert_true(wg_equal(s2, s2, 32));
  wg_wipe(s2, 32);
  assert_memory_equal(s2, zero, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tai64n),       cmocka_unit_test(test_hmac_keys),
      cmocka_unit_test(test_kdf_chaining), cmocka_unit_test(test_aead_nonce_layout),
      cmocka_unit_test(test_dh),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
