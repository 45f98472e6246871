/* AmneziaWG 3.x sizes on send (spec §6-§7): random trailers after handshake messages, and the
 * zero bytes inside transport plaintexts (ContentPaddingAddition, or the random-trailer rule when
 * that is off) that replace WireGuard's 16-byte alignment. Pure code, no I/O. */
#ifndef AWGPROXY_AWG_AWG3_PAD_H
#define AWGPROXY_AWG_AWG3_PAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "awg/awg_params.h"
#include "util/rng.h"

/* Trailer length after a handshake datagram of `base` bytes (S_k + message) for a peer whose
 * window is `window` (spec R38; cookie replies pass AWG3_UDP_WINDOW, R40): uniform in
 * [0, window - base - 1], 0 when window <= base or RandomTrailers is off. Never more than
 * `room` (what the caller's buffer holds after the message). */
size_t awg3_trailer_len(const awg3_params *p, size_t base, uint32_t window, size_t room,
                        const rng_source *rng);

/* Whether AWG 3.x decides the transport padding (ContentPaddingAddition or RandomTrailers set).
 * If so, *padded_len = pt_len + the zero bytes to append inside the AEAD plaintext:
 *  - ContentPaddingAddition [lo, hi]: a fresh draw, capped so that the plaintext stays within
 *    the MTU (spec R29-R31);
 *  - else RandomTrailers: uniform in [0, window - (S4 + 32 + pt_len) - 1] (spec R41);
 * and, without header protection, one byte more or less when the datagram would otherwise have
 * a handshake message's exact length (decisions.md #8). Keepalives (pt_len 0) are padded too. */
bool awg3_transport_padded_len(const awg_params *p, size_t pt_len, uint32_t mtu, uint32_t window,
                               const rng_source *rng, size_t *padded_len);

/* The peer's trailer window after sending a transport datagram of this length (spec R36). */
uint32_t awg3_window_after_send(uint32_t window, size_t datagram_len);

#endif
