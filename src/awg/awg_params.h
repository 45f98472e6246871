/* AmneziaWG obfuscation parameters (per device, shared by all peers) and their parsers.
 * Wire behaviour: ../shared/spec/awg-obfuscation.md (amneziawg-go e796d47) and
 * docs/decisions.md for where we differ compatibly. */
#ifndef AWGPROXY_AWG_PARAMS_H
#define AWGPROXY_AWG_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "awg/awg3_params.h"

/* Limits we enforce at load time (decisions.md #4). */
#define AWG_MAX_PREHANDSHAKE_DATAGRAMS 127 /* I-packets + junk, the INIT makes 128 */
#define AWG_MAX_DATAGRAM 65535             /* any single datagram we would build */
#define AWG_MAX_PADDING 65535              /* S1..S4 upper bound (AWG 3 parses them as uint16) */
#define AWG_NUM_I 5

typedef struct {
  uint32_t start, end; /* inclusive */
} awg_hrange;

typedef struct awg_itemplate awg_itemplate; /* compiled I-packet template (awg/itag.h) */

typedef struct {
  uint32_t jc, jmin, jmax;     /* 0 = off / unset (decisions.md #5) */
  uint32_t s[4];               /* S1..S4 prefix paddings */
  awg_hrange h[4];             /* H1..H4; defaults 1,2,3,4 */
  awg_itemplate *i[AWG_NUM_I]; /* NULL = slot unset (decisions.md #6) */
  awg3_params v3;              /* AWG 3.x additions, all off by default */
} awg_params;

/* Defaults = plain WireGuard. */
void awg_params_init(awg_params *p);
void awg_params_free(awg_params *p);
bool awg_params_is_plain(const awg_params *p);

/* "A" or "A-B", unsigned decimal, A <= B. On error writes a message to err and returns -1. */
int awg_hrange_parse(const char *text, awg_hrange *out, char *err, size_t errlen);
/* Prints "A" or "A-B"; returns snprintf's result. */
int awg_hrange_format(awg_hrange r, char *buf, size_t len);
bool awg_hrange_overlap(awg_hrange a, awg_hrange b);
bool awg_hrange_contains(awg_hrange r, uint32_t v);

#endif
