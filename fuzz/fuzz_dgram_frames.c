/* The stream carrier's framing (src/device/dgram_frames.c): hostile bytes, split into reads at
 * places the input chooses, must give the same frames, in the same order, as one read of the
 * whole, and never a frame above the bound. Input: [max (2 bytes)] [n cuts] [cuts...] [stream]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device/dgram_frames.h"

typedef struct {
  uint8_t *log; /* lengths and bytes of every frame, in order */
  size_t used, cap;
  size_t max;
} record;

static bool on_frame(void *ctx, uint8_t *frame, size_t len) {
  record *r = ctx;
  if (len == 0 || len > r->max) abort();
  if (r->used + len + 2 > r->cap) return false;
  dgram_frame_header(r->log + r->used, len);
  memcpy(r->log + r->used + 2, frame, len);
  r->used += len + 2;
  frame[len - 1] ^= 0x5A; /* the callback may write */
  return true;
}

static int run(const uint8_t *stream, size_t n, const size_t *cuts, size_t n_cuts, size_t max,
               record *rec) {
  dgram_frame_reader r;
  if (dgram_frame_reader_init(&r, max) != 0) return -2;
  uint8_t *copy = malloc(n ? n : 1);
  memcpy(copy, stream, n);
  int res = DGRAM_FRAMES_OK;
  size_t from = 0;
  for (size_t i = 0; i <= n_cuts && res == DGRAM_FRAMES_OK; i++) {
    size_t to = i < n_cuts ? cuts[i] : n;
    if (to < from) to = from;
    res = dgram_frames_feed(&r, copy + from, to - from, on_frame, rec);
    from = to;
  }
  free(copy);
  dgram_frame_reader_free(&r);
  return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t max = ((size_t)data[0] << 8 | data[1]) % DGRAM_FRAME_MAX + 1;
  size_t n_cuts = data[2] % 16;
  if (size < 3 + n_cuts) return 0;
  const uint8_t *stream = data + 3 + n_cuts;
  size_t n = size - 3 - n_cuts;
  size_t cuts[16], prev = 0;
  for (size_t i = 0; i < n_cuts; i++) {
    prev += data[3 + i];
    cuts[i] = prev > n ? n : prev;
  }
  record whole = {malloc(2 * n + 2), 0, 2 * n + 2, max};
  record split = {malloc(2 * n + 2), 0, 2 * n + 2, max};
  int a = run(stream, n, NULL, 0, max, &whole);
  int b = run(stream, n, cuts, n_cuts, max, &split);
  /* The same frames either way; an error is found in both (the split run may stop at the same
   * frame boundary before reading what is wrong only if the bytes never arrive). */
  if (whole.used != split.used || memcmp(whole.log, split.log, whole.used) != 0) abort();
  if (a != b) abort();
  free(whole.log);
  free(split.log);
  return 0;
}
