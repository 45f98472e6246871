/* A growable text buffer for HTTP responses, metrics pages and JSON documents. Allocation failure
 * is sticky: later appends do nothing and `failed` stays set, so callers check once at the end. */
#ifndef AWGPROXY_OBSERVE_BUF_H
#define AWGPROXY_OBSERVE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char *data; /* NUL-terminated while len > 0 */
  size_t len, cap;
  bool failed;
} obs_buf;

void obs_buf_init(obs_buf *b);
void obs_buf_free(obs_buf *b);
void obs_buf_reset(obs_buf *b); /* len = 0, keeps the memory */
void obs_buf_append(obs_buf *b, const char *s, size_t n);
void obs_buf_puts(obs_buf *b, const char *s);
void obs_buf_printf(obs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal: quoted, with ", \ and control bytes escaped (\n, \u00XX). Bytes
 * >= 0x80 pass through (callers only pass UTF-8 or ASCII). */
void obs_buf_json_string(obs_buf *b, const char *s);
/* A double in the shortest form that reads back exactly ("0.25", "1e-05", "1700000000.123");
 * NaN and infinities as Prometheus writes them ("NaN", "+Inf", "-Inf"). */
void obs_format_double(double v, char out[40]);
void obs_buf_double(obs_buf *b, double v);

#endif
