/* A fixed-bucket histogram for Prometheus (cumulative buckets, sum, count). Plain data: the owner
 * embeds one, observes values on its own thread and hands a copy to the metrics writer. */
#ifndef AWGPROXY_OBSERVE_HIST_H
#define AWGPROXY_OBSERVE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define OBS_HIST_MAX_BOUNDS 16

typedef struct {
  size_t n;                                    /* finite upper bounds in use */
  double bounds[OBS_HIST_MAX_BOUNDS];          /* ascending */
  uint64_t in_bucket[OBS_HIST_MAX_BOUNDS + 1]; /* per bucket, not cumulative; [n] = above all */
  uint64_t count;
  double sum;
} obs_hist;

/* bounds ascending, n <= OBS_HIST_MAX_BOUNDS (extra bounds are ignored). */
void obs_hist_init(obs_hist *h, const double *bounds, size_t n);
void obs_hist_observe(obs_hist *h, double v);
/* Observations <= bounds[i] (i < n); i == n gives the total count (le="+Inf"). */
uint64_t obs_hist_cumulative(const obs_hist *h, size_t i);

#endif
