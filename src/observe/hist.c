#include "observe/hist.h"

#include <string.h>

void obs_hist_init(obs_hist *h, const double *bounds, size_t n) {
  memset(h, 0, sizeof *h);
  if (n > OBS_HIST_MAX_BOUNDS) n = OBS_HIST_MAX_BOUNDS;
  memcpy(h->bounds, bounds, n * sizeof *bounds);
  h->n = n;
}

void obs_hist_observe(obs_hist *h, double v) {
  size_t i = 0;
  while (i < h->n && v > h->bounds[i]) i++;
  h->in_bucket[i]++;
  h->count++;
  h->sum += v;
}

uint64_t obs_hist_cumulative(const obs_hist *h, size_t i) {
  uint64_t total = 0;
  for (size_t k = 0; k <= i && k <= h->n; k++) total += h->in_bucket[k];
  return total;
}
