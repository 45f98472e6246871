#include "stream/stream_lwip.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "device/ipstack.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "stream/lwip_unsent_cap.h"
#include "stream/rcv_window.h"
#include "util/list.h"
#include "util/log.h"
#include "util/loop_turn.h"

typedef struct lwip_stream {
  stream s;
  uv_loop_t *loop;
  struct tcp_pcb *pcb;
  /* Received, not yet delivered. The pbufs of every chain lwIP handed us are linked one after
   * the other through ->next, each holding its own reference, and freed one at a time (no
   * pbuf_cat: its u16 tot_len would overflow past 64 KB and each append walks the queue). */
  struct pbuf *rxq, *rx_tail;
  rcv_window wnd;      /* the receive window this connection may have (rcv_window.h) */
  uint32_t connect_ms; /* when this end sent its SYN (0: accepted) */
  /* Accepted by write() but not yet by lwIP: pending_len bytes at pending + pending_off (taken
   * from the front without moving the rest; compacted when appending needs the room). */
  uint8_t *pending;
  size_t pending_off, pending_len, pending_cap;
  bool aborted; /* tcp_abort was called: a running lwIP callback must return ERR_ABRT */
  bool reading, delivering, eof_seen, eof_delivered, shut_wanted, shut_done, closing, over_high;
  bool connecting;
  bool kicked;                /* on_poll found sending idle with bytes waiting (logged once) */
  bool feed_later, in_output; /* on_sent left the refill to on_output; on_output runs it */
  stream_lwip_connect_cb connect_cb;
  void *connect_ctx;
  uv_timer_t defer; /* runs on_closed / connect failures outside lwIP callbacks */
  int defer_status;
  list_node connecting_link; /* on connecting_list while connecting: for ICMP matching */
  list_node ready_link;      /* on ready_list while data that arrived this turn waits */
  turn_hook output;          /* tcp_output once at the end of the turn (want_output) */
} lwip_stream;

static list_node connecting_list = {&connecting_list, &connecting_list};
/* Streams that received data this loop turn; delivered together at its end (deliver_ready). */
static list_node ready_list = {&ready_list, &ready_list};

static void unready(lwip_stream *l) { list_remove(&l->ready_link); }

static void unlink_connecting(lwip_stream *l) {
  list_remove(&l->connecting_link);
  l->connecting = false;
}

/* ---- the receive window (rcv_window.h) -------------------------------------------------- */

/* What this lwIP instance's connections have grown beyond AWG_TCP_WND_START, together. */
static _Thread_local uint64_t wnd_grown;

static uint32_t now_ms(const lwip_stream *l) { return (uint32_t)uv_now(l->loop); }

/* A connection just established starts at AWG_TCP_WND_START rather than lwIP's TCP_WND. Called
 * from lwIP's connected and accept callbacks, when only the SYN or SYN-ACK went out: its window
 * field is never scaled, so it announced 64 KiB at most (lwIP's rcv_ann_right_edge counts the
 * full window, set once window scaling was agreed), and a smaller window takes nothing back. */
static void window_start(lwip_stream *l) {
  struct tcp_pcb *pcb = l->pcb;
  if (pcb->state != ESTABLISHED || !(pcb->flags & TF_WND_SCALE) ||
      TCP_WND_MAX(pcb) <= AWG_TCP_WND_START)
    return;
  uint32_t cut = TCP_WND_MAX(pcb) - AWG_TCP_WND_START;
  if (pcb->rcv_wnd <= cut) return;
  pcb->rcv_wnd -= cut;
  pcb->rcv_ann_wnd = pcb->rcv_wnd;
  pcb->rcv_ann_right_edge = pcb->rcv_nxt + pcb->rcv_ann_wnd;
  uint32_t rtt = 0; /* accepted: not known */
  if (l->connect_ms) {
    rtt = now_ms(l) - l->connect_ms; /* dialed: SYN to SYN-ACK */
    if (!rtt) rtt = 1;
  }
  rcv_window_init(&l->wnd, AWG_TCP_WND_START, rtt);
}

/* The connection ends: what it grew goes back to the instance. With pcb (lwIP has not freed it),
 * the window it withheld is put back first: lwIP's tcp_close resets a connection whose window is
 * short of TCP_WND, taking that for data the application never read. */
static void window_release(lwip_stream *l, struct tcp_pcb *pcb) {
  if (!l->wnd.target) return;
  if (pcb) {
    uint32_t full = pcb->rcv_wnd + (TCP_WND_MAX(pcb) - l->wnd.target);
    pcb->rcv_wnd = full > TCP_WND_MAX(pcb) ? TCP_WND_MAX(pcb) : full;
  }
  wnd_grown -= l->wnd.target - AWG_TCP_WND_START;
  l->wnd.target = 0;
}

static void detach_pcb(lwip_stream *l, bool abort_it) {
  struct tcp_pcb *pcb = l->pcb;
  if (!pcb) return;
  l->pcb = NULL;
  window_release(l, pcb);
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  tcp_poll(pcb, NULL, 0);
  /* Both FINs are already exchanged: lwIP ends the connection by itself once what is still queued
   * and our FIN are acknowledged (or its retransmissions give up). tcp_close would only add
   * TF_RXCLOSED, which stops lwIP from refreshing the connection's inactivity timer, so LAST_ACK
   * would be dropped 2 MSL (4 s here) after the close even while the rest was still being sent;
   * the far end then met a reset with part of the data missing. */
  if (!abort_it && (pcb->state == LAST_ACK || pcb->state == CLOSING || pcb->state == TIME_WAIT))
    return;
  if (abort_it || tcp_close(pcb) != ERR_OK) {
    l->aborted = true;
    tcp_abort(pcb);
  }
}

static void on_defer_closed(uv_handle_t *h) {
  lwip_stream *l = h->data;
  loop_turn_cancel(&l->output);
  if (l->defer_status == 0 && l->s.on_closed) l->s.on_closed(&l->s);
  free(l->pending);
  free(l);
}

static void on_defer(uv_timer_t *t) {
  lwip_stream *l = t->data;
  if (l->defer_status) l->connect_cb(l->connect_ctx, &l->s, l->defer_status);
  uv_close((uv_handle_t *)&l->defer, on_defer_closed);
}

/* Frees everything and reports, from the loop rather than from inside lwIP. */
static void finish(lwip_stream *l, int connect_status) {
  if (l->closing) return;
  l->closing = true;
  l->reading = false;
  unready(l);
  loop_turn_cancel(&l->output);
  if (l->connecting) unlink_connecting(l);
  if (l->rxq) pbuf_free(l->rxq), l->rxq = l->rx_tail = NULL; /* frees the whole list */
  l->defer_status = connect_status;
  uv_timer_start(&l->defer, on_defer, 0, 0);
}

/* ---- reading ---------------------------------------------------------------------------- */

/* Received data goes to on_read in pieces of up to 64 KB copied out of the pbufs, not one call
 * per segment: the consumer's write to the application socket is a system call, and per 1340-byte
 * segment those writes took 38 % of the client's CPU in a download. */
static uint8_t rx_flat[0xFFFF];
static bool rx_flat_busy; /* a nested delivery (on_read of one stream feeding another) */

static void recved(struct tcp_pcb *pcb, size_t n) {
  for (; n; n -= n > 0xFFFF ? 0xFFFF : n) tcp_recved(pcb, (u16_t)(n > 0xFFFF ? 0xFFFF : n));
}

/* The application read n bytes: only now does the window reopen by as much, and it grows when a
 * round trip's reads call for it. */
static void consumed(lwip_stream *l, size_t n) {
  recved(l->pcb, n);
  uint64_t budget = wnd_grown < AWG_TCP_WND_GROWN_MAX ? AWG_TCP_WND_GROWN_MAX - wnd_grown : 0;
  uint32_t grow = rcv_window_on_read(&l->wnd, n, TCP_WND_MAX(l->pcb), budget, now_ms(l));
  if (!grow) return;
  wnd_grown += grow;
  recved(l->pcb, grow);
  if (log_enabled(LOG_DEBUG)) {
    char w[24], rtt[16], ports[16];
    snprintf(w, sizeof w, "%u", l->wnd.target);
    snprintf(rtt, sizeof rtt, "%u", l->wnd.rtt_ms);
    snprintf(ports, sizeof ports, "%u>%u", l->pcb->local_port, l->pcb->remote_port);
    LOG_D("tcp", "rcv_window_grown", "window", w, "rtt_ms", rtt, "ports", ports, NULL);
  }
}

/* Takes pbufs off the queue into rx_flat (whole pbufs, at least one) and returns the length. */
static size_t take_flat(lwip_stream *l, uint8_t *dst, size_t cap) {
  size_t n = 0;
  while (l->rxq && n + l->rxq->len <= cap) {
    struct pbuf *q = l->rxq;
    l->rxq = q->next;
    if (!l->rxq) l->rx_tail = NULL;
    q->next = NULL; /* so pbuf_free releases q alone */
    memcpy(dst + n, q->payload, q->len);
    n += q->len;
    pbuf_free(q);
  }
  return n;
}

static void deliver(lwip_stream *l) {
  unready(l);
  if (l->delivering) return; /* on_read may call read_start again */
  l->delivering = true;
  while (l->reading && l->rxq && !l->closing) {
    size_t n;
    if (!rx_flat_busy) {
      rx_flat_busy = true;
      n = take_flat(l, rx_flat, sizeof rx_flat);
      l->s.on_read(&l->s, rx_flat, n);
      rx_flat_busy = false;
    } else {
      struct pbuf *q = l->rxq;
      l->rxq = q->next;
      if (!l->rxq) l->rx_tail = NULL;
      q->next = NULL;
      n = q->len;
      l->s.on_read(&l->s, q->payload, n);
      pbuf_free(q);
    }
    if (l->pcb) consumed(l, n);
  }
  if (l->reading && !l->rxq && l->eof_seen && !l->eof_delivered && !l->closing) {
    l->eof_delivered = true;
    l->s.on_read(&l->s, NULL, 0);
  }
  l->delivering = false;
}

/* The end of a loop turn (LOOP_TURN_DELIVER, before lwIP's held ACKs go out). deliver() may close
 * streams (the relay ends) but those only unlink themselves, and nothing received is added during
 * delivery. */
static void deliver_ready(turn_hook *h) {
  (void)h;
  while (!list_empty(&ready_list)) deliver(list_entry(ready_list.next, lwip_stream, ready_link));
}
static _Thread_local turn_hook deliver_hook = {.run = deliver_ready, .phase = LOOP_TURN_DELIVER};

static void mark_ready(lwip_stream *l) {
  if (list_linked(&l->ready_link)) return;
  list_push_front(&ready_list, &l->ready_link);
  loop_turn_want(&deliver_hook);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  lwip_stream *l = arg;
  if (!l) {
    if (p) pbuf_free(p);
    return ERR_OK;
  }
  if (!p) {
    l->eof_seen = true;
  } else {
    if (l->rx_tail)
      l->rx_tail->next = p;
    else
      l->rxq = p;
    for (l->rx_tail = p; l->rx_tail->next; l->rx_tail = l->rx_tail->next) {
    }
    rcv_window_on_data(&l->wnd, pcb->rcv_nxt, now_ms(l));
  }
  if (l->reading) mark_ready(l);
  return ERR_OK;
}

static void read_start(stream *s) {
  lwip_stream *l = (lwip_stream *)s;
  if (l->closing) return;
  l->reading = true;
  deliver(l);
}

static void read_stop(stream *s) { ((lwip_stream *)s)->reading = false; }

/* ---- writing ---------------------------------------------------------------------------- */

/* Whether the last segment of lwIP's unsent queue is a retransmission (moved back from the
 * unacknowledged ones by a fast retransmit or src/device/tcp_recovery.c) rather than the end of
 * the stream. lwIP's tcp_write would then append new bytes to it, and tcp_shutdown put the FIN
 * on it, both at that old sequence number: the receiver would see the stream end early or
 * bytes out of place. Writes and the FIN wait until it has been sent (on_sent runs again). */
static bool tail_is_old(const struct tcp_pcb *pcb) {
  const struct tcp_seg *t = pcb->unsent;
  while (t->next) t = t->next;
  return lwip_ntohl(t->tcphdr->seqno) + TCP_TCPLEN(t) != pcb->snd_lbb;
}

static bool tail_resent(const struct tcp_pcb *pcb) {
  const struct tcp_seg *t = pcb->unsent;
  if (!t) return false;
  /* New bytes never lie below SND.NXT: only a retransmission puts an older segment on unsent
   * (lwIP's fast retransmit and ours leave SND.NXT alone; its timeout moves SND.NXT back to
   * the head and the whole unacknowledged queue with it, so unsent then still ends at snd_lbb).
   * A queue that starts at or above SND.NXT therefore ends at snd_lbb, and the walk below (its
   * length is the unsent queue: 4.9 % of an upload's CPU) is needed only after a retransmit. */
  if (!TCP_SEQ_LT(lwip_ntohl(t->tcphdr->seqno), pcb->snd_nxt)) {
    /* Debug builds (the sanitizer CI) check the reasoning. Once the FIN is queued, lwIP may have
     * set it on the last data segment without counting it in snd_lbb; nothing is fed then. */
    assert(!tail_is_old(pcb) || (pcb->flags & TF_FIN));
    return false;
  }
  return tail_is_old(pcb);
}

/* lwIP's tcp_output walks the whole unacknowledged queue to find its tail (up to TCP_SND_BUF of
 * segments): called for every write() an upload makes, that walk was 5-11 % of the client's CPU.
 * New bytes go out once per loop turn instead, and not at all from inside lwIP's input for this
 * PCB, which calls tcp_output itself when its callbacks return. */
static err_t push_and_drain(lwip_stream *l);

static void on_output(turn_hook *h) {
  lwip_stream *l = (lwip_stream *)((char *)h - offsetof(lwip_stream, output));
  if (l->feed_later) {
    l->feed_later = false;
    l->in_output = true; /* the refill's want_output is this very run */
    push_and_drain(l);   /* may end the relay: l then has no PCB, and lives until its close */
    l->in_output = false;
  }
  if (l->pcb && !l->closing) tcp_output(l->pcb);
}

static void want_output(lwip_stream *l) {
  if (tcp_input_pcb != l->pcb && !l->in_output) loop_turn_want(&l->output);
}

/* What lwIP should take now: what its send buffer and segment queue take, held to the open
 * window plus a margin (lwip_unsent_cap.h says why). */
static size_t lwip_room(const struct tcp_pcb *pcb) {
  if (tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 2) return 0;
  const lwip_send_seq seq = {.snd_lbb = pcb->snd_lbb,
                             .snd_nxt = pcb->snd_nxt,
                             .lastack = pcb->lastack,
                             .cwnd = pcb->cwnd,
                             .snd_wnd = pcb->snd_wnd};
  return lwip_unsent_cap(&seq, tcp_sndbuf(pcb));
}

/* Hands lwIP as much of src as lwip_room allows (copied into its segments); returns how much
 * that was. */
static size_t feed_lwip(lwip_stream *l, const uint8_t *src, size_t len) {
  size_t off = 0;
  while (l->pcb && off < len) {
    size_t room = lwip_room(l->pcb);
    size_t n = len - off;
    if (n > room) n = room;
    if (n > 0xFFFF) n = 0xFFFF;
    if (!n || tcp_write(l->pcb, src + off, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK) break;
    off += n;
  }
  return off;
}

/* Whether lwIP may take new bytes now (see tail_resent; a fast retransmit goes out first). */
static bool may_feed(lwip_stream *l) {
  if (!l->pcb) return false;
  if (!tail_resent(l->pcb)) return true;
  tcp_output(l->pcb);
  return !tail_resent(l->pcb);
}

static void push_pending(lwip_stream *l) {
  if (!may_feed(l)) return;
  if (l->pending_len) {
    size_t off = feed_lwip(l, l->pending + l->pending_off, l->pending_len);
    l->pending_off += off;
    l->pending_len -= off;
    if (!l->pending_len) l->pending_off = 0;
  }
  bool shut_now = false;
  if (l->pcb) {
    if (!l->pending_len && l->shut_wanted && !l->shut_done) {
      l->shut_done = shut_now = true;
      tcp_shutdown(l->pcb, 0, 1);
    }
    if (l->pcb) want_output(l);
  }
  /* Last: the callback may close this stream. */
  if (shut_now && !l->closing && l->s.on_shutdown) l->s.on_shutdown(&l->s);
}

/* Hands more bytes to lwIP and tells the writer once the backlog is down to the low-water mark.
 * Returns what the lwIP callback that called it must return: on_drain/on_shutdown may have ended
 * the relay and aborted this PCB, and lwIP must then not touch it again (ERR_OK would make it use
 * freed memory). */
static err_t push_and_drain(lwip_stream *l) {
  push_pending(l);
  if (l->over_high && l->pending_len <= STREAM_LOW_WATER && !l->closing) {
    l->over_high = false;
    if (l->s.on_drain) l->s.on_drain(&l->s);
  }
  return l->aborted ? ERR_ABRT : ERR_OK;
}

/* Bytes are waiting (in pending or lwIP's unsent queue) and nothing is in flight or probing:
 * no acknowledgement will come to call on_sent, and no lwIP timer runs for the connection. */
static bool send_idle(const lwip_stream *l, const struct tcp_pcb *pcb) {
  return (l->pending_len || pcb->unsent) && !pcb->unacked && !pcb->persist_backoff;
}

/* lwIP's poll (every POLL_TICKS slow ticks): a connection whose sending went idle with bytes
 * waiting is pushed again, so a missed wake-up costs a fraction of a second instead of a stall
 * until the peer happens to send something. Logged once per stream with the state it was in. */
#define POLL_TICKS 4
/* A connecting PCB's SYN is resent on a schedule like Linux's, 1, 2, 4, then every 8 s (lwIP keeps
 * the RTO of a PCB in SYN_SENT fixed, so it resent every second and gave up after TCP_SYNMAXRTX, ~7
 * s, whatever ConnectTimeout said). The poll runs within 200 ms of each resend (rtime restarts at 0
 * then), well before the next one is due. The dialer's deadline decides when to give up. */
#define SYN_RTO_MS 1000
#define SYN_BACKOFF_MAX 3 /* 1 s << 3 = 8 s */
static void syn_backoff(struct tcp_pcb *pcb) {
  unsigned shift = pcb->nrtx < SYN_BACKOFF_MAX ? pcb->nrtx : SYN_BACKOFF_MAX;
  pcb->rto = (s16_t)((SYN_RTO_MS << shift) / TCP_SLOW_INTERVAL);
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb) {
  lwip_stream *l = arg;
  if (pcb->state == SYN_SENT) syn_backoff(pcb);
  if (!l || l->closing || !send_idle(l, pcb)) return ERR_OK;
  if (!l->kicked) {
    l->kicked = true;
    char st[200];
    snprintf(st, sizeof st,
             "pending=%zu unsent=%d snd_wnd=%lu cwnd=%lu snd_buf=%lu snd_queuelen=%u "
             "tail_resent=%d",
             l->pending_len, pcb->unsent != NULL, (unsigned long)pcb->snd_wnd,
             (unsigned long)pcb->cwnd, (unsigned long)pcb->snd_buf, (unsigned)pcb->snd_queuelen,
             tail_resent(pcb));
    LOG_I("tcp", "send_resumed", "state", st, NULL);
  }
  /* A window of less than a segment with nothing in flight starts no timer in lwIP. */
  if (pcb->cwnd < pcb->mss) pcb->cwnd = pcb->mss;
  return push_and_drain(l);
}

/* An ACK freed room in lwIP's send buffer. Refilling it from inside lwIP's input would make
 * lwIP's own tcp_output, run when this callback returns, walk the whole unacknowledged queue for
 * every ACK (see on_output); the refill waits for the end of the turn instead, once for all the
 * ACKs a batch brought, and lwIP's tcp_output finds nothing new to send (unless the window held
 * back some of what it already had). */
static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
  lwip_stream *l = arg;
  if (!l) return ERR_OK;
  if (tcp_input_pcb == pcb && (l->pending_len || l->shut_wanted || l->over_high)) {
    l->feed_later = true;
    loop_turn_want(&l->output); /* at the turn's end; at once only where no turn runs (tests) */
    return l->aborted ? ERR_ABRT : ERR_OK;
  }
  return push_and_drain(l);
}

/* Room for len more pending bytes: the taken front reused first, then a larger buffer. */
static int pending_room(lwip_stream *l, size_t len) {
  if (l->pending_off + l->pending_len + len <= l->pending_cap) return 0;
  if (l->pending_off) {
    memmove(l->pending, l->pending + l->pending_off, l->pending_len);
    l->pending_off = 0;
  }
  if (l->pending_len + len <= l->pending_cap) return 0;
  size_t cap = l->pending_cap ? l->pending_cap : 16384;
  while (cap < l->pending_len + len) cap *= 2;
  uint8_t *p = realloc(l->pending, cap);
  if (!p) return UV_ENOMEM;
  l->pending = p;
  l->pending_cap = cap;
  return 0;
}

static int write_(stream *s, const uint8_t *data, size_t len) {
  lwip_stream *l = (lwip_stream *)s;
  if (l->closing || !l->pcb || l->shut_wanted) return UV_EPIPE;
  /* Nothing waiting: lwIP copies straight from the caller's buffer, and only what it cannot
   * take yet is copied here. */
  if (!l->pending_len && may_feed(l)) {
    size_t took = feed_lwip(l, data, len);
    data += took;
    len -= took;
  }
  if (len) {
    int rc = pending_room(l, len);
    if (rc) return rc;
    memcpy(l->pending + l->pending_off + l->pending_len, data, len);
    l->pending_len += len;
  }
  push_pending(l);
  if (l->pending_len > STREAM_HIGH_WATER) l->over_high = true;
  /* Give back memory after a burst, so idle streams stay small. */
  if (!l->pending_len && l->pending_cap > 65536) {
    free(l->pending);
    l->pending = NULL;
    l->pending_cap = 0;
  }
  return 0;
}

static size_t write_queued(const stream *s) { return ((const lwip_stream *)s)->pending_len; }

static void shutdown_(stream *s) {
  lwip_stream *l = (lwip_stream *)s;
  if (l->shut_wanted || l->closing) return;
  l->shut_wanted = true;
  push_pending(l);
}

static void close_(stream *s) {
  lwip_stream *l = (lwip_stream *)s;
  if (l->closing) return;
  /* Graceful only when both directions ended cleanly; otherwise reset the far end. */
  bool graceful = l->eof_delivered && l->shut_done && !l->pending_len;
  detach_pcb(l, !graceful);
  finish(l, 0);
}

/* ---- errors and connecting -------------------------------------------------------------- */

static int map_err(err_t e, bool connecting) {
  switch (e) {
    case ERR_RST:
      return connecting ? UV_ECONNREFUSED : UV_ECONNRESET;
    case ERR_ABRT:
      return connecting ? UV_ETIMEDOUT : UV_ECONNABORTED;
    case ERR_CLSD:
      return UV_ECONNRESET;
    default:
      return UV_EIO;
  }
}

static void on_err(void *arg, err_t err) {
  lwip_stream *l = arg;
  if (!l) return;
  l->pcb = NULL; /* lwIP has freed it */
  window_release(l, NULL);
  /* Both FINs exchanged and acknowledged before the owner closed: lwIP frees the PCB and says
   * ERR_CLSD, but for the stream that is the clean end it already reported (EOF, on_shutdown),
   * not an error. */
  if (err == ERR_CLSD && l->eof_seen && l->shut_done) return;
  if (l->connecting) {
    finish(l, map_err(err, true));
    return;
  }
  if (!l->closing && l->s.on_error) l->s.on_error(&l->s, map_err(err, false));
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err) {
  lwip_stream *l = arg;
  unlink_connecting(l);
  window_start(l);
  l->connect_cb(l->connect_ctx, &l->s, 0);
  return l->aborted ? ERR_ABRT : ERR_OK; /* the callback may have closed (aborted) us */
}

static const stream_ops lwip_ops = {read_start, read_stop, write_,    write_queued,
                                    shutdown_,  close_,    "lwip-tcp"};

static void init_stream(lwip_stream *l, uv_loop_t *loop, struct tcp_pcb *pcb) {
  l->s.ops = &lwip_ops;
  l->loop = loop;
  l->pcb = pcb;
  list_init(&l->connecting_link);
  list_init(&l->ready_link);
  l->output.run = on_output;
  l->output.phase = LOOP_TURN_STACK;
  uv_timer_init(loop, &l->defer);
  l->defer.data = l;
  if (!pcb) return;
  tcp_arg(pcb, l);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_err);
  tcp_nagle_disable(pcb);
  tcp_poll(pcb, on_poll, POLL_TICKS);
}

static lwip_stream *new_stream(uv_loop_t *loop, struct tcp_pcb *pcb) {
  lwip_stream *l = calloc(1, sizeof *l);
  if (l) init_stream(l, loop, pcb);
  return l;
}

stream *stream_lwip_wrap(uv_loop_t *loop, struct tcp_pcb *pcb) {
  lwip_stream *l = new_stream(loop, pcb);
  if (l && pcb) window_start(l); /* accepted: established */
  return l ? &l->s : NULL;
}

/* Local ports for outgoing connections are drawn at random from the whole unprivileged range and
 * shared between destinations: with SOF_REUSEADDR, tcp_bind accepts a port other connections use
 * and tcp_connect refuses only an identical 4-tuple (ERR_USE; then another port is drawn). lwIP's
 * own choice (tcp_new_port) hands out 16,384 ports for all destinations together, walks every PCB
 * list once per candidate, and runs dry under sustained churn because closed connections hold
 * their port through TIME_WAIT. Here a connect costs one bind and one connect (each one pass over
 * the PCB lists, as every received segment costs lwIP anyway) plus a retry only on a 4-tuple
 * clash, whose odds are (connections to that destination) / 64,512. */
#define PORT_FIRST 1024u
#define PORT_TRIES 16

static struct tcp_pcb *connect_pcb(struct netif *nif, int family, const ip_addr_t *dst,
                                   uint16_t port, void *arg, err_t *err) {
  *err = ERR_MEM;
  for (int i = 0; i < PORT_TRIES; i++) {
    struct tcp_pcb *pcb = tcp_new_ip_type(family == AF_INET6 ? IPADDR_TYPE_V6 : IPADDR_TYPE_V4);
    if (!pcb) return NULL;
    ip_set_option(pcb, SOF_REUSEADDR);
    tcp_arg(pcb, arg);
    u16_t lport = (u16_t)(PORT_FIRST + LWIP_RAND() % (65536u - PORT_FIRST));
    const ip_addr_t *any = family == AF_INET6 ? IP6_ADDR_ANY : IP4_ADDR_ANY;
    *err = tcp_bind(pcb, any, lport);
    if (nif) tcp_bind_netif(pcb, nif);
    if (*err == ERR_OK) *err = tcp_connect(pcb, dst, port, on_connected);
    if (*err == ERR_OK) {
      /* RFC 6298's initial RTO of 1 s, as Linux has, not lwIP's fixed 3 s: a lost SYN (or a
       * suppressed ICMP error) costs a second, not three. */
      pcb->rto = pcb->sv = (s16_t)(SYN_RTO_MS / TCP_SLOW_INTERVAL);
      return pcb;
    }
    tcp_arg(pcb, NULL);
    tcp_abort(pcb); /* CLOSED: only unlinks and frees it, nothing is sent */
    if (*err != ERR_USE) return NULL;
  }
  return NULL;
}

stream *stream_lwip_connect(uv_loop_t *loop, struct netif *nif, int family, const uint8_t *addr,
                            uint16_t port, stream_lwip_connect_cb cb, void *ctx) {
  lwip_stream *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  ip_addr_t dst;
  ipstack_ip_from_bytes(&dst, family, addr);
  err_t err;
  struct tcp_pcb *pcb = connect_pcb(nif, family, &dst, port, l, &err);
  init_stream(l, loop, pcb);
  l->connect_cb = cb;
  l->connect_ctx = ctx;
  if (!pcb) {
    /* No memory, no route, or no free 4-tuple: reported like any failed attempt. */
    finish(l, err == ERR_MEM ? UV_ENOBUFS : err == ERR_USE ? UV_EADDRNOTAVAIL : UV_ENETUNREACH);
    return &l->s;
  }
  l->connecting = true;
  l->connect_ms = now_ms(l) ? now_ms(l) : 1;
  list_push_front(&connecting_list, &l->connecting_link);
  return &l->s;
}

static size_t seg_count(const struct tcp_seg *s) {
  size_t n = 0;
  for (; s; s = s->next) n++;
  return n;
}

/* The first segments of a queue as seq+len (ref>1 when the netif still holds one): where a
 * stall's missing bytes sit. */
static void seg_heads(char *out, size_t cap, const struct tcp_seg *s) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; s && i < 3 && used < cap; s = s->next, i++) {
    int w = snprintf(out + used, cap - used, "%s%lu+%u%s", i ? "," : "",
                     (unsigned long)lwip_ntohl(s->tcphdr->seqno), (unsigned)s->len,
                     s->p && s->p->ref > 1 ? "(busy)" : "");
    if (w < 0) break;
    used += (size_t)w;
  }
  if (!out[0]) snprintf(out, cap, "-");
}

void stream_lwip_log_state(void) {
  size_t n = 0;
  for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next, n++) {
    const lwip_stream *l = pcb->recv == on_recv ? pcb->callback_arg : NULL;
    char pcbs[560], strm[160] = "-", unsent[72], unacked[72];
    seg_heads(unsent, sizeof unsent, pcb->unsent);
    seg_heads(unacked, sizeof unacked, pcb->unacked);
    snprintf(pcbs, sizeof pcbs,
             "state=%s lport=%u rport=%u snd_wnd=%lu cwnd=%lu ssthresh=%lu snd_buf=%lu "
             "snd_queuelen=%u unsent=%zu unacked=%zu ooseq=%zu rcv_wnd=%lu nrtx=%u rtime=%d "
             "rto=%d persist_backoff=%u flags=0x%x lastack=%lu snd_nxt=%lu snd_lbb=%lu "
             "rcv_nxt=%lu unsent_heads=%s unacked_heads=%s",
             tcp_debug_state_str(pcb->state), pcb->local_port, pcb->remote_port,
             (unsigned long)pcb->snd_wnd, (unsigned long)pcb->cwnd, (unsigned long)pcb->ssthresh,
             (unsigned long)pcb->snd_buf, (unsigned)pcb->snd_queuelen, seg_count(pcb->unsent),
             seg_count(pcb->unacked), seg_count(pcb->ooseq), (unsigned long)pcb->rcv_wnd,
             (unsigned)pcb->nrtx, (int)pcb->rtime, (int)pcb->rto, (unsigned)pcb->persist_backoff,
             (unsigned)pcb->flags, (unsigned long)pcb->lastack, (unsigned long)pcb->snd_nxt,
             (unsigned long)pcb->snd_lbb, (unsigned long)pcb->rcv_nxt, unsent, unacked);
    if (l)
      snprintf(strm, sizeof strm,
               "pending=%zu over_high=%d reading=%d rx_queued=%d eof_seen=%d shut_wanted=%d "
               "shut_done=%d tail_resent=%d",
               l->pending_len, l->over_high, l->reading, l->rxq != NULL, l->eof_seen,
               l->shut_wanted, l->shut_done, tail_resent(pcb));
    LOG_I("tcp", "pcb", "pcb", pcbs, "stream", strm, NULL);
  }
  char count[24];
  snprintf(count, sizeof count, "%zu", n);
  LOG_I("tcp", "pcbs", "count", count, NULL);
}

void stream_lwip_icmp_unreachable(int family, const uint8_t *dst, uint16_t dport, uint16_t sport,
                                  int uv_err) {
  list_node *it, *tmp;
  list_each_safe(it, tmp, &connecting_list) {
    lwip_stream *l = list_entry(it, lwip_stream, connecting_link);
    struct tcp_pcb *pcb = l->pcb;
    if (!pcb || pcb->remote_port != dport || pcb->local_port != sport) continue;
    bool same =
        family == AF_INET6
            ? IP_IS_V6(&pcb->remote_ip) && !memcmp(ip_2_ip6(&pcb->remote_ip)->addr, dst, 16)
            : IP_IS_V4(&pcb->remote_ip) && !memcmp(&ip_2_ip4(&pcb->remote_ip)->addr, dst, 4);
    if (!same) continue;
    detach_pcb(l, true);
    finish(l, uv_err);
    return;
  }
}
