/* What the TLS carrier's port shows to a client that is not a peer: an ordinary web server
 * (issue 12, probe resistance). Plain code, no I/O besides reading the decoy site's files: given
 * the bytes received so far, it says whether a request is complete and builds the answer an
 * nginx with a static site would give: the file under [Server] TlsDecoy, or nginx's own 404 page;
 * 400 Bad Request (then close) for bytes that are not HTTP/1.x. */
#ifndef AWGPROXY_CARRIER_TLS_DECOY_H
#define AWGPROXY_CARRIER_TLS_DECOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_DECOY_MAX_HEAD 8192       /* a request head larger than this gets 400 */
#define TLS_DECOY_MAX_FILE (4u << 20) /* files above this are answered 404 */

typedef enum {
  DECOY_NEED_MORE, /* no complete request head yet */
  DECOY_ANSWER,    /* reply holds the answer to one request; keep reading if keep_alive */
  DECOY_BAD,       /* reply holds a 400; close after it */
} tls_decoy_result;

typedef struct {
  uint8_t *data; /* malloc'd, the caller frees */
  size_t len;
  bool keep_alive;
  int status;
} tls_decoy_reply;

/* root: the decoy site's directory, "" or NULL for none. *consumed: bytes of in the request
 * used (DECOY_ANSWER). now: the Date header's time (seconds since the epoch). */
tls_decoy_result tls_decoy_answer(const char *root, const uint8_t *in, size_t n, size_t *consumed,
                                  long long now, tls_decoy_reply *reply);

#endif
