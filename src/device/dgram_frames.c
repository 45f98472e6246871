/* Length-framed datagrams over a byte stream (dgram_frames.h). */
#include "device/dgram_frames.h"

#include <stdlib.h>
#include <string.h>

int dgram_frame_reader_init(dgram_frame_reader *r, size_t max) {
  memset(r, 0, sizeof *r);
  if (max == 0 || max > DGRAM_FRAME_MAX) return -1;
  r->buf = malloc(DGRAM_FRAME_HEADER + max);
  if (!r->buf) return -1;
  r->max = max;
  return 0;
}

void dgram_frame_reader_free(dgram_frame_reader *r) {
  free(r->buf);
  r->buf = NULL;
  r->have = 0;
}

void dgram_frame_header(uint8_t out[DGRAM_FRAME_HEADER], size_t len) {
  out[0] = (uint8_t)(len >> 8);
  out[1] = (uint8_t)len;
}

static size_t frame_len(const uint8_t *h) { return (size_t)h[0] << 8 | h[1]; }

/* Completes the frame held in buf from in; *used says how much of in it took. Returns the
 * frame's length once whole, 0 while it is not, or SIZE_MAX on a bad length. */
static size_t fill_buffered(dgram_frame_reader *r, const uint8_t *in, size_t n, size_t *used) {
  *used = 0;
  if (r->have < DGRAM_FRAME_HEADER) {
    size_t take = DGRAM_FRAME_HEADER - r->have;
    if (take > n) take = n;
    memcpy(r->buf + r->have, in, take);
    r->have += take;
    *used = take;
    if (r->have < DGRAM_FRAME_HEADER) return 0;
  }
  size_t len = frame_len(r->buf);
  if (len == 0 || len > r->max) return SIZE_MAX;
  size_t want = DGRAM_FRAME_HEADER + len - r->have, take = n - *used;
  if (take > want) take = want;
  memcpy(r->buf + r->have, in + *used, take);
  r->have += take;
  *used += take;
  return r->have == DGRAM_FRAME_HEADER + len ? len : 0;
}

dgram_frames_result dgram_frames_feed(dgram_frame_reader *r, uint8_t *in, size_t n,
                                      dgram_frame_fn fn, void *ctx) {
  size_t off = 0;
  if (r->have) { /* a frame begun in an earlier read */
    size_t used, len = fill_buffered(r, in, n, &used);
    off = used;
    if (len == SIZE_MAX) return DGRAM_FRAMES_BAD_LENGTH;
    if (len == 0) return DGRAM_FRAMES_OK; /* everything went into the buffer */
    r->have = 0;
    r->frames++;
    if (!fn(ctx, r->buf + DGRAM_FRAME_HEADER, len)) return DGRAM_FRAMES_STOPPED;
  }
  while (n - off >= DGRAM_FRAME_HEADER) { /* frames lying whole in `in`: no copy */
    size_t len = frame_len(in + off);
    if (len == 0 || len > r->max) return DGRAM_FRAMES_BAD_LENGTH;
    if (n - off - DGRAM_FRAME_HEADER < len) break;
    uint8_t *frame = in + off + DGRAM_FRAME_HEADER;
    off += DGRAM_FRAME_HEADER + len;
    r->frames++;
    if (!fn(ctx, frame, len)) return DGRAM_FRAMES_STOPPED;
  }
  if (off < n) { /* the start of the next frame: keep it */
    size_t used, len = fill_buffered(r, in + off, n - off, &used);
    if (len == SIZE_MAX) return DGRAM_FRAMES_BAD_LENGTH;
  }
  return DGRAM_FRAMES_OK;
}
