/* The QUIC transport's stream and datagram headers (src/quic/quic_proto.c, wire format in
 * docs/spec/quic-transport.md): requests for every address type byte for byte, incremental
 * parsing (every prefix is NEED_MORE), replies, datagram headers, varints at each length
 * boundary, and every error. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "quic/quic_proto.h"

static dial_dest v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  dial_dest x;
  memset(&x, 0, sizeof x);
  x.type = DIAL_DEST_IPV4;
  x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
  x.port = port;
  return x;
}

static dial_dest name(const char *n, uint16_t port) {
  dial_dest x;
  memset(&x, 0, sizeof x);
  x.type = DIAL_DEST_NAME;
  size_t l = strlen(n);
  memcpy(x.name, n, l > DIAL_NAME_MAX ? DIAL_NAME_MAX : l);
  x.port = port;
  return x;
}

/* Parses buf whole (DONE, consuming exactly len) and every shorter prefix (NEED_MORE). */
static void parses_exactly(const uint8_t *buf, size_t len, dial_dest *out) {
  size_t used = 0;
  for (size_t i = 0; i < len; i++) assert_int_equal(qp_parse_request(buf, i, out, &used), 0);
  assert_int_equal(qp_parse_request(buf, len, out, &used), QP_DONE);
  assert_int_equal(used, len);
}

static void test_request_ipv4(void **state) {
  (void)state;
  dial_dest d = v4(192, 0, 2, 7, 443), got;
  uint8_t out[QP_REQUEST_MAX];
  size_t n = qp_build_request(&d, out, sizeof out);
  const uint8_t want[] = {QP_VERSION, QP_CMD_CONNECT, 1, 192, 0, 2, 7, 0x01, 0xbb};
  assert_int_equal(n, sizeof want);
  assert_memory_equal(out, want, n);
  parses_exactly(out, n, &got);
  assert_int_equal(got.type, DIAL_DEST_IPV4);
  assert_memory_equal(got.ip, d.ip, 4);
  assert_int_equal(got.port, 443);
  /* bytes after the request (early data) are not consumed */
  uint8_t more[32];
  memcpy(more, out, n);
  memset(more + n, 0xee, 10);
  size_t used;
  assert_int_equal(qp_parse_request(more, n + 10, &got, &used), QP_DONE);
  assert_int_equal(used, n);
}

static void test_request_ipv6(void **state) {
  (void)state;
  dial_dest d, got;
  memset(&d, 0, sizeof d);
  d.type = DIAL_DEST_IPV6;
  for (int i = 0; i < 16; i++) d.ip[i] = (uint8_t)(0xf0 + i);
  d.port = 65535;
  uint8_t out[QP_REQUEST_MAX];
  size_t n = qp_build_request(&d, out, sizeof out);
  assert_int_equal(n, 2 + 1 + 16 + 2);
  assert_int_equal(out[2], 4);
  assert_memory_equal(out + 3, d.ip, 16);
  assert_int_equal(out[19], 0xff);
  assert_int_equal(out[20], 0xff);
  parses_exactly(out, n, &got);
  assert_int_equal(got.type, DIAL_DEST_IPV6);
  assert_memory_equal(got.ip, d.ip, 16);
  assert_int_equal(got.port, 65535);
}

static void test_request_name(void **state) {
  (void)state;
  dial_dest d = name("example.com", 80), got;
  uint8_t out[QP_REQUEST_MAX];
  size_t n = qp_build_request(&d, out, sizeof out);
  const uint8_t want[] = {1,   1,   3,   11,  'e', 'x', 'a', 'm', 'p',
                          'l', 'e', '.', 'c', 'o', 'm', 0,   80};
  assert_int_equal(n, sizeof want);
  assert_memory_equal(out, want, n);
  parses_exactly(out, n, &got);
  assert_int_equal(got.type, DIAL_DEST_NAME);
  assert_string_equal(got.name, "example.com");
  assert_int_equal(got.port, 80);
  /* the shortest and the longest names */
  char longest[DIAL_NAME_MAX + 1];
  memset(longest, 'a', DIAL_NAME_MAX);
  longest[DIAL_NAME_MAX] = 0;
  const char *names[] = {"x", longest};
  for (int i = 0; i < 2; i++) {
    d = name(names[i], 1);
    n = qp_build_request(&d, out, sizeof out);
    assert_int_equal(n, 2 + 2 + strlen(names[i]) + 2);
    assert_true(n <= QP_REQUEST_MAX);
    parses_exactly(out, n, &got);
    assert_string_equal(got.name, names[i]);
  }
  assert_int_equal(n, QP_REQUEST_MAX); /* the longest request is exactly the maximum */
}

static void test_request_unencodable(void **state) {
  (void)state;
  uint8_t out[QP_REQUEST_MAX];
  dial_dest d = name("", 80);
  assert_int_equal(qp_build_request(&d, out, sizeof out), 0); /* empty name */
  d = v4(1, 2, 3, 4, 0);
  assert_int_equal(qp_build_request(&d, out, sizeof out), 0); /* port 0 */
  d = name("a", 0);
  assert_int_equal(qp_build_request(&d, out, sizeof out), 0);
  d = v4(1, 2, 3, 4, 5);
  d.type = (dial_dest_type)2;
  assert_int_equal(qp_build_request(&d, out, sizeof out), 0); /* unknown type */
  d = v4(1, 2, 3, 4, 5);
  assert_int_equal(qp_build_request(&d, out, 8), 0); /* one byte short of room */
  assert_int_equal(qp_build_request(&d, out, 9), 9);
  assert_int_equal(qp_build_request(&d, out, 1), 0);
}

static void test_request_errors(void **state) {
  (void)state;
  dial_dest got;
  size_t used = 12345;
  const uint8_t bad_version[] = {2, 1, 1, 1, 2, 3, 4, 0, 80};
  assert_int_equal(qp_parse_request(bad_version, 1, &got, &used), QP_ERR_VERSION);
  const uint8_t bad_cmd[] = {1, 2, 1, 1, 2, 3, 4, 0, 80};
  assert_int_equal(qp_parse_request(bad_cmd, 2, &got, &used), QP_ERR_COMMAND);
  assert_int_equal(qp_parse_request(bad_cmd, 1, &got, &used), QP_NEED_MORE);
  const uint8_t bad_atyp[] = {1, 1, 2, 1, 2, 3, 4, 0, 80};
  assert_int_equal(qp_parse_request(bad_atyp, 3, &got, &used), QP_ERR_ATYP);
  const uint8_t atyp0[] = {1, 1, 0};
  assert_int_equal(qp_parse_request(atyp0, 3, &got, &used), QP_ERR_ATYP);
  const uint8_t empty_name[] = {1, 1, 3, 0, 0, 80};
  assert_int_equal(qp_parse_request(empty_name, 4, &got, &used), QP_ERR_MALFORMED);
  const uint8_t nul_name[] = {1, 1, 3, 3, 'a', 0, 'b', 0, 80};
  assert_int_equal(qp_parse_request(nul_name, 8, &got, &used), QP_NEED_MORE);
  assert_int_equal(qp_parse_request(nul_name, sizeof nul_name, &got, &used), QP_ERR_MALFORMED);
  const uint8_t port0_v4[] = {1, 1, 1, 1, 2, 3, 4, 0, 0};
  assert_int_equal(qp_parse_request(port0_v4, sizeof port0_v4, &got, &used), QP_ERR_MALFORMED);
  const uint8_t port0_name[] = {1, 1, 3, 1, 'a', 0, 0};
  assert_int_equal(qp_parse_request(port0_name, sizeof port0_name, &got, &used), QP_ERR_MALFORMED);
  assert_int_equal(used, 12345); /* consumed is only written on DONE */
  assert_int_equal(qp_parse_request(NULL, 0, &got, &used), QP_NEED_MORE);
}

static void test_reply(void **state) {
  (void)state;
  uint8_t out[QP_REPLY_LEN];
  dial_error code;
  size_t used;
  for (int e = DIAL_OK; e < DIAL_ERR_TUNNEL_DOWN; e++) {
    qp_build_reply((dial_error)e, out);
    assert_int_equal(out[0], QP_VERSION);
    assert_int_equal(out[1], e);
    assert_int_equal(qp_parse_reply(out, 1, &code, &used), QP_NEED_MORE);
    assert_int_equal(qp_parse_reply(out, 2, &code, &used), QP_DONE);
    assert_int_equal(code, e);
    assert_int_equal(used, 2);
  }
  /* tunnel-down is never sent by a server: it goes out as a general failure */
  qp_build_reply(DIAL_ERR_TUNNEL_DOWN, out);
  assert_int_equal(out[1], DIAL_ERR_GENERAL);
  /* unknown codes on the wire (and tunnel-down) read as a general failure */
  const uint8_t odd[][2] = {{1, 8}, {1, 9}, {1, 200}, {1, 255}};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(qp_parse_reply(odd[i], 2, &code, &used), QP_DONE);
    assert_int_equal(code, DIAL_ERR_GENERAL);
  }
  const uint8_t bad[] = {0, 0};
  assert_int_equal(qp_parse_reply(bad, 2, &code, &used), QP_ERR_VERSION);
  assert_int_equal(qp_parse_reply(bad, 0, &code, &used), QP_NEED_MORE);
}

static void test_dgram_header(void **state) {
  (void)state;
  uint8_t out[QP_DGRAM_HDR_MAX + 100];
  dial_dest d = v4(8, 8, 4, 4, 53), got;
  uint64_t flow;
  size_t hl;
  /* flow ids at each varint length: 1, 2, 4, 8 bytes */
  const uint64_t flows[] = {
      0, 63, 64, 16383, 16384, (1u << 30) - 1, 1u << 30, (UINT64_C(1) << 62) - 1};
  const size_t vlen[] = {1, 1, 2, 2, 4, 4, 8, 8};
  for (int i = 0; i < 8; i++) {
    size_t n = qp_build_dgram_header(flows[i], &d, out, sizeof out);
    assert_int_equal(n, vlen[i] + 7);
    memset(out + n, 0x77, 20); /* the payload behind it */
    assert_int_equal(qp_parse_dgram(out, n + 20, &flow, &got, &hl), QP_DONE);
    assert_int_equal(hl, n);
    assert_true(flow == flows[i]);
    assert_memory_equal(got.ip, d.ip, 4);
    assert_int_equal(got.port, 53);
    /* a datagram arrives whole: anything short is malformed, never NEED_MORE */
    for (size_t cut = 0; cut < n; cut++)
      assert_int_equal(qp_parse_dgram(out, cut, &flow, &got, &hl), QP_ERR_MALFORMED);
  }
  /* the longest header: 8-byte flow id and a 255-byte name */
  char longest[DIAL_NAME_MAX + 1];
  memset(longest, 'z', DIAL_NAME_MAX);
  longest[DIAL_NAME_MAX] = 0;
  d = name(longest, 443);
  size_t n = qp_build_dgram_header(UINT64_C(1) << 40, &d, out, sizeof out);
  assert_int_equal(n, QP_DGRAM_HDR_MAX);
  assert_int_equal(qp_parse_dgram(out, n, &flow, &got, &hl), QP_DONE);
  assert_string_equal(got.name, longest);
  assert_int_equal(qp_build_dgram_header(UINT64_C(1) << 40, &d, out, n - 1), 0); /* no room */
  /* unencodable: flow id >= 2^62, port 0 */
  d = v4(1, 1, 1, 1, 1);
  assert_int_equal(qp_build_dgram_header(UINT64_C(1) << 62, &d, out, sizeof out), 0);
  d.port = 0;
  assert_int_equal(qp_build_dgram_header(1, &d, out, sizeof out), 0);
  /* errors on the wire */
  const uint8_t atyp[] = {0x05, 9, 1, 2, 3, 4, 0, 1};
  assert_int_equal(qp_parse_dgram(atyp, sizeof atyp, &flow, &got, &hl), QP_ERR_ATYP);
  const uint8_t port0[] = {0x05, 1, 1, 2, 3, 4, 0, 0};
  assert_int_equal(qp_parse_dgram(port0, sizeof port0, &flow, &got, &hl), QP_ERR_MALFORMED);
  const uint8_t short_varint[] = {0xc0, 0, 0};
  assert_int_equal(qp_parse_dgram(short_varint, sizeof short_varint, &flow, &got, &hl),
                   QP_ERR_MALFORMED);
}

static void test_varints(void **state) {
  (void)state;
  const struct {
    uint64_t v;
    uint8_t bytes[8];
    size_t len;
  } cases[] = {
      /* RFC 9000 appendix A.1 examples, and the boundaries */
      {37, {0x25}, 1},
      {15293, {0x7b, 0xbd}, 2},
      {494878333, {0x9d, 0x7f, 0x3e, 0x7d}, 4},
      {151288809941952652, {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, 8},
      {63, {0x3f}, 1},
      {64, {0x40, 0x40}, 2},
      {16383, {0x7f, 0xff}, 2},
      {16384, {0x80, 0x00, 0x40, 0x00}, 4},
      {(UINT64_C(1) << 62) - 1, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t out[8];
    assert_int_equal(qp_varint_len(cases[i].v), cases[i].len);
    assert_int_equal(qp_put_varint(out, cases[i].v), cases[i].len);
    assert_memory_equal(out, cases[i].bytes, cases[i].len);
    uint64_t v = 0;
    assert_int_equal(qp_get_varint(cases[i].bytes, cases[i].len, &v), cases[i].len);
    assert_true(v == cases[i].v);
    assert_int_equal(qp_get_varint(cases[i].bytes, cases[i].len - 1, &v), 0); /* too few */
  }
  assert_int_equal(qp_varint_len(UINT64_C(1) << 62), 0);
  assert_int_equal(qp_varint_len(UINT64_MAX), 0);
  /* a non-minimal encoding is read (RFC 9000 allows it) */
  const uint8_t long37[] = {0x40, 0x25};
  uint64_t v;
  assert_int_equal(qp_get_varint(long37, 2, &v), 2);
  assert_true(v == 37);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_ipv4),   cmocka_unit_test(test_request_ipv6),
      cmocka_unit_test(test_request_name),   cmocka_unit_test(test_request_unencodable),
      cmocka_unit_test(test_request_errors), cmocka_unit_test(test_reply),
      cmocka_unit_test(test_dgram_header),   cmocka_unit_test(test_varints),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
