/* libFuzzer target for loss repair (src/device/tunnel_repair.c, tunnel_reorder.c): control
 * messages are authenticated but come from a peer that may be hostile, so any bytes are parsed;
 * a message that parses encodes back to the same bytes. The same input then drives a reorder
 * buffer with repair on or off as a sequence of (counter step, time step) pairs: its bookkeeping
 * stays consistent, and every NACK asks only for counters between the next one and the top. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device/tunnel_reorder.h"
#include "device/tunnel_repair.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

static tun_reorder *cur;
static uint64_t last_out;
static bool any_out;

static void sink(void *ctx, const uint8_t *pkt, size_t len) {
  (void)ctx;
  CHECK(len == 8);
  uint64_t c;
  memcpy(&c, pkt, 8);
  (void)last_out, (void)any_out;
  last_out = c, any_out = true;
}

static void nack(void *ctx, uint32_t kp, const tun_nack_run *runs, size_t n) {
  (void)ctx;
  CHECK(kp == cur->keypair && n >= 1 && n <= TUN_NACK_MAX_RUNS);
  for (size_t i = 0; i < n; i++) {
    CHECK(runs[i].count >= 1 && runs[i].count <= TUN_NACK_MAX_RUN_LEN);
    CHECK(runs[i].first >= cur->next && runs[i].first + runs[i].count <= cur->top);
  }
  uint8_t m[TUN_CTL_MAX];
  size_t len = tun_ctl_runs(m, TUN_CTL_NACK, kp, runs, n);
  tun_ctl_msg back;
  CHECK(tun_ctl_parse(m, len, &back) == 0 && back.n_runs == n && back.index == kp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tun_ctl_msg m;
  if (tun_ctl_parse(data, size, &m) == 0 && (m.type == TUN_CTL_NACK || m.type == TUN_CTL_GIVEUP)) {
    uint8_t out[TUN_CTL_MAX];
    size_t len = tun_ctl_runs(out, m.type, m.index, m.runs, m.n_runs);
    /* byte 3 is reserved: ignored on input, zero on output */
    CHECK(len <= size && out[3] == 0 && memcmp(out, data, 3) == 0 &&
          memcmp(out + 4, data + 4, len - 4) == 0);
  }
  tun_reorder r;
  tun_reorder_init(&r, 8, sink, nack, NULL);
  cur = &r;
  tun_reorder_set_repair(&r, size && (data[0] & 1));
  uint64_t counter = 0, now = 1;
  for (size_t i = 0; i + 1 < size; i += 2) {
    /* a step back, forward, or far ahead; time moves on by up to 64 ms */
    int8_t step = (int8_t)data[i];
    counter = step < -100 ? counter + 2000 : (uint64_t)((int64_t)counter + step);
    if ((int64_t)counter < 0) counter = 0;
    now += (uint64_t)(data[i + 1] & 63) * 1000000ull;
    tun_reorder_input(&r, 1, counter, (const uint8_t *)&counter, 8, now);
    if (data[i + 1] & 64) { /* the sender gives up a run around what is missing */
      tun_nack_run run = {.first = r.next + (data[i + 1] >> 7), .count = 1 + (data[i] & 7)};
      tun_reorder_abandon(&r, 1 + (data[i + 1] >> 7 & step & 1), &run, 1);
    }
    if (r.deadline && now >= r.deadline) tun_reorder_expire(&r, now);
    CHECK(r.next <= r.top && r.held <= r.top - r.next);
  }
  tun_reorder_flush(&r);
  CHECK(r.held == 0);
  tun_reorder_free(&r);
  return 0;
}
