#include "device/tcp_bw_floor.h"

#include <stdbool.h>
#include <stdlib.h>

#include <uv.h>

#include "lwip/ip.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip_hooks.h"
#include "util/batch_clock.h"
#include "util/bytes.h"

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_TS 8
#define FLOOR_MIN_RTT_MS 2
#define FLOOR_MAX (8u * 1024 * 1024) /* above any window lwIP can use (TCP_WND 6 MiB) */

static u8_t g_ext_id = LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID;
static tcp_bw_congestion_fn g_congestion_fn;

/* ---- the model ------------------------------------------------------------------------------ */

static uint32_t max_bw(const tcp_bw_model *m) {
  uint32_t best = 0;
  for (int i = 0; i < BW_ROUNDS; i++)
    if (m->bw[i] > best) best = m->bw[i];
  return best;
}

static void win_min_set(tcp_bw_win_min *w, int i, int32_t v, uint32_t t) {
  w->v[i] = v;
  w->t[i] = t;
}

static int32_t win_min_update(tcp_bw_win_min *w, int32_t v, uint32_t t, uint32_t win) {
  if (!w->have || v <= w->v[0] || t - w->t[2] > win) {
    for (int i = 0; i < 3; i++) win_min_set(w, i, v, t);
    w->have = 1;
    return v;
  }
  if (v <= w->v[1]) {
    win_min_set(w, 1, v, t);
    win_min_set(w, 2, v, t);
  } else if (v <= w->v[2]) {
    win_min_set(w, 2, v, t);
  }
  uint32_t age = t - w->t[0];
  if (age > win) { /* the best aged out: the next best moves up */
    win_min_set(w, 0, w->v[1], w->t[1]);
    win_min_set(w, 1, w->v[2], w->t[2]);
    win_min_set(w, 2, v, t);
    if (t - w->t[0] > win) {
      win_min_set(w, 0, w->v[1], w->t[1]);
      win_min_set(w, 1, w->v[2], w->t[2]);
    }
  } else if (w->t[1] == w->t[0] && age > win / 4) {
    win_min_set(w, 1, v, t); /* a quarter gone: keep a later candidate */
    win_min_set(w, 2, v, t);
  } else if (w->t[2] == w->t[1] && age > win / 2) {
    win_min_set(w, 2, v, t);
  }
  return w->v[0];
}

void tcp_bw_reverse_delay(tcp_bw_model *m, uint32_t raw, uint32_t now_us) {
  if (!m->have_rev) m->rev_base = raw, m->have_rev = 1;
  int32_t d = (int32_t)(raw - m->rev_base);
  if (d < -60000 || d > 60000) { /* the peer's clock jumped: start over */
    m->rev_base = raw;
    m->rev.have = 0;
    d = 0;
  }
  m->rev_ms = d;
  win_min_update(&m->rev, d, now_us, BW_MIN_RTT_WINDOW_MS * 1000u);
}

/* The forward queueing delay this RTT sample shows: its rise above the path's minimum, less the
 * part the reverse delay explains. */
static uint32_t forward_queue(const tcp_bw_model *m, uint32_t rtt_ms) {
  int64_t q = (int64_t)rtt_ms - m->min_rtt_ms;
  if (m->rev_ms != INT32_MIN && m->rev.have) q -= (int64_t)m->rev_ms - m->rev.v[0];
  return q < 0 ? 0 : (uint32_t)q;
}

uint32_t tcp_bw_floor_update(tcp_bw_model *m, uint32_t acked, uint32_t rtt_ms, uint32_t now_us,
                             uint32_t mss) {
  if (rtt_ms != UINT32_MAX) {
    if (!m->have_rtt) m->round_start = now_us, m->round_bytes = 0, m->round_min_queue = UINT32_MAX;
    m->min_rtt_ms =
        (uint32_t)win_min_update(&m->rtt, (int32_t)rtt_ms, now_us, BW_MIN_RTT_WINDOW_MS * 1000u);
    m->have_rtt = 1;
  }
  if (!m->have_rtt) return 0;
  m->round_bytes += acked;
  if (rtt_ms != UINT32_MAX) {
    uint32_t q = forward_queue(m, rtt_ms);
    if (q < m->round_min_queue) m->round_min_queue = q;
  }
  m->rev_ms = INT32_MIN;
  /* A round is one minimum RTT (at least 1 ms, the resolution of the timestamps the RTT comes
   * from): the rate over a whole round smooths out delayed and stretched ACKs. The round itself
   * is timed in microseconds: in whole milliseconds a burst of ACKs just after a tick made a
   * round look up to twice as fast, and the maximum over BW_ROUNDS rounds kept the outlier (a
   * floor several times the path's BDP: bursts a stock peer's socket buffer dropped, one
   * upload to wireguard-go at 10 instead of 55 MB/s). */
  uint32_t rtt = m->min_rtt_ms ? m->min_rtt_ms : 1;
  uint32_t elapsed_us = now_us - m->round_start;
  m->round_ended = elapsed_us >= rtt * 1000u;
  if (m->round_ended) {
    m->bw[m->bw_next] = (uint32_t)((uint64_t)m->round_bytes * 1000u / elapsed_us);
    m->bw_next = (uint8_t)((m->bw_next + 1) % BW_ROUNDS);
    m->round_start = now_us;
    m->round_bytes = 0;
    if (m->round_min_queue != UINT32_MAX) {
      uint32_t margin = m->min_rtt_ms > BW_QUEUE_MIN_MS ? m->min_rtt_ms : BW_QUEUE_MIN_MS;
      m->queued = m->round_min_queue > margin;
    }
    m->round_min_queue = UINT32_MAX;
  }
  if (m->queued || m->congested) return 0;
  /* Below 2 ms the RTT is a count of millisecond ticks (0 or 1 for a path of 0.2 ms), so the
   * product overstates the path's BDP several times, and a stock peer's socket buffer drops
   * the bursts (one upload to wireguard-go at 10 instead of 55 MB/s). Such a path recovers from
   * a loss within a millisecond anyway: lwIP's own window is enough there. */
  if (m->min_rtt_ms < FLOOR_MIN_RTT_MS) return 0;
  uint64_t floor = 2ull * max_bw(m) * rtt;
  if (!floor) return 0;
  if (floor < 4ull * mss) floor = 4ull * mss;
  return floor > FLOOR_MAX ? FLOOR_MAX : (uint32_t)floor;
}

void tcp_bw_congestion_update(tcp_bw_model *m, bool verdict, uint32_t now_us) {
  if (verdict || (m->congested && m->queued)) {
    m->congested = 1;
    m->congested_at = now_us;
  } else if (m->congested && now_us - m->congested_at > BW_QUEUE_HOLD_MS * 1000u) {
    m->congested = 0;
  }
}

uint32_t tcp_bw_queue_window(const tcp_bw_model *m, uint32_t cwnd, uint32_t flight, uint32_t mss) {
  if (!m->queued || !m->congested || !m->round_ended) return cwnd;
  uint32_t w = flight < cwnd ? flight : cwnd;
  w = w > mss ? w - mss : 0;
  return w < 4 * mss ? (cwnd < 4 * mss ? cwnd : 4 * mss) : w;
}

uint32_t tcp_bw_send_buffer(uint32_t floor, uint32_t start, uint32_t max) {
  uint64_t want = 2ull * floor;
  if (want < start) return start;
  return want > max ? max : (uint32_t)want;
}

/* ---- lwIP glue ------------------------------------------------------------------------------ */

/* lwIP sets snd_buf (the room left) once, to TCP_SND_BUF, then only subtracts what is written
 * and adds back what is acknowledged; the buffer's size is that room plus what is queued. */
static void grow_send_buffer(struct tcp_pcb *pcb, uint32_t floor) {
  uint32_t want = tcp_bw_send_buffer(floor, TCP_SND_BUF, AWG_TCP_SND_BUF_MAX);
  uint32_t have = pcb->snd_buf + (pcb->snd_lbb - pcb->lastack);
  if (want > have) pcb->snd_buf += want - have;
}

static void state_destroyed(u8_t id, void *data) { free(data); }

static const struct tcp_ext_arg_callbacks callbacks = {state_destroyed, NULL};

void tcp_bw_floor_set_congestion_probe(tcp_bw_congestion_fn fn) { g_congestion_fn = fn; }

/* The tunnel's verdict on the path to this connection's peer, asked once per round; the ACK
 * being processed came in through that tunnel's netif. */
static bool congested_towards(const struct tcp_pcb *pcb) {
  struct netif *nif = ip_current_input_netif();
  if (!g_congestion_fn || !nif) return false;
  if (IP_IS_V6(&pcb->remote_ip))
    return g_congestion_fn(nif, true, (const uint8_t *)ip_2_ip6(&pcb->remote_ip)->addr,
                           BW_QUEUE_HOLD_MS);
  return g_congestion_fn(nif, false, (const uint8_t *)&ip_2_ip4(&pcb->remote_ip)->addr,
                         BW_QUEUE_HOLD_MS);
}

void tcp_bw_floor_init(void) {
  if (g_ext_id == LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID) g_ext_id = tcp_ext_arg_alloc_id();
}

static tcp_bw_model *state_of(struct tcp_pcb *pcb, bool create) {
  tcp_bw_model *m = tcp_ext_arg_get(pcb, g_ext_id);
  if (m || !create) return m;
  m = calloc(1, sizeof *m);
  if (!m) return NULL;
  tcp_ext_arg_set_callbacks(pcb, g_ext_id, &callbacks);
  tcp_ext_arg_set(pcb, g_ext_id, m);
  return m;
}

/* The i-th option byte: the options may be split between the header's pbuf (opt1len bytes
 * right after the fixed header) and opt2. */
static int opt_byte(const struct tcp_hdr *hdr, u16_t opt1len, const u8_t *opt2, u16_t i) {
  return i < opt1len ? ((const u8_t *)(hdr + 1))[i] : opt2[i - opt1len];
}

/* TSval and TSecr of the segment's timestamp option, false when it has none (or a malformed
 * one). */
static bool ts_option(const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2,
                      uint32_t *val, uint32_t *ecr) {
  u16_t i = 0;
  while (i < optlen) {
    int kind = opt_byte(hdr, opt1len, opt2, i);
    if (kind == TCPOPT_EOL) return false;
    if (kind == TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= optlen) return false;
    int len = opt_byte(hdr, opt1len, opt2, (u16_t)(i + 1));
    if (len < 2 || i + len > optlen) return false;
    if (kind == TCPOPT_TS && len == 10) {
      uint8_t b[8];
      for (int k = 0; k < 8; k++) b[k] = (uint8_t)opt_byte(hdr, opt1len, opt2, (u16_t)(i + 2 + k));
      *val = be32_load(b);
      *ecr = be32_load(b + 4);
      return true;
    }
    i = (u16_t)(i + len);
  }
  return false;
}

/* LWIP_HOOK_TCP_INPACKET_PCB: runs before lwIP processes the segment, so pcb->lastack is still
 * what this ACK advances from. The floor applies to the window lwIP sends the next segments
 * with; when this very ACK makes lwIP shrink it (a fast retransmit), the next ACK lifts it. */
err_t tcp_bw_floor_inpacket_hook(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
                                 u16_t opt1len, u8_t *opt2, struct pbuf *p) {
  if (g_ext_id == LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID) return ERR_OK;
  if (pcb->state != ESTABLISHED && pcb->state != CLOSE_WAIT) return ERR_OK;
  if (!(TCPH_FLAGS(hdr) & TCP_ACK)) return ERR_OK;
  uint32_t ackno = hdr->ackno; /* tcp_input turned the header into host order already */
  uint32_t acked = 0;
  if (TCP_SEQ_GT(ackno, pcb->lastack) && TCP_SEQ_LEQ(ackno, pcb->snd_nxt))
    acked = ackno - pcb->lastack;
  tcp_bw_model *m = state_of(pcb, acked && (pcb->flags & TF_TIMESTAMP));
  if (!m) return ERR_OK;
  uint32_t now = sys_now(), val, ecr, rtt = UINT32_MAX;
  uint32_t now_us = (uint32_t)(batch_clock_ns() / 1000u);
  /* Only an ACK of new data dates a segment we sent (RFC 7323 §4): a duplicate ACK echoes the
   * time of the last in-order segment the receiver got, which may be old. */
  if (acked && ts_option(hdr, optlen, opt1len, opt2, &val, &ecr) && now - ecr < 60000) {
    rtt = now - ecr;
    tcp_bw_reverse_delay(m, now - val, now_us);
  }
  uint32_t floor = tcp_bw_floor_update(m, acked, rtt, now_us, pcb->mss);
  if (m->round_ended) tcp_bw_congestion_update(m, congested_towards(pcb), now_us);
  if (floor > pcb->cwnd) pcb->cwnd = (tcpwnd_size_t)floor;
  if (m->queued) {
    uint32_t flight = pcb->snd_nxt - pcb->lastack - acked;
    pcb->cwnd = (tcpwnd_size_t)tcp_bw_queue_window(m, pcb->cwnd, flight, pcb->mss);
    if (pcb->ssthresh > pcb->cwnd) pcb->ssthresh = pcb->cwnd;
  }
  if (floor) grow_send_buffer(pcb, floor);
  return ERR_OK;
}
