/* Diagnostics collected while loading a config: errors and warnings with line numbers. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

#define DIAG_MAX 200 /* beyond this, more messages would not help anyone */

void diag_add(diag_list *d, diag_kind kind, int line, const char *fmt, ...) {
  if (kind == DIAG_ERROR)
    d->errors++;
  else
    d->warnings++;
  if (d->n >= DIAG_MAX) return;
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 8;
    diag *items = realloc(d->items, cap * sizeof *items);
    if (!items) return;
    d->items = items;
    d->cap = cap;
  }
  diag *it = &d->items[d->n++];
  it->kind = kind;
  it->line = line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->msg, sizeof it->msg, fmt, ap);
  va_end(ap);
}

void diag_list_free(diag_list *d) {
  free(d->items);
  memset(d, 0, sizeof *d);
}

void diag_list_print(const diag_list *d, const char *path, FILE *out) {
  for (size_t i = 0; i < d->n; i++) {
    const diag *it = &d->items[i];
    const char *kind = it->kind == DIAG_ERROR ? "error" : "warning";
    if (it->line > 0)
      fprintf(out, "%s:%d: %s: %s\n", path, it->line, kind, it->msg);
    else
      fprintf(out, "%s: %s: %s\n", path, kind, it->msg);
  }
  if (d->n < d->errors + d->warnings)
    fprintf(out, "%s: … and %zu more\n", path, d->errors + d->warnings - d->n);
}
