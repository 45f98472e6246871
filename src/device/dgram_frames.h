/* Datagrams over a byte stream (a stream carrier such as TLS, issue 12): each datagram is one
 * frame, a 2-byte big-endian length and that many bytes. A length of 0 or above the reader's
 * bound is a protocol error: the stream is closed. Several frames may share one write (and one
 * TLS record); a frame may be split across reads. docs/spec/tls-carrier.md has the format.
 *
 * The reader hands complete frames to a callback without a copy when a frame lies whole in the
 * bytes just read, and from its own buffer (one copy) when it spans reads. Either way the frame
 * is writable by the callback until it returns (decryption works in place). */
#ifndef AWGPROXY_DEVICE_DGRAM_FRAMES_H
#define AWGPROXY_DEVICE_DGRAM_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DGRAM_FRAME_HEADER 2
#define DGRAM_FRAME_MAX 65535

/* Returns false to stop reading (the rest of the input is left unread: dgram_frames_feed
 * returns DGRAM_FRAMES_STOPPED). */
typedef bool (*dgram_frame_fn)(void *ctx, uint8_t *frame, size_t len);

typedef struct {
  uint8_t *buf;    /* [DGRAM_FRAME_HEADER + max]: a frame that spans reads */
  size_t have;     /* bytes of it in buf */
  size_t max;      /* the largest frame accepted */
  uint64_t frames; /* handed over so far */
} dgram_frame_reader;

typedef enum {
  DGRAM_FRAMES_OK = 0,
  DGRAM_FRAMES_STOPPED = 1, /* the callback returned false */
  DGRAM_FRAMES_BAD_LENGTH = -1,
} dgram_frames_result;

/* max: 1..DGRAM_FRAME_MAX. Returns 0, or -1 when out of memory. */
int dgram_frame_reader_init(dgram_frame_reader *r, size_t max);
void dgram_frame_reader_free(dgram_frame_reader *r);
/* Reads n bytes of the stream (in is modified: frames lying whole in it are handed over in
 * place). */
dgram_frames_result dgram_frames_feed(dgram_frame_reader *r, uint8_t *in, size_t n,
                                      dgram_frame_fn fn, void *ctx);
/* Writes one frame's header for a datagram of len bytes (1..DGRAM_FRAME_MAX) to out[0..1]. */
void dgram_frame_header(uint8_t out[DGRAM_FRAME_HEADER], size_t len);

#endif
