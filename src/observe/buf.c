#include "observe/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void obs_buf_init(obs_buf *b) { memset(b, 0, sizeof *b); }

void obs_buf_free(obs_buf *b) {
  free(b->data);
  obs_buf_init(b);
}

void obs_buf_reset(obs_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

static bool reserve(obs_buf *b, size_t extra) {
  if (b->failed) return false;
  if (extra >= (size_t)-1 - b->len) return b->failed = true, false;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > (size_t)-1 / 2 ? need : cap * 2;
  char *d = realloc(b->data, cap);
  if (!d) return b->failed = true, false;
  b->data = d;
  b->cap = cap;
  return true;
}

void obs_buf_append(obs_buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void obs_buf_puts(obs_buf *b, const char *s) { obs_buf_append(b, s, strlen(s)); }

void obs_buf_printf(obs_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) return obs_buf_append(b, small, (size_t)n);
  if (!reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void obs_buf_json_string(obs_buf *b, const char *s) {
  obs_buf_append(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      obs_buf_append(b, esc, 2);
    } else if (*p == '\n') {
      obs_buf_append(b, "\\n", 2);
    } else if (*p < 0x20 || *p == 0x7f) {
      obs_buf_printf(b, "\\u%04x", *p);
    } else {
      obs_buf_append(b, (const char *)p, 1);
    }
  }
  obs_buf_append(b, "\"", 1);
}

void obs_format_double(double v, char out[40]) {
  if (isnan(v)) return (void)snprintf(out, 40, "NaN");
  if (isinf(v)) return (void)snprintf(out, 40, "%s", v > 0 ? "+Inf" : "-Inf");
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, 40, "%.*g", prec, v);
    if (strtod(out, NULL) == v) break;
  }
}

void obs_buf_double(obs_buf *b, double v) {
  char s[40];
  obs_format_double(v, s);
  obs_buf_puts(b, s);
}
