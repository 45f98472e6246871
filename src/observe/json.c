#include "observe/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s;
  size_t len, pos;
  char *err;
  size_t errlen;
  bool failed;
} reader;

static bool bad(reader *r, const char *what) {
  if (!r->failed) snprintf(r->err, r->errlen, "offset %zu: %s", r->pos, what);
  r->failed = true;
  return false;
}

static void skip_ws(reader *r) {
  while (r->pos < r->len && strchr(" \t\r\n", r->s[r->pos]) && r->s[r->pos]) r->pos++;
}

static bool literal(reader *r, const char *word) {
  size_t n = strlen(word);
  if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0) return bad(r, "unexpected token");
  r->pos += n;
  return true;
}

static bool number(reader *r, double *out) {
  size_t start = r->pos;
  const char *s = r->s;
  size_t i = r->pos;
  if (i < r->len && s[i] == '-') i++;
  if (i >= r->len) return bad(r, "malformed number");
  if (s[i] == '0')
    i++;
  else if (s[i] >= '1' && s[i] <= '9')
    while (i < r->len && s[i] >= '0' && s[i] <= '9') i++;
  else
    return bad(r, "malformed number");
  if (i < r->len && s[i] == '.') {
    size_t d = ++i;
    while (i < r->len && s[i] >= '0' && s[i] <= '9') i++;
    if (i == d) return r->pos = i, bad(r, "malformed number");
  }
  if (i < r->len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < r->len && (s[i] == '+' || s[i] == '-')) i++;
    size_t d = i;
    while (i < r->len && s[i] >= '0' && s[i] <= '9') i++;
    if (i == d) return r->pos = i, bad(r, "malformed number");
  }
  char tmp[64];
  if (i - start >= sizeof tmp) return bad(r, "number too long");
  memcpy(tmp, s + start, i - start);
  tmp[i - start] = '\0';
  *out = strtod(tmp, NULL);
  r->pos = i;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool hex4(reader *r, uint32_t *out) {
  if (r->len - r->pos < 4) return bad(r, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(r->s[r->pos + (size_t)i]);
    if (h < 0) return bad(r, "malformed \\u escape");
    v = v << 4 | (uint32_t)h;
  }
  r->pos += 4;
  *out = v;
  return true;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At the opening quote. The decoded string is never longer than its escaped form. */
static bool string(reader *r, char **out) {
  r->pos++;
  size_t start = r->pos;
  while (r->pos < r->len && r->s[r->pos] != '"') r->pos += r->s[r->pos] == '\\' ? 2 : 1;
  if (r->pos >= r->len) return r->pos = r->len, bad(r, "unterminated string");
  size_t end = r->pos;
  char *o = malloc(end - start + 1);
  if (!o) return bad(r, "out of memory");
  size_t n = 0;
  r->pos = start;
  while (r->pos < end) {
    unsigned char c = (unsigned char)r->s[r->pos];
    if (c < 0x20) return free(o), bad(r, "control character in string");
    if (c != '\\') {
      o[n++] = (char)c;
      r->pos++;
      continue;
    }
    char e = r->s[++r->pos];
    r->pos++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      o[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      continue;
    }
    if (e != 'u') return free(o), bad(r, "unknown escape");
    uint32_t cp;
    if (!hex4(r, &cp)) return free(o), false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t lo;
      if (end - r->pos < 6 || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u')
        return free(o), bad(r, "unpaired surrogate");
      r->pos += 2;
      if (!hex4(r, &lo)) return free(o), false;
      if (lo < 0xDC00 || lo > 0xDFFF) return free(o), bad(r, "unpaired surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return free(o), bad(r, "unpaired surrogate");
    }
    if (cp == 0) return free(o), bad(r, "NUL in string");
    n += put_utf8(o + n, cp);
  }
  if (r->pos != end) return free(o), bad(r, "escape runs past the string");
  o[n] = '\0';
  r->pos = end + 1;
  *out = o;
  return true;
}

static bool value(reader *r, json_value *v, int depth);

static bool grow(reader *r, json_value *v, size_t *cap, bool keys) {
  if (v->n < *cap) return true;
  size_t nc = *cap ? *cap * 2 : 4;
  json_value *items = realloc(v->items, nc * sizeof *items);
  if (!items) return bad(r, "out of memory");
  v->items = items;
  if (keys) {
    char **k = realloc(v->keys, nc * sizeof *k);
    if (!k) return bad(r, "out of memory");
    v->keys = k;
  }
  *cap = nc;
  return true;
}

static bool container(reader *r, json_value *v, int depth, bool object) {
  char close = object ? '}' : ']';
  v->type = object ? JSON_OBJECT : JSON_ARRAY;
  if (depth >= JSON_MAX_DEPTH) return bad(r, "nested too deeply");
  r->pos++;
  skip_ws(r);
  if (r->pos < r->len && r->s[r->pos] == close) return r->pos++, true;
  size_t cap = 0;
  for (;;) {
    if (!grow(r, v, &cap, object)) return false;
    json_value *item = &v->items[v->n];
    memset(item, 0, sizeof *item);
    if (object) {
      skip_ws(r);
      if (r->pos >= r->len || r->s[r->pos] != '"') return bad(r, "expected a member name");
      if (!string(r, &v->keys[v->n])) return false;
      v->n++; /* counted now so that json_free releases the key on failure */
      skip_ws(r);
      if (r->pos >= r->len || r->s[r->pos] != ':') return bad(r, "expected ':'");
      r->pos++;
      if (!value(r, item, depth + 1)) return false;
    } else {
      v->n++;
      if (!value(r, item, depth + 1)) return false;
    }
    skip_ws(r);
    if (r->pos < r->len && r->s[r->pos] == ',') {
      r->pos++;
      continue;
    }
    if (r->pos < r->len && r->s[r->pos] == close) return r->pos++, true;
    return bad(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static bool value(reader *r, json_value *v, int depth) {
  skip_ws(r);
  if (r->pos >= r->len) return bad(r, "unexpected end of input");
  switch (r->s[r->pos]) {
    case '{':
      return container(r, v, depth, true);
    case '[':
      return container(r, v, depth, false);
    case '"':
      v->type = JSON_STRING;
      return string(r, &v->string);
    case 't':
      v->type = JSON_BOOL, v->boolean = true;
      return literal(r, "true");
    case 'f':
      v->type = JSON_BOOL;
      return literal(r, "false");
    case 'n':
      v->type = JSON_NULL;
      return literal(r, "null");
    default:
      v->type = JSON_NUMBER;
      return number(r, &v->number);
  }
}

static void free_inner(json_value *v) {
  free(v->string);
  for (size_t i = 0; i < v->n; i++) {
    free_inner(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

void json_free(json_value *v) {
  if (!v) return;
  free_inner(v);
  free(v);
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen) {
  char dummy[1];
  reader r = {text, len, 0, err ? err : dummy, err ? errlen : sizeof dummy, false};
  json_value *v = calloc(1, sizeof *v);
  if (!v) return bad(&r, "out of memory"), NULL;
  if (value(&r, v, 0)) {
    skip_ws(&r);
    if (r.pos == r.len) return v;
    bad(&r, "trailing characters after the document");
  }
  json_free(v);
  return NULL;
}

const json_value *json_get(const json_value *v, const char *key) {
  if (!v || v->type != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->keys[i], key) == 0) return &v->items[i];
  return NULL;
}

const char *json_get_string(const json_value *v, const char *key, const char *dflt) {
  const json_value *m = json_get(v, key);
  return m && m->type == JSON_STRING ? m->string : dflt;
}

double json_get_number(const json_value *v, const char *key, double dflt) {
  const json_value *m = json_get(v, key);
  return m && m->type == JSON_NUMBER ? m->number : dflt;
}

bool json_get_bool(const json_value *v, const char *key, bool dflt) {
  const json_value *m = json_get(v, key);
  return m && m->type == JSON_BOOL ? m->boolean : dflt;
}
