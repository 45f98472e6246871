/* I-packet tag language (spec §6, decisions.md #2, #3, #4, #6).
 *
 * The scan is deliberately as lenient as the reference so that every AmneziaWG config loads:
 * text outside <...> is ignored, words after the argument are ignored, and a tag body may contain
 * '<'. Unlike the reference we accept <c>, reject negative sizes and cap the packet size, and we
 * report every error in one message instead of stopping at the first. */
#include "awg/itag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

typedef enum {
  EL_NONE,    /* <d>, <ds>: the data payload of an I-packet is empty, so they emit nothing */
  EL_BYTES,   /* <b HEX> */
  EL_RANDOM,  /* <r N> */
  EL_LETTERS, /* <rc N> */
  EL_DIGITS,  /* <rd N> */
  EL_TIME,    /* <t> */
  EL_COUNTER, /* <c> */
  EL_ZEROS,   /* <dz N> */
} el_kind;

typedef enum { ARG_NONE, ARG_HEX, ARG_COUNT } arg_kind;

typedef struct {
  el_kind kind;
  size_t len;
  uint8_t *data; /* EL_BYTES only */
} element;

struct awg_itemplate {
  char *text;
  size_t size;
  element *els;
  size_t n_els, cap_els;
};

static const struct {
  const char *name;
  el_kind kind;
  arg_kind arg;
} kTags[] = {
    {"b", EL_BYTES, ARG_HEX},     {"r", EL_RANDOM, ARG_COUNT}, {"rc", EL_LETTERS, ARG_COUNT},
    {"rd", EL_DIGITS, ARG_COUNT}, {"t", EL_TIME, ARG_NONE},    {"c", EL_COUNTER, ARG_NONE},
    {"d", EL_NONE, ARG_NONE},     {"ds", EL_NONE, ARG_NONE},   {"dz", EL_ZEROS, ARG_COUNT},
};

#define TAG_LIST "b, r, rc, rd, t, c, d, ds, dz"
#define QUOTE_MAX 40                  /* user text quoted in messages is cut to this many bytes */
#define QUOTE_BUF (QUOTE_MAX * 4 + 8) /* each byte may become \xNN, plus "..." */
#define TAG_BUF (2 * QUOTE_BUF + 4)   /* "<name arg>" */

typedef struct {
  const char *p;
  size_t n;
} word;

typedef struct {
  awg_itemplate *t;
  char *err;
  size_t errlen, errpos;
  bool any_error;
  bool size_reported; /* the over-size error is given once, for the tag that crossed the limit */
} compiler;

/* ---- error reporting ---------------------------------------------------------------------- */

static void add_error(compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends one message to err, separated by "; " from the previous ones; truncates safely. */
static void add_error(compiler *c, const char *fmt, ...) {
  const char *sep = c->any_error ? "; " : "";
  c->any_error = true;
  if (c->err == NULL || c->errpos + 1 >= c->errlen) return;
  int n = snprintf(c->err + c->errpos, c->errlen - c->errpos, "%s", sep);
  if (n > 0) c->errpos += (size_t)n;
  if (c->errpos + 1 >= c->errlen) {
    c->errpos = c->errlen - 1;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  n = vsnprintf(c->err + c->errpos, c->errlen - c->errpos, fmt, ap);
  va_end(ap);
  if (n > 0) c->errpos += (size_t)n;
  if (c->errpos >= c->errlen) c->errpos = c->errlen - 1;
}

/* Copies user text into a message: non-printable bytes as \xNN, long text cut with "...". */
static const char *quote(char *out, size_t cap, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && i < QUOTE_MAX && o + 5 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch < 0x7f) {
      out[o++] = (char)ch;
    } else {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
  }
  if (n > QUOTE_MAX && o + 4 < cap) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
  return out;
}

/* Renders a tag as the user wrote it, "<name>" or "<name arg>", for messages. */
static const char *show_tag(char *out, size_t cap, word name, word arg) {
  char qn[QUOTE_BUF], qa[QUOTE_BUF];
  quote(qn, sizeof qn, name.p, name.n);
  quote(qa, sizeof qa, arg.p, arg.n);
  snprintf(out, cap, "<%s%s%s>", qn, arg.n ? " " : "", qa);
  return out;
}

/* ---- scanning ----------------------------------------------------------------------------- */

/* Length of the whitespace character at s (Go's unicode.IsSpace, as strings.Fields splits the
 * reference's tags; a config pasted from a web page may hold a no-break space), or 0. */
static size_t space_len(const unsigned char *s, const unsigned char *end) {
  size_t avail = (size_t)(end - s);
  if (*s == ' ' || (*s >= '\t' && *s <= '\r')) return 1;
  if (avail >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2; /* NEL, NBSP */
  if (avail < 3) return 0;
  if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3; /* U+1680 */
  if (s[0] == 0xe2 && s[1] == 0x80) {
    unsigned char b = s[2];
    if (b <= 0x8a || b == 0xa8 || b == 0xa9 || b == 0xaf) return 3; /* U+2000-200A,2028/9,202F */
    return 0;
  }
  if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3; /* U+205F */
  if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
  return 0;
}

/* Splits body into whitespace-separated words; keeps the first max_words, returns the count. */
static size_t split_words(const char *body, size_t n, word *words, size_t max_words) {
  const unsigned char *s = (const unsigned char *)body, *end = s + n;
  size_t count = 0;
  while (s < end) {
    size_t sp = space_len(s, end);
    if (sp) {
      s += sp;
      continue;
    }
    const unsigned char *start = s;
    while (s < end && space_len(s, end) == 0) s++;
    if (count < max_words) words[count] = (word){(const char *)start, (size_t)(s - start)};
    count++;
  }
  return count;
}

/* ---- building ----------------------------------------------------------------------------- */

static int push_element(compiler *c, el_kind kind, size_t len, uint8_t *data) {
  awg_itemplate *t = c->t;
  if (t->n_els == t->cap_els) {
    size_t cap = t->cap_els ? t->cap_els * 2 : 8;
    element *els = realloc(t->els, cap * sizeof *els);
    if (els == NULL) {
      free(data);
      add_error(c, "out of memory while compiling the template");
      return -1;
    }
    t->els = els;
    t->cap_els = cap;
  }
  t->els[t->n_els++] = (element){kind, len, data};
  return 0;
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* <b HEX>: one lowercase "0x" is stripped (as the reference); then pairs of hex digits. */
static int parse_hex(compiler *c, const char *tag, word arg, uint8_t **out, size_t *out_len) {
  const char *h = arg.p;
  size_t n = arg.n;
  if (n >= 2 && h[0] == '0' && h[1] == 'x') h += 2, n -= 2;
  if (n == 0) {
    add_error(c, "%s: missing hex bytes; write e.g. <b 0xf6ab>", tag);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (hex_value(h[i]) < 0) {
      char q[8];
      const char *hint = (h == arg.p && n >= 2 && h[0] == '0' && h[1] == 'X')
                             ? " (write the prefix as lowercase 0x)"
                             : "";
      add_error(c, "%s: '%s' is not a hex digit%s", tag, quote(q, sizeof q, h + i, 1), hint);
      return -1;
    }
  }
  if (n % 2) {
    add_error(c, "%s: odd number of hex digits (%zu); every byte needs two", tag, n);
    return -1;
  }
  uint8_t *bytes = malloc(n / 2);
  if (bytes == NULL) {
    add_error(c, "out of memory while compiling the template");
    return -1;
  }
  for (size_t i = 0; i < n / 2; i++)
    bytes[i] = (uint8_t)(hex_value(h[2 * i]) << 4 | hex_value(h[2 * i + 1]));
  *out = bytes;
  *out_len = n / 2;
  return 0;
}

/* <r N> etc.: a decimal count with an optional sign (as the reference's Atoi), 0..65535. */
static int parse_count(compiler *c, const char *tag, const char *name, word arg, size_t *out) {
  if (arg.n == 0) {
    add_error(c, "%s: missing size; write e.g. <%s 16>", tag, name);
    return -1;
  }
  size_t i = (arg.p[0] == '+' || arg.p[0] == '-') ? 1 : 0;
  bool negative = arg.p[0] == '-';
  if (i == arg.n) {
    add_error(c, "%s: the size is not a decimal number", tag);
    return -1;
  }
  uint64_t v = 0;
  for (; i < arg.n; i++) {
    if (arg.p[i] < '0' || arg.p[i] > '9') {
      add_error(c, "%s: the size is not a decimal number", tag);
      return -1;
    }
    if (v <= AWG_MAX_DATAGRAM) v = v * 10 + (uint64_t)(arg.p[i] - '0');
  }
  if (negative && v != 0) {
    add_error(c, "%s: the size cannot be negative", tag);
    return -1;
  }
  if (v > AWG_MAX_DATAGRAM) {
    add_error(c, "%s: the size is above the %d-byte datagram limit", tag, AWG_MAX_DATAGRAM);
    return -1;
  }
  *out = (size_t)v;
  return 0;
}

/* Adds len bytes to the packet size; reports (once) the tag that pushes it past the limit. */
static void add_size(compiler *c, const char *tag, size_t len) {
  size_t before = c->t->size;
  c->t->size = before + len; /* both <= limit + 65535: no overflow */
  if (c->t->size > AWG_MAX_DATAGRAM) {
    if (!c->size_reported)
      add_error(c,
                "%s makes the packet %zu bytes, above the %d-byte datagram limit; use smaller "
                "sizes",
                tag, c->t->size, AWG_MAX_DATAGRAM);
    c->size_reported = true;
    c->t->size = AWG_MAX_DATAGRAM + 1; /* keep the tally bounded */
  }
}

static void compile_tag(compiler *c, const char *body, size_t n) {
  word words[2] = {{"", 0}, {"", 0}};
  char tag[TAG_BUF];
  if (split_words(body, n, words, 2) == 0) {
    add_error(c, "empty tag <>: write a tag name (" TAG_LIST ")");
    return;
  }
  show_tag(tag, sizeof tag, words[0], words[1]);
  for (size_t k = 0; k < sizeof kTags / sizeof kTags[0]; k++) {
    if (strlen(kTags[k].name) != words[0].n || memcmp(kTags[k].name, words[0].p, words[0].n))
      continue;
    uint8_t *data = NULL;
    size_t len = 0;
    if (kTags[k].arg == ARG_HEX && parse_hex(c, tag, words[1], &data, &len)) return;
    if (kTags[k].arg == ARG_COUNT && parse_count(c, tag, kTags[k].name, words[1], &len)) return;
    if (kTags[k].kind == EL_TIME || kTags[k].kind == EL_COUNTER) len = 4;
    if (push_element(c, kTags[k].kind, len, data) == 0) add_size(c, tag, len);
    return;
  }
  char qn[QUOTE_BUF];
  add_error(c, "unknown tag <%s> (tag names are lowercase: " TAG_LIST ")",
            quote(qn, sizeof qn, words[0].p, words[0].n));
}

/* ---- public API --------------------------------------------------------------------------- */

void awg_itemplate_free(awg_itemplate *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->n_els; i++) free(t->els[i].data);
  free(t->els);
  free(t->text);
  free(t);
}

int awg_itemplate_compile(const char *text, awg_itemplate **out, char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen) err[0] = '\0';
  if (text == NULL || strchr(text, '<') == NULL) return 0; /* no tag: slot unset (decisions #6) */
  compiler c = {.err = err, .errlen = err ? errlen : 0};
  size_t text_len = strlen(text);
  c.t = calloc(1, sizeof *c.t);
  if (c.t == NULL || (c.t->text = malloc(text_len + 1)) == NULL) {
    add_error(&c, "out of memory while compiling the template");
    awg_itemplate_free(c.t);
    return -1;
  }
  memcpy(c.t->text, text, text_len + 1);
  for (const char *p = text, *lt; (lt = strchr(p, '<')) != NULL;) {
    const char *gt = strchr(lt + 1, '>');
    if (gt == NULL) {
      char q[QUOTE_BUF];
      add_error(&c, "missing '>' to close the tag starting \"%s\"",
                quote(q, sizeof q, lt, strlen(lt)));
      break;
    }
    compile_tag(&c, lt + 1, (size_t)(gt - lt - 1));
    p = gt + 1;
  }
  if (c.any_error) {
    awg_itemplate_free(c.t);
    return -1;
  }
  *out = c.t;
  return 0;
}

size_t awg_itemplate_size(const awg_itemplate *t) { return t ? t->size : 0; }

const char *awg_itemplate_text(const awg_itemplate *t) { return t ? t->text : ""; }

/* Random letters keep the reference's mapping, byte mod 52 (slightly biased, but faithful). */
static void render_element(const element *e, const awg_render_ctx *ctx, uint8_t *o) {
  static const char kAlpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  switch (e->kind) {
    case EL_NONE:
      break;
    case EL_BYTES:
      memcpy(o, e->data, e->len);
      break;
    case EL_RANDOM:
      rng_bytes(ctx->rng, o, e->len);
      break;
    case EL_LETTERS:
      rng_bytes(ctx->rng, o, e->len);
      for (size_t i = 0; i < e->len; i++) o[i] = (uint8_t)kAlpha[o[i] % 52];
      break;
    case EL_DIGITS:
      rng_bytes(ctx->rng, o, e->len);
      for (size_t i = 0; i < e->len; i++) o[i] = (uint8_t)('0' + o[i] % 10);
      break;
    case EL_TIME:
      be32_store(o, ctx->unix_time);
      break;
    case EL_COUNTER:
      be32_store(o, ctx->packet_counter);
      break;
    case EL_ZEROS:
      memset(o, 0, e->len);
      break;
  }
}

size_t awg_itemplate_render(const awg_itemplate *t, const awg_render_ctx *ctx, uint8_t *buf,
                            size_t cap) {
  if (t == NULL || cap < t->size) return 0;
  size_t off = 0;
  for (size_t i = 0; i < t->n_els; i++) {
    render_element(&t->els[i], ctx, buf + off);
    off += t->els[i].len;
  }
  return off;
}
