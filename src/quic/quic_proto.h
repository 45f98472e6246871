/* The stream and datagram headers of the QUIC transport (docs/spec/quic-transport.md): pure
 * builders and incremental parsers over byte buffers, no I/O. A parser given the bytes received
 * so far answers NEED_MORE, DONE with the number of bytes consumed, or an error. */
#ifndef AWGPROXY_QUIC_QUIC_PROTO_H
#define AWGPROXY_QUIC_QUIC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "stream/dial_types.h"

#define QP_VERSION 1
#define QP_CMD_CONNECT 1
/* Longest request: version, command, type, length byte, 255-byte name, port. */
#define QP_REQUEST_MAX (3 + 1 + DIAL_NAME_MAX + 2)
#define QP_REPLY_LEN 2
/* Longest datagram header: 8-byte varint flow id, type, length, name, port. */
#define QP_DGRAM_HDR_MAX (8 + 1 + 1 + DIAL_NAME_MAX + 2)

/* Application error codes of RESET_STREAM / STOP_SENDING. */
#define QP_APP_NO_ERROR 0x0
#define QP_APP_ABORTED 0x1
#define QP_APP_PROTOCOL 0x2
#define QP_APP_DEST_RESET 0x3

typedef enum {
  QP_NEED_MORE = 0,
  QP_DONE = 1,
  QP_ERR_VERSION = -1,   /* unknown version byte */
  QP_ERR_COMMAND = -2,   /* unknown command */
  QP_ERR_ATYP = -3,      /* unknown address type */
  QP_ERR_MALFORMED = -4, /* zero-length name, NUL in a name, port 0, bad varint */
} qp_status;

/* Writes the CONNECT request for dst into out (cap >= QP_REQUEST_MAX); returns its length, or 0
 * for a destination that cannot be encoded (empty or over-long name, port 0). */
size_t qp_build_request(const dial_dest *dst, uint8_t *out, size_t cap);
qp_status qp_parse_request(const uint8_t *buf, size_t len, dial_dest *out, size_t *consumed);

/* Reply: version and code (DIAL_OK or a failure other than DIAL_ERR_TUNNEL_DOWN). */
void qp_build_reply(dial_error code, uint8_t out[QP_REPLY_LEN]);
/* *code is a dial_error; an unknown code on the wire reads as DIAL_ERR_GENERAL. */
qp_status qp_parse_reply(const uint8_t *buf, size_t len, dial_error *code, size_t *consumed);

/* Datagram header: flow id, then an address (destination upstream, source downstream). Returns
 * the header length (0 if addr cannot be encoded or cap is short). */
size_t qp_build_dgram_header(uint64_t flow, const dial_dest *addr, uint8_t *out, size_t cap);
/* A datagram arrives whole: NEED_MORE never comes back, a short one is MALFORMED. */
qp_status qp_parse_dgram(const uint8_t *buf, size_t len, uint64_t *flow, dial_dest *addr,
                         size_t *hdr_len);

/* QUIC variable-length integers (RFC 9000 §16). */
size_t qp_varint_len(uint64_t v); /* 0 when v >= 2^62 */
size_t qp_put_varint(uint8_t *out, uint64_t v);
/* Returns the bytes read, 0 when buf holds too few. */
size_t qp_get_varint(const uint8_t *buf, size_t len, uint64_t *v);

#endif
