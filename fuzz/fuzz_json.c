/* libFuzzer target for the JSON reader of `awgproxy ctl` (src/observe/json.h), which reads what a
 * daemon answers on the control socket.
 *
 * Checked with abort(): no read past the exact-size input (ASan), no leak (LSan) on success or
 * failure, a failure always explains itself, parsed strings hold no NUL and survive a write/read
 * round trip through the JSON string writer of the control API, and object members are findable
 * by their names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "observe/buf.h"
#include "observe/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

static void check_string(const char *s) {
  obs_buf b;
  obs_buf_init(&b);
  obs_buf_json_string(&b, s);
  CHECK(!b.failed);
  json_value *v = json_parse(b.data, b.len, NULL, 0);
  CHECK(v != NULL && v->type == JSON_STRING && strcmp(v->string, s) == 0);
  json_free(v);
  obs_buf_free(&b);
}

static void walk(const json_value *v, int depth) {
  CHECK(depth <= JSON_MAX_DEPTH);
  switch (v->type) {
    case JSON_STRING:
      check_string(v->string);
      break;
    case JSON_OBJECT:
      for (size_t i = 0; i < v->n; i++) {
        check_string(v->keys[i]);
        CHECK(json_get(v, v->keys[i]) != NULL);
        walk(&v->items[i], depth + 1);
      }
      break;
    case JSON_ARRAY:
      for (size_t i = 0; i < v->n; i++) walk(&v->items[i], depth + 1);
      break;
    default:
      break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *copy = malloc(size ? size : 1);
  CHECK(copy != NULL);
  memcpy(copy, data, size);
  char err[128] = "";
  json_value *v = json_parse(copy, size, err, sizeof err);
  if (!v)
    CHECK(err[0] != '\0');
  else
    walk(v, 0);
  json_free(v);
  free(copy);
  return 0;
}
