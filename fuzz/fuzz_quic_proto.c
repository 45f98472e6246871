/* libFuzzer target for the QUIC transport's stream and datagram headers (src/quic/quic_proto.h).
 *
 * Input layout: byte 0 picks how the request parser is fed (the split points come from it and
 * byte 1), the rest is the message. Checked with abort():
 *  - qp_parse_request fed incrementally (growing prefixes cut at fuzzer-chosen points, each copied
 *    to an exact-size allocation so ASan flags a read past the end) answers NEED_MORE until it
 *    gives the same final answer as the one-shot parse of the whole input, with the same consumed
 *    and destination;
 *  - a request, datagram header or varint that parses re-encodes (qp_build_request,
 *    qp_build_dgram_header, qp_put_varint) to exactly the bytes it was parsed from;
 *  - qp_parse_reply gives a code below DIAL_ERR_TUNNEL_DOWN. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quic/quic_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

static qp_status parse_copy(const uint8_t *msg, size_t n, dial_dest *d, size_t *used) {
  uint8_t *copy = malloc(n ? n : 1);
  CHECK(copy);
  if (n) memcpy(copy, msg, n);
  qp_status st = qp_parse_request(copy, n, d, used);
  free(copy);
  return st;
}

static bool same_dest(const dial_dest *a, const dial_dest *b) {
  if (a->type != b->type || a->port != b->port) return false;
  if (a->type == DIAL_DEST_NAME) return strcmp(a->name, b->name) == 0;
  return memcmp(a->ip, b->ip, a->type == DIAL_DEST_IPV4 ? 4 : 16) == 0;
}

static void check_request(uint8_t mode, uint8_t step_seed, const uint8_t *msg, size_t n) {
  dial_dest whole;
  size_t whole_used = 0;
  qp_status want = parse_copy(msg, n, &whole, &whole_used);
  if (want == QP_DONE) {
    CHECK(whole_used >= 2 + 5 && whole_used <= n && whole_used <= QP_REQUEST_MAX);
    uint8_t out[QP_REQUEST_MAX];
    size_t len = qp_build_request(&whole, out, sizeof out);
    CHECK(len == whole_used && memcmp(out, msg, len) == 0);
    if (whole.type == DIAL_DEST_NAME) {
      size_t l = strlen(whole.name);
      CHECK(l >= 1 && l <= DIAL_NAME_MAX);
    }
    CHECK(whole.port != 0);
  }
  /* Feed growing prefixes: the cut advances by 1..16 bytes (chosen by mode/step_seed). */
  uint32_t x = (uint32_t)mode << 8 | step_seed | 1;
  size_t have = 0;
  for (;;) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    size_t step = mode & 1 ? 1 : 1 + x % 16;
    have = have + step > n ? n : have + step;
    dial_dest part;
    size_t used = 0;
    qp_status st = parse_copy(msg, have, &part, &used);
    if (st == QP_NEED_MORE) {
      CHECK(have < n || want == QP_NEED_MORE);
      if (have == n) break;
      continue;
    }
    CHECK(st == want);
    if (st == QP_DONE) CHECK(used == whole_used && used <= have && same_dest(&part, &whole));
    break;
  }
}

static void check_dgram(const uint8_t *msg, size_t n) {
  uint8_t *copy = malloc(n ? n : 1);
  CHECK(copy);
  if (n) memcpy(copy, msg, n);
  uint64_t flow;
  dial_dest addr;
  size_t hdr = 0;
  qp_status st = qp_parse_dgram(copy, n, &flow, &addr, &hdr);
  free(copy);
  CHECK(st != QP_NEED_MORE);
  if (st != QP_DONE) return;
  CHECK(hdr <= n && hdr <= QP_DGRAM_HDR_MAX);
  uint8_t out[QP_DGRAM_HDR_MAX];
  size_t len = qp_build_dgram_header(flow, &addr, out, sizeof out);
  /* A varint may be written longer than needed on the wire (RFC 9000 allows it); ours is always
   * minimal, so only a minimally-encoded flow id re-encodes to the same bytes. */
  size_t vl = (size_t)1 << (msg[0] >> 6);
  if (vl == qp_varint_len(flow))
    CHECK(len == hdr && memcmp(out, msg, len) == 0);
  else
    CHECK(len == hdr - vl + qp_varint_len(flow));
}

static void check_varint(const uint8_t *msg, size_t n) {
  uint64_t v;
  size_t got = qp_get_varint(msg, n, &v);
  if (!n) {
    CHECK(got == 0);
    return;
  }
  size_t vl = (size_t)1 << (msg[0] >> 6);
  CHECK(got == (n >= vl ? vl : 0));
  if (!got) return;
  CHECK(v < (UINT64_C(1) << 62));
  uint8_t out[8];
  size_t len = qp_put_varint(out, v);
  CHECK(len == qp_varint_len(v) && len <= got);
  uint64_t back;
  CHECK(qp_get_varint(out, len, &back) == len && back == v);
  if (len == got) CHECK(memcmp(out, msg, len) == 0);
}

static void check_reply(const uint8_t *msg, size_t n) {
  dial_error code;
  size_t used = 0;
  qp_status st = qp_parse_reply(msg, n, &code, &used);
  if (st != QP_DONE) return;
  CHECK(used == QP_REPLY_LEN && code < DIAL_ERR_TUNNEL_DOWN);
  uint8_t out[QP_REPLY_LEN];
  qp_build_reply(code, out);
  if (msg[1] < DIAL_ERR_TUNNEL_DOWN) CHECK(memcmp(out, msg, QP_REPLY_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  const uint8_t *msg = data + 2;
  size_t n = size - 2;
  if (n > 1024) n = 1024; /* every message is far shorter; keeps the prefix loop cheap */
  check_request(data[0], data[1], msg, n);
  check_dgram(msg, n);
  check_varint(msg, n);
  check_reply(msg, n);
  return 0;
}
