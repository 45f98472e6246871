#include "quic/quic_metrics.h"

static const double rtt_bounds[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};

quic_metrics *quic_metrics_get(void) {
  static quic_metrics m;
  if (!m.rtt.n) obs_hist_init(&m.rtt, rtt_bounds, sizeof rtt_bounds / sizeof rtt_bounds[0]);
  return &m;
}
