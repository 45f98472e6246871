#include "wg/replay.h"

#include <string.h>

void wg_replay_init(wg_replay *r) { memset(r, 0, sizeof *r); }

static uint64_t word_of(uint64_t counter) { return (counter / 64) % WG_REPLAY_WORDS; }
static uint64_t bit_of(uint64_t counter) { return UINT64_C(1) << (counter % 64); }

bool wg_replay_check(const wg_replay *r, uint64_t counter, uint64_t limit) {
  if (counter >= limit) return false;
  if (!r->any || counter > r->top) return true;
  if (r->top - counter >= WG_REPLAY_WINDOW) return false;
  return !(r->bitmap[word_of(counter)] & bit_of(counter));
}

/* Moves the top to counter, clearing the words between the old top's word and the new one
 * (all of them when the jump exceeds the ring). */
static void advance(wg_replay *r, uint64_t counter) {
  uint64_t old_block = r->top / 64, new_block = counter / 64;
  uint64_t steps = r->any ? new_block - old_block : WG_REPLAY_WORDS;
  if (steps > WG_REPLAY_WORDS) steps = WG_REPLAY_WORDS;
  for (uint64_t i = 1; i <= steps; i++) r->bitmap[(old_block + i) % WG_REPLAY_WORDS] = 0;
  r->top = counter;
  r->any = true;
}

bool wg_replay_update(wg_replay *r, uint64_t counter, uint64_t limit) {
  if (!wg_replay_check(r, counter, limit)) return false;
  if (!r->any || counter > r->top) advance(r, counter);
  r->bitmap[word_of(counter)] |= bit_of(counter);
  return true;
}
