/* I1..I5 signature-packet templates: a compiler from the tag language (<b HEX>, <r N>, <rc N>,
 * <rd N>, <t>, <c>, <d>, <ds>, <dz N>) to a list of elements, and a renderer. */
#ifndef AWGPROXY_AWG_ITAG_H
#define AWGPROXY_AWG_ITAG_H

#include <stddef.h>
#include <stdint.h>

#include "awg/awg_params.h"
#include "util/rng.h"

/* Everything random or time-dependent comes from here so tests can inject it. */
typedef struct {
  const rng_source *rng;
  uint32_t unix_time;      /* for <t> */
  uint32_t packet_counter; /* for <c>: datagrams this device has sent */
} awg_render_ctx;

/* Compiles text. Returns 0 and sets *out (NULL when the text holds no tag: slot unset,
 * decisions.md #6), or -1 with a message in err naming the offending tag. */
int awg_itemplate_compile(const char *text, awg_itemplate **out, char *err, size_t errlen);
void awg_itemplate_free(awg_itemplate *t);
/* Exact size of every rendering (sizes never depend on randomness). */
size_t awg_itemplate_size(const awg_itemplate *t);
/* The source text as given (for summaries). */
const char *awg_itemplate_text(const awg_itemplate *t);
/* Writes exactly awg_itemplate_size() bytes to buf (cap must be large enough); returns the size. */
size_t awg_itemplate_render(const awg_itemplate *t, const awg_render_ctx *ctx, uint8_t *buf,
                            size_t cap);

#endif
