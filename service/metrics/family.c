/* Metric families: see family.h. */
#include "service/metrics/family.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/log.h"

#define HASH_BUCKETS 64u

/* A double kept as its bits, so that it can be atomic without a lock. */
typedef _Atomic uint64_t atomic_double_bits;

struct spd_metric_series {
	struct spd_metric_series *hash_next;
	const spd_metric_family *family;
	char *values[SPD_METRIC_MAX_LABELS];
	atomic_double_bits value;      /* counter, gauge: the value; histogram: the sum */
	/* histogram: per-bucket counts (not cumulative), the last one +Inf */
	_Atomic uint64_t counts[SPD_METRIC_MAX_BUCKETS + 1];
};

struct spd_metric_family {
	spd_metric_desc d;
	pthread_mutex_t mu;
	spd_metric_series *hash[HASH_BUCKETS];
	spd_metric_series **series;    /* creation order; count entries */
	size_t count;
	_Atomic uint64_t overflow;
	atomic_bool warned;
};

static uint64_t to_bits(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	return u;
}

static double from_bits(uint64_t u)
{
	double v;

	memcpy(&v, &u, sizeof v);
	return v;
}

spd_metric_family *spd_metric_family_create(const spd_metric_desc *d)
{
	spd_metric_family *f;

	if (d->label_count > SPD_METRIC_MAX_LABELS || d->bucket_count > SPD_METRIC_MAX_BUCKETS ||
	    d->max_series == 0)
		return NULL;
	for (size_t i = 1; i < d->bucket_count; i++)
		if (!(d->buckets[i] > d->buckets[i - 1]))
			return NULL;
	f = calloc(1, sizeof *f);
	if (f == NULL)
		return NULL;
	f->series = calloc(d->max_series, sizeof *f->series);
	if (f->series == NULL) {
		free(f);
		return NULL;
	}
	f->d = *d;
	pthread_mutex_init(&f->mu, NULL);
	return f;
}

static void series_free(spd_metric_series *s)
{
	for (size_t i = 0; i < SPD_METRIC_MAX_LABELS; i++)
		free(s->values[i]);
	free(s);
}

void spd_metric_family_destroy(spd_metric_family *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->count; i++)
		series_free(f->series[i]);
	free(f->series);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static uint32_t hash_values(const spd_metric_family *f, const char *const *values)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < f->d.label_count; i++) {
		for (const char *s = values[i]; *s; s++)
			h = (h ^ (unsigned char)*s) * 16777619u;
		h = (h ^ 0xffu) * 16777619u; /* separates "ab","c" from "a","bc" */
	}
	return h % HASH_BUCKETS;
}

static bool same_values(const spd_metric_family *f, const spd_metric_series *s,
			const char *const *values)
{
	for (size_t i = 0; i < f->d.label_count; i++)
		if (strcmp(s->values[i], values[i]) != 0)
			return false;
	return true;
}

static spd_metric_series *series_new(spd_metric_family *f, const char *const *values)
{
	spd_metric_series *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->family = f;
	for (size_t i = 0; i < f->d.label_count; i++) {
		s->values[i] = strdup(values[i] != NULL ? values[i] : "");
		if (s->values[i] == NULL) {
			series_free(s);
			return NULL;
		}
	}
	return s;
}

spd_metric_series *spd_metric_series_get(spd_metric_family *f, const char *const *values)
{
	spd_metric_series *s;
	uint32_t h;

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < f->d.label_count; i++)
		if (values[i] == NULL)
			return NULL;
	h = hash_values(f, values);
	pthread_mutex_lock(&f->mu);
	for (s = f->hash[h]; s != NULL; s = s->hash_next)
		if (same_values(f, s, values))
			break;
	if (s == NULL && f->count < f->d.max_series && (s = series_new(f, values)) != NULL) {
		s->hash_next = f->hash[h];
		f->hash[h] = s;
		f->series[f->count++] = s;
	}
	pthread_mutex_unlock(&f->mu);
	if (s == NULL) {
		atomic_fetch_add(&f->overflow, 1);
		if (!atomic_exchange(&f->warned, true))
			spd_log(SPD_LOG_WARN, "metric family full: further label values are not counted",
				SPD_LOG_STR("metric", f->d.name), SPD_LOG_INT("max_series", f->d.max_series),
				SPD_LOG_END);
	}
	return s;
}

static void add_bits(atomic_double_bits *a, double v)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old, to_bits(from_bits(old) + v),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void spd_metric_add(spd_metric_series *s, double v)
{
	if (s != NULL)
		add_bits(&s->value, v);
}

void spd_metric_set(spd_metric_series *s, double v)
{
	if (s != NULL)
		atomic_store_explicit(&s->value, to_bits(v), memory_order_relaxed);
}

void spd_metric_observe(spd_metric_series *s, double v)
{
	const spd_metric_desc *d;
	size_t i = 0;

	if (s == NULL)
		return;
	d = &s->family->d;
	while (i < d->bucket_count && v > d->buckets[i])
		i++;
	atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
	add_bits(&s->value, v);
}

double spd_metric_value(const spd_metric_series *s)
{
	return s != NULL ? from_bits(atomic_load_explicit(&s->value, memory_order_relaxed)) : 0;
}

void spd_metric_family_zero(spd_metric_family *f)
{
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->count; i++)
		spd_metric_set(f->series[i], 0);
	pthread_mutex_unlock(&f->mu);
}

uint64_t spd_metric_family_overflow(const spd_metric_family *f)
{
	return atomic_load(&f->overflow);
}

/* NAME+SUFFIX{labels[,le="LE"]} */
static void sample_name(spd_mbuf *b, const spd_metric_family *f, const spd_metric_series *s,
			const char *suffix, const char *le)
{
	bool any = f->d.label_count > 0 || le != NULL;

	spd_mbuf_puts(b, f->d.name);
	spd_mbuf_puts(b, suffix);
	if (!any)
		return;
	spd_mbuf_puts(b, "{");
	for (size_t i = 0; i < f->d.label_count; i++) {
		spd_mbuf_printf(b, "%s%s=\"", i ? "," : "", f->d.labels[i]);
		spd_mbuf_label_value(b, s->values[i]);
		spd_mbuf_puts(b, "\"");
	}
	if (le != NULL)
		spd_mbuf_printf(b, "%sle=\"%s\"", f->d.label_count ? "," : "", le);
	spd_mbuf_puts(b, "}");
}

static void render_histogram(spd_mbuf *b, const spd_metric_family *f, const spd_metric_series *s)
{
	uint64_t cumulative = 0;
	spd_mbuf le = SPD_MBUF_INIT;

	for (size_t i = 0; i <= f->d.bucket_count; i++) {
		cumulative += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
		le.len = 0;
		if (le.data != NULL)
			le.data[0] = '\0';
		if (i < f->d.bucket_count)
			spd_mbuf_value(&le, f->d.buckets[i]);
		else
			spd_mbuf_puts(&le, "+Inf");
		if (le.err != 0) {
			b->err = le.err;
			break;
		}
		sample_name(b, f, s, "_bucket", le.data);
		spd_mbuf_printf(b, " %llu\n", (unsigned long long)cumulative);
	}
	spd_mbuf_release(&le);
	sample_name(b, f, s, "_sum", NULL);
	spd_mbuf_puts(b, " ");
	spd_mbuf_value(b, spd_metric_value(s));
	spd_mbuf_puts(b, "\n");
	/* The count is the +Inf bucket, so that the two always agree even while
	 * an observation is being added. */
	sample_name(b, f, s, "_count", NULL);
	spd_mbuf_printf(b, " %llu\n", (unsigned long long)cumulative);
}

void spd_metric_family_render(spd_metric_family *f, spd_mbuf *out)
{
	static const char *const types[] = {
		[SPD_METRIC_COUNTER] = "counter",
		[SPD_METRIC_GAUGE] = "gauge",
		[SPD_METRIC_HISTOGRAM] = "histogram",
	};

	spd_mbuf_printf(out, "# HELP %s ", f->d.name);
	spd_mbuf_help_text(out, f->d.help);
	spd_mbuf_printf(out, "\n# TYPE %s %s\n", f->d.name, types[f->d.type]);
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->count; i++) {
		const spd_metric_series *s = f->series[i];
		if (f->d.type == SPD_METRIC_HISTOGRAM) {
			render_histogram(out, f, s);
			continue;
		}
		sample_name(out, f, s, "", NULL);
		spd_mbuf_puts(out, " ");
		spd_mbuf_value(out, spd_metric_value(s));
		spd_mbuf_puts(out, "\n");
	}
	pthread_mutex_unlock(&f->mu);
}
