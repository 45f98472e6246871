/* The TLS decoy over HTTP/2 (src/carrier/decoy_h2.c) reads whatever a prober sends after
 * choosing ALPN h2: the preface, then any frames. Each input is fed in pieces (its first byte
 * sets the piece size) to a fresh session whose output is discarded (the second byte: whether
 * the "client" reads at all, and whether a site directory is set), then the session is freed and
 * the loop run until it has closed. */
#include <stdlib.h>
#include <string.h>

#include "carrier/decoy_h2.h"

static size_t queued_bytes;
static int closes;

static void sink(void *ctx, const uint8_t *data, size_t len) {
  (void)ctx, (void)data;
  queued_bytes += len;
}
static size_t queued(void *ctx) {
  (void)ctx;
  return queued_bytes;
}
static void on_close(void *ctx) {
  (void)ctx;
  if (++closes > 1) abort(); /* io.close comes once */
}

static const decoy_h2_io io = {sink, queued, on_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uv_loop_t loop;
  static int ready;
  if (!ready) ready = uv_loop_init(&loop) == 0;
  if (size < 2) return 0;
  size_t piece = 1 + data[0] % 64;
  bool slow_reader = data[1] & 1;
  const char *site = (data[1] & 2) ? "/nonexistent-decoy" : "";
  data += 2, size -= 2;
  queued_bytes = 0, closes = 0;
  decoy_h2 *d = decoy_h2_start(&loop, site, &io, NULL);
  if (!d) return 0;
  static const char preface[] = DECOY_H2_PREFACE;
  decoy_h2_feed(d, (const uint8_t *)preface, strlen(preface));
  for (size_t off = 0; off < size; off += piece) {
    if (!slow_reader) queued_bytes = 0;
    decoy_h2_feed(d, data + off, size - off < piece ? size - off : piece);
  }
  decoy_h2_free(d);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}
