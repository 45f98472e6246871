/* The record in which a server worker hands a classified datagram to the sibling that owns its
 * peer (device/tunnel_shard.c), over a unix datagram socket:
 *
 *   u8 kind | u8 bare | u16 address length (BE) | u32 wire length (BE) | u16 local port index
 *   (BE, dgram_endpoint.sock: which of the server's ports it came in on) | address | message
 *
 * Pure encoding and checking, no I/O: the parser sees what a sibling process wrote, and a bug
 * there must not become one here (fuzz/fuzz_worker_handoff.c). */
#ifndef AWGPROXY_DEVICE_TUNNEL_HANDOFF_H
#define AWGPROXY_DEVICE_TUNNEL_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "awg/obfs.h"
#include "device/udp_io.h"

#define TUN_HANDOFF_HEADER 10

typedef struct {
  awg_msg_kind kind;   /* INIT..TRANSPORT */
  bool bare;           /* an unpadded transport datagram (awg/obfs.h) */
  dgram_endpoint from; /* an IPv4 or IPv6 socket address, and our port it came in on */
  size_t wire_len;     /* the datagram's length as received (for the byte counters) */
  const uint8_t *msg;
  size_t len;
} tun_handoff;

/* The fixed header for h into out[TUN_HANDOFF_HEADER]; the address and the message follow. */
void tun_handoff_header(const tun_handoff *h, uint8_t out[TUN_HANDOFF_HEADER]);
/* Checks and splits a record of n bytes; out->msg points into buf. 0, or -1 when it is not a
 * well-formed record (unknown kind, an address that is not IPv4/IPv6 of its exact size, short). */
int tun_handoff_parse(const uint8_t *buf, size_t n, tun_handoff *out);

#endif
