/* Random bytes that start a datagram (S1-S4 prefixes, junk packets) must not look, by accident,
 * like the first packet of a protocol that common classifiers decide on from one packet: such a
 * flow gets a label it does not deserve (nDPI 4.2 labels ~12 % of short AmneziaWG sessions RTP,
 * issue 14), and a label is a handle for a censor. The rules below are the single-packet tests
 * of nDPI's dissectors for UDP that random bytes can pass:
 *
 *   RTP / RTCP   version 2 in byte 0 (0x80-0xBF), and byte 1 & 0x7F a static or dynamic RTP
 *                payload type (0-34, 96-127) or an RTCP packet type (byte 1 = 192-223)
 *   STUN         the RFC 5389 magic cookie 0x2112A442 at bytes 4-7, or a classic (RFC 3489)
 *                message: first two bits 00 and a length field (bytes 2-3) of datagram - 20
 *   DTLS         a record content type (20-25) in byte 0 and 0xFE in byte 1 (DTLS 1.0/1.2/1.3)
 *   QUIC         a long header (0xC0 bits) with version 1, 2 or a draft (0xFF0000xx) at bytes 1-4
 *   WireGuard    a message type 1-4 in byte 0 followed by three zero bytes
 *   Skype/Teams  16 bytes or more with 0x02 in byte 2 (byte 0 neither 0x30 nor 0x00), or 3 bytes
 *                with 0xD in the low nibble of byte 2 (found by bench/dpi: the one accidental
 *                label left after the rules above was junk starting 0f b4 02)
 *
 * The sender redraws the random bytes while a rule matches. It does so where classifiers look:
 * the handshake datagrams and junk (every time), and the first AWG_SCREEN_DATAGRAMS transport
 * datagrams after each handshake. Past that, nDPI has given up on the flow (it stops after
 * ~32 packets), and screening every datagram would make the first bytes of long flows visibly
 * non-uniform (about 1 value in 200 would never occur), itself a statistical mark. */
#ifndef AWGPROXY_AWG_FIRST_BYTES_H
#define AWGPROXY_AWG_FIRST_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

#define AWG_SCREEN_DATAGRAMS 32
#define AWG_SCREEN_TRIES 16 /* redraws before giving up (the odds of 16 misses are < 1e-30) */

/* True when the datagram d (len bytes) passes one of the rules above. */
bool awg_first_bytes_match(const uint8_t *d, size_t len);

/* Fills d[0..n) with random bytes, drawn again while the datagram (len bytes, the rest already
 * written) matches a rule. n = 0 leaves it as it is. */
void awg_fill_screened(const rng_source *rng, uint8_t *d, size_t n, size_t len);

#endif
