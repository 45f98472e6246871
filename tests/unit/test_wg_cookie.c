/* mac1/mac2 and cookie replies (src/wg/cookie, device): MAC checks, the cookie round trip under
 * load, cookie lifetime and secret rotation with injected time, wrong AAD, the under-load
 * decision, and the whole exchange through the device API. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "det_rng.h"
#include "wg/cookie.h"
#include "wg/messages.h"
#include "wg_pair.h"

static const uint8_t SRC[6] = {192, 0, 2, 1, 0xca, 0x6c};
static const uint8_t OTHER_SRC[6] = {192, 0, 2, 9, 0xca, 0x6c};

typedef struct {
  det_rng rng;
  wg_device_keys server;     /* the receiver of handshake messages */
  wg_cookie_checker checker; /* its checker */
  wg_cookie_maker maker;     /* the sender's state for the server */
  uint8_t msg[WG_MSG_INIT_LEN];
} fixture;

static int setup(void **state) {
  static fixture f;
  uint8_t priv[32];
  memset(priv, 0x42, sizeof priv);
  det_rng_init(&f.rng, 3);
  wg_device_keys_init(&f.server, priv);
  wg_cookie_checker_init(&f.checker, &f.rng.rng);
  wg_cookie_maker_init(&f.maker, f.server.pub);
  for (size_t i = 0; i < sizeof f.msg; i++) f.msg[i] = (uint8_t)i;
  le32_store(f.msg, 100062); /* an AWG type value: covered like any other byte */
  *state = &f;
  return 0;
}

static wg_result check(fixture *f, const uint8_t *src, bool load, uint64_t now) {
  return wg_cookie_check(&f->checker, &f->server, f->msg, sizeof f->msg, src, 6, load, now);
}

/* Server answers with a cookie reply and the maker takes it. */
static void get_cookie(fixture *f, uint64_t now) {
  uint8_t reply[WG_MSG_COOKIE_LEN];
  assert_int_equal(wg_cookie_create_reply(&f->checker, &f->server, 300042, f->msg, sizeof f->msg,
                                          SRC, 6, now, reply),
                   WG_OK);
  assert_int_equal(le32_load(reply), 300042);
  assert_memory_equal(reply + WG_COOKIE_RECEIVER, f->msg + WG_INIT_SENDER, 4);
  assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, sizeof reply, now), WG_OK);
}

static void test_mac1(void **state) {
  fixture *f = *state;
  uint8_t wrong[32];
  wg_device_keys other;
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, 0);
  assert_int_equal(check(f, SRC, false, 0), WG_OK);
  /* Not under load, mac2 is not looked at. */
  f->msg[WG_INIT_MAC2] ^= 1;
  assert_int_equal(check(f, SRC, false, 0), WG_OK);
  f->msg[WG_INIT_MAC1] ^= 1;
  assert_int_equal(check(f, SRC, false, 0), WG_ERR_MAC1);
  f->msg[WG_INIT_MAC1] ^= 1;
  f->msg[0] ^= 1; /* the type field is covered */
  assert_int_equal(check(f, SRC, false, 0), WG_ERR_MAC1);
  f->msg[0] ^= 1;
  memset(wrong, 0x43, sizeof wrong);
  wg_device_keys_init(&other, wrong);
  assert_int_equal(wg_cookie_check(&f->checker, &other, f->msg, sizeof f->msg, SRC, 6, false, 0),
                   WG_ERR_MAC1);
  assert_int_equal(wg_cookie_check(&f->checker, &f->server, f->msg, 100, SRC, 6, false, 0),
                   WG_ERR_SIZE);
}

static void test_cookie_round_trip(void **state) {
  fixture *f = *state;
  uint64_t now = 50 * WG_NS_PER_SEC;
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, now);
  assert_int_equal(check(f, SRC, true, now), WG_ERR_NEED_COOKIE); /* mac2 is zero */
  get_cookie(f, now);
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, now + 1);
  assert_int_equal(check(f, SRC, true, now + 1), WG_OK);
  /* The cookie is bound to the source address. */
  assert_int_equal(check(f, OTHER_SRC, true, now + 1), WG_ERR_NEED_COOKIE);
  /* mac2 covers mac1 and everything before it. */
  f->msg[WG_INIT_MAC2 + 3] ^= 0x10;
  assert_int_equal(check(f, SRC, true, now + 1), WG_ERR_NEED_COOKIE);
}

static void test_cookie_on_response(void **state) {
  fixture *f = *state;
  uint8_t resp[WG_MSG_RESPONSE_LEN] = {2, 0, 0, 0, 0xdd, 0xcc, 0xbb, 0xaa}, reply[64];
  wg_cookie_add_macs(&f->maker, resp, sizeof resp, 0);
  assert_int_equal(wg_cookie_check(&f->checker, &f->server, resp, sizeof resp, SRC, 6, true, 0),
                   WG_ERR_NEED_COOKIE);
  assert_int_equal(
      wg_cookie_create_reply(&f->checker, &f->server, 3, resp, sizeof resp, SRC, 6, 0, reply),
      WG_OK);
  assert_int_equal(le32_load(reply + WG_COOKIE_RECEIVER), 0xaabbccdd);
  assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, sizeof reply, 0), WG_OK);
  wg_cookie_add_macs(&f->maker, resp, sizeof resp, 0);
  assert_int_equal(wg_cookie_check(&f->checker, &f->server, resp, sizeof resp, SRC, 6, true, 0),
                   WG_OK);
}

static void test_cookie_expiry(void **state) {
  fixture *f = *state;
  uint64_t t0 = 1000 * WG_NS_PER_SEC;
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, t0);
  get_cookie(f, t0);
  /* Maker side: a cookie older than 120 s is not used any more (mac2 = zeros). */
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, t0 + WG_COOKIE_LIFETIME - 1);
  uint8_t zero[16] = {0};
  assert_memory_not_equal(f->msg + WG_INIT_MAC2, zero, 16);
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, t0 + WG_COOKIE_LIFETIME);
  assert_memory_equal(f->msg + WG_INIT_MAC2, zero, 16);
  /* Checker side: the secret rotates after 120 s, invalidating cookies made with the old one. */
  get_cookie(f, t0 + 10 * WG_NS_PER_SEC);
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, t0 + 10 * WG_NS_PER_SEC);
  assert_int_equal(check(f, SRC, true, t0 + WG_COOKIE_SECRET_MAX_AGE - 1), WG_OK);
  assert_int_equal(check(f, SRC, true, t0 + WG_COOKIE_SECRET_MAX_AGE), WG_ERR_NEED_COOKIE);
}

static void test_wrong_aad(void **state) {
  fixture *f = *state;
  uint8_t reply[WG_MSG_COOKIE_LEN];
  /* A reply to a message we no longer remember: our last mac1 changed since. */
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, 0);
  assert_int_equal(
      wg_cookie_create_reply(&f->checker, &f->server, 3, f->msg, sizeof f->msg, SRC, 6, 0, reply),
      WG_OK);
  f->msg[10] ^= 1;
  wg_cookie_add_macs(&f->maker, f->msg, sizeof f->msg, 0);
  assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, sizeof reply, 0), WG_ERR_DECRYPT);
  /* Corruption anywhere in nonce or sealed cookie fails. */
  assert_int_equal(
      wg_cookie_create_reply(&f->checker, &f->server, 3, f->msg, sizeof f->msg, SRC, 6, 0, reply),
      WG_OK);
  for (size_t i = WG_COOKIE_NONCE; i < WG_MSG_COOKIE_LEN; i++) {
    reply[i] ^= 0x40;
    assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, sizeof reply, 0), WG_ERR_DECRYPT);
    reply[i] ^= 0x40;
  }
  /* Another peer's cookie key does not open it. */
  wg_cookie_maker stranger;
  uint8_t pub[32];
  memset(pub, 0x11, sizeof pub);
  wg_cookie_maker_init(&stranger, pub);
  wg_cookie_add_macs(&stranger, f->msg, sizeof f->msg, 0);
  assert_int_equal(wg_cookie_consume_reply(&stranger, reply, sizeof reply, 0), WG_ERR_DECRYPT);
  /* The genuine one works once; a second copy finds no message awaiting a cookie. */
  assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, sizeof reply, 0), WG_OK);
  assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, sizeof reply, 0),
                   WG_ERR_NO_COOKIE_STATE);
  assert_int_equal(wg_cookie_consume_reply(&f->maker, reply, 63, 0), WG_ERR_SIZE);
}

static void test_under_load(void **state) {
  wg_load_state l = {0};
  assert_false(wg_under_load(&l, 10, 128, 0));
  assert_true(wg_under_load(&l, 128, 128, 5));
  /* Sticky for one second after the queue was last seen long. */
  assert_true(wg_under_load(&l, 0, 128, 5 + WG_UNDER_LOAD_STICKY - 1));
  assert_false(wg_under_load(&l, 0, 128, 5 + WG_UNDER_LOAD_STICKY));
  assert_false(wg_under_load(&l, 127, 128, 10 * WG_NS_PER_SEC));
}

/* Through the device API: B under load answers A's initiation with a cookie reply; A's next
 * attempt (after REKEY_TIMEOUT) carries mac2 and is accepted. */
static void test_device_exchange(void **state) {
  wg_pair p;
  uint8_t init[148], reply[64], resp[92];
  wg_peer *got;
  wg_pair_init(&p, NULL, NULL);
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, false, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, true, p.now, &got),
                   WG_ERR_NEED_COOKIE);
  assert_int_equal(
      wg_device_create_cookie_reply(&p.b, WG_PAIR_TYPE_COOKIE, init, 148, p.src_a, 6, p.now, reply),
      WG_OK);
  assert_int_equal(wg_device_consume_cookie_reply(&p.a, reply, 64, p.now, &got), WG_OK);
  assert_ptr_equal(got, &p.a_b);
  p.now += 5 * WG_NS_PER_SEC;
  p.wall += 5 * WG_NS_PER_SEC;
  assert_int_equal(wg_peer_create_initiation(&p.a_b, 1, p.now, p.wall, true, init), WG_OK);
  assert_int_equal(wg_device_consume_initiation(&p.b, init, 148, p.src_a, 6, true, p.now, &got),
                   WG_OK);
  /* B's response, with A under load: A sends B a cookie too (found via B's keypair index). */
  assert_int_equal(wg_peer_create_response(&p.b_a, 2, p.now, resp), WG_OK);
  assert_int_equal(wg_device_consume_response(&p.a, resp, 92, p.src_b, 6, true, p.now, &got),
                   WG_ERR_NEED_COOKIE);
  assert_int_equal(wg_device_create_cookie_reply(&p.a, 3, resp, 92, p.src_b, 6, p.now, reply),
                   WG_OK);
  assert_int_equal(wg_device_consume_cookie_reply(&p.b, reply, 64, p.now, &got), WG_OK);
  assert_ptr_equal(got, &p.b_a);
  /* An unknown receiver index. */
  le32_store(reply + WG_COOKIE_RECEIVER, le32_load(reply + WG_COOKIE_RECEIVER) ^ 1);
  assert_int_equal(wg_device_consume_cookie_reply(&p.b, reply, 64, p.now, &got),
                   WG_ERR_UNKNOWN_INDEX);
  wg_pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_mac1, setup),
      cmocka_unit_test_setup(test_cookie_round_trip, setup),
      cmocka_unit_test_setup(test_cookie_on_response, setup),
      cmocka_unit_test_setup(test_cookie_expiry, setup),
      cmocka_unit_test_setup(test_wrong_aad, setup),
      cmocka_unit_test(test_under_load),
      cmocka_unit_test(test_device_exchange),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
