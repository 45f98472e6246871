#include "device/tcp_bw_floor.h"

#include <stdbool.h>
#include <stdlib.h>

#include <uv.h>

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
#define FLOOR_MAX (8u * 1024 * 1024) /* well above any window lwIP can use (TCP_WND 2 MiB) */

static u8_t g_ext_id = LWIP_TCP_PCB_NUM_EXT_ARG_ID_INVALID;

/* ---- the model ------------------------------------------------------------------------------ */

static uint32_t max_bw(const tcp_bw_model *m) {
  uint32_t best = 0;
  for (int i = 0; i < BW_ROUNDS; i++)
    if (m->bw[i] > best) best = m->bw[i];
  return best;
}

uint32_t tcp_bw_floor_update(tcp_bw_model *m, uint32_t acked, uint32_t rtt_ms, uint32_t now_us,
                             uint32_t mss) {
  if (rtt_ms != UINT32_MAX && (!m->have_rtt || rtt_ms <= m->min_rtt_ms ||
                               now_us - m->min_rtt_at > BW_MIN_RTT_WINDOW_MS * 1000u)) {
    m->min_rtt_ms = rtt_ms;
    m->min_rtt_at = now_us;
    if (!m->have_rtt) m->round_start = now_us, m->round_bytes = 0, m->round_min_rtt = UINT32_MAX;
    m->have_rtt = 1;
  }
  if (!m->have_rtt) return 0;
  m->round_bytes += acked;
  if (rtt_ms < m->round_min_rtt) m->round_min_rtt = rtt_ms;
  /* A round is one minimum RTT (at least 1 ms, the resolution of the timestamps the RTT comes
   * from): the rate over a whole round smooths out delayed and stretched ACKs. The round itself
   * is timed in microseconds: in whole milliseconds a burst of ACKs just after a tick made a
   * round look up to twice as fast, and the maximum over BW_ROUNDS rounds kept the outlier (a
   * floor several times the path's BDP: bursts a stock peer's socket buffer dropped, one
   * upload to wireguard-go at 10 instead of 55 MB/s). */
  uint32_t rtt = m->min_rtt_ms ? m->min_rtt_ms : 1;
  uint32_t elapsed_us = now_us - m->round_start;
  if (elapsed_us >= rtt * 1000u) {
    m->bw[m->bw_next] = (uint32_t)((uint64_t)m->round_bytes * 1000u / elapsed_us);
    m->bw_next = (uint8_t)((m->bw_next + 1) % BW_ROUNDS);
    m->round_start = now_us;
    m->round_bytes = 0;
    if (m->round_min_rtt != UINT32_MAX) {
      uint32_t margin = m->min_rtt_ms > BW_QUEUE_MIN_MS ? m->min_rtt_ms : BW_QUEUE_MIN_MS;
      m->queued = m->round_min_rtt > m->min_rtt_ms + margin;
    }
    m->round_min_rtt = UINT32_MAX;
  }
  if (m->queued) return 0;
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

/* TSecr of the segment's timestamp option, false when it has none (or a malformed one). */
static bool ts_echo(const struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, const u8_t *opt2,
                    uint32_t *ecr) {
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
      uint8_t b[4];
      for (int k = 0; k < 4; k++) b[k] = (uint8_t)opt_byte(hdr, opt1len, opt2, (u16_t)(i + 6 + k));
      *ecr = be32_load(b);
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
  uint32_t now = sys_now(), ecr, rtt = UINT32_MAX;
  uint32_t now_us = (uint32_t)(batch_clock_ns() / 1000u);
  /* Only an ACK of new data dates a segment we sent (RFC 7323 §4): a duplicate ACK echoes the
   * time of the last in-order segment the receiver got, which may be old. */
  if (acked && ts_echo(hdr, optlen, opt1len, opt2, &ecr) && now - ecr < 60000) rtt = now - ecr;
  uint32_t floor = tcp_bw_floor_update(m, acked, rtt, now_us, pcb->mss);
  if (floor > pcb->cwnd) pcb->cwnd = (tcpwnd_size_t)floor;
  if (floor) grow_send_buffer(pcb, floor);
  return ERR_OK;
}
