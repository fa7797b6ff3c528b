/* Health: whether the server and each target can take work, and who listens
 * to changes (SPEC §3 "Also served on the same port", §6). See registry.h.
 *
 * The state is derived, never stored: the server is SERVING unless shutdown
 * started, the launcher is gone or a listener cannot accept; a target is SERVING unless that holds or the
 * launcher reported an error for it (HELLO, or its zygote going down); the
 * store (spawnd.store) is SERVING while its writes work. Every
 * place that changes one of those inputs calls spd__health_changed() with the
 * lock held, and each subscriber hears only real transitions of its own name.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/registry/registry_impl.h"

/* The subscription's subject when it is the server or the store, not a
 * target. */
#define SUBJECT_SERVER SIZE_MAX
#define SUBJECT_STORE (SIZE_MAX - 1)

struct spd__health_sub {
	struct spd__health_sub *next;
	uint64_t id;
	size_t subject;     /* target index, or SUBJECT_SERVER */
	spd_health last;    /* what FN heard last */
	spd_health_fn fn;
	void *ctx;
};

/* TARGET (NULL: the server) -> *SUBJECT. -ENOENT for an unknown target. */
static int subject_of(spd_registry *r, const char *target, size_t *subject)
{
	if (target == NULL) {
		*subject = SUBJECT_SERVER;
		return 0;
	}
	if (target == spd_registry_store_subject) {
		*subject = SUBJECT_STORE;
		return r->has_journal ? 0 : -ENOENT;
	}
	for (size_t i = 0; i < r->cfg->target_count; i++) {
		if (strcmp(r->cfg->targets[i].name, target) == 0) {
			*subject = i;
			return 0;
		}
	}
	return -ENOENT;
}

static spd_health status_of(spd_registry *r, size_t subject)
{
	/* The store's writes, whatever else happens (journal.h). */
	if (subject == SUBJECT_STORE)
		return r->store_failing ? SPD_HEALTH_NOT_SERVING : SPD_HEALTH_SERVING;
	if (r->shutting_down || r->launcher_lost || r->listeners_down > 0)
		return SPD_HEALTH_NOT_SERVING;
	if (subject != SUBJECT_SERVER && r->targets[subject].error != NULL)
		return SPD_HEALTH_NOT_SERVING;
	return SPD_HEALTH_SERVING;
}

spd_health spd_registry_health(spd_registry *r, const char *target)
{
	spd_health h = SPD_HEALTH_UNKNOWN;
	size_t subject;

	pthread_mutex_lock(&r->mu);
	if (subject_of(r, target, &subject) == 0)
		h = status_of(r, subject);
	pthread_mutex_unlock(&r->mu);
	return h;
}

int spd_registry_health_watch(spd_registry *r, const char *target, spd_health_fn fn, void *ctx,
			      uint64_t *watch_id)
{
	struct spd__health_sub *s = NULL;
	size_t subject;
	int rc;

	*watch_id = 0;
	pthread_mutex_lock(&r->mu);
	rc = subject_of(r, target, &subject);
	if (rc < 0)
		goto out;
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	s->id = r->next_watch_id++;
	s->subject = subject;
	s->last = status_of(r, subject);
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
		spd_health now = status_of(r, s->subject);
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
		free(s);
	}
}
