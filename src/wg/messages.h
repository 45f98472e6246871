/* WireGuard message layouts (unpadded, as they are after AWG de-padding) and little-endian field
 * access. The 4-byte type field at offset 0 is written from a caller-given value (AWG puts an H
 * value there) and is never checked on receive: classification happened before. */
#ifndef AWGPROXY_WG_MESSAGES_H
#define AWGPROXY_WG_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "util/bytes.h"

#define WG_MSG_INIT_LEN 148
#define WG_MSG_RESPONSE_LEN 92
#define WG_MSG_COOKIE_LEN 64
#define WG_MSG_TRANSPORT_HEADER_LEN 16
#define WG_MSG_TRANSPORT_MIN_LEN 32 /* header + tag: a keepalive */

/* Handshake initiation. */
#define WG_INIT_SENDER 4
#define WG_INIT_EPHEMERAL 8
#define WG_INIT_STATIC 40    /* 32 + 16 tag */
#define WG_INIT_TIMESTAMP 88 /* 12 + 16 tag */
#define WG_INIT_MAC1 116
#define WG_INIT_MAC2 132

/* Handshake response. */
#define WG_RESP_SENDER 4
#define WG_RESP_RECEIVER 8
#define WG_RESP_EPHEMERAL 12
#define WG_RESP_EMPTY 44 /* 0 + 16 tag */
#define WG_RESP_MAC1 60
#define WG_RESP_MAC2 76

/* Cookie reply. */
#define WG_COOKIE_RECEIVER 4
#define WG_COOKIE_NONCE 8
#define WG_COOKIE_DATA 32 /* 16 + 16 tag */

/* Transport data. */
#define WG_DATA_RECEIVER 4
#define WG_DATA_COUNTER 8
#define WG_DATA_PAYLOAD 16

#endif
