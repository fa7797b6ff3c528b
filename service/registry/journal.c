/* The registry's side of the store (journal.h): telling the journal of each
 * change, holding what shows an uncommitted new record or end, releasing it
 * on commit, and restoring records after a restart. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service/registry/registry_impl.h"

const char spd_registry_store_subject[] = "spawnd.store";

void spd_registry_set_journal(spd_registry *r, const spd_journal_ops *ops)
{
	pthread_mutex_lock(&r->mu);
	r->journal = *ops;
	r->has_journal = true;
	pthread_mutex_unlock(&r->mu);
}

bool spd__journal_put(spd_registry *r, spd__entry *e, bool hold)
{
	spd_journal_record rec = {
		.p = &e->p,
		.request_id = e->request_id,
		.fingerprint = e->request_id != NULL ? e->fingerprint : NULL,
	};
	bool *flag = spd_state_terminal(e->p.state) ? &e->held : &e->unconfirmed;
	bool taken;

	if (!r->has_journal)
		return false;
	hold = hold && !*flag;
	taken = r->journal.put(r->journal.ctx, &rec, hold);
	if (hold && taken)
		*flag = true;
	return e->held || e->unconfirmed;
}

void spd__journal_remove(spd_registry *r, spd__entry *e)
{
	if (r->has_journal)
		r->journal.remove(r->journal.ctx, e->p.key, e->p.id);
}

void spd__journal_defer(spd__entry *e, spd__watcher *w, uint64_t after)
{
	w->catchup = true;
	w->catchup_after = after;
	w->next = e->watchers;
	e->watchers = w;
}

/* E's end is committed (or given up on): its watchers hear it now. Those that
 * subscribed while it was held get what they asked for (spd__catch_up), the
 * others the terminal STATE note, as if it had never been held. */
static void release(spd_registry *r, spd__entry *e)
{
	spd__watcher *late = NULL, **tail = &late;

	e->held = false;
	for (spd__watcher **pp = &e->watchers; *pp != NULL;) {
		spd__watcher *w = *pp;
		if (w->catchup) {
			*pp = w->next;
			w->next = NULL;
			*tail = w;
			tail = &w->next;
		} else {
			pp = &w->next;
		}
	}
	spd__watchers_notify(&e->watchers, &r->global, &e->p);
	/* Subscribed last: they come after the earlier ones, as they would have. */
	while (late != NULL) {
		spd__watcher *w = late;
		late = w->next;
		spd__catch_up(w, e);
		spd__watcher_end(w);
	}
}

void spd_registry_on_journaled(spd_registry *r, const spd_journal_done *done, size_t n)
{
	bool any = false;

	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < n; i++) {
		spd__entry *e = spd__find_key(r, done[i].key);
		if (e == NULL)
			continue;
		/* Any version will do for a new record; its end (the newest
		 * version) comes with the terminal one, maybe in the same call. */
		if (e->unconfirmed) {
			spd__release_created(r, e);
			any = true;
		}
		if (e->held && done[i].seq >= e->p.seq) {
			release(r, e);
			any = true;
		}
	}
	if (any) {
		pthread_cond_broadcast(&r->journaled);
		spd__evict(r); /* what was held is evictable now */
	}
	pthread_mutex_unlock(&r->mu);
}

void spd_registry_set_store_health(spd_registry *r, bool serving)
{
	pthread_mutex_lock(&r->mu);
	if (r->store_failing == serving) {
		r->store_failing = !serving;
		spd__health_changed(r);
	}
	pthread_mutex_unlock(&r->mu);
}

int spd_registry_restore(spd_registry *r, spd_process *p, const char *request_id,
			 const uint8_t *fingerprint)
{
	spd__entry *e;
	int rc = 0;

	if (!spd_state_terminal(p->state))
		return -EINVAL;
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return -ENOMEM;
	if (request_id != NULL && request_id[0] != '\0') {
		e->request_id = strdup(request_id);
		if (e->request_id == NULL) {
			free(e);
			return -ENOMEM;
		}
		if (fingerprint != NULL)
			memcpy(e->fingerprint, fingerprint, sizeof e->fingerprint);
	}
	pthread_mutex_lock(&r->mu);
	if (spd__find_id(r, p->id) != NULL) {
		rc = -EEXIST;
		goto out;
	}
	/* Terminal: no target version (e->target NULL), as any ended record. */
	e->p = *p;
	memset(p, 0, sizeof *p);
	e->p.key = r->next_key++;
	/* Its events were not kept (SPEC §12): a resume below its last one is a
	 * gap, one at it ends at once. */
	e->ring.evicted_max = e->ring.evicted_state_max = e->p.seq;
	spd__link_entry(r, e);
	e = NULL;
	spd__evict(r);
out:
	pthread_mutex_unlock(&r->mu);
	if (e != NULL) {
		free(e->request_id);
		free(e);
	}
	return rc;
}
