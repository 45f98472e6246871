/* libFuzzer target for the HTTP proxy's message parser (src/http/http_msg.h): the request heads
 * clients send, the response heads origin servers send back and the chunked bodies of both.
 *
 * The first byte picks what the rest is read as (a request, a response, a HEAD's response, a
 * chunked body); the data sits at the end of an exact-size allocation so ASan flags any read past
 * it. Checked with abort():
 *  - the head scanner gives the same answer (status, end, error) whether it sees the input at
 *    once or grows through it in pieces, as from the network; it decides by HMSG_MAX_HEAD bytes;
 *  - a parsed request or response is well-formed (offsets inside the head, a host and port where
 *    the form needs them), and its rewrite fits the documented size, carries no header marked
 *    hop-by-hop, and parses again to the same method, target, version and framing;
 *  - the chunked-body follower consumes the same bytes, ends at the same place and fails the
 *    same way whether fed at once or byte by byte, and never consumes more than it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

typedef struct {
  hmsg_status st;
  size_t start, end;
  int status;
} scan_answer;

static scan_answer scan_all(const uint8_t *buf, size_t len) {
  hmsg_scanner s;
  hmsg_scan_init(&s);
  scan_answer a = {0};
  const char *why = NULL;
  a.st = hmsg_scan(&s, buf, len, &a.end, &a.status, &why);
  a.start = s.start;
  if (a.st == HMSG_ERROR)
    CHECK(why && why[0] && (a.status == 400 || a.status == 414 || a.status == 431));
  if (a.st == HMSG_NEED_MORE) CHECK(len <= HMSG_MAX_HEAD + 2 * HMSG_MAX_BLANK);
  if (a.st == HMSG_DONE) CHECK(a.start < a.end && a.end <= len && a.end - a.start <= HMSG_MAX_HEAD);
  return a;
}

/* The same buffer revealed in pieces whose sizes come from the data itself. */
static scan_answer scan_pieces(const uint8_t *buf, size_t len) {
  hmsg_scanner s;
  hmsg_scan_init(&s);
  scan_answer a = {HMSG_NEED_MORE, 0, 0, 0};
  const char *why = NULL;
  size_t seen = 0;
  while (a.st == HMSG_NEED_MORE && seen < len) {
    seen += 1 + (buf[seen] % 7);
    if (seen > len) seen = len;
    a.st = hmsg_scan(&s, buf, seen, &a.end, &a.status, &why);
  }
  a.start = s.start;
  return a;
}

static void check_fields(const hmsg_header *h, size_t n, size_t len) {
  CHECK(n <= HMSG_MAX_HEADERS);
  for (size_t i = 0; i < n; i++) {
    CHECK(h[i].name_len > 0 && (size_t)h[i].name + h[i].name_len <= len);
    CHECK((size_t)h[i].value + h[i].value_len <= len);
  }
}

/* No header the parser marked drop appears in the rewritten head (by name: a dropped name is
 * never re-emitted under any field). */
static void check_dropped(const uint8_t *head, const hmsg_header *h, size_t n, const uint8_t *out,
                          size_t out_len) {
  static const char *const never[] = {
      "proxy-authorization:", "proxy-connection:", "keep-alive:", "upgrade:", NULL};
  for (size_t k = 0; never[k]; k++) {
    size_t nl = strlen(never[k]);
    for (size_t i = 0; i + nl <= out_len; i++)
      if ((i == 0 || out[i - 1] == '\n') && strncasecmp((const char *)out + i, never[k], nl) == 0)
        abort();
  }
  (void)head, (void)h, (void)n;
}

static size_t kept(const hmsg_header *h, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += !h[i].drop;
  return k;
}

static void fuzz_request(const uint8_t *buf, size_t len) {
  scan_answer a = scan_all(buf, len), b = scan_pieces(buf, len);
  CHECK(a.st == b.st);
  if (a.st == HMSG_DONE) CHECK(a.end == b.end && a.start == b.start);
  if (a.st == HMSG_ERROR) CHECK(a.status == b.status);
  if (a.st != HMSG_DONE) return;
  const uint8_t *head = buf + a.start;
  size_t hl = a.end - a.start;
  static hreq r, r2;
  if (hreq_parse(head, hl, &r) != 0) {
    CHECK(r.reason && (r.status == 400 || r.status == 505));
    return;
  }
  CHECK(r.method[0] && r.minor >= 0 && r.minor <= 1);
  check_fields(r.hdr, r.n_hdr, hl);
  CHECK(r.auth < (int)r.n_hdr);
  if (r.form == HREQ_AUTHORITY) CHECK(r.host[0] && r.port && !strcmp(r.method, "CONNECT"));
  if (r.form == HREQ_ORIGIN) CHECK(r.path_len && head[r.path] == '/');
  if (r.form != HREQ_ABSOLUTE) return;
  CHECK(r.host[0] && r.port && strlen(r.host) <= 253 && r.path + r.path_len <= hl);
  size_t cap = hl + HMSG_REWRITE_EXTRA;
  uint8_t *out = malloc(cap);
  CHECK(out);
  size_t n = hreq_rewrite(&r, head, hl, out, cap);
  CHECK(n > 0 && n <= cap);
  check_dropped(head, r.hdr, r.n_hdr, out, n);
  /* the rewrite is a well-formed origin-form request with the same meaning (unless the added
   * Host pushed it just over a limit, which only our own parser enforces) */
  if (n > HMSG_MAX_HEAD - 8 || kept(r.hdr, r.n_hdr) >= HMSG_MAX_HEADERS) return free(out);
  scan_answer c = scan_all(out, n);
  CHECK(c.st == HMSG_DONE && c.start == 0 && c.end == n);
  CHECK(hreq_parse(out, n, &r2) == 0);
  CHECK(r2.form == HREQ_ORIGIN && !strcmp(r2.method, r.method) && r2.minor == r.minor);
  CHECK(r2.body == r.body && r2.content_length == r.content_length);
  CHECK(r2.auth < 0);
  if (r.path_len && head[r.path] == '/')
    CHECK(r2.path_len == r.path_len && !memcmp(out + r2.path, head + r.path, r.path_len));
  free(out);
}

static void fuzz_response(const uint8_t *buf, size_t len, bool head_request) {
  scan_answer a = scan_all(buf, len), b = scan_pieces(buf, len);
  CHECK(a.st == b.st);
  if (a.st != HMSG_DONE) return;
  CHECK(a.end == b.end);
  const uint8_t *head = buf + a.start;
  size_t hl = a.end - a.start;
  static hresp r, r2;
  if (hresp_parse(head, hl, head_request, &r) != 0) {
    CHECK(r.reason && r.reason[0]);
    return;
  }
  CHECK(r.status >= 100 && r.status <= 999);
  check_fields(r.hdr, r.n_hdr, hl);
  if (head_request || r.status < 200 || r.status == 204 || r.status == 304)
    CHECK(r.body == HBODY_NONE);
  if (r.body == HBODY_CLOSE) CHECK(r.close);
  size_t cap = hl + HMSG_REWRITE_EXTRA;
  uint8_t *out = malloc(cap);
  CHECK(out);
  bool ka = len & 1;
  size_t n = hresp_rewrite(&r, head, hl, ka, (int)(len >> 1 & 1), out, cap);
  CHECK(n > 0 && n <= cap);
  check_dropped(head, r.hdr, r.n_hdr, out, n);
  if (n > HMSG_MAX_HEAD - 8 || kept(r.hdr, r.n_hdr) >= HMSG_MAX_HEADERS) return free(out);
  CHECK(hresp_parse(out, n, head_request, &r2) == 0);
  CHECK(r2.status == r.status && r2.body == r.body);
  if (r.status >= 200 && !ka) CHECK(r2.close);
  free(out);
}

static void fuzz_chunked(const uint8_t *buf, size_t len) {
  hbody a, b;
  hbody_init(&a, HBODY_CHUNKED, 0);
  hbody_init(&b, HBODY_CHUNKED, 0);
  const char *wa = NULL, *wb = NULL;
  long ka = hbody_feed(&a, buf, len, &wa);
  CHECK(ka >= -1 && ka <= (long)len);
  long kb = 0;
  size_t i = 0;
  for (; i < len && !b.done; i++) {
    long k = hbody_feed(&b, buf + i, 1, &wb);
    if (k < 0) {
      kb = -1;
      break;
    }
    CHECK(k <= 1);
    kb += k;
  }
  CHECK((ka < 0) == (kb < 0));
  if (ka < 0) {
    CHECK(wa && wb);
    return;
  }
  CHECK(ka == kb && a.done == b.done);
  if (!a.done) CHECK((size_t)ka == len);
  if (a.done) CHECK(hbody_feed(&a, buf, len, &wa) == 0); /* an ended body takes nothing more */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t len = size - 1;
  uint8_t *buf = malloc(len ? len : 1);
  CHECK(buf);
  memcpy(buf, data + 1, len);
  switch (data[0] % 4) {
    case 0:
      fuzz_request(buf, len);
      break;
    case 1:
      fuzz_response(buf, len, false);
      break;
    case 2:
      fuzz_response(buf, len, true);
      break;
    default:
      fuzz_chunked(buf, len);
      break;
  }
  free(buf);
  return 0;
}
