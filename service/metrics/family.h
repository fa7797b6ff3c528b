/* Metric families: counters, gauges and histograms with a fixed list of label
 * names and a bounded set of series (one per combination of label values),
 * rendered in the text format (text.h).
 *
 * Hot path: spd_metric_series_get takes the family's lock (a hash lookup);
 * the updates on a series are lock-free atomics, so a caller that keeps the
 * series pointer pays no lock at all. Series live as long as their family.
 *
 * Bounded: a family holds at most the max_series given at creation. Label
 * values must come from bounded sets (target names, states, method names,
 * codes: never process ids); past the bound, spd_metric_series_get returns
 * NULL, the update is lost, and the family counts it (spd_metric_family_overflow)
 * and logs once.
 *
 * Thread: every function may be called from any thread, except create and
 * destroy (no other call on the family may run concurrently).
 */
#ifndef SPAWND_METRICS_FAMILY_H
#define SPAWND_METRICS_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "service/metrics/text.h"

typedef enum spd_metric_type {
	SPD_METRIC_COUNTER = 1,
	SPD_METRIC_GAUGE = 2,
	SPD_METRIC_HISTOGRAM = 3,
} spd_metric_type;

#define SPD_METRIC_MAX_LABELS 4
#define SPD_METRIC_MAX_BUCKETS 24

typedef struct spd_metric_family spd_metric_family;
typedef struct spd_metric_series spd_metric_series;

/* What a family is. Strings are borrowed for the family's life (use
 * literals). LABELS: label_count names; BUCKETS (histograms): bucket_count
 * strictly increasing upper bounds, +Inf implied. */
typedef struct spd_metric_desc {
	const char *name;
	const char *help;
	spd_metric_type type;
	const char *const *labels;
	size_t label_count;
	const double *buckets;
	size_t bucket_count;
	size_t max_series;
} spd_metric_desc;

/* A new family, or NULL (out of memory, or a desc beyond the bounds above). */
spd_metric_family *spd_metric_family_create(const spd_metric_desc *d);
void spd_metric_family_destroy(spd_metric_family *f);

/* The series of F for VALUES (label_count strings; copied), created at zero on
 * first use. NULL when F is full (see above) or out of memory; F NULL: NULL. */
spd_metric_series *spd_metric_series_get(spd_metric_family *f, const char *const *values);

/* Updates. S may be NULL (a no-op), so that callers need not check. */
void spd_metric_add(spd_metric_series *s, double v);       /* counter (v >= 0), gauge */
void spd_metric_set(spd_metric_series *s, double v);       /* gauge */
void spd_metric_observe(spd_metric_series *s, double v);   /* histogram */

/* The value of a counter or gauge series (tests, collectors). */
double spd_metric_value(const spd_metric_series *s);

/* Sets every series of gauge F to 0: for a collector that then sets the ones
 * that exist now (a target removed by a reload reads 0, not its last value). */
void spd_metric_family_zero(spd_metric_family *f);

/* Updates lost because F was full. */
uint64_t spd_metric_family_overflow(const spd_metric_family *f);

/* Appends F's HELP, TYPE and samples, series in creation order. */
void spd_metric_family_render(spd_metric_family *f, spd_mbuf *out);

#endif
