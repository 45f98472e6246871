#include "quic/quic_proto.h"

#include <string.h>

size_t qp_varint_len(uint64_t v) {
  if (v < 64) return 1;
  if (v < 16384) return 2;
  if (v < (UINT64_C(1) << 30)) return 4;
  if (v < (UINT64_C(1) << 62)) return 8;
  return 0;
}

size_t qp_put_varint(uint8_t *out, uint64_t v) {
  size_t n = qp_varint_len(v);
  static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
  for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  out[0] |= prefix[n];
  return n;
}

size_t qp_get_varint(const uint8_t *buf, size_t len, uint64_t *v) {
  if (len == 0) return 0;
  size_t n = (size_t)1 << (buf[0] >> 6);
  if (len < n) return 0;
  uint64_t x = buf[0] & 0x3f;
  for (size_t i = 1; i < n; i++) x = x << 8 | buf[i];
  *v = x;
  return n;
}

/* Address type, address and port, as in SOCKS5. Returns the length, 0 if it cannot be encoded. */
static size_t put_addr(const dial_dest *a, uint8_t *out, size_t cap) {
  size_t n;
  if (a->port == 0) return 0;
  switch (a->type) {
    case DIAL_DEST_IPV4:
      n = 1 + 4 + 2;
      if (cap < n) return 0;
      out[0] = DIAL_DEST_IPV4;
      memcpy(out + 1, a->ip, 4);
      break;
    case DIAL_DEST_IPV6:
      n = 1 + 16 + 2;
      if (cap < n) return 0;
      out[0] = DIAL_DEST_IPV6;
      memcpy(out + 1, a->ip, 16);
      break;
    case DIAL_DEST_NAME: {
      size_t l = strnlen(a->name, sizeof a->name);
      if (l == 0 || l > DIAL_NAME_MAX) return 0;
      n = 1 + 1 + l + 2;
      if (cap < n) return 0;
      out[0] = DIAL_DEST_NAME;
      out[1] = (uint8_t)l;
      memcpy(out + 2, a->name, l);
      break;
    }
    default:
      return 0;
  }
  out[n - 2] = (uint8_t)(a->port >> 8);
  out[n - 1] = (uint8_t)a->port;
  return n;
}

static qp_status get_addr(const uint8_t *b, size_t len, dial_dest *a, size_t *used) {
  if (len < 1) return QP_NEED_MORE;
  memset(a, 0, sizeof *a);
  size_t n;
  switch (b[0]) {
    case DIAL_DEST_IPV4:
      n = 1 + 4 + 2;
      if (len < n) return QP_NEED_MORE;
      memcpy(a->ip, b + 1, 4);
      break;
    case DIAL_DEST_IPV6:
      n = 1 + 16 + 2;
      if (len < n) return QP_NEED_MORE;
      memcpy(a->ip, b + 1, 16);
      break;
    case DIAL_DEST_NAME:
      if (len < 2) return QP_NEED_MORE;
      if (b[1] == 0) return QP_ERR_MALFORMED;
      n = 1 + 1 + (size_t)b[1] + 2;
      if (len < n) return QP_NEED_MORE;
      if (memchr(b + 2, 0, b[1])) return QP_ERR_MALFORMED;
      memcpy(a->name, b + 2, b[1]);
      a->name[b[1]] = 0;
      break;
    default:
      return QP_ERR_ATYP;
  }
  a->type = (dial_dest_type)b[0];
  a->port = (uint16_t)(b[n - 2] << 8 | b[n - 1]);
  if (a->port == 0) return QP_ERR_MALFORMED;
  *used = n;
  return QP_DONE;
}

size_t qp_build_request(const dial_dest *dst, uint8_t *out, size_t cap) {
  if (cap < 2) return 0;
  out[0] = QP_VERSION;
  out[1] = QP_CMD_CONNECT;
  size_t n = put_addr(dst, out + 2, cap - 2);
  return n ? n + 2 : 0;
}

qp_status qp_parse_request(const uint8_t *buf, size_t len, dial_dest *out, size_t *consumed) {
  if (len < 1) return QP_NEED_MORE;
  if (buf[0] != QP_VERSION) return QP_ERR_VERSION;
  if (len < 2) return QP_NEED_MORE;
  if (buf[1] != QP_CMD_CONNECT) return QP_ERR_COMMAND;
  size_t n;
  qp_status st = get_addr(buf + 2, len - 2, out, &n);
  if (st == QP_DONE) *consumed = n + 2;
  return st;
}

void qp_build_reply(dial_error code, uint8_t out[QP_REPLY_LEN]) {
  out[0] = QP_VERSION;
  out[1] = code == DIAL_ERR_TUNNEL_DOWN ? DIAL_ERR_GENERAL : (uint8_t)code;
}

qp_status qp_parse_reply(const uint8_t *buf, size_t len, dial_error *code, size_t *consumed) {
  if (len < 1) return QP_NEED_MORE;
  if (buf[0] != QP_VERSION) return QP_ERR_VERSION;
  if (len < 2) return QP_NEED_MORE;
  /* Tunnel-down never comes from a server; unknown codes are a general failure. */
  *code = buf[1] < DIAL_ERR_TUNNEL_DOWN ? (dial_error)buf[1] : DIAL_ERR_GENERAL;
  *consumed = 2;
  return QP_DONE;
}

size_t qp_build_dgram_header(uint64_t flow, const dial_dest *addr, uint8_t *out, size_t cap) {
  size_t vl = qp_varint_len(flow);
  if (!vl || cap < vl) return 0;
  qp_put_varint(out, flow);
  size_t n = put_addr(addr, out + vl, cap - vl);
  return n ? vl + n : 0;
}

qp_status qp_parse_dgram(const uint8_t *buf, size_t len, uint64_t *flow, dial_dest *addr,
                         size_t *hdr_len) {
  size_t vl = qp_get_varint(buf, len, flow);
  if (!vl) return QP_ERR_MALFORMED;
  size_t n;
  qp_status st = get_addr(buf + vl, len - vl, addr, &n);
  if (st == QP_NEED_MORE) return QP_ERR_MALFORMED;
  if (st == QP_DONE) *hdr_len = vl + n;
  return st;
}
