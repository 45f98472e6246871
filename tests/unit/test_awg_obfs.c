/* Datagram-path obfuscation: classification, header draw, padding, pre-handshake datagrams and
 * validation. Spec §12 cases 4-20 and 29-30 (pure-logic parts), decisions.md #1, #4, #5, #8. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "awg/obfs.h"

/* ---- RNGs --------------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *bytes;
  size_t len, pos;
} script;

static void script_fill(void *ctx, uint8_t *buf, size_t n) {
  script *s = ctx;
  if (n > s->len - s->pos) fail_msg("RNG script exhausted at %zu (asked %zu)", s->pos, n);
  memcpy(buf, s->bytes + s->pos, n);
  s->pos += n;
}

/* Deterministic pseudo-random bytes (splitmix64) for distribution tests. */
static void prng_fill(void *ctx, uint8_t *buf, size_t n) {
  uint64_t *x = ctx;
  for (size_t i = 0; i < n; i++) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    buf[i] = (uint8_t)((z ^ (z >> 31)) >> 24);
  }
}

static uint64_t prng_state = 42;
static const rng_source kPrng = {prng_fill, &prng_state};

/* ---- helpers ------------------------------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The TestAWGDevicePing set of spec §12 case 30. */
static void ping_params(awg_params *p) {
  awg_params_init(p);
  p->jc = 5, p->jmin = 500, p->jmax = 1000;
  p->s[0] = 15, p->s[1] = 18, p->s[2] = 20, p->s[3] = 25;
  p->h[0] = (awg_hrange){123456, 123500};
  p->h[1] = (awg_hrange){67543, 67550};
  p->h[2] = (awg_hrange){123123, 123200};
  p->h[3] = (awg_hrange){32345, 32350};
}

typedef struct {
  awg_msg_kind kind;
  const uint8_t *msg;
  size_t len;
  int bare;
} classified;

static classified classify(const awg_params *p, const uint8_t *d, size_t len) {
  classified c = {AWG_MSG_UNKNOWN, (const uint8_t *)1, 999, 7};
  c.kind = awg_classify(p, d, len, &c.msg, &c.len, &c.bare);
  if (c.kind == AWG_MSG_UNKNOWN) {
    assert_null(c.msg);
    assert_int_equal(c.len, 0);
  }
  if (c.kind != AWG_MSG_TRANSPORT) assert_int_equal(c.bare, 0);
  return c;
}

/* Builds an AWG datagram of `kind`: S_kind random bytes, then a WG message of msg_len bytes
 * (pseudo-random) whose type field holds `type`. Returns the datagram length. */
static size_t make_datagram(const awg_params *p, awg_msg_kind kind, uint32_t type, size_t msg_len,
                            uint8_t *d) {
  size_t s = awg_padding(p, kind);
  awg_fill_padding(p, kind, &kPrng, d);
  rng_bytes(&kPrng, d + s, msg_len);
  put_le32(d + s, type);
  return s + msg_len;
}

/* ---- case 4: header draw ------------------------------------------------------------------ */

static void test_draw_distribution(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.h[0] = (awg_hrange){10, 12};
  int counts[3] = {0};
  for (int i = 0; i < 10000; i++) {
    uint32_t v = awg_draw_type(&p, AWG_MSG_INIT, &kPrng);
    assert_in_range(v, 10, 12);
    counts[v - 10]++;
  }
  for (int i = 0; i < 3; i++) assert_in_range(counts[i], 3033, 3633); /* 1/3 +- 0.03 */

  /* Every kind draws from its own range; defaults give the WG types. */
  awg_params_init(&p);
  for (int k = 1; k <= 4; k++) assert_int_equal(awg_draw_type(&p, (awg_msg_kind)k, &kPrng), k);
  assert_int_equal(awg_draw_type(&p, AWG_MSG_UNKNOWN, &kPrng), 0);

  /* The full 32-bit range works (the reference's span wraps to 0 there). */
  p.h[3] = (awg_hrange){0, UINT32_MAX};
  static const uint8_t rb[4] = {0x78, 0x56, 0x34, 0x12};
  script s = {rb, sizeof rb, 0};
  rng_source rng = {script_fill, &s};
  assert_int_equal(awg_draw_type(&p, AWG_MSG_TRANSPORT, &rng), 0x12345678);
}

/* The type field is LE32: 0x12345678 is 78 56 34 12 on the wire. */
static void test_type_encoding(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.h[3] = (awg_hrange){0x12345678, 0x12345678};
  uint8_t d[64] = {0x78, 0x56, 0x34, 0x12};
  assert_int_equal(classify(&p, d, sizeof d).kind, AWG_MSG_TRANSPORT);
  uint8_t be[64] = {0x12, 0x34, 0x56, 0x78};
  assert_int_equal(classify(&p, be, sizeof be).kind, AWG_MSG_UNKNOWN);
}

/* ---- case 5: defaults = WireGuard --------------------------------------------------------- */

static void test_defaults_are_wg(void **state) {
  awg_params p;
  awg_params_init(&p);
  for (int k = 1; k <= 4; k++) assert_int_equal(awg_padding(&p, (awg_msg_kind)k), 0);
  assert_int_equal(awg_prehandshake_count(&p), 0);
  assert_int_equal(awg_prehandshake_max_bytes(&p), 0);
  awg_render_ctx ctx = {&kPrng, 0, 0};
  awg_datagram out[1];
  assert_int_equal(awg_build_prehandshake(&p, &ctx, NULL, 0, out, 0), 0);

  uint8_t d[200];
  static const size_t sizes[4] = {148, 92, 64, 32};
  for (int k = 1; k <= 4; k++) {
    size_t len = make_datagram(&p, (awg_msg_kind)k, (uint32_t)k, sizes[k - 1], d);
    assert_int_equal(len, sizes[k - 1]);
    assert_memory_equal(d, ((const uint8_t[]){(uint8_t)k, 0, 0, 0}), 4);
    classified c = classify(&p, d, len);
    assert_int_equal(c.kind, k);
    assert_ptr_equal(c.msg, d);
    assert_int_equal(c.len, len);
    assert_int_equal(c.bare, 0);
  }
  /* No extra transport padding ever: the wire stays WireGuard's. */
  for (size_t pl = 0; pl <= 2000; pl++) assert_int_equal(awg_transport_extra_padding(&p, pl), 0);
  char err[256];
  assert_int_equal(awg_params_validate(&p, err, sizeof err), 0);
}

/* ---- cases 6-8: padded handshake messages ------------------------------------------------- */

static void test_fill_padding(void **state) {
  awg_params p;
  ping_params(&p);
  static const uint32_t want[4] = {15, 18, 20, 25};
  for (int k = 1; k <= 4; k++) {
    assert_int_equal(awg_padding(&p, (awg_msg_kind)k), want[k - 1]);
    uint8_t buf[32];
    memset(buf, 0xcc, sizeof buf);
    uint8_t rb[32];
    memset(rb, 0x11, sizeof rb);
    script s = {rb, want[k - 1], 0};
    rng_source rng = {script_fill, &s};
    awg_fill_padding(&p, (awg_msg_kind)k, &rng, buf);
    assert_int_equal(s.pos, want[k - 1]);
    for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], i < want[k - 1] ? 0x11 : 0xcc);
  }
  assert_int_equal(awg_padding(&p, AWG_MSG_UNKNOWN), 0);
}

static void test_padded_init(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.s[0] = 15;
  p.h[0] = (awg_hrange){123456, 123500};
  uint8_t d[163];
  uint32_t h = awg_draw_type(&p, AWG_MSG_INIT, &kPrng);
  assert_int_equal(make_datagram(&p, AWG_MSG_INIT, h, 148, d), 163);
  classified c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_INIT);
  assert_ptr_equal(c.msg, d + 15);
  assert_int_equal(c.len, 148);
  /* Wrong length or a type outside H1 is not an initiation. */
  assert_int_not_equal(classify(&p, d, 162).kind, AWG_MSG_INIT);
  put_le32(d + 15, 123501);
  assert_int_not_equal(classify(&p, d, sizeof d).kind, AWG_MSG_INIT);
}

static void test_padded_response(void **state) {
  awg_params p;
  ping_params(&p);
  uint8_t d[110];
  assert_int_equal(make_datagram(&p, AWG_MSG_RESPONSE, 67550, 92, d), 110);
  classified c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_RESPONSE);
  assert_ptr_equal(c.msg, d + 18);
  assert_int_equal(c.len, 92);
}

static void test_padded_cookie(void **state) {
  awg_params p;
  ping_params(&p);
  uint8_t d[84];
  assert_int_equal(make_datagram(&p, AWG_MSG_COOKIE, 123123, 64, d), 84);
  put_le32(d + 24, 0xAABBCCDD); /* receiver = sender index of the init */
  classified c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_COOKIE);
  assert_ptr_equal(c.msg, d + 20);
  assert_int_equal(c.len, 64);
  assert_memory_equal(c.msg + 4, ((const uint8_t[]){0xDD, 0xCC, 0xBB, 0xAA}), 4);
}

/* ---- cases 9-11: transport and keepalives ------------------------------------------------- */

static void test_transport_sizes(void **state) {
  awg_params p;
  ping_params(&p);
  /* 84-byte inner packet padded to 96: message 128, datagram 153. */
  assert_int_equal(awg_transport_extra_padding(&p, 96), 0);
  uint8_t d[1500];
  size_t len = make_datagram(&p, AWG_MSG_TRANSPORT, 32347, 32 + 96, d);
  assert_int_equal(len, 153);
  put_le64(d + 25 + 8, 0x0102030405060708u);
  classified c = classify(&p, d, len);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_ptr_equal(c.msg, d + 25);
  assert_int_equal(c.len, 128);
  assert_int_equal(c.bare, 0);
  assert_int_equal(get_le64(c.msg + 8), 0x0102030405060708u);
  /* 1420-byte inner packet at MTU 1420: 1452 + 25. */
  assert_int_equal(awg_transport_extra_padding(&p, 1420), 0);
  len = make_datagram(&p, AWG_MSG_TRANSPORT, 32345, 32 + 1420, d);
  c = classify(&p, d, len);
  assert_int_equal(len, 1477);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_int_equal(c.len, 1452);
}

/* Decisions #1: we send keepalives padded like any transport message. */
static void test_padded_keepalive(void **state) {
  awg_params p;
  ping_params(&p);
  assert_int_equal(awg_transport_extra_padding(&p, 0), 0);
  uint8_t d[57];
  assert_int_equal(make_datagram(&p, AWG_MSG_TRANSPORT, 32350, 32, d), 57);
  classified c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_ptr_equal(c.msg, d + 25);
  assert_int_equal(c.len, 32);
  assert_int_equal(c.bare, 0);
}

/* Decisions #1: an e796d47 peer's bare 32-byte keepalive is accepted when S4 > 0 (case 11). */
static void test_bare_keepalive(void **state) {
  awg_params p;
  ping_params(&p);
  uint8_t d[32];
  rng_bytes(&kPrng, d, sizeof d);
  put_le32(d, 32348);
  classified c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_ptr_equal(c.msg, d);
  assert_int_equal(c.len, 32);
  assert_int_equal(c.bare, 1);
  put_le32(d, 32351); /* type outside H4 */
  assert_int_equal(classify(&p, d, sizeof d).kind, AWG_MSG_UNKNOWN);

  /* S4=8, H4=[0,100]: the reference reads bytes 8..11 (counter 5) as the type and then drops the
   * 24-byte remainder; we take the bare keepalive instead. */
  awg_params_init(&p);
  p.s[3] = 8;
  p.h[0] = (awg_hrange){200, 200};
  p.h[1] = (awg_hrange){201, 201};
  p.h[2] = (awg_hrange){202, 202};
  p.h[3] = (awg_hrange){0, 100};
  memset(d, 0xee, sizeof d);
  put_le32(d, 50);
  put_le32(d + 4, 0x11223344);
  put_le64(d + 8, 5);
  c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_int_equal(c.bare, 1);
  assert_ptr_equal(c.msg, d);
  /* Same bytes with a type outside H4: the reference's path (transport, 24 < 32) drops it. */
  put_le32(d, 150);
  assert_int_equal(classify(&p, d, sizeof d).kind, AWG_MSG_UNKNOWN);

  /* With S4 = 0 a 32-byte keepalive is an ordinary transport message. */
  awg_params_init(&p);
  put_le32(d, 4);
  c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_int_equal(c.bare, 0);
}

/* A transport match with fewer than 32 bytes after the padding is dropped (§4.2). */
static void test_short_transport_after_strip(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.s[3] = 10;
  uint8_t d[48] = {0};
  put_le32(d + 10, 4);
  assert_int_equal(classify(&p, d, 41).kind, AWG_MSG_UNKNOWN); /* 31 after the strip */
  classified c = classify(&p, d, 42);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_int_equal(c.len, 32);
}

/* ---- cases 12-15: classification edge cases ----------------------------------------------- */

static void test_short_datagram(void **state) {
  awg_params p;
  awg_params_init(&p);
  uint8_t d[32] = {4, 0, 0, 0};
  assert_int_equal(classify(&p, d, 31).kind, AWG_MSG_UNKNOWN);
  assert_int_equal(classify(&p, d, 0).kind, AWG_MSG_UNKNOWN);
  assert_int_equal(classify(&p, NULL, 0).kind, AWG_MSG_UNKNOWN);
  assert_int_equal(classify(&p, d, 32).kind, AWG_MSG_TRANSPORT);
  /* NULL out pointers are fine. */
  assert_int_equal(awg_classify(&p, d, 32, NULL, NULL, NULL), AWG_MSG_TRANSPORT);
}

static void test_fallthrough(void **state) {
  awg_params p;
  awg_params_init(&p);
  uint8_t d[148] = {4, 0, 0, 0};
  classified c = classify(&p, d, sizeof d);
  assert_int_equal(c.kind, AWG_MSG_TRANSPORT);
  assert_int_equal(c.len, 148);
}

static void case14_params(awg_params *p) {
  awg_params_init(p);
  p->s[0] = 12;
  p->h[0] = (awg_hrange){0, 10};
  p->h[1] = (awg_hrange){11, 11};
  p->h[2] = (awg_hrange){12, 12};
  p->h[3] = (awg_hrange){13, 13};
}

/* §4.4: receivers misclassify; decisions #8: our sender adds a block so it never happens. */
static void test_precedence_collision(void **state) {
  awg_params p;
  case14_params(&p);
  uint8_t d[176];
  rng_bytes(&kPrng, d, sizeof d);
  put_le32(d, 13);
  put_le32(d + 4, 0x11223344);
  put_le64(d + 8, 5); /* bytes 12..15 = 0, inside H1 */
  classified c = classify(&p, d, 160);
  assert_int_equal(c.kind, AWG_MSG_INIT);
  assert_ptr_equal(c.msg, d + 12);

  assert_int_equal(awg_transport_extra_padding(&p, 128), 16);
  assert_int_equal(classify(&p, d, 160 + 16).kind, AWG_MSG_TRANSPORT);
  assert_int_equal(awg_transport_extra_padding(&p, 112), 0);
  assert_int_equal(awg_transport_extra_padding(&p, 144), 0);
}

static void test_padding_not_validated(void **state) {
  awg_params p;
  ping_params(&p);
  uint8_t a[163], b[163];
  make_datagram(&p, AWG_MSG_INIT, 123456, 148, a);
  memcpy(b + 15, a + 15, 148);
  memset(b, 0x5a, 15);
  assert_memory_not_equal(a, b, 15);
  classified ca = classify(&p, a, sizeof a), cb = classify(&p, b, sizeof b);
  assert_int_equal(ca.kind, AWG_MSG_INIT);
  assert_int_equal(cb.kind, AWG_MSG_INIT);
  assert_memory_equal(ca.msg, cb.msg, 148);
}

/* ---- decisions #8: exhaustive collision avoidance ----------------------------------------- */

/* A worst-case transport datagram of length len: every handshake class's type offset holds a value
 * of its range (where it fits), then our own H4 type at S4 (which wins where they overlap). */
static void adversarial_transport(const awg_params *p, uint8_t *d, size_t len) {
  memset(d, 0, len);
  for (int k = 0; k < 3; k++) {
    if ((uint64_t)p->s[k] + 4 <= len) put_le32(d + p->s[k], p->h[k].start);
  }
  put_le32(d + p->s[3], p->h[3].end);
}

static void check_no_collision(const awg_params *p, size_t max_plain) {
  static const size_t sizes[3] = {148, 92, 64};
  static uint8_t d[4096];
  for (size_t pl = 0; pl <= max_plain; pl++) {
    size_t extra = awg_transport_extra_padding(p, pl);
    assert_int_equal(extra % 16, 0);
    assert_true(extra <= 48);
    size_t len = p->s[3] + 32 + pl + extra;
    for (int k = 0; k < 3; k++) {
      if (p->s[k] != p->s[3]) assert_int_not_equal(len, p->s[k] + sizes[k]);
    }
    /* Minimal: one block less would collide. */
    if (extra) assert_int_equal(awg_transport_extra_padding(p, pl + extra - 16), 16);
    assert_true(len <= sizeof d);
    adversarial_transport(p, d, len);
    classified c = classify(p, d, len);
    if (c.kind != AWG_MSG_TRANSPORT) fail_msg("plaintext %zu (+%zu): kind %d", pl, extra, c.kind);
    assert_int_equal(c.len, len - p->s[3]);
  }
}

static void test_extra_padding_exhaustive(void **state) {
  awg_params p;
  ping_params(&p);
  check_no_collision(&p, 2000);
  case14_params(&p);
  check_no_collision(&p, 2000);
  awg_params_init(&p);
  check_no_collision(&p, 2000);

  /* Collisions with all three classes at consecutive blocks: 192, 208 and 224 bytes. */
  case14_params(&p);
  p.s[0] = 44, p.s[1] = 116, p.s[2] = 160;
  assert_int_equal(awg_transport_extra_padding(&p, 160), 48);
  assert_int_equal(awg_transport_extra_padding(&p, 176), 32);
  assert_int_equal(awg_transport_extra_padding(&p, 192), 16);
  assert_int_equal(awg_transport_extra_padding(&p, 208), 0);
  check_no_collision(&p, 2000);

  /* Padding before the transport type is larger than a handshake's: S4 = 100, S1 = 0. */
  case14_params(&p);
  p.s[0] = 0, p.s[3] = 100;
  assert_int_equal(awg_transport_extra_padding(&p, 16), 16);
  check_no_collision(&p, 2000);

  /* S3 = S4: the tested bytes are our own H4 type, so no block is needed (spec §4.4). */
  case14_params(&p);
  p.s[0] = 0, p.s[2] = 7, p.s[3] = 7;
  assert_int_equal(awg_transport_extra_padding(&p, 32), 0);
  check_no_collision(&p, 2000);
}

/* ---- cases 16, 17, 19, 20: pre-handshake datagrams ---------------------------------------- */

static void test_junk_count_size(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.jc = 5, p.jmin = 500, p.jmax = 1000;
  assert_int_equal(awg_prehandshake_count(&p), 5);
  size_t max = awg_prehandshake_max_bytes(&p);
  assert_int_equal(max, 5000);
  uint8_t *arena = test_malloc(max);
  awg_datagram out[5];
  awg_render_ctx ctx = {&kPrng, 0, 0};
  for (int round = 0; round < 100; round++) {
    assert_int_equal(awg_build_prehandshake(&p, &ctx, arena, max, out, 5), 5);
    uint8_t *next = arena;
    for (int i = 0; i < 5; i++) {
      assert_in_range(out[i].len, 500, 1000);
      assert_ptr_equal(out[i].data, next); /* packed in the arena, in order */
      next += out[i].len;
    }
  }
  test_free(arena);

  /* Jmin=1, Jmax=2: both sizes occur, nothing else (inclusive bounds). */
  p.jc = 1, p.jmin = 1, p.jmax = 2;
  int seen[3] = {0};
  uint8_t buf[2];
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(awg_build_prehandshake(&p, &ctx, buf, sizeof buf, out, 1), 1);
    assert_in_range(out[0].len, 1, 2);
    seen[out[0].len]++;
  }
  assert_true(seen[1] > 0 && seen[2] > 0);
}

static void test_junk_edges(void **state) {
  awg_params p;
  awg_params_init(&p);
  char err[256];
  /* Jc=2 with Jmin/Jmax unset: accepted, two empty datagrams (what e796d47 sends). */
  p.jc = 2;
  assert_int_equal(awg_params_validate(&p, err, sizeof err), 0);
  assert_int_equal(awg_prehandshake_max_bytes(&p), 0);
  awg_datagram out[2];
  awg_render_ctx ctx = {&kPrng, 0, 0};
  assert_int_equal(awg_build_prehandshake(&p, &ctx, NULL, 0, out, 2), 2);
  assert_int_equal(out[0].len, 0);
  assert_int_equal(out[1].len, 0);

  /* Jc=1, Jmin=10, Jmax unset: e796d47 crashes; we reject at load. */
  p.jc = 1, p.jmin = 10;
  assert_int_equal(awg_params_validate(&p, err, sizeof err), -1);
  assert_non_null(strstr(err, "Jmin = 10 is greater than Jmax = 0 (Jmax not set)"));
  /* The builder still never goes out of bounds (draws from the sorted pair). */
  assert_int_equal(awg_prehandshake_max_bytes(&p), 10);
  uint8_t buf[10];
  assert_int_equal(awg_build_prehandshake(&p, &ctx, buf, sizeof buf, out, 2), 1);
  assert_in_range(out[0].len, 0, 10);
}

static awg_itemplate *compile(const char *text) {
  awg_itemplate *t = NULL;
  char err[256];
  if (awg_itemplate_compile(text, &t, err, sizeof err)) fail_msg("%s: %s", text, err);
  return t;
}

static void test_order_and_counter(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.i[0] = compile("<b 0x11><c>");
  p.i[2] = compile("<b 0x33><c><r 1>");
  p.jc = 2, p.jmin = 3, p.jmax = 3;
  assert_int_equal(awg_prehandshake_count(&p), 4);
  assert_int_equal(awg_prehandshake_max_bytes(&p), 5 + 6 + 3 + 3);
  /* RNG use, in wire order: I3's <r 1>, then per junk datagram a size draw and its content. */
  static const uint8_t rb[] = {0xa0,                             /* I3 */
                               0,    0, 0, 0, 0xb1, 0xb2, 0xb3,  /* J1 */
                               9,    9, 9, 9, 0xc1, 0xc2, 0xc3}; /* J2 */
  script s = {rb, sizeof rb, 0};
  rng_source rng = {script_fill, &s};
  awg_render_ctx ctx = {&rng, 0, 0x000000ff};
  uint8_t arena[17];
  awg_datagram out[4];
  assert_int_equal(awg_build_prehandshake(&p, &ctx, arena, sizeof arena, out, 4), 4);
  assert_int_equal(s.pos, sizeof rb);
  /* <c> counts the datagrams already sent, including the earlier ones of the batch. */
  assert_int_equal(out[0].len, 5);
  assert_memory_equal(out[0].data, ((const uint8_t[]){0x11, 0, 0, 0, 0xff}), 5);
  assert_int_equal(out[1].len, 6);
  assert_memory_equal(out[1].data, ((const uint8_t[]){0x33, 0, 0, 1, 0x00, 0xa0}), 6);
  assert_int_equal(out[2].len, 3);
  assert_memory_equal(out[2].data, ((const uint8_t[]){0xb1, 0xb2, 0xb3}), 3);
  assert_int_equal(out[3].len, 3);
  assert_memory_equal(out[3].data, ((const uint8_t[]){0xc1, 0xc2, 0xc3}), 3);
  awg_params_free(&p);
  for (int k = 0; k < AWG_NUM_I; k++) assert_null(p.i[k]);
}

static void test_build_limits(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.i[1] = compile("<r 8>");
  p.jc = 2, p.jmin = 4, p.jmax = 4;
  awg_render_ctx ctx = {&kPrng, 0, 0};
  uint8_t arena[16];
  awg_datagram out[3];
  assert_int_equal(awg_prehandshake_max_bytes(&p), 16);
  assert_int_equal(awg_build_prehandshake(&p, &ctx, arena, 16, out, 2), -1); /* out[] too small */
  assert_int_equal(awg_build_prehandshake(&p, &ctx, arena, 15, out, 3), -1); /* arena too small */
  assert_int_equal(awg_build_prehandshake(&p, &ctx, arena, 7, out, 3), -1);
  assert_int_equal(awg_build_prehandshake(&p, &ctx, arena, 16, out, 3), 3);
  awg_params_free(&p);
}

/* Case 20: each initiation attempt gets fresh junk sizes and content and fresh I bytes. */
static void test_fresh_per_attempt(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.i[0] = compile("<r 16>");
  p.jc = 3, p.jmin = 100, p.jmax = 1000;
  size_t max = awg_prehandshake_max_bytes(&p);
  uint8_t *a = test_malloc(max), *b = test_malloc(max);
  awg_datagram oa[4], ob[4];
  awg_render_ctx ctx = {&kPrng, 0, 0};
  assert_int_equal(awg_build_prehandshake(&p, &ctx, a, max, oa, 4), 4);
  assert_int_equal(awg_build_prehandshake(&p, &ctx, b, max, ob, 4), 4);
  assert_memory_not_equal(oa[0].data, ob[0].data, 16);
  assert_false(oa[1].len == ob[1].len && oa[2].len == ob[2].len && oa[3].len == ob[3].len);
  test_free(a);
  test_free(b);
  awg_params_free(&p);
}

/* ---- validation: decisions #4, #5; cases 3, 17, 29, 30 ------------------------------------ */

static void expect_invalid(const awg_params *p, const char *expect) {
  char err[512] = "";
  assert_int_equal(awg_params_validate(p, err, sizeof err), -1);
  if (strstr(err, expect) == NULL) fail_msg("message \"%s\" lacks \"%s\"", err, expect);
}

static void expect_valid(const awg_params *p) {
  char err[512] = "";
  if (awg_params_validate(p, err, sizeof err) != 0) fail_msg("rejected: %s", err);
}

static void test_validate_ok(void **state) {
  awg_params p;
  ping_params(&p);
  expect_valid(&p);
  awg_params_init(&p);
  p.h[0] = (awg_hrange){100, 199};
  p.h[1] = (awg_hrange){200, 300};
  expect_valid(&p);
  /* Near-full ranges are fine while disjoint. */
  p.h[0] = (awg_hrange){0, UINT32_MAX - 3};
  p.h[1] = (awg_hrange){UINT32_MAX - 2, UINT32_MAX - 2};
  p.h[2] = (awg_hrange){UINT32_MAX - 1, UINT32_MAX - 1};
  p.h[3] = (awg_hrange){UINT32_MAX, UINT32_MAX};
  expect_valid(&p);
  /* 0 means off (decisions #5); Jmin/Jmax are not looked at while Jc = 0. */
  awg_params_init(&p);
  p.jmin = 10;
  p.jmax = 70000;
  expect_valid(&p);
  p.jc = 1, p.jmin = 0, p.jmax = 5;
  expect_valid(&p);
  p.jmin = 5;
  expect_valid(&p);
  p.jmax = AWG_MAX_DATAGRAM;
  expect_valid(&p);
  assert_int_equal(awg_params_validate(&p, NULL, 0), 0);
}

static void test_validate_headers(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.h[0] = (awg_hrange){100, 200};
  p.h[1] = (awg_hrange){200, 300};
  p.h[2] = (awg_hrange){7, 7};
  p.h[3] = (awg_hrange){8, 8};
  expect_invalid(&p, "H1 (100-200) and H2 (200-300) overlap");
  awg_params_init(&p);
  p.h[0] = (awg_hrange){2, 2};
  expect_invalid(&p, "H1 (2) and H2 (2) overlap");
  awg_params_init(&p);
  p.h[3] = (awg_hrange){0, UINT32_MAX};
  expect_invalid(&p, "H1 (1) and H4 (0-4294967295) overlap");
  awg_params_init(&p);
  p.h[2] = (awg_hrange){4, 9};
  expect_invalid(&p, "H3 (4-9) and H4 (4) overlap");
}

static void test_validate_padding(void **state) {
  awg_params p;
  static const uint32_t max[4] = {65535 - 148, 65535 - 92, 65535 - 64, 65535 - 32};
  for (int k = 0; k < 4; k++) {
    awg_params_init(&p);
    p.s[k] = max[k];
    expect_valid(&p);
    p.s[k] = max[k] + 1;
    char want[64];
    snprintf(want, sizeof want, "S%d = %u is too large", k + 1, max[k] + 1);
    expect_invalid(&p, want);
    p.s[k] = UINT32_MAX;
    expect_invalid(&p, "above the 65535-byte datagram limit");
  }
  awg_params_init(&p);
  p.s[0] = 70000;
  expect_invalid(&p, "S1 can be at most 65387");
}

static void test_validate_junk(void **state) {
  awg_params p;
  awg_params_init(&p);
  p.jc = 3, p.jmin = 20, p.jmax = 10;
  expect_invalid(&p, "Jmin = 20 is greater than Jmax = 10: junk sizes are drawn from Jmin to Jmax");
  p.jmin = 10, p.jmax = AWG_MAX_DATAGRAM + 1;
  expect_invalid(&p, "Jmax = 65536 is above the 65535-byte datagram limit");
}

/* Case 29: 5 I-packets + Jc=123 would be 129 datagrams with the INIT. */
static void test_validate_batch_limit(void **state) {
  awg_params p;
  awg_params_init(&p);
  for (int k = 0; k < AWG_NUM_I; k++) p.i[k] = compile("<b 0x01>");
  p.jc = 123, p.jmin = 1, p.jmax = 1;
  expect_invalid(&p, "Jc = 123 plus 5 I-packet(s) makes 128 datagrams");
  expect_invalid(&p, "lower Jc to at most 122");
  p.jc = 122;
  expect_valid(&p);
  awg_params_free(&p);
  p.jc = 127;
  expect_valid(&p);
  p.jc = 128;
  expect_invalid(&p, "Jc = 128 plus 0 I-packet(s)");
  p.jc = UINT32_MAX;
  expect_invalid(&p, "above the limit of 127");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_draw_distribution),
      cmocka_unit_test(test_type_encoding),
      cmocka_unit_test(test_defaults_are_wg),
      cmocka_unit_test(test_fill_padding),
      cmocka_unit_test(test_padded_init),
      cmocka_unit_test(test_padded_response),
      cmocka_unit_test(test_padded_cookie),
      cmocka_unit_test(test_transport_sizes),
      cmocka_unit_test(test_padded_keepalive),
      cmocka_unit_test(test_bare_keepalive),
      cmocka_unit_test(test_short_transport_after_strip),
      cmocka_unit_test(test_short_datagram),
      cmocka_unit_test(test_fallthrough),
      cmocka_unit_test(test_precedence_collision),
      cmocka_unit_test(test_padding_not_validated),
      cmocka_unit_test(test_extra_padding_exhaustive),
      cmocka_unit_test(test_junk_count_size),
      cmocka_unit_test(test_junk_edges),
      cmocka_unit_test(test_order_and_counter),
      cmocka_unit_test(test_build_limits),
      cmocka_unit_test(test_fresh_per_attempt),
      cmocka_unit_test(test_validate_ok),
      cmocka_unit_test(test_validate_headers),
      cmocka_unit_test(test_validate_padding),
      cmocka_unit_test(test_validate_junk),
      cmocka_unit_test(test_validate_batch_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
