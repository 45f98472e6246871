/* Following a body's framing (http_msg.h hbody_*): where a Content-Length or chunked body ends,
 * so that keep-alive knows where the next message starts. Chunked bodies are followed byte by
 * byte through the syntax of RFC 9112 §7.1 (size, extensions, data, CRLF, last chunk,
 * trailers), each line bounded, without ever holding the data. */
#include "http/http_msg.h"

#define CHUNK_LINE_MAX 1024       /* a size line with its extensions, or one trailer line */
#define TRAILER_MAX HMSG_MAX_HEAD /* all trailer lines together */

enum {
  C_SIZE,    /* hex digits of the chunk size */
  C_EXT,     /* after the size: extensions, up to the end of the line */
  C_SIZE_LF, /* the size line's CR seen */
  C_DATA,    /* chunk data */
  C_DATA_CR, /* the CR LF after the data */
  C_DATA_LF, /* … its LF */
  C_TRAILER, /* the start of a trailer line (or of the final empty line) */
  C_TRAILER_LINE,
  C_END_LF /* the final empty line's CR seen */
};

void hbody_init(hbody *b, hbody_kind kind, uint64_t length) {
  *b = (hbody){.kind = kind, .left = kind == HBODY_LENGTH ? length : 0, .st = C_SIZE};
  b->done = kind == HBODY_NONE || (kind == HBODY_LENGTH && length == 0);
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static long bad(const char **reason, const char *why) {
  *reason = why;
  return -1;
}

/* The end of the size line: a last chunk (size 0) starts the trailer section. */
static void size_line_done(hbody *b) {
  b->line = 0;
  b->st = b->left ? C_DATA : C_TRAILER;
}

static int size_byte(hbody *b, uint8_t c, const char **reason) {
  int v = hexval(c);
  if (v >= 0) {
    if (++b->digits > 15) return (int)bad(reason, "chunk size too large");
    b->left = b->left * 16 + (uint64_t)v;
  } else if (!b->digits) {
    return (int)bad(reason, "malformed chunk size");
  } else if (c == ';' || c == ' ' || c == '\t') {
    b->st = C_EXT;
  } else if (c == '\r') {
    b->st = C_SIZE_LF;
  } else if (c == '\n') {
    size_line_done(b);
  } else {
    return (int)bad(reason, "malformed chunk size");
  }
  return 0;
}

/* One byte of everything but chunk data. */
static int chunk_byte(hbody *b, uint8_t c, const char **reason) {
  switch (b->st) {
    case C_SIZE:
      return size_byte(b, c, reason);
    case C_EXT:
      if (c == '\r')
        b->st = C_SIZE_LF;
      else if (c == '\n')
        size_line_done(b);
      else if (c < 0x20 && c != '\t')
        return (int)bad(reason, "control byte in a chunk extension");
      return 0;
    case C_SIZE_LF:
      if (c != '\n') return (int)bad(reason, "CR without LF after a chunk size");
      size_line_done(b);
      return 0;
    case C_DATA_CR:
      if (c == '\r') return b->st = C_DATA_LF, 0;
      if (c != '\n') return (int)bad(reason, "chunk data longer than its size");
      b->st = C_SIZE, b->digits = 0;
      return 0;
    case C_DATA_LF:
      if (c != '\n') return (int)bad(reason, "CR without LF after chunk data");
      b->st = C_SIZE, b->digits = 0;
      return 0;
    case C_TRAILER:
      if (c == '\r')
        b->st = C_END_LF;
      else if (c == '\n')
        b->done = true;
      else
        b->st = C_TRAILER_LINE, b->line = 1;
      return 0;
    case C_TRAILER_LINE:
      if (c == '\n') b->st = C_TRAILER;
      return 0;
    case C_END_LF:
      if (c != '\n') return (int)bad(reason, "CR without LF at the end of a chunked body");
      b->done = true;
      return 0;
  }
  return (int)bad(reason, "chunk parser state");
}

static long feed_chunked(hbody *b, const uint8_t *p, size_t n, const char **reason) {
  size_t i = 0;
  while (i < n && !b->done) {
    if (b->st == C_DATA) {
      size_t take = (uint64_t)(n - i) < b->left ? n - i : (size_t)b->left;
      b->left -= take;
      i += take;
      if (!b->left) b->st = C_DATA_CR;
      continue;
    }
    bool in_trailer = b->st == C_TRAILER || b->st == C_TRAILER_LINE || b->st == C_END_LF;
    if ((b->st == C_SIZE || b->st == C_EXT || b->st == C_TRAILER_LINE) &&
        ++b->line > CHUNK_LINE_MAX)
      return bad(reason, "chunk size or trailer line longer than 1 KB");
    if (in_trailer && ++b->trailer > TRAILER_MAX)
      return bad(reason, "trailer section larger than 16 KB");
    if (chunk_byte(b, p[i++], reason)) return -1;
  }
  return (long)i;
}

long hbody_feed(hbody *b, const uint8_t *p, size_t n, const char **reason) {
  if (b->done) return 0;
  switch (b->kind) {
    case HBODY_NONE:
      return 0;
    case HBODY_CLOSE:
      return (long)n;
    case HBODY_LENGTH: {
      size_t take = (uint64_t)n < b->left ? n : (size_t)b->left;
      b->left -= take;
      b->done = b->left == 0;
      return (long)take;
    }
    case HBODY_CHUNKED:
      return feed_chunked(b, p, n, reason);
  }
  return 0;
}
