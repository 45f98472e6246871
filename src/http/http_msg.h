/* The HTTP/1.x message heads of the HTTP proxy front-end (http_proxy.h): one bounded parser for
 * the requests clients send us and the responses origin servers send back, and the rewriting of
 * both heads for the next hop (origin-form, hop-by-hop headers removed). Pure functions over
 * caller buffers, no allocation: everything here is hostile input (fuzz/fuzz_http_proxy.c).
 *
 * Reading a head is two steps. hmsg_scan() is incremental: it is called again with the longer
 * buffer each time bytes arrive, resumes where it stopped (total work linear in the head's size)
 * and enforces the limits as soon as the bytes show them (a 1 MB header line or 10,000 headers
 * are refused at HMSG_MAX_LINE or HMSG_MAX_HEADERS, without waiting for the rest). Once it finds
 * the empty line, hreq_parse() / hresp_parse() read the complete head.
 *
 * This is not src/observe/http.c (the metrics/control endpoint: one origin-form request per
 * connection, no bodies to relay). */
#ifndef AWGPROXY_HTTP_HTTP_MSG_H
#define AWGPROXY_HTTP_HTTP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HMSG_MAX_HEAD 16384 /* request or status line + headers + the empty line */
#define HMSG_MAX_LINE 8192  /* one line */
#define HMSG_MAX_HEADERS 100
#define HMSG_MAX_BLANK 8 /* empty lines tolerated before a request line (RFC 9112 §2.2) */
#define HMSG_METHOD_MAX 16

typedef enum { HMSG_NEED_MORE = 0, HMSG_DONE, HMSG_ERROR } hmsg_status;

/* The scanner's progress; hmsg_scan_init before the first call for a new head. */
typedef struct {
  size_t pos;        /* bytes examined */
  size_t line_start; /* where the current line began */
  size_t start;      /* where the head begins (after tolerated empty lines) */
  unsigned lines;    /* complete non-empty lines so far */
  unsigned blanks;   /* empty lines before the first line */
} hmsg_scanner;

static inline void hmsg_scan_init(hmsg_scanner *s) { *s = (hmsg_scanner){0}; }

/* Looks for the end of the head in buf[0..len) (len never shrinks between calls). DONE: the head
 * is buf[s->start .. *end). ERROR: *status is 400 (empty lines only), 414 (request line too
 * long), 431 (a header line too long, too many headers, the head over HMSG_MAX_HEAD) and
 * *reason a static text. The answer for a prefix never changes once it is not NEED_MORE. */
hmsg_status hmsg_scan(hmsg_scanner *s, const uint8_t *buf, size_t len, size_t *end, int *status,
                      const char **reason);

typedef struct {
  uint16_t name, name_len, value, value_len; /* offsets into the head */
  bool drop;                                 /* hop-by-hop: not passed on */
} hmsg_header;

/* How a body ends: no body, Content-Length bytes, chunked, or (responses) the connection's end. */
typedef enum { HBODY_NONE = 0, HBODY_LENGTH, HBODY_CHUNKED, HBODY_CLOSE } hbody_kind;

typedef enum { HREQ_ORIGIN, HREQ_ABSOLUTE, HREQ_AUTHORITY } hreq_form;

typedef struct {
  char method[HMSG_METHOD_MAX + 1];
  hreq_form form;
  char host[256]; /* ABSOLUTE, AUTHORITY: a name or an IP literal (no brackets), lower case */
  bool host_ipv6; /* the host was a bracketed IPv6 literal */
  uint16_t port;  /* ABSOLUTE: 80 unless given; AUTHORITY: required */
  size_t path, path_len; /* ORIGIN, ABSOLUTE: path and query in the head; len 0 means "/" */
  int minor;             /* HTTP/1.<minor>, 0 or 1 */
  hmsg_header hdr[HMSG_MAX_HEADERS];
  size_t n_hdr;
  hbody_kind body; /* NONE, LENGTH or CHUNKED */
  uint64_t content_length;
  bool close; /* the client will not send another request (HTTP/1.0 default, "close") */
  int auth;   /* index of Proxy-Authorization in hdr, -1 if none */
  bool expect_continue;
  int status;         /* hreq_parse failed: the status to answer (400, 505) */
  const char *reason; /* … and why */
} hreq;

/* Parses the complete head head[0..len) (from hmsg_scan: start..end). 0, or -1 with
 * status/reason set. Refused (400): malformed lines, obs-fold, a space before a colon, control
 * bytes, both Content-Length and Transfer-Encoding, conflicting Content-Lengths, a transfer
 * coding other than chunked, userinfo in a URI, a URI scheme other than http (https goes through
 * CONNECT), a CONNECT target without a port; 505 for a version other than HTTP/1.0 and 1.1. */
int hreq_parse(const uint8_t *head, size_t len, hreq *out);

typedef struct {
  int minor, status;
  hmsg_header hdr[HMSG_MAX_HEADERS];
  size_t n_hdr;
  hbody_kind body;
  uint64_t content_length;
  bool close; /* the server will close after this response */
  const char *reason;
} hresp;

/* Parses a response head; head_request says the request was HEAD (no body whatever the headers
 * say); 1xx, 204 and 304 have none either. 0, or -1 with reason set. */
int hresp_parse(const uint8_t *head, size_t len, bool head_request, hresp *out);

/* The request as it goes to the origin: "METHOD path HTTP/1.x", Host from the URI (RFC 9112
 * §3.2.2: the client's own Host is replaced), every header not marked drop. The output needs at
 * most len + HMSG_REWRITE_EXTRA bytes. Returns the length written, 0 if cap is too small. */
#define HMSG_REWRITE_EXTRA 320
size_t hreq_rewrite(const hreq *r, const uint8_t *head, size_t len, uint8_t *out, size_t cap);

/* The response as it goes to the client: its status line, every header not marked drop, then
 * "Connection: close" when keep_alive is false, or "Connection: keep-alive" for an HTTP/1.0
 * client whose connection stays open. Same sizing rule as hreq_rewrite. */
size_t hresp_rewrite(const hresp *r, const uint8_t *head, size_t len, bool keep_alive,
                     int client_minor, uint8_t *out, size_t cap);

/* The body's framing, followed byte by byte so that the next message's start is known. The
 * body's bytes themselves pass through unchanged (chunk headers and trailers included). */
typedef struct {
  hbody_kind kind;
  uint64_t left; /* LENGTH: bytes to go; CHUNKED: of the current chunk */
  int st;        /* CHUNKED: where in the chunk syntax */
  size_t line;   /* CHUNKED: bytes of the current size or trailer line */
  size_t trailer;
  int digits;
  bool done;
} hbody;

void hbody_init(hbody *b, hbody_kind kind, uint64_t length);
/* How many of p[0..n) belong to the body (all of them for CLOSE); b->done once it ended (a
 * LENGTH of 0 and NONE are done at once). -1 with *reason on malformed chunk framing. */
long hbody_feed(hbody *b, const uint8_t *p, size_t n, const char **reason);

#endif
