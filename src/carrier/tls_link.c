/* A TLS connection carrying framed AWG datagrams (tls_link.h). */
#include "carrier/tls_link.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(TLS_LINK_MAX_FRAME + DGRAM_FRAME_HEADER <= TLS_LINK_RECORD_MAX &&
                   TLS_LINK_RECORD_MAX <= TLS_LINK_PENDING,
               "a frame fits a record, a record the pending buffer");

static void flush_pending(tls_link *l) {
  if (!l->n_pending) return;
  if (!l->closing && tls_session_write(l->s, l->pending, l->n_pending) != 0)
    l->dropped_out++; /* the socket is that far behind: these datagrams are lost, as over UDP */
  l->n_pending = 0;
}

static void on_flush_hook(turn_hook *h) {
  tls_link *l = (tls_link *)((char *)h - offsetof(tls_link, flush_hook));
  flush_pending(l);
}

static bool on_frame(void *ctx, uint8_t *frame, size_t len) {
  tls_link *l = ctx;
  l->frames_in++;
  return l->ev->on_frame(l, l->ctx, frame, len) && !l->closing && !l->raw;
}

static void on_ready(tls_session *s, void *ctx) {
  (void)s;
  tls_link *l = ctx;
  l->ready = true;
  if (l->ev->on_ready) l->ev->on_ready(l, l->ctx);
}

static void feed_frames(tls_link *l, uint8_t *data, size_t len) {
  if (dgram_frames_feed(&l->reader, data, len, on_frame, l) == DGRAM_FRAMES_BAD_LENGTH)
    tls_link_close(l, true); /* not our framing: nothing more can be read from it */
}

static void on_data(tls_session *s, void *ctx, uint8_t *data, size_t len) {
  (void)s;
  tls_link *l = ctx;
  if (l->closing) return;
  if (l->raw) return l->ev->on_raw(l, l->ctx, data, len);
  feed_frames(l, data, len);
}

static void on_closed(tls_session *s, void *ctx, const char *reason) {
  (void)s;
  tls_link *l = ctx;
  loop_turn_cancel(&l->flush_hook);
  l->ev->on_closed(l, l->ctx, reason);
  dgram_frame_reader_free(&l->reader);
  free(l);
}

static const tls_session_cbs session_cbs = {on_ready, on_data, on_closed};

static void free_handle(uv_handle_t *h) { free(h); }

tls_link *tls_link_start(uv_tcp_t *tcp, tls_config *cfg, const tls_link_events *ev, void *ctx,
                         uint64_t handshake_timeout_ms) {
  tls_link *l = calloc(1, sizeof *l);
  if (!l || dgram_frame_reader_init(&l->reader, TLS_LINK_MAX_FRAME) != 0) {
    free(l);
    uv_close((uv_handle_t *)tcp, free_handle); /* ours to free, as the session would */
    return NULL;
  }
  l->pending = l->pending_room + DGRAM_CARRIER_ROOM;
  l->ev = ev;
  l->ctx = ctx;
  l->flush_hook.run = on_flush_hook;
  l->flush_hook.phase = LOOP_TURN_SEND;
  l->s = tls_session_start(tcp, cfg, &session_cbs, l, handshake_timeout_ms);
  if (!l->s) {
    dgram_frame_reader_free(&l->reader);
    free(l);
    return NULL;
  }
  return l;
}

uint8_t *tls_link_reserve(tls_link *l, size_t max_len) {
  if (l->closing || max_len == 0 || max_len > TLS_LINK_MAX_FRAME) return NULL;
  if (tls_session_queued(l->s) > TLS_SESSION_MAX_QUEUED) return NULL;
  /* A write stays within one record: spilling 16000-odd bytes into a full record and a small
   * one cost a second record and a second write to the socket for every one. */
  if (l->n_pending + DGRAM_FRAME_HEADER + max_len > TLS_LINK_RECORD_MAX) flush_pending(l);
  return l->pending + l->n_pending + DGRAM_FRAME_HEADER;
}

void tls_link_commit(tls_link *l, size_t len) {
  dgram_frame_header(l->pending + l->n_pending, len);
  l->n_pending += DGRAM_FRAME_HEADER + len;
  l->frames_out++;
  if (l->n_pending >= TLS_LINK_RECORD)
    flush_pending(l);
  else
    loop_turn_want(&l->flush_hook);
}

int tls_link_send(tls_link *l, const uint8_t *data, size_t len) {
  uint8_t *room = tls_link_reserve(l, len);
  if (!room) {
    if (!l->closing && tls_session_queued(l->s) > TLS_SESSION_MAX_QUEUED) l->dropped_out++;
    return -1;
  }
  memcpy(room, data, len);
  tls_link_commit(l, len);
  return 0;
}

int tls_link_write_raw(tls_link *l, const uint8_t *data, size_t len) {
  if (l->closing) return -1;
  flush_pending(l);
  return tls_session_write(l->s, data, len);
}

void tls_link_raw(tls_link *l) { l->raw = true; }

void tls_link_frames(tls_link *l, uint8_t *rest, size_t n) {
  l->raw = false;
  if (n && !l->closing) feed_frames(l, rest, n);
}

void tls_link_close(tls_link *l, bool abort) {
  if (l->closing) return;
  flush_pending(l);
  l->closing = true;
  loop_turn_cancel(&l->flush_hook);
  if (abort)
    tls_session_abort(l->s);
  else
    tls_session_close(l->s);
}
