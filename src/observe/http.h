/* A deliberately small HTTP/1.1 server for the metrics endpoint and the control API: one request
 * per connection (the response carries `Connection: close`), requests bounded to
 * HTTP_MAX_REQUEST bytes (request line, headers and body together) and HTTP_TIMEOUT_MS from
 * accept to the complete request, at most HTTP_MAX_CONNS connections at a time. It listens on a
 * TCP address or a unix socket (created with mode 0600).
 *
 * The request parser is pure and restartable: it is run on the whole buffered prefix each time
 * bytes arrive, and its answer for a prefix never changes once it is not HTTP_NEED_MORE. */
#ifndef AWGPROXY_OBSERVE_HTTP_H
#define AWGPROXY_OBSERVE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "observe/buf.h"

#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_TARGET 1024
#define HTTP_MAX_HEADERS 64
#define HTTP_TIMEOUT_MS 5000
#define HTTP_MAX_CONNS 32

typedef enum { HTTP_NEED_MORE = 0, HTTP_DONE, HTTP_ERROR } http_parse_status;

typedef struct {
  char method[16];                /* e.g. "GET" */
  char path[HTTP_MAX_TARGET + 1]; /* the target up to '?' (origin-form, starts with '/') */
  int version_minor;              /* HTTP/1.<minor> */
  uint64_t content_length;        /* 0 without a Content-Length header */
  size_t head_len;                /* request line + headers + empty line */
  size_t total_len;               /* head_len + content_length: the whole request */
  int error;                      /* HTTP_ERROR: the status to answer (400, 413, 414, 431, …) */
  const char *reason;             /* HTTP_ERROR: why, for logs */
} http_request;

/* Parses the request at buf[0..len). HTTP_DONE once the head and the whole body are present
 * (bytes after total_len are ignored); HTTP_ERROR with req->error set as soon as the bytes show a
 * problem or a limit is passed; otherwise HTTP_NEED_MORE. */
http_parse_status http_parse_request(const char *buf, size_t len, http_request *req);

/* The standard reason phrase ("OK", "Not Found", …); "Unknown" for codes we never send. */
const char *http_status_text(int status);

typedef struct {
  int status;               /* default 200 */
  const char *content_type; /* default "text/plain; charset=utf-8" */
  const char *allow;        /* an Allow header (for 405), or NULL */
  obs_buf body;
} http_response;

/* Called once per complete request; fills res (status, type, body). body = the request body. */
typedef void (*http_handler)(void *ctx, const http_request *req, const char *body, size_t body_len,
                             http_response *res);

typedef struct http_server http_server;

/* Listens on unix_path (if not NULL: an absolute path; a stale socket left there is replaced,
 * a live one is an error) or on hp (an IP address and port). `what` names the server in logs
 * and errors ("metrics", "control"). NULL with a message in err on failure. */
http_server *http_server_start(uv_loop_t *loop, const char *what, const char *unix_path,
                               const cfg_hostport *hp, http_handler fn, void *ctx, char *err,
                               size_t errlen);
/* Closes the listener and every connection; removes the unix socket file. */
void http_server_stop(http_server *s);

#endif
