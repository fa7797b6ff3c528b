/* Health: whether the server and each target can take work, and who listens
 * to changes (SPEC §3 "Also served on the same port", §6). See registry.h.
 *
 * The state is derived, never stored: the server is SERVING unless shutdown
 * started, the launcher is gone or a listener cannot accept; a target is
 * SERVING unless that holds or the launcher reported an error for it (HELLO,
 * RELOADED, or its zygote going down), or has not yet prepared it (a reload).
 * Every place that changes one of those inputs calls spd__health_changed()
 * with the lock held, and each subscriber hears only real transitions of its
 * own name. A subscription names its target: a reload that adds or removes
 * it is such a transition (a name not configured is UNKNOWN). The store
 * (spawnd.store, spd_registry_store_subject) is SERVING while its writes work,
 * whatever else happens, and UNKNOWN without a store (journal.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/registry/registry_impl.h"

/* Longest target name a subscription may wait for (config names are far
 * shorter): a longer one is unknown and stays so. */
#define SUBJECT_MAX 256

struct spd__health_sub {
	struct spd__health_sub *next;
	uint64_t id;
	char *target;       /* NULL: the server (or the store) */
	bool store;         /* the store's health (spawnd.store) */
	spd_health last;    /* what FN heard last */
	spd_health_fn fn;
	void *ctx;
};

static spd_health status_of(spd_registry *r, const char *target)
{
	const spd__target *t = NULL;

	if (target == spd_registry_store_subject) {
		if (!r->has_journal)
			return SPD_HEALTH_UNKNOWN;
		return r->store_failing ? SPD_HEALTH_NOT_SERVING : SPD_HEALTH_SERVING;
	}

	if (target != NULL && (t = spd__find_target(r, target)) == NULL)
		return SPD_HEALTH_UNKNOWN;
	if (r->shutting_down || r->launcher_lost || r->listeners_down > 0)
		return SPD_HEALTH_NOT_SERVING;
	if (t != NULL && (t->error != NULL || t->preparing))
		return SPD_HEALTH_NOT_SERVING;
	return SPD_HEALTH_SERVING;
}

spd_health spd_registry_health(spd_registry *r, const char *target)
{
	spd_health h;

	pthread_mutex_lock(&r->mu);
	h = status_of(r, target);
	pthread_mutex_unlock(&r->mu);
	return h;
}

int spd_registry_health_watch(spd_registry *r, const char *target, spd_health_fn fn, void *ctx,
			      uint64_t *watch_id)
{
	struct spd__health_sub *s = NULL;
	int rc = 0;

	*watch_id = 0;
	pthread_mutex_lock(&r->mu);
	if (target == spd_registry_store_subject && !r->has_journal) {
		rc = -ENOENT;
		goto out;
	}
	if (target != NULL && strlen(target) > SUBJECT_MAX) {
		rc = -ENOENT;
		goto out;
	}
	s = calloc(1, sizeof *s);
	if (s != NULL)
		s->store = target == spd_registry_store_subject;
	if (s == NULL || (target != NULL && !s->store && (s->target = strdup(target)) == NULL)) {
		free(s);
		rc = -ENOMEM;
		goto out;
	}
	s->id = r->next_watch_id++;
	s->last = status_of(r, s->store ? spd_registry_store_subject : s->target);
	s->fn = fn;
	s->ctx = ctx;
	s->next = r->health_subs;
	r->health_subs = s;
	*watch_id = s->id;
	fn(ctx, s->last);
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

bool spd_registry_health_unwatch(spd_registry *r, uint64_t watch_id)
{
	bool removed = false;

	if (watch_id == 0)
		return false;
	pthread_mutex_lock(&r->mu);
	for (struct spd__health_sub **pp = &r->health_subs; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == watch_id) {
			struct spd__health_sub *s = *pp;
			*pp = s->next;
			free(s->target);
			free(s);
			removed = true;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return removed;
}

void spd_registry_set_listeners_down(spd_registry *r, unsigned down)
{
	pthread_mutex_lock(&r->mu);
	if (r->listeners_down != down) {
		r->listeners_down = down;
		spd__health_changed(r);
	}
	pthread_mutex_unlock(&r->mu);
}

void spd__health_changed(spd_registry *r)
{
	for (struct spd__health_sub *s = r->health_subs; s != NULL; s = s->next) {
		spd_health now = status_of(r, s->store ? spd_registry_store_subject : s->target);
		if (now != s->last) {
			s->last = now;
			s->fn(s->ctx, now);
		}
	}
}

void spd__health_release(spd_registry *r)
{
	while (r->health_subs != NULL) {
		struct spd__health_sub *s = r->health_subs;
		r->health_subs = s->next;
		free(s->target);
		free(s);
	}
}
