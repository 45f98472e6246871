#include "util/tbucket.h"

uint64_t tbucket_default_burst(uint64_t rate) {
  uint64_t b = rate / 2;
  return b < 16384 ? 16384 : b;
}

static void refill(tbucket *b, uint64_t now_us) {
  if (now_us <= b->last_us) return; /* a clock that did not move (or went back) adds nothing */
  double add = (double)b->rate * (double)(now_us - b->last_us) / 1e6;
  b->last_us = now_us;
  b->tokens += add;
  if (b->tokens > (double)b->burst) b->tokens = (double)b->burst;
}

void tbucket_init(tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_us) {
  b->rate = rate;
  b->burst = burst;
  b->tokens = (double)burst;
  b->last_us = now_us;
}

void tbucket_set(tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_us) {
  refill(b, now_us);
  if (!b->rate) b->tokens = (double)burst; /* a new limit starts full, as tbucket_init */
  b->rate = rate;
  b->burst = burst;
  if (b->tokens > (double)burst) b->tokens = (double)burst;
}

void tbucket_take(tbucket *b, uint64_t n, uint64_t now_us) {
  if (!b->rate) return;
  refill(b, now_us);
  b->tokens -= (double)n;
}

bool tbucket_try_take(tbucket *b, uint64_t n, uint64_t now_us) {
  if (!b->rate) return true;
  refill(b, now_us);
  /* Something larger than the burst passes when the bucket is full (and leaves a debt). */
  double need = n < b->burst ? (double)n : (double)b->burst;
  if (b->tokens < need) return false;
  b->tokens -= (double)n;
  return true;
}

uint64_t tbucket_wait_us(tbucket *b, uint64_t now_us) {
  if (!b->rate) return 0;
  refill(b, now_us);
  if (b->tokens > 0) return 0;
  /* +1: round up, so that waking at now + wait finds a positive balance */
  return (uint64_t)(-b->tokens * 1e6 / (double)b->rate) + 1;
}
