/* Target versions: the registry's targets as reference-counted records keyed
 * by name, and what changes them — the config at start, a reload (SIGHUP),
 * the launcher's HELLO/RELOADED/HEALTH frames — and ListTargets. See
 * registry.h (spd_registry_reload) and registry_impl.h (spd__target).
 *
 * A version is current (in r->targets, where new starts find it by name) or
 * retired (in r->retired, replaced or removed by a reload, held by live
 * processes that started with it). Every live process holds its version
 * (refs), so pending and running processes keep the settings they started
 * with; when a retired version's last process ends, the launcher is told
 * (RETIRE) to free what it prepared for it (its library, its zygote).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/metrics/metrics.h"
#include "service/registry/registry_impl.h"

static spd__target *target_new(const spd_target_config *tc, uint32_t id)
{
	spd__target *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	if (spd_target_config_copy(&t->cfg, tc) < 0) {
		free(t);
		return NULL;
	}
	t->id = id;
	t->current = true;
	/* A target a reload adds has its series at 0 from now on. */
	spd_metrics_add_target(t->cfg.name);
	return t;
}

static void target_free(spd__target *t)
{
	spd_target_config_release(&t->cfg);
	free(t->error);
	free(t);
}

static void set_limits(spd_registry *r, const spd_config *cfg)
{
	r->lim = (spd__limits){
		.max_running = cfg->max_running,
		.max_pending = cfg->max_pending,
		.history_max_records = cfg->history_max_records,
		.history_retention_ms = cfg->history_retention_ms,
	};
}

int spd__targets_init(spd_registry *r, const spd_config *cfg)
{
	r->targets = calloc(cfg->target_count + 1, sizeof *r->targets);
	if (r->targets == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->target_count; i++) {
		/* Ids 1..n, as the launcher's boot data numbers them. */
		r->targets[i] = target_new(&cfg->targets[i], (uint32_t)(i + 1));
		if (r->targets[i] == NULL) {
			r->target_count = i;
			spd__targets_release(r);
			return -ENOMEM;
		}
	}
	r->target_count = cfg->target_count;
	r->next_target_id = (uint32_t)cfg->target_count + 1;
	set_limits(r, cfg);
	return 0;
}

void spd__targets_release(spd_registry *r)
{
	for (size_t i = 0; i < r->target_count; i++)
		target_free(r->targets[i]);
	free(r->targets);
	r->targets = NULL;
	r->target_count = 0;
	while (r->retired != NULL) {
		spd__target *t = r->retired;
		r->retired = t->next;
		target_free(t);
	}
}

spd__target *spd__find_target(spd_registry *r, const char *name)
{
	for (size_t i = 0; i < r->target_count; i++)
		if (strcmp(r->targets[i]->cfg.name, name) == 0)
			return r->targets[i];
	return NULL;
}

/* The version with id ID, current or retired, or NULL. */
static spd__target *find_id(spd_registry *r, uint32_t id)
{
	for (size_t i = 0; i < r->target_count; i++)
		if (r->targets[i]->id == id)
			return r->targets[i];
	for (spd__target *t = r->retired; t != NULL; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static void counts_add(spd__counts *n, const spd__target *t)
{
	n->running += t->running;
	n->pending += t->pending;
	n->active += t->active;
}

void spd__name_counts(spd_registry *r, const spd__target *t, spd__counts *n)
{
	*n = (spd__counts){0, 0, 0};
	counts_add(n, t);
	/* Retired versions are few, and only until their processes end. */
	for (const spd__target *o = r->retired; o != NULL; o = o->next)
		if (o != t && strcmp(o->cfg.name, t->cfg.name) == 0)
			counts_add(n, o);
	if (!t->current) {
		spd__target *cur = spd__find_target(r, t->cfg.name);
		if (cur != NULL)
			counts_add(n, cur);
	}
}

/* Retired T holds nothing any more: the launcher frees its side, we ours. */
static void retire(spd_registry *r, spd__target *t)
{
	spd__target **pp;

	for (pp = &r->retired; *pp != NULL && *pp != t; pp = &(*pp)->next)
		;
	if (*pp == t)
		*pp = t->next;
	if (r->ops.send_retire != NULL && !r->launcher_lost)
		r->ops.send_retire(r->ops.ctx, t->id);
	target_free(t);
}

void spd__target_put(spd_registry *r, spd__target *t)
{
	if (t->refs > 0)
		t->refs--;
	if (t->refs == 0 && !t->current)
		retire(r, t);
}

/* ---- reload ------------------------------------------------------------------ */

/* Takes T out of the current set: retired now if nothing holds it. */
static void uncurrent(spd_registry *r, spd__target *t)
{
	t->current = false;
	/* Its pre-started children go now, not when its last process ends. */
	if (t->cfg.prestart > 0 && r->ops.send_stale != NULL && !r->launcher_lost)
		r->ops.send_stale(r->ops.ctx, t->id);
	t->idle = 0;
	t->next = r->retired;
	r->retired = t;
	if (t->refs == 0)
		retire(r, t);
}

static void log_target(const char *msg, const spd__target *t, uint32_t live)
{
	spd_log(SPD_LOG_INFO, msg, SPD_LOG_STR("target", t->cfg.name),
		SPD_LOG_INT("target_id", t->id), SPD_LOG_INT("live_processes", live), SPD_LOG_END);
}

int spd_registry_reload(spd_registry *r, const spd_config *cfg, spd_reload_summary *out)
{
	size_t n = cfg->target_count;
	spd__target **next = calloc(n + 1, sizeof *next);
	bool *fresh = calloc(2 * n + 1, sizeof *fresh);  /* then: replaces a version */
	bool *replacing;
	const spd_target_config **add = calloc(n + 1, sizeof *add);
	uint32_t *ids = calloc(n + 1, sizeof *ids);
	spd_reload_summary sum = {0, 0, 0, 0};
	size_t nadd = 0;
	int rc = 0;

	replacing = fresh != NULL ? fresh + n : NULL;
	pthread_mutex_lock(&r->mu);
	if (next == NULL || fresh == NULL || add == NULL || ids == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (r->shutting_down || r->launcher_lost) {
		rc = -ESHUTDOWN;
		goto out;
	}
	/* First everything that can fail, so that a failure changes nothing. */
	for (size_t i = 0; i < n; i++) {
		const spd_target_config *tc = &cfg->targets[i];
		spd__target *old = spd__find_target(r, tc->name);

		if (old != NULL && spd_target_config_equal(&old->cfg, tc)) {
			next[i] = old;
			continue;
		}
		next[i] = target_new(tc, 0);
		if (next[i] == NULL) {
			rc = -ENOMEM;
			break;
		}
		fresh[i] = true;
		replacing[i] = old != NULL;
	}
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			if (fresh[i])
				target_free(next[i]);
		goto out;
	}
	/* Then the switch: removed and replaced versions leave the current set. */
	for (size_t i = 0; i < r->target_count; i++) {
		spd__target *old = r->targets[i];
		bool kept = false, replaced = false;
		spd__counts c;

		for (size_t j = 0; j < n && !kept && !replaced; j++) {
			kept = next[j] == old;
			replaced = fresh[j] && strcmp(next[j]->cfg.name, old->cfg.name) == 0;
		}
		if (kept)
			continue;
		spd__name_counts(r, old, &c);
		if (replaced) {
			sum.changed++;
			log_target("target changed: new starts use the new settings; its live "
				   "processes keep theirs",
				   old, c.running + c.pending);
		} else {
			sum.removed++;
			log_target("target removed: its live processes go on", old,
				   c.running + c.pending);
		}
		uncurrent(r, old);
	}
	free(r->targets);
	r->targets = next;
	r->target_count = n;
	next = NULL;
	for (size_t i = 0; i < n; i++) {
		spd__target *t = r->targets[i];

		if (!fresh[i]) {
			sum.unchanged++;
			continue;
		}
		t->id = r->next_target_id++;
		t->preparing = r->ops.send_reload != NULL;
		add[nadd] = &t->cfg;
		ids[nadd++] = t->id;
		/* A changed target was counted above, by its old version. */
		if (!replacing[i]) {
			sum.added++;
			log_target("target added", t, 0);
		}
	}
	set_limits(r, cfg);
	/* Even with nothing to add: the launcher takes the log settings from it. */
	if (r->ops.send_reload != NULL) {
		spd_reload_req req = {.cfg = cfg, .targets = add, .ids = ids, .count = nadd};
		r->ops.send_reload(r->ops.ctx, &req);
	}
	spd__health_changed(r);
	/* Higher limits may let queued processes start now. */
	spd__dispatch(r);
	pthread_cond_broadcast(&r->timer_cond);
out:
	pthread_mutex_unlock(&r->mu);
	free(next);
	free(fresh);
	free(add);
	free(ids);
	if (out != NULL)
		*out = sum;
	return rc;
}

/* ---- listing and the launcher's news ------------------------------------------ */

void spd_registry_list_targets(spd_registry *r, spd_target_fn fn, void *ctx)
{
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->target_count; i++) {
		const spd__target *t = r->targets[i];
		const char *err = t->error;
		spd__counts c;

		if (err == NULL && t->preparing)
			err = "being prepared by the launcher (reload)";
		if (r->launcher_lost)
			err = "the launcher is gone";
		spd__name_counts(r, t, &c);
		fn(ctx, &t->cfg, c.running, c.pending, r->launcher_lost ? 0 : t->idle, err,
		   t->memory_limit_mechanism);
	}
	pthread_mutex_unlock(&r->mu);
}

void spd_registry_on_hello(spd_registry *r, size_t count, const uint32_t *ids,
			   char *const *errors, char *const *mechanisms)
{
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < count; i++) {
		spd__target *t = find_id(r, ids[i]);

		if (t == NULL)
			continue; /* retired meanwhile */
		free(t->error);
		t->error = errors[i] != NULL ? strdup(errors[i]) : NULL;
		t->preparing = false;
		snprintf(t->memory_limit_mechanism, sizeof t->memory_limit_mechanism, "%s",
			 mechanisms != NULL && mechanisms[i] != NULL ? mechanisms[i] : "");
	}
	spd__health_changed(r);
	pthread_mutex_unlock(&r->mu);
}

void spd_registry_on_idle(spd_registry *r, uint32_t id, uint32_t count)
{
	spd__target *t;

	pthread_mutex_lock(&r->mu);
	t = find_id(r, id);
	if (t != NULL && t->current)
		t->idle = count;
	pthread_mutex_unlock(&r->mu);
}

void spd_registry_on_target_health(spd_registry *r, uint32_t id, const char *why)
{
	spd__target *t;

	pthread_mutex_lock(&r->mu);
	t = find_id(r, id);
	if (t != NULL) {
		free(t->error);
		t->error = why != NULL ? strdup(why) : NULL;
		/* The launcher says "down" once per death or failed restart of
		 * the zygote, and schedules a restart each time. */
		if (why != NULL)
			spd_metrics_zygote_restart(t->cfg.name);
		/* Only zygotes come and go: a start waits for this one (can_run). */
		if (why == NULL)
			t->zygote_down_ns = 0;
		else if (t->zygote_down_ns == 0)
			t->zygote_down_ns = spd_clock_mono_ns();
	}
	spd__health_changed(r);
	spd__dispatch(r);
	pthread_cond_broadcast(&r->timer_cond);
	pthread_mutex_unlock(&r->mu);
}
