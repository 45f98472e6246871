/* AmneziaWG 3.x header protection (spec §3-§5): a ChaCha20 keystream (RFC 8439, block counter 0),
 * keyed by the device's HeaderProtectionKey, with the datagram's first 12 bytes (the start of the
 * random S prefix) as nonce, XORed over whole handshake/cookie messages and over the 16-byte
 * transport header. No integrity: authenticity still comes from mac1 and the AEAD.
 * Also the receive-side classification under AWG 3.x (mask and random trailers).
 * Pure code, no I/O. */
#ifndef AWGPROXY_AWG_AWG3_MASK_H
#define AWGPROXY_AWG_AWG3_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "awg/obfs.h"

/* XORs keystream bytes [0, n) over datagram[offset, offset + n), nonce = datagram[0:12].
 * Masking and unmasking are the same operation. No-op when header protection is off.
 * The caller guarantees offset >= 12 (validation: S_k >= 12) and the bounds. */
void awg3_mask(const awg3_params *p, uint8_t *datagram, size_t offset, size_t n);

/* The first four keystream bytes of this datagram (the "type mask", spec R16); zeros when header
 * protection is off. len must be >= 12. */
void awg3_type_mask(const awg3_params *p, const uint8_t *datagram, uint8_t out[4]);

/* Classifies a received datagram as amneziawg-go 1b86b2a does (spec R23) and unmasks the matched
 * message in place. When neither header protection nor random trailers are on this is exactly
 * awg_classify (the AWG 2.0 wire, including its bare-keepalive rule). Otherwise: L < 32 is
 * unknown; classes are tried in the order init, response, cookie, transport; a handshake class
 * matches on its exact size, or on any larger size when RandomTrailers is on (the trailer is
 * cut off: *msg_len is the bare message); transport needs L >= S4 + 32; the type, unmasked with
 * the datagram's type mask, must lie in the class's H range. On a match the message (whole
 * handshake, or the 16-byte transport header) is unmasked in d. Out pointers as awg_classify. */
awg_msg_kind awg3_classify(const awg_params *p, uint8_t *d, size_t len, const uint8_t **msg,
                           size_t *msg_len, int *bare_keepalive);

#endif
