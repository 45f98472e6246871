/* The Prometheus text exposition format, version 0.0.4:
 *
 *   # HELP name text          (text escapes \ and newline)
 *   # TYPE name counter|gauge|histogram
 *   name{label="value",...} 1.5
 *
 * Label values escape \, " and newline; histograms expand to name_bucket{...,le="…"} (cumulative,
 * ending with le="+Inf"), name_sum and name_count. Names are the caller's constants and are checked
 * with prom_valid_name in the tests, not at run time. */
#ifndef AWGPROXY_OBSERVE_PROM_H
#define AWGPROXY_OBSERVE_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/buf.h"
#include "observe/hist.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct {
  const char *name;
  const char *value;
} prom_label;

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels=true: [a-zA-Z_][a-zA-Z0-9_]* and not "__…". */
bool prom_valid_name(const char *name, bool label);

void prom_header(obs_buf *b, const char *name, const char *type, const char *help);
void prom_escape_label_value(obs_buf *b, const char *v);
void prom_sample(obs_buf *b, const char *name, const prom_label *labels, size_t n_labels,
                 double value);
void prom_sample_u64(obs_buf *b, const char *name, const prom_label *labels, size_t n_labels,
                     uint64_t value);
/* Bucket, sum and count lines (the header is the caller's, with type "histogram"). */
void prom_histogram(obs_buf *b, const char *name, const prom_label *labels, size_t n_labels,
                    const obs_hist *h);

#endif
