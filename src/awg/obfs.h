/* The AWG obfuscation layer on the datagram path: classification and de-padding on receive,
 * header draw, prefix padding and pre-handshake datagrams (I1..I5, junk) on send.
 * Pure code, no I/O. */
#ifndef AWGPROXY_AWG_OBFS_H
#define AWGPROXY_AWG_OBFS_H

#include <stddef.h>
#include <stdint.h>

#include "awg/awg_params.h"
#include "awg/itag.h"
#include "util/rng.h"

typedef enum {
  AWG_MSG_UNKNOWN = 0,
  AWG_MSG_INIT = 1,
  AWG_MSG_RESPONSE = 2,
  AWG_MSG_COOKIE = 3,
  AWG_MSG_TRANSPORT = 4,
} awg_msg_kind;

/* WireGuard message sizes (unpadded). */
#define WG_INIT_SIZE 148
#define WG_RESPONSE_SIZE 92
#define WG_COOKIE_SIZE 64
#define WG_TRANSPORT_HEADER 16
#define WG_TRANSPORT_MIN 32 /* header + tag: a keepalive */

/* Classifies a received datagram exactly as e796d47 (§4.1): INIT, RESPONSE, COOKIE, TRANSPORT in
 * that order, size exact for 1-3 and >= S4+16 for 4. On a match, msg and msg_len give the stripped
 * WireGuard message inside d. Also accepts the bare 32-byte keepalive of e796d47 senders when
 * S4 > 0 (decisions.md #1): reported as AWG_MSG_TRANSPORT with *msg = d, *msg_len = 32, and
 * *bare_keepalive = true (the caller must then require it to authenticate as a keepalive).
 * A transport match whose stripped length is under 32 is reported as AWG_MSG_UNKNOWN (the
 * reference drops it right after classifying, §4.2). Any of the three out pointers may be NULL;
 * on AWG_MSG_UNKNOWN they are set to NULL / 0 / 0. */
awg_msg_kind awg_classify(const awg_params *p, const uint8_t *d, size_t len, const uint8_t **msg,
                          size_t *msg_len, int *bare_keepalive);

/* A fresh type value for kind (1..4) drawn uniformly from H_kind. */
uint32_t awg_draw_type(const awg_params *p, awg_msg_kind kind, const rng_source *rng);

/* The unpadded WireGuard size of a handshake kind (INIT, RESPONSE, COOKIE); 0 for others. */
size_t awg_handshake_size(awg_msg_kind kind);

/* Padding size S_kind for a message of this kind. */
uint32_t awg_padding(const awg_params *p, awg_msg_kind kind);

/* Writes S_kind random bytes at out (the caller places the WG message right after). */
void awg_fill_padding(const awg_params *p, awg_msg_kind kind, const rng_source *rng, uint8_t *out);

/* Decisions.md #8: given a transport plaintext length already padded to 16 (and capped at MTU by
 * the caller), returns how many extra zero bytes to append (0 or 16, …) so that the datagram length
 * S4 + 32 + padded cannot be classified as INIT/RESPONSE/COOKIE by a receiver with our params. */
size_t awg_transport_extra_padding(const awg_params *p, size_t padded_len);

/* True if a transport datagram of this length could be taken for a handshake message by a
 * receiver with our params (the lengths awg_transport_extra_padding steps over). */
bool awg_transport_len_ambiguous(const awg_params *p, uint64_t datagram_len);

/* Pre-handshake datagrams sent before each initiation: I1..I5 (set slots, in order) then Jc junk.
 * A caller-provided arena holds the bytes. */
typedef struct {
  uint8_t *data;
  size_t len;
} awg_datagram;

/* Upper bound on the arena size needed by awg_build_prehandshake for these params. */
size_t awg_prehandshake_max_bytes(const awg_params *p);
size_t awg_prehandshake_count(const awg_params *p);
/* Fills out[] (capacity out_cap) with views into arena; returns the count, or -1 if the arena or
 * out[] is too small. ctx supplies randomness, time and the <c> counter: the i-th datagram of the
 * list (from 0) renders <c> as ctx->packet_counter + i, i.e. counting the earlier ones of the
 * batch as sent. Zero-length datagrams may have data == NULL when arena is NULL. */
int awg_build_prehandshake(const awg_params *p, const awg_render_ctx *ctx, uint8_t *arena,
                           size_t arena_len, awg_datagram *out, size_t out_cap);

/* Validation at config load (spec §7 plus decisions.md #4/#5): fills err with a message naming the
 * parameter and returns -1 on the first problem. Checks S1..S4 (padded datagram <= 65535), H1..H4
 * pairwise disjoint, Jmin <= Jmax and Jmax <= 65535 when Jc > 0, I sizes, and (#set I) + Jc <= 127.
 * MTU-dependent checks (S4 + 32 + MTU, decisions.md #7) are the caller's. */
int awg_params_validate(const awg_params *p, char *err, size_t errlen);

#endif
