/* AmneziaWG 3.x (amneziawg-go 1b86b2a) against real captures (tests/vectors/awg3-*,
 * README-awg3.md):
 *  - awg3-hp: header protection + ContentPaddingAddition 10-100, MTU 1400, PersistentKeepalive
 * 15-18;
 *  - awg3-trailers: the same plus RandomTrailers (handshakes carry random trailers);
 *  - awg3-rtdata: RandomTrailers without content padding (data trailers inside the plaintext).
 * Both peers' configs are read with our own loader. Every datagram is classified and unmasked
 * with awg3_classify, as the receiving side would; then:
 *  - mac1 of the initiation verifies with B's key and of the response with A's, over the
 *    unmasked bytes; B's device consumes the initiation (Noise chain, TAI64N time);
 *  - every transport datagram authenticates with the recovered session key of its direction;
 *    the plaintext is an IPv4 packet or a keepalive followed by zero bytes whose count follows
 *    the sender's rule (content padding range / MTU cap, or the trailer window);
 *  - a flipped byte anywhere in a masked message, the nonce prefix or the ciphertext is
 *    rejected (unknown class, mac1 or AEAD failure).
 * Plus the fixed keystream and header-mask cases of the spec (T1, T2). */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <sodium.h>

#include "awg/awg3_mask.h"
#include "config/config.h"
#include "det_rng.h"
#include "pcap_reader.h"
#include "wg/cookie.h"
#include "wg/device.h"
#include "wg/messages.h"
#include "wg/peer.h"

#define PORT_A 51820
#define MAX_DGRAM 2048

typedef struct {
  const char *name;
  bool cpa, trailers;
} capture_spec;

typedef struct {
  bool from_a;
  uint64_t ts_ns;
  size_t len;
  uint8_t raw[MAX_DGRAM]; /* as on the wire */
  uint8_t src[6];
} datagram;

typedef struct {
  const capture_spec *spec;
  app_config conf_a, conf_b;
  wg_device_keys keys_a, keys_b;
  uint8_t key_ab[32], key_ba[32]; /* transport session keys A->B, B->A */
  uint32_t index_ab, index_ba;    /* receiver index of each direction */
  datagram *d;
  size_t n;
} capture;

static void vector_path(char *out, size_t len, const char *name, const char *suffix) {
  snprintf(out, len, "%s/tests/vectors/%s%s", AWG_SOURCE_DIR, name, suffix);
}

static void load_conf(app_config *c, const char *name, const char *suffix) {
  char path[512];
  diag_list d = {0};
  vector_path(path, sizeof path, name, suffix);
  config_init(c);
  int rc = config_load_file(c, path, &d);
  if (rc != 0) diag_list_print(&d, path, stderr);
  assert_int_equal(rc, 0);
  diag_list_free(&d);
}

static void hex32(const char *hex, uint8_t out[32]) {
  size_t n = 0;
  assert_int_equal(sodium_hex2bin(out, 32, hex, 64, NULL, &n, NULL), 0);
  assert_int_equal(n, 32);
}

/* "session-key A->B receiver=9d931521 hex=…" */
static void read_session_keys(capture *c) {
  char path[512], line[512];
  vector_path(path, sizeof path, c->spec->name, ".keys.txt");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    char dir[8], hex[65];
    unsigned idx;
    if (sscanf(line, "session-key %7s receiver=%x hex=%64s", dir, &idx, hex) != 3) continue;
    bool ab = strcmp(dir, "A->B") == 0;
    hex32(hex, ab ? c->key_ab : c->key_ba);
    *(ab ? &c->index_ab : &c->index_ba) = idx;
    found++;
  }
  fclose(f);
  assert_int_equal(found, 2);
}

static capture *load(const capture_spec *spec) {
  char path[512];
  pcap_reader r;
  pcap_udp u;
  int got;
  capture *c = calloc(1, sizeof *c);
  c->spec = spec;
  load_conf(&c->conf_a, spec->name, "-A.conf");
  load_conf(&c->conf_b, spec->name, "-B.conf");
  wg_device_keys_init(&c->keys_a, c->conf_a.private_key);
  wg_device_keys_init(&c->keys_b, c->conf_b.private_key);
  read_session_keys(c);
  vector_path(path, sizeof path, spec->name, ".pcap");
  assert_int_equal(pcap_open(&r, path), 0);
  c->d = calloc(64, sizeof *c->d);
  while ((got = pcap_next_udp(&r, &u)) == 1) {
    assert_true(c->n < 64 && u.len <= MAX_DGRAM);
    datagram *d = &c->d[c->n++];
    d->from_a = u.src_port == PORT_A;
    d->ts_ns = u.ts_ns;
    d->len = u.len;
    memcpy(d->raw, u.payload, u.len);
    memcpy(d->src, u.src_ip, 4);
    d->src[4] = (uint8_t)(u.src_port >> 8);
    d->src[5] = (uint8_t)u.src_port;
  }
  assert_int_equal(got, 0);
  pcap_close(&r);
  assert_int_equal(c->n, 24); /* README-awg3.md: 24 datagrams per capture */
  return c;
}

static const capture_spec HP = {"awg3-hp", true, false};
static const capture_spec TRAILERS = {"awg3-trailers", true, true};
static const capture_spec RTDATA = {"awg3-rtdata", false, true};

static int setup_hp(void **state) { return *state = load(&HP), 0; }
static int setup_trailers(void **state) { return *state = load(&TRAILERS), 0; }
static int setup_rtdata(void **state) { return *state = load(&RTDATA), 0; }

static int teardown(void **state) {
  capture *c = *state;
  config_free(&c->conf_a);
  config_free(&c->conf_b);
  free(c->d);
  free(c);
  return 0;
}

/* The receiver's view: classify a copy (classification unmasks in place). */
typedef struct {
  awg_msg_kind kind;
  uint8_t buf[MAX_DGRAM];
  const uint8_t *msg;
  size_t len;
} view;

static const app_config *receiver(const capture *c, const datagram *d) {
  return d->from_a ? &c->conf_b : &c->conf_a;
}

static void classify(const awg_params *p, const uint8_t *raw, size_t len, view *v) {
  int bare = 0;
  memcpy(v->buf, raw, len);
  v->kind = awg3_classify(p, v->buf, len, &v->msg, &v->len, &bare);
  assert_int_equal(bare, 0); /* never with header protection */
}

static void test_config(void **state) {
  capture *c = *state;
  const awg3_params *v3 = &c->conf_a.awg.v3;
  assert_true(v3->header_protection);
  assert_memory_equal(v3->hp_key, c->conf_b.awg.v3.hp_key, 32);
  assert_int_equal(v3->random_trailers, c->spec->trailers);
  assert_int_equal(awg3_range_is_set(v3->content_padding), c->spec->cpa);
  if (c->spec->cpa) assert_true(v3->content_padding.lo == 10 && v3->content_padding.hi == 100);
  assert_int_equal(c->conf_a.peers[0].persistent_keepalive, 15);
  assert_int_equal(c->conf_a.peers[0].persistent_keepalive_max, 18);
  assert_int_equal(c->conf_a.mtu, 1400);
}

static void test_classification(void **state) {
  capture *c = *state;
  size_t n[5] = {0};
  view v;
  for (size_t i = 0; i < c->n; i++) {
    const datagram *d = &c->d[i];
    classify(&receiver(c, d)->awg, d->raw, d->len, &v);
    n[v.kind]++;
    if (v.kind == AWG_MSG_UNKNOWN) continue;
    /* The unmasked type lies in the class's range; on the wire it does not. */
    const awg_params *p = &receiver(c, d)->awg;
    assert_true(awg_hrange_contains(p->h[v.kind - 1], le32_load(v.msg)));
    assert_false(awg_hrange_contains(p->h[v.kind - 1], le32_load(d->raw + p->s[v.kind - 1])));
    if (v.kind == AWG_MSG_INIT) assert_true(d->from_a && i == 5);
    if (v.kind == AWG_MSG_RESPONSE) assert_true(!d->from_a && i == 6);
  }
  /* I1 + 4 junk, init, response, 14 data + 3 keepalives (README-awg3.md) */
  assert_int_equal(n[AWG_MSG_UNKNOWN], 5);
  assert_int_equal(n[AWG_MSG_INIT], 1);
  assert_int_equal(n[AWG_MSG_RESPONSE], 1);
  assert_int_equal(n[AWG_MSG_COOKIE], 0);
  assert_int_equal(n[AWG_MSG_TRANSPORT], 17);
}

/* Trailed handshakes need RandomTrailers at the receiver (spec R42); without the key nothing
 * classifies (T10). */
static void test_receiver_settings_matter(void **state) {
  capture *c = *state;
  awg_params p = c->conf_b.awg;
  view v;
  const datagram *init = &c->d[5];
  p.v3.random_trailers = false;
  classify(&p, init->raw, init->len, &v);
  bool trailed = init->len > p.s[0] + 148;
  assert_int_equal(v.kind, trailed ? AWG_MSG_UNKNOWN : AWG_MSG_INIT);
  if (c->spec->trailers) assert_true(trailed); /* these captures do carry trailers */
  p = c->conf_b.awg;
  p.v3.header_protection = false;
  for (size_t i = 0; i < c->n; i++) {
    classify(&p, c->d[i].raw, c->d[i].len, &v);
    assert_int_equal(v.kind, AWG_MSG_UNKNOWN);
  }
}

static void check_mac1(const capture *c, const datagram *d, const wg_device_keys *rx,
                       const wg_device_keys *other) {
  det_rng rng;
  wg_cookie_checker checker;
  view v;
  uint8_t zero[16] = {0}, bad[MAX_DGRAM];
  det_rng_init(&rng, 1);
  wg_cookie_checker_init(&checker, &rng.rng);
  const awg_params *p = &receiver(c, d)->awg;
  classify(p, d->raw, d->len, &v);
  assert_int_equal(wg_cookie_check(&checker, rx, v.msg, v.len, NULL, 0, false, 0), WG_OK);
  assert_int_equal(wg_cookie_check(&checker, other, v.msg, v.len, NULL, 0, false, 0), WG_ERR_MAC1);
  assert_memory_equal(v.msg + v.len - 16, zero, 16); /* no cookie in play */
  /* Masking happens after mac1 (spec R18): the masked bytes do not verify. */
  size_t s = (size_t)(v.msg - v.buf);
  assert_int_equal(wg_cookie_check(&checker, rx, d->raw + s, v.len, NULL, 0, false, 0),
                   WG_ERR_MAC1);
  /* Any flipped bit in the nonce or the masked message up to mac1 is rejected. (Prefix bytes
   * 12..S-1 are neither nonce nor message: random filler that nothing reads.) */
  for (size_t i = 0; i < s + v.len - 32; i++) {
    if (i >= AWG3_HP_NONCE_LEN && i < s) continue;
    view w;
    memcpy(bad, d->raw, d->len);
    bad[i] ^= 0x10;
    classify(p, bad, d->len, &w);
    if (w.kind == AWG_MSG_UNKNOWN) continue;
    if (wg_cookie_check(&checker, rx, w.msg, w.len, NULL, 0, false, 0) != WG_ERR_MAC1)
      fail_msg("%s: flipped byte %zu of a handshake datagram accepted", c->spec->name, i);
  }
}

static void test_handshake_macs(void **state) {
  capture *c = *state;
  check_mac1(c, &c->d[5], &c->keys_b, &c->keys_a);
  check_mac1(c, &c->d[6], &c->keys_a, &c->keys_b);
}

static void test_consume_initiation(void **state) {
  capture *c = *state;
  det_rng rng;
  wg_device dev;
  wg_peer peer, *got;
  view v;
  const datagram *in = &c->d[5];
  classify(&c->conf_b.awg, in->raw, in->len, &v);
  det_rng_init(&rng, 7);
  wg_device_init(&dev, c->conf_b.private_key, NULL, &rng.rng);
  assert_int_equal(wg_peer_init(&peer, &dev, c->keys_a.pub, NULL, 0), WG_OK);
  uint64_t now = 1000 * WG_NS_PER_SEC;
  assert_int_equal(wg_device_consume_initiation(&dev, v.msg, v.len, in->src, 6, false, now, &got),
                   WG_OK);
  assert_ptr_equal(got, &peer);
  assert_int_equal(peer.hs.remote_index, le32_load(v.msg + WG_INIT_SENDER));
  /* The decrypted TAI64N time is the capture's (label = 2^62 + 10 + seconds). */
  uint64_t label = 0;
  for (int i = 0; i < 8; i++) label = label << 8 | peer.hs.latest_timestamp[i];
  uint64_t secs = label - UINT64_C(0x400000000000000a), pcap_secs = in->ts_ns / WG_NS_PER_SEC;
  assert_true(secs + 2 >= pcap_secs && secs <= pcap_secs + 2);
  /* The response's receiver index is the initiation's sender (both unmasked). */
  view r;
  classify(&c->conf_a.awg, c->d[6].raw, c->d[6].len, &r);
  assert_int_equal(le32_load(r.msg + WG_RESP_RECEIVER), le32_load(v.msg + WG_INIT_SENDER));
  wg_peer_remove(&peer);
  wg_device_wipe(&dev);
}

/* Decrypts a transport message (header unmasked) with the direction's key; -1 if it fails. */
static long open_transport(const capture *c, bool from_a, const uint8_t *msg, size_t len,
                           uint8_t *pt) {
  uint8_t nonce[12] = {0};
  memcpy(nonce + 4, msg + WG_DATA_COUNTER, 8); /* LE64 on the wire and in the nonce */
  unsigned long long n = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &n, NULL, msg + 16, len - 16, NULL, 0, nonce,
                                                from_a ? c->key_ab : c->key_ba) != 0)
    return -1;
  return (long)n;
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

/* Zero bytes after the inner packet, by the sender's rule (spec R29-R31, R41). */
static void check_padding(const capture *c, const datagram *d, size_t inner, size_t pad) {
  const awg3_params *v3 = &(d->from_a ? &c->conf_a : &c->conf_b)->awg.v3;
  uint32_t mtu = (d->from_a ? &c->conf_a : &c->conf_b)->mtu;
  assert_true(inner + pad <= mtu);
  if (c->spec->cpa) {
    bool capped = pad == mtu - inner && pad < v3->content_padding.lo;
    assert_true(capped || (pad >= v3->content_padding.lo && pad <= v3->content_padding.hi));
  } else {
    assert_true(d->len < 1455 + 1); /* below the window: never above S4 + 32 + MTU */
  }
}

static void test_transport(void **state) {
  capture *c = *state;
  uint8_t pt[MAX_DGRAM];
  size_t keepalives = 0, data = 0, unaligned = 0;
  for (size_t i = 0; i < c->n; i++) {
    const datagram *d = &c->d[i];
    view v;
    classify(&receiver(c, d)->awg, d->raw, d->len, &v);
    if (v.kind != AWG_MSG_TRANSPORT) continue;
    assert_int_equal(le32_load(v.msg + WG_DATA_RECEIVER), d->from_a ? c->index_ab : c->index_ba);
    long n = open_transport(c, d->from_a, v.msg, v.len, pt);
    if (n < 0) fail_msg("%s #%zu does not authenticate", c->spec->name, i + 1);
    if (n % 16) unaligned++;
    size_t inner = 0;
    if (n == 0 || pt[0] == 0) {
      keepalives++; /* a padded keepalive: zeros only (spec R33) */
    } else {
      assert_int_equal(pt[0] >> 4, 4);
      inner = (size_t)pt[2] << 8 | pt[3];
      assert_true(inner <= (size_t)n);
      data++;
    }
    assert_true(all_zero(pt + inner, (size_t)n - inner));
    check_padding(c, d, inner, (size_t)n - inner);
    /* Flipped bytes: in the nonce prefix, the masked header or the ciphertext. */
    size_t s4 = (size_t)(v.msg - v.buf);
    size_t spots[] = {0, 11, s4 + 5, s4 + 9, s4 + 15, s4 + 16, d->len - 1};
    for (size_t k = 0; k < sizeof spots / sizeof *spots; k++) {
      uint8_t bad[MAX_DGRAM];
      view w;
      memcpy(bad, d->raw, d->len);
      bad[spots[k]] ^= 0x01;
      classify(&receiver(c, d)->awg, bad, d->len, &w);
      if (w.kind != AWG_MSG_TRANSPORT) continue;
      if (open_transport(c, d->from_a, w.msg, w.len, pt) >= 0 &&
          le32_load(w.msg + WG_DATA_RECEIVER) == (d->from_a ? c->index_ab : c->index_ba))
        fail_msg("%s #%zu: flipped byte %zu accepted", c->spec->name, i + 1, spots[k]);
    }
  }
  assert_int_equal(keepalives, 3);
  assert_int_equal(data, 14);
  assert_true(unaligned > 0); /* no 16-byte rounding any more */
}

/* Spec T1/T2: the keystream and a masked transport header, independent of the captures. */
static void test_mask_fixed_vectors(void **state) {
  awg3_params p;
  awg3_params_init(&p);
  p.header_protection = true;
  for (int i = 0; i < 32; i++) p.hp_key[i] = (uint8_t)i;
  uint8_t d[12 + 32] = {0};
  for (int i = 0; i < 12; i++) d[i] = (uint8_t)i;
  awg3_mask(&p, d, 12, 32);
  static const uint8_t ks[32] = {0x10, 0x3a, 0xf1, 0x11, 0xc1, 0x8b, 0x54, 0x9d, 0x39, 0x24, 0x8f,
                                 0xb0, 0x7d, 0x60, 0xc2, 0x9a, 0x95, 0xd1, 0xdb, 0x88, 0xd8, 0x92,
                                 0xf7, 0xb4, 0xaf, 0x70, 0x9a, 0x5f, 0xd4, 0x7a, 0x9e, 0x4b};
  assert_memory_equal(d + 12, ks, 32);
  uint8_t tm[4];
  awg3_type_mask(&p, d, tm);
  assert_memory_equal(tm, ks, 4);
  uint8_t t[12 + 16] = {0};
  for (int i = 0; i < 12; i++) t[i] = (uint8_t)i;
  static const uint8_t clear[16] = {4, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 5, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t wire[16] = {0x14, 0x3a, 0xf1, 0x11, 0x85, 0xb8, 0x76, 0x8c,
                                   0x3c, 0x24, 0x8f, 0xb0, 0x7d, 0x60, 0xc2, 0x9a};
  memcpy(t + 12, clear, 16);
  awg3_mask(&p, t, 12, 16);
  assert_memory_equal(t + 12, wire, 16);
  awg3_mask(&p, t, 12, 16); /* the same operation unmasks */
  assert_memory_equal(t + 12, clear, 16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mask_fixed_vectors),
#define CAPTURE_TESTS(setup)                                                           \
  cmocka_unit_test_setup_teardown(test_config, setup, teardown),                       \
      cmocka_unit_test_setup_teardown(test_classification, setup, teardown),           \
      cmocka_unit_test_setup_teardown(test_receiver_settings_matter, setup, teardown), \
      cmocka_unit_test_setup_teardown(test_handshake_macs, setup, teardown),           \
      cmocka_unit_test_setup_teardown(test_consume_initiation, setup, teardown),       \
      cmocka_unit_test_setup_teardown(test_transport, setup, teardown)
      CAPTURE_TESTS(setup_hp),
      CAPTURE_TESTS(setup_trailers),
      CAPTURE_TESTS(setup_rtdata),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
