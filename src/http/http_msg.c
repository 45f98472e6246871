#include "http/http_msg.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* ---- finding the end of a head ---------------------------------------------------------- */

static hmsg_status scan_error(int *status, const char **reason, int st, const char *why) {
  *status = st;
  *reason = why;
  return HMSG_ERROR;
}

hmsg_status hmsg_scan(hmsg_scanner *s, const uint8_t *buf, size_t len, size_t *end, int *status,
                      const char **reason) {
  /* s->pos stays on the byte that decided (the final LF or the one over a limit), so that a
   * call with the same or a longer buffer repeats the answer. */
  for (; s->pos < len; s->pos++) {
    if (s->pos + 1 - s->start > HMSG_MAX_HEAD)
      return scan_error(status, reason, 431, "request head larger than 16 KB");
    if (buf[s->pos] != '\n') {
      if (s->pos + 1 - s->line_start > HMSG_MAX_LINE)
        return s->lines ? scan_error(status, reason, 431, "header line longer than 8 KB")
                        : scan_error(status, reason, 414, "request line longer than 8 KB");
      continue;
    }
    size_t ll = s->pos - s->line_start;
    if (ll && buf[s->pos - 1] == '\r') ll--;
    if (ll == 0 && s->lines == 0) { /* an empty line before the first one: skipped */
      if (++s->blanks > HMSG_MAX_BLANK)
        return scan_error(status, reason, 400, "empty lines instead of a request");
      s->start = s->line_start = s->pos + 1;
      continue;
    }
    if (ll == 0) {
      *end = s->pos + 1;
      return HMSG_DONE;
    }
    if (++s->lines > HMSG_MAX_HEADERS + 1)
      return scan_error(status, reason, 431, "more than 100 header fields");
    s->line_start = s->pos + 1;
  }
  return HMSG_NEED_MORE;
}

/* ---- lines and fields ------------------------------------------------------------------- */

static bool is_tchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_vchar(uint8_t c) { return c > 0x20 && c != 0x7f; } /* obs-text included */

/* Case-insensitive comparison of p[0..n) with a lower-case literal. */
static bool ieq(const uint8_t *p, size_t n, const char *lit) {
  if (strlen(lit) != n) return false;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c >= 'A' && c <= 'Z') c += 32;
    if (c != (uint8_t)lit[i]) return false;
  }
  return true;
}

typedef struct {
  const uint8_t *head;
  size_t len, pos;
} cursor;

/* The next line without its CR LF; false at the end of the head. */
static bool next_line(cursor *c, size_t *off, size_t *n) {
  if (c->pos >= c->len) return false;
  const uint8_t *lf = memchr(c->head + c->pos, '\n', c->len - c->pos);
  size_t e = lf ? (size_t)(lf - c->head) : c->len;
  *off = c->pos;
  *n = e - c->pos;
  if (*n && c->head[e - 1] == '\r') (*n)--;
  c->pos = e + 1;
  return true;
}

static int fail(const char **reason, const char *why) {
  *reason = why;
  return -1;
}

/* name ":" OWS value OWS; obs-fold, a space before the colon and control bytes (bare CR
 * included) are refused (RFC 9112 §5). */
static int parse_field(const uint8_t *h, size_t off, size_t n, hmsg_header *out,
                       const char **reason) {
  if (h[off] == ' ' || h[off] == '\t') return fail(reason, "folded header line (obs-fold)");
  size_t i = 0;
  while (i < n && is_tchar(h[off + i])) i++;
  if (i == 0 || i == n || h[off + i] != ':')
    return fail(reason, "malformed header line (expected Name: value)");
  out->name = (uint16_t)off;
  out->name_len = (uint16_t)i;
  size_t v = i + 1, e = n;
  while (v < e && (h[off + v] == ' ' || h[off + v] == '\t')) v++;
  while (e > v && (h[off + e - 1] == ' ' || h[off + e - 1] == '\t')) e--;
  for (size_t k = v; k < e; k++) {
    uint8_t c = h[off + k];
    if (!is_vchar(c) && c != ' ' && c != '\t') return fail(reason, "control byte in a header");
  }
  out->value = (uint16_t)(off + v);
  out->value_len = (uint16_t)(e - v);
  out->drop = false;
  return 0;
}

static bool name_is(const uint8_t *h, const hmsg_header *f, const char *lit) {
  return ieq(h + f->name, f->name_len, lit);
}

static int parse_decimal(const uint8_t *p, size_t n, uint64_t *out) {
  if (n == 0 || n > 18) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  *out = v;
  return 0;
}

typedef struct {
  const uint8_t *head;
  hmsg_header *hdr;
  size_t n_hdr;
  bool close, keep_alive;
} conn_tokens;

/* "close" and "keep-alive" set the flags; any other token names a hop-by-hop header of this
 * connection, dropped (except the framing headers, which we need and pass on as they are). */
static void on_token(conn_tokens *ct, const uint8_t *t, size_t n) {
  if (ieq(t, n, "close")) ct->close = true;
  if (ieq(t, n, "keep-alive")) ct->keep_alive = true;
  if (ieq(t, n, "content-length") || ieq(t, n, "transfer-encoding")) return;
  for (size_t i = 0; i < ct->n_hdr; i++)
    if (ct->hdr[i].name_len == n &&
        strncasecmp((const char *)ct->head + ct->hdr[i].name, (const char *)t, n) == 0)
      ct->hdr[i].drop = true;
}

/* The comma-separated tokens of a Connection or Proxy-Connection field. */
static void each_token(conn_tokens *ct, const hmsg_header *f) {
  const uint8_t *h = ct->head;
  size_t i = f->value, e = (size_t)f->value + f->value_len;
  while (i < e) {
    while (i < e && (h[i] == ',' || h[i] == ' ' || h[i] == '\t')) i++;
    size_t t = i;
    while (i < e && h[i] != ',' && h[i] != ' ' && h[i] != '\t') i++;
    if (i > t) on_token(ct, h + t, i - t);
  }
}

static const char *const HOP_BY_HOP[] = {
    "connection", "proxy-connection",    "keep-alive",         "te", "trailer",
    "upgrade",    "proxy-authorization", "proxy-authenticate", NULL};

static bool hop_by_hop(const uint8_t *h, const hmsg_header *f) {
  for (size_t i = 0; HOP_BY_HOP[i]; i++)
    if (name_is(h, f, HOP_BY_HOP[i])) return true;
  return false;
}

typedef struct {
  bool chunked, other_coding, has_te, has_cl, cl_conflict;
  uint64_t cl;
} framing;

static int framing_field(const uint8_t *h, const hmsg_header *f, framing *fr, const char **reason) {
  const uint8_t *v = h + f->value;
  if (name_is(h, f, "content-length")) {
    uint64_t cl;
    if (parse_decimal(v, f->value_len, &cl)) return fail(reason, "invalid Content-Length");
    if (fr->has_cl && cl != fr->cl) fr->cl_conflict = true;
    fr->has_cl = true;
    fr->cl = cl;
  } else if (name_is(h, f, "transfer-encoding")) {
    if (fr->has_te) return fail(reason, "Transfer-Encoding given twice");
    fr->has_te = true;
    if (ieq(v, f->value_len, "chunked"))
      fr->chunked = true;
    else
      fr->other_coding = true;
  }
  return 0;
}

/* The header fields after the first line: syntax, framing, hop-by-hop marks, connection
 * tokens. */
static int parse_fields(cursor *c, hmsg_header *hdr, size_t *n_hdr, framing *fr, conn_tokens *ct,
                        const char **reason) {
  size_t off, n;
  *n_hdr = 0;
  memset(fr, 0, sizeof *fr);
  while (next_line(c, &off, &n) && n) {
    if (*n_hdr == HMSG_MAX_HEADERS) return fail(reason, "more than 100 header fields");
    hmsg_header *f = &hdr[*n_hdr];
    if (parse_field(c->head, off, n, f, reason)) return -1;
    (*n_hdr)++;
    if (framing_field(c->head, f, fr, reason)) return -1;
    f->drop = hop_by_hop(c->head, f);
  }
  ct->head = c->head;
  ct->hdr = hdr;
  ct->n_hdr = *n_hdr;
  for (size_t i = 0; i < *n_hdr; i++)
    if (name_is(c->head, &hdr[i], "connection") || name_is(c->head, &hdr[i], "proxy-connection"))
      each_token(ct, &hdr[i]);
  return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

static int req_fail(hreq *r, int status, const char *why) {
  r->status = status;
  r->reason = why;
  return -1;
}

static bool host_char(uint8_t ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         ch == '-' || ch == '.' || ch == '_';
}

/* host[:port] or [v6][:port]; default_port 0 = the port is required. */
static int parse_authority(hreq *r, const uint8_t *p, size_t n, uint16_t default_port) {
  if (memchr(p, '@', n)) return req_fail(r, 400, "user name or password in the URI");
  size_t hs, he, i;
  if (n && p[0] == '[') {
    const uint8_t *rb = memchr(p, ']', n);
    if (!rb) return req_fail(r, 400, "unterminated IPv6 literal in the URI");
    hs = 1, he = (size_t)(rb - p), i = he + 1;
    char tmp[64];
    uint8_t a[16];
    if (he - hs >= sizeof tmp) return req_fail(r, 400, "invalid IPv6 literal");
    memcpy(tmp, p + hs, he - hs);
    tmp[he - hs] = 0;
    if (inet_pton(AF_INET6, tmp, a) != 1) return req_fail(r, 400, "invalid IPv6 literal");
    r->host_ipv6 = true;
  } else {
    hs = 0;
    const uint8_t *colon = memchr(p, ':', n);
    he = i = colon ? (size_t)(colon - p) : n;
    for (size_t k = hs; k < he; k++)
      if (!host_char(p[k])) return req_fail(r, 400, "invalid character in the host name");
  }
  if (he == hs) return req_fail(r, 400, "no host in the request target");
  if (he - hs > 253) return req_fail(r, 400, "host name longer than 253 bytes");
  for (size_t k = hs; k < he; k++) {
    uint8_t ch = p[k];
    r->host[k - hs] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  r->host[he - hs] = 0;
  r->port = default_port;
  if (i < n) {
    if (p[i] != ':') return req_fail(r, 400, "invalid authority in the request target");
    uint64_t port;
    if (i + 1 == n && default_port) return 0; /* "host:" = the default port (RFC 3986) */
    if (parse_decimal(p + i + 1, n - i - 1, &port) || port == 0 || port > 65535)
      return req_fail(r, 400, "invalid port in the request target");
    r->port = (uint16_t)port;
  }
  if (!r->port) return req_fail(r, 400, "CONNECT needs host:port");
  return 0;
}

static int parse_target(hreq *r, const uint8_t *h, size_t off, size_t n) {
  const uint8_t *t = h + off;
  if (strcmp(r->method, "CONNECT") == 0) {
    r->form = HREQ_AUTHORITY;
    return parse_authority(r, t, n, 0);
  }
  if (t[0] == '/') {
    r->form = HREQ_ORIGIN;
    r->path = off, r->path_len = n;
    return 0;
  }
  if (n < 7 || !ieq(t, 7, "http://")) {
    const uint8_t *sep = memchr(t, ':', n);
    if (sep && (size_t)(sep - t) + 3 <= n && sep[1] == '/' && sep[2] == '/')
      return req_fail(r, 400, "only http:// URIs are forwarded; https goes through CONNECT");
    return req_fail(r, 400, "the request target is not an absolute http:// URI");
  }
  r->form = HREQ_ABSOLUTE;
  size_t e = 7;
  while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#') e++;
  if (parse_authority(r, t + 7, e - 7, 80)) return -1;
  size_t pe = e;
  while (pe < n && t[pe] != '#') pe++; /* a fragment never goes on the wire */
  r->path = off + e;
  r->path_len = pe - e;
  return 0;
}

/* METHOD SP target SP HTTP/1.x */
static int parse_request_line(hreq *r, const uint8_t *h, size_t off, size_t n) {
  size_t i = 0;
  while (i < n && is_tchar(h[off + i])) i++;
  if (i == 0 || i == n || h[off + i] != ' ') return req_fail(r, 400, "malformed request line");
  if (i > HMSG_METHOD_MAX) return req_fail(r, 400, "method name too long");
  memcpy(r->method, h + off, i);
  r->method[i] = 0;
  size_t ts = i + 1, te = ts;
  while (te < n && is_vchar(h[off + te]) && h[off + te] < 0x80) te++;
  if (te == ts || te == n || h[off + te] != ' ') return req_fail(r, 400, "malformed request line");
  const uint8_t *v = h + off + te + 1;
  size_t vn = n - te - 1;
  if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9')
    return req_fail(r, 400, "malformed HTTP version");
  if (v[5] != '1' || v[7] > '1') return req_fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are spoken");
  r->minor = v[7] - '0';
  return parse_target(r, h, off + ts, te - ts);
}

int hreq_parse(const uint8_t *head, size_t len, hreq *r) {
  memset(r, 0, sizeof *r);
  r->auth = -1;
  cursor c = {head, len, 0};
  size_t off, n;
  if (len > HMSG_MAX_HEAD || !next_line(&c, &off, &n) || !n)
    return req_fail(r, 400, "no request line");
  if (parse_request_line(r, head, off, n)) return -1;
  framing fr;
  conn_tokens ct = {0};
  const char *why = NULL;
  if (parse_fields(&c, r->hdr, &r->n_hdr, &fr, &ct, &why)) return req_fail(r, 400, why);
  for (size_t i = 0; i < r->n_hdr; i++) {
    hmsg_header *f = &r->hdr[i];
    if (name_is(head, f, "proxy-authorization") && r->auth < 0) r->auth = (int)i;
    if (name_is(head, f, "host")) f->drop = true; /* replaced by the URI's authority */
    if (name_is(head, f, "expect") && ieq(head + f->value, f->value_len, "100-continue"))
      r->expect_continue = true;
  }
  if (fr.has_te && fr.has_cl)
    return req_fail(r, 400, "both Content-Length and Transfer-Encoding (request smuggling?)");
  if (fr.cl_conflict) return req_fail(r, 400, "conflicting Content-Length values");
  if (fr.has_te && r->minor == 0) return req_fail(r, 400, "Transfer-Encoding in HTTP/1.0");
  if (fr.other_coding) return req_fail(r, 400, "request transfer coding other than chunked");
  r->body = fr.chunked ? HBODY_CHUNKED : fr.has_cl ? HBODY_LENGTH : HBODY_NONE;
  r->content_length = fr.cl;
  r->close = r->minor == 0 ? !ct.keep_alive : ct.close;
  return 0;
}

/* ---- responses -------------------------------------------------------------------------- */

int hresp_parse(const uint8_t *head, size_t len, bool head_request, hresp *r) {
  memset(r, 0, sizeof *r);
  cursor c = {head, len, 0};
  size_t off, n;
  if (len > HMSG_MAX_HEAD || !next_line(&c, &off, &n)) return fail(&r->reason, "no status line");
  const uint8_t *s = head + off;
  if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
      (n > 12 && s[12] != ' '))
    return fail(&r->reason, "malformed status line");
  for (size_t i = 9; i < 12; i++)
    if (s[i] < '0' || s[i] > '9') return fail(&r->reason, "malformed status code");
  for (size_t i = 12; i < n; i++)
    if (!is_vchar(s[i]) && s[i] != ' ' && s[i] != '\t')
      return fail(&r->reason, "control byte in the status line");
  r->minor = s[7] - '0';
  r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  if (r->status < 100) return fail(&r->reason, "malformed status code");
  framing fr;
  conn_tokens ct = {0};
  if (parse_fields(&c, r->hdr, &r->n_hdr, &fr, &ct, &r->reason)) return -1;
  if (fr.cl_conflict && !fr.has_te) return fail(&r->reason, "conflicting Content-Length values");
  bool bodiless = head_request || r->status < 200 || r->status == 204 || r->status == 304;
  if (bodiless)
    r->body = HBODY_NONE;
  else if (fr.has_te)
    r->body = fr.chunked ? HBODY_CHUNKED : HBODY_CLOSE; /* RFC 9112 §6.3: TE wins over CL */
  else if (fr.has_cl)
    r->body = HBODY_LENGTH;
  else
    r->body = HBODY_CLOSE;
  if (r->body == HBODY_CHUNKED)
    for (size_t i = 0; i < r->n_hdr; i++)
      if (name_is(head, &r->hdr[i], "content-length")) r->hdr[i].drop = true;
  r->content_length = fr.cl;
  r->close = r->body == HBODY_CLOSE || (r->minor == 0 ? !ct.keep_alive : ct.close);
  return 0;
}

/* ---- rewriting for the next hop --------------------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t n, cap;
  bool over;
} out_buf;

static void put(out_buf *o, const void *d, size_t n) {
  if (o->over || o->cap - o->n < n) {
    o->over = true;
    return;
  }
  memcpy(o->p + o->n, d, n);
  o->n += n;
}
static void put_str(out_buf *o, const char *s) { put(o, s, strlen(s)); }

static void put_fields(out_buf *o, const uint8_t *h, const hmsg_header *hdr, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (hdr[i].drop) continue;
    put(o, h + hdr[i].name, hdr[i].name_len);
    put_str(o, ": ");
    put(o, h + hdr[i].value, hdr[i].value_len);
    put_str(o, "\r\n");
  }
}

size_t hreq_rewrite(const hreq *r, const uint8_t *head, size_t len, uint8_t *out, size_t cap) {
  (void)len;
  out_buf o = {out, 0, cap, false};
  put_str(&o, r->method);
  put_str(&o, " ");
  if (!r->path_len || head[r->path] != '/') put_str(&o, "/");
  put(&o, head + r->path, r->path_len);
  put_str(&o, r->minor ? " HTTP/1.1\r\nHost: " : " HTTP/1.0\r\nHost: ");
  if (r->host_ipv6) put_str(&o, "[");
  put_str(&o, r->host);
  if (r->host_ipv6) put_str(&o, "]");
  if (r->port != 80) {
    char port[8] = ":";
    int k = 1;
    for (unsigned div = 10000; div; div /= 10)
      if (r->port >= div || k > 1) port[k++] = (char)('0' + r->port / div % 10);
    put(&o, port, (size_t)k);
  }
  put_str(&o, "\r\n");
  put_fields(&o, head, r->hdr, r->n_hdr);
  put_str(&o, "\r\n");
  return o.over ? 0 : o.n;
}

size_t hresp_rewrite(const hresp *r, const uint8_t *head, size_t len, bool keep_alive,
                     int client_minor, uint8_t *out, size_t cap) {
  out_buf o = {out, 0, cap, false};
  const uint8_t *lf = memchr(head, '\n', len);
  size_t sl = lf ? (size_t)(lf - head) : len;
  if (sl && head[sl - 1] == '\r') sl--;
  put(&o, head, sl);
  put_str(&o, "\r\n");
  put_fields(&o, head, r->hdr, r->n_hdr);
  if (r->status >= 200) {
    if (!keep_alive)
      put_str(&o, "Connection: close\r\n");
    else if (client_minor == 0)
      put_str(&o, "Connection: keep-alive\r\n");
  }
  put_str(&o, "\r\n");
  return o.over ? 0 : o.n;
}
