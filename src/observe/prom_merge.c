/* Merging of Prometheus expositions (prom_merge.h). Nothing is copied from the input: families and
 * series point into the caller's texts, which outlive the call. Two open-addressing hash tables
 * (family name -> family, series key -> series) keep the work linear in the input. */
#include "observe/prom_merge.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

typedef struct {
  const char *p;
  size_t n;
} slice;

typedef struct {
  bool is_int;
  uint64_t u;
  double d;
} value;

/* Both records start with their hash key, which is how the tables read it (see key_at). */
typedef struct {
  slice name;
  slice type;
  slice help; /* the whole "# HELP ..." line, or n == 0 */
  bool max;
  uint32_t first, last; /* series list, NONE when empty */
} family;

typedef struct {
  slice key;
  uint32_t family, next;
  value v;
} series;

typedef struct {
  uint32_t hash, idx; /* idx NONE: free */
} slot;

typedef struct {
  slot *slots;
  size_t cap, used; /* cap: 0 or a power of two, at most half used */
} table;

typedef struct {
  family *fams;
  size_t n_fams, cap_fams;
  series *sers;
  size_t n_sers, cap_sers;
  table fam_tab, ser_tab;
  const char *const *max_families;
  size_t skipped;
  bool oom;
} merger;

/* Per text: where its samples go, and a # HELP line waiting for its # TYPE line. */
typedef struct {
  uint32_t family; /* of the latest # TYPE line; NONE before any or after a skipped one */
  slice help_name, help_line;
} text_state;

_Static_assert(offsetof(family, name) == 0, "tables read the key at offset 0");
_Static_assert(offsetof(series, key) == 0, "tables read the key at offset 0");

static bool same(slice a, slice b) { return a.n == b.n && (!a.n || !memcmp(a.p, b.p, a.n)); }

static bool starts_with(slice s, const char *prefix) {
  size_t n = strlen(prefix);
  return s.n >= n && !memcmp(s.p, prefix, n);
}

static bool is_literal(slice s, const char *lit) {
  return s.n == strlen(lit) && !memcmp(s.p, lit, s.n);
}

/* ---- hash tables ---- */

static uint32_t hash_of(slice s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < s.n; i++) h = (h ^ (unsigned char)s.p[i]) * 16777619u;
  return h;
}

static slice key_at(const void *records, size_t stride, uint32_t idx) {
  return *(const slice *)((const char *)records + (size_t)idx * stride);
}

/* The slot holding key, or the free slot where it would go (the table is never full). */
static slot *table_find(const table *t, const void *records, size_t stride, slice key, uint32_t h) {
  size_t mask = t->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    slot *s = &t->slots[i];
    if (s->idx == NONE) return s;
    if (s->hash == h && same(key_at(records, stride, s->idx), key)) return s;
  }
}

static bool table_grow(table *t) {
  size_t cap = t->cap ? t->cap * 2 : 64;
  slot *slots = malloc(cap * sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < cap; i++) slots[i].idx = NONE;
  for (size_t i = 0; i < t->cap; i++) {
    if (t->slots[i].idx == NONE) continue;
    size_t j = t->slots[i].hash & (cap - 1);
    while (slots[j].idx != NONE) j = (j + 1) & (cap - 1);
    slots[j] = t->slots[i];
  }
  free(t->slots);
  t->slots = slots;
  t->cap = cap;
  return true;
}

/* Room for one more entry; false (and m->oom) when memory ran out. */
static bool table_reserve(merger *m, table *t) {
  if ((t->used + 1) * 2 <= t->cap) return true;
  if (table_grow(t)) return true;
  m->oom = true;
  return false;
}

/* arr itself, or a larger copy, for one more element of elem bytes; NULL (and m->oom) if none. */
static void *array_reserve(merger *m, void *arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return arr;
  size_t c = *cap ? *cap * 2 : 64;
  void *p = realloc(arr, c * elem);
  if (!p) {
    m->oom = true;
    return NULL;
  }
  *cap = c;
  return p;
}

/* ---- syntax ---- */

static bool name_char(char c, bool first, bool label) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return !label;
  return !first && c >= '0' && c <= '9';
}

/* The end of the (metric or label) name starting at s.p[i]; i when there is none. */
static size_t name_end(slice s, size_t i, bool label) {
  size_t start = i;
  while (i < s.n && name_char(s.p[i], i == start, label)) i++;
  return i;
}

/* The closing quote of a label value whose text starts at s.p[i], or s.n if there is none or an
 * escape is not \\, \" or \n. */
static size_t label_value_end(slice s, size_t i) {
  for (; i < s.n && s.p[i] != '"'; i++) {
    if (s.p[i] != '\\') continue;
    if (++i == s.n) return s.n;
    if (s.p[i] != '\\' && s.p[i] != '"' && s.p[i] != 'n') return s.n;
  }
  return i;
}

/* name or name{label="value",...} (a trailing comma allowed), and nothing more. */
static bool valid_series_key(slice k) {
  size_t i = name_end(k, 0, false);
  if (i == 0) return false;
  if (i == k.n) return true;
  if (k.p[i++] != '{') return false;
  while (i < k.n && k.p[i] != '}') {
    size_t j = name_end(k, i, true);
    if (j == i || j + 1 >= k.n || k.p[j] != '=' || k.p[j + 1] != '"') return false;
    i = label_value_end(k, j + 2);
    if (i == k.n) return false;
    i++; /* the closing quote */
    if (i < k.n && k.p[i] == ',')
      i++;
    else if (i < k.n && k.p[i] != '}')
      return false;
  }
  return i + 1 == k.n;
}

static bool valid_metric_name(slice s) { return s.n > 0 && name_end(s, 0, false) == s.n; }

static bool valid_type(slice t) {
  return is_literal(t, "counter") || is_literal(t, "gauge") || is_literal(t, "histogram") ||
         is_literal(t, "untyped");
}

static uint64_t parse_u64_saturating(slice s) {
  uint64_t u = 0;
  for (size_t i = 0; i < s.n; i++) {
    unsigned d = (unsigned)(s.p[i] - '0');
    u = u > (UINT64_MAX - d) / 10 ? UINT64_MAX : u * 10 + d;
  }
  return u;
}

static bool all_digits(slice s) {
  for (size_t i = 0; i < s.n; i++)
    if (s.p[i] < '0' || s.p[i] > '9') return false;
  return s.n > 0;
}

static bool parse_value(slice s, value *v) {
  if (all_digits(s)) {
    *v = (value){.is_int = true, .u = parse_u64_saturating(s)};
    return true;
  }
  char buf[PROM_MERGE_MAX_LINE + 1];
  /* strtod would skip leading white space; a value never has any. */
  if (!s.n || s.n >= sizeof buf || isspace((unsigned char)s.p[0])) return false;
  memcpy(buf, s.p, s.n);
  buf[s.n] = '\0';
  char *end;
  *v = (value){.is_int = false, .d = strtod(buf, &end)};
  return end == buf + s.n;
}

/* ---- merging ---- */

static double as_double(value v) { return v.is_int ? (double)v.u : v.d; }

static void combine(value *acc, value v, bool max) {
  if (acc->is_int && v.is_int) {
    if (max)
      acc->u = v.u > acc->u ? v.u : acc->u;
    else
      acc->u = acc->u > UINT64_MAX - v.u ? UINT64_MAX : acc->u + v.u;
    return;
  }
  double a = as_double(*acc), b = as_double(v);
  *acc = (value){.is_int = false, .d = max ? fmax(a, b) : a + b};
}

static bool listed(const char *const *names, slice name) {
  for (; names && *names; names++)
    if (is_literal(name, *names)) return true;
  return false;
}

static uint32_t family_add(merger *m, slot *s, uint32_t h, slice name, slice type) {
  if (m->n_fams >= PROM_MERGE_MAX_SERIES) {
    m->skipped++;
    return NONE;
  }
  family *fams = array_reserve(m, m->fams, &m->cap_fams, m->n_fams, sizeof *fams);
  if (!fams) return NONE;
  m->fams = fams;
  bool max = !is_literal(type, "histogram") && listed(m->max_families, name);
  fams[m->n_fams] = (family){.name = name, .type = type, .max = max, .first = NONE, .last = NONE};
  *s = (slot){.hash = h, .idx = (uint32_t)m->n_fams};
  m->fam_tab.used++;
  return (uint32_t)m->n_fams++;
}

/* The family of a # TYPE line, created when new; NONE (counted) when its type differs from the
 * first seen or the limit is reached. */
static uint32_t family_get(merger *m, slice name, slice type) {
  if (!table_reserve(m, &m->fam_tab)) return NONE;
  uint32_t h = hash_of(name);
  slot *s = table_find(&m->fam_tab, m->fams, sizeof *m->fams, name, h);
  if (s->idx == NONE) return family_add(m, s, h, name, type);
  if (same(m->fams[s->idx].type, type)) return s->idx;
  m->skipped++;
  return NONE;
}

static void series_add(merger *m, slot *s, uint32_t h, uint32_t fam, slice key, value v) {
  if (m->n_sers >= PROM_MERGE_MAX_SERIES) {
    m->skipped++;
    return;
  }
  series *sers = array_reserve(m, m->sers, &m->cap_sers, m->n_sers, sizeof *sers);
  if (!sers) return;
  m->sers = sers;
  uint32_t idx = (uint32_t)m->n_sers++;
  sers[idx] = (series){.key = key, .family = fam, .next = NONE, .v = v};
  family *f = &m->fams[fam];
  if (f->last == NONE)
    f->first = idx;
  else
    sers[f->last].next = idx;
  f->last = idx;
  *s = (slot){.hash = h, .idx = idx};
  m->ser_tab.used++;
}

static void sample_add(merger *m, uint32_t fam, slice key, value v) {
  if (!table_reserve(m, &m->ser_tab)) return;
  uint32_t h = hash_of(key);
  slot *s = table_find(&m->ser_tab, m->sers, sizeof *m->sers, key, h);
  if (s->idx == NONE) {
    series_add(m, s, h, fam, key, v);
    return;
  }
  series *x = &m->sers[s->idx];
  combine(&x->v, v, m->fams[x->family].max);
}

/* ---- lines ---- */

static size_t find_char(slice s, char c) {
  const char *p = memchr(s.p, c, s.n);
  return p ? (size_t)(p - s.p) : s.n;
}

static void on_help(merger *m, text_state *ts, slice line) {
  slice rest = {line.p + 7, line.n - 7};
  slice name = {rest.p, find_char(rest, ' ')};
  if (!valid_metric_name(name)) {
    m->skipped++;
    return;
  }
  if (ts->family != NONE && same(m->fams[ts->family].name, name)) { /* HELP after its TYPE */
    if (!m->fams[ts->family].help.n) m->fams[ts->family].help = line;
    return;
  }
  ts->help_name = name;
  ts->help_line = line;
}

static void on_type(merger *m, text_state *ts, slice line) {
  slice rest = {line.p + 7, line.n - 7};
  size_t sp = find_char(rest, ' ');
  ts->family = NONE;
  if (sp == rest.n) {
    m->skipped++;
    return;
  }
  slice name = {rest.p, sp};
  slice type = {rest.p + sp + 1, rest.n - sp - 1};
  if (!valid_metric_name(name) || !valid_type(type)) {
    m->skipped++;
    return;
  }
  ts->family = family_get(m, name, type);
  if (ts->family != NONE && same(ts->help_name, name) && !m->fams[ts->family].help.n)
    m->fams[ts->family].help = ts->help_line;
  ts->help_name = (slice){0};
}

static void on_sample(merger *m, const text_state *ts, slice line) {
  size_t sp = line.n;
  while (sp > 0 && line.p[sp - 1] != ' ') sp--;
  value v = {0};
  slice key = {line.p, sp ? sp - 1 : 0};
  slice num = {line.p + sp, line.n - sp};
  if (ts->family == NONE || !sp || !valid_series_key(key) || !parse_value(num, &v)) {
    m->skipped++;
    return;
  }
  sample_add(m, ts->family, key, v);
}

static void on_line(merger *m, text_state *ts, slice line) {
  if (!line.n) return;
  if (line.n > PROM_MERGE_MAX_LINE || memchr(line.p, '\0', line.n))
    m->skipped++;
  else if (starts_with(line, "# HELP "))
    on_help(m, ts, line);
  else if (starts_with(line, "# TYPE "))
    on_type(m, ts, line);
  else if (line.p[0] != '#')
    on_sample(m, ts, line);
}

static void merge_text(merger *m, const char *text, size_t len) {
  text_state ts = {.family = NONE};
  for (size_t pos = 0; pos < len && !m->oom;) {
    slice rest = {text + pos, len - pos};
    slice line = {rest.p, find_char(rest, '\n')};
    pos += line.n + 1;
    while (line.n && line.p[line.n - 1] == '\r') line.n--;
    on_line(m, &ts, line);
  }
}

/* ---- output ---- */

static void append_slice(obs_buf *out, slice s) { obs_buf_append(out, s.p, s.n); }

static void write_series(const series *s, obs_buf *out) {
  append_slice(out, s->key);
  if (s->v.is_int) {
    obs_buf_printf(out, " %" PRIu64 "\n", s->v.u);
    return;
  }
  obs_buf_append(out, " ", 1);
  obs_buf_double(out, s->v.d);
  obs_buf_append(out, "\n", 1);
}

static void write_family(const merger *m, const family *f, obs_buf *out) {
  if (f->help.n) {
    append_slice(out, f->help);
    obs_buf_append(out, "\n", 1);
  }
  obs_buf_puts(out, "# TYPE ");
  append_slice(out, f->name);
  obs_buf_append(out, " ", 1);
  append_slice(out, f->type);
  obs_buf_append(out, "\n", 1);
  for (uint32_t i = f->first; i != NONE; i = m->sers[i].next) write_series(&m->sers[i], out);
}

static void merger_free(merger *m) {
  free(m->fams);
  free(m->sers);
  free(m->fam_tab.slots);
  free(m->ser_tab.slots);
}

int prom_merge(const char *const *texts, const size_t *lens, size_t n,
               const char *const *max_families, obs_buf *out) {
  merger m = {.max_families = max_families};
  for (size_t i = 0; i < n && !m.oom; i++)
    if (texts[i]) merge_text(&m, texts[i], lens[i]);
  for (size_t i = 0; i < m.n_fams && !m.oom; i++) write_family(&m, &m.fams[i], out);
  bool failed = m.oom || out->failed;
  merger_free(&m);
  if (failed) return -1;
  return m.skipped > INT_MAX ? INT_MAX : (int)m.skipped;
}
