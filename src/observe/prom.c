#include "observe/prom.h"

#include <inttypes.h>
#include <string.h>

static bool name_char(char c, bool first, bool label) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return !label;
  return !first && c >= '0' && c <= '9';
}

bool prom_valid_name(const char *name, bool label) {
  if (!name || !*name) return false;
  if (label && name[0] == '_' && name[1] == '_') return false; /* reserved */
  for (const char *p = name; *p; p++)
    if (!name_char(*p, p == name, label)) return false;
  return true;
}

void prom_header(obs_buf *b, const char *name, const char *type, const char *help) {
  obs_buf_printf(b, "# HELP %s ", name);
  for (const char *p = help; *p; p++) {
    if (*p == '\\')
      obs_buf_puts(b, "\\\\");
    else if (*p == '\n')
      obs_buf_puts(b, "\\n");
    else
      obs_buf_append(b, p, 1);
  }
  obs_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

void prom_escape_label_value(obs_buf *b, const char *v) {
  for (const char *p = v; *p; p++) {
    if (*p == '\\')
      obs_buf_puts(b, "\\\\");
    else if (*p == '"')
      obs_buf_puts(b, "\\\"");
    else if (*p == '\n')
      obs_buf_puts(b, "\\n");
    else
      obs_buf_append(b, p, 1);
  }
}

static void series(obs_buf *b, const char *name, const char *suffix, const prom_label *labels,
                   size_t n, const char *le) {
  obs_buf_puts(b, name);
  obs_buf_puts(b, suffix);
  if (!n && !le) return;
  obs_buf_puts(b, "{");
  for (size_t i = 0; i < n; i++) {
    obs_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
    prom_escape_label_value(b, labels[i].value ? labels[i].value : "");
    obs_buf_puts(b, "\"");
  }
  if (le) obs_buf_printf(b, "%sle=\"%s\"", n ? "," : "", le);
  obs_buf_puts(b, "}");
}

void prom_sample(obs_buf *b, const char *name, const prom_label *labels, size_t n_labels,
                 double value) {
  series(b, name, "", labels, n_labels, NULL);
  obs_buf_puts(b, " ");
  obs_buf_double(b, value);
  obs_buf_puts(b, "\n");
}

void prom_sample_u64(obs_buf *b, const char *name, const prom_label *labels, size_t n_labels,
                     uint64_t value) {
  series(b, name, "", labels, n_labels, NULL);
  obs_buf_printf(b, " %" PRIu64 "\n", value);
}

void prom_histogram(obs_buf *b, const char *name, const prom_label *labels, size_t n_labels,
                    const obs_hist *h) {
  for (size_t i = 0; i <= h->n; i++) {
    char le[40] = "+Inf";
    if (i < h->n) obs_format_double(h->bounds[i], le);
    series(b, name, "_bucket", labels, n_labels, le);
    obs_buf_printf(b, " %" PRIu64 "\n", obs_hist_cumulative(h, i));
  }
  series(b, name, "_sum", labels, n_labels, NULL);
  obs_buf_puts(b, " ");
  obs_buf_double(b, h->sum);
  obs_buf_puts(b, "\n");
  series(b, name, "_count", labels, n_labels, NULL);
  obs_buf_printf(b, " %" PRIu64 "\n", h->count);
}
