/* Merging Prometheus text expositions (format 0.0.4, as observe/prom.h writes them) into one page,
 * for a server whose worker processes each expose their own metrics.
 *
 * Families (one "# TYPE name type" line each) come out in the order first seen, text 0 first, each
 * with one HELP line (the first seen) and its TYPE line, then its samples, contiguous, in the order
 * first seen. A sample belongs to the family of the latest # TYPE line of its own text, so
 * foo_bucket / foo_sum / foo_count go with histogram foo. Samples with the same series key (all the
 * text left of the value: name and label set exactly as written) are combined: summed, or for the
 * families in max_families (not histograms, which are always summed) the largest value kept.
 * Integers (digits only) are added as uint64, saturating; any other number (with a point, an
 * exponent, a sign, NaN, +Inf...) makes the series a double, written as prom.c writes doubles.
 *
 * Skipped and counted, never fatal: lines over PROM_MERGE_MAX_LINE bytes, lines holding a NUL byte,
 * malformed # HELP / # TYPE lines (types other than counter, gauge, histogram, untyped; a type
 * that differs from the one first seen for that family), samples with no TYPE before them in their
 * text (or after a skipped TYPE), malformed series keys, bad numbers, timestamps (a third field),
 * and new series or families past PROM_MERGE_MAX_SERIES each. Empty lines and other comments are
 * dropped without counting. "\r\n" line ends are accepted.
 *
 * Ownership: the texts are borrowed and only read during the call (they need no NUL terminator);
 * the merged page is appended to the caller's out. No state is kept between calls. */
#ifndef AWGPROXY_OBSERVE_PROM_MERGE_H
#define AWGPROXY_OBSERVE_PROM_MERGE_H

#include <stddef.h>

#include "observe/buf.h"

#define PROM_MERGE_MAX_SERIES 100000 /* distinct series in all; also the limit on families */
#define PROM_MERGE_MAX_LINE 4096     /* bytes, without the line end */

/* Merges texts[0..n) (texts[i] of lens[i] bytes; NULL texts are ignored) and appends the result to
 * out. max_families: NULL or a NULL-terminated list of family names whose samples take the
 * maximum. Returns the number of skipped lines (capped at INT_MAX), or -1 when memory ran out (out
 * may then hold part of the page; out->failed may be set). */
int prom_merge(const char *const *texts, const size_t *lens, size_t n,
               const char *const *max_families, obs_buf *out);

#endif
