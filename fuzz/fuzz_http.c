/* libFuzzer target for the HTTP/1.1 request parser of the metrics and control endpoints
 * (src/observe/http.h): everything a local client can send them; and POST /connect's body parser
 * (daemon/observe_servers.h) on the bodies of complete requests.
 *
 * The parser runs on prefixes of the input, each copied to the end of an exact-size allocation so
 * ASan flags any read past len. Checked with abort():
 *  - the answers for growing prefixes are NEED_MORE… then one final answer that every longer
 *    prefix repeats (DONE with the same total_len, or the same error status);
 *  - DONE first appears at exactly len == total_len (nothing read ahead);
 *  - the parser has decided once HTTP_MAX_REQUEST bytes are present;
 *  - a DONE request is well-formed: a token method, a path starting with '/', no control or
 *    space bytes in it, head_len <= total_len <= HTTP_MAX_REQUEST;
 *  - errors carry a status we answer with and a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/observe_servers.h"
#include "observe/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

typedef struct {
  http_parse_status st;
  int error;
  size_t total_len;
} answer;

static answer run(const uint8_t *data, size_t len, uint8_t *scratch, size_t size) {
  uint8_t *buf = scratch + (size - len);
  memcpy(buf, data, len);
  http_request r;
  answer a = {http_parse_request((const char *)buf, len, &r), 0, 0};
  CHECK(a.st == HTTP_NEED_MORE || a.st == HTTP_DONE || a.st == HTTP_ERROR);
  if (a.st == HTTP_ERROR) {
    a.error = r.error;
    CHECK(r.reason != NULL && r.reason[0]);
    CHECK(r.error == 400 || r.error == 413 || r.error == 414 || r.error == 431 || r.error == 501 ||
          r.error == 505);
  }
  if (a.st == HTTP_DONE) {
    a.total_len = r.total_len;
    CHECK(r.head_len > 0 && r.head_len <= r.total_len && r.total_len <= len);
    CHECK(r.total_len <= HTTP_MAX_REQUEST);
    CHECK(r.total_len - r.head_len == r.content_length);
    size_t ml = strnlen(r.method, sizeof r.method);
    CHECK(ml > 0 && ml < sizeof r.method);
    size_t pl = strnlen(r.path, sizeof r.path);
    CHECK(pl > 0 && pl < sizeof r.path && r.path[0] == '/');
    for (size_t i = 0; i < pl; i++) CHECK(r.path[i] > 0x20 && r.path[i] < 0x7f && r.path[i] != '?');
    CHECK(r.version_minor >= 0 && r.version_minor <= 9);
  }
  if (a.st == HTTP_NEED_MORE) CHECK(len < HTTP_MAX_REQUEST);
  return a;
}

static int same(answer a, answer b) {
  return a.st == b.st && a.error == b.error && a.total_len == b.total_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *scratch = malloc(size ? size : 1);
  CHECK(scratch != NULL);
  answer full = run(data, size, scratch, size);
  if (full.st == HTTP_DONE) {
    /* A complete request's body, as POST /connect reads it. */
    http_request r;
    http_parse_request((const char *)data, size, &r);
    char name[64];
    memset(name, 'x', sizeof name);
    int rc = observe_servers_parse_connect((const char *)data + r.head_len, r.content_length, name,
                                           sizeof name);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) CHECK(memchr(name, 0, sizeof name) != NULL);
  }
  if (size <= 1024) {
    /* Every prefix: NEED_MORE until the deciding one, then the same answer as the whole. */
    size_t len = 0;
    answer a = {HTTP_NEED_MORE, 0, 0};
    for (; len <= size; len++) {
      a = run(data, len, scratch, size);
      if (a.st != HTTP_NEED_MORE) break;
    }
    if (a.st != HTTP_NEED_MORE) {
      CHECK(same(a, full));
      if (a.st == HTTP_DONE) CHECK(a.total_len == len);
    } else {
      CHECK(full.st == HTTP_NEED_MORE);
    }
  } else {
    /* Large inputs: spot checks around the decision point and at spread-out prefixes. */
    if (full.st == HTTP_DONE) {
      CHECK(run(data, full.total_len - 1, scratch, size).st == HTTP_NEED_MORE);
      CHECK(same(run(data, full.total_len, scratch, size), full));
    }
    int decided = 0;
    for (size_t len = 0; len <= size; len += 1 + size / 64) {
      answer a = run(data, len, scratch, size);
      if (a.st == HTTP_NEED_MORE) {
        CHECK(!decided);
      } else {
        CHECK(same(a, full));
        decided = 1;
      }
    }
  }
  free(scratch);
  return 0;
}
