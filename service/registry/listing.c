/* ListProcesses over the retained records (see registry.h). */
#include <string.h>

#include "service/registry/registry_impl.h"

static bool matches(const spd__entry *e, const spd_list_query *q)
{
	bool state_ok = q->state_count == 0;

	if (q->target != NULL && q->target[0] != '\0' && strcmp(e->p.target, q->target) != 0)
		return false;
	for (size_t i = 0; i < q->state_count && !state_ok; i++)
		state_ok = e->p.state == q->states[i];
	return state_ok && spd__labels_match(&e->p, q->selector, q->selector_count);
}

void spd_registry_list(spd_registry *r, const spd_list_query *q, spd_watch_fn fn, void *ctx,
		       uint64_t *next_key)
{
	uint64_t last = 0;
	size_t n = 0;
	spd__entry *e;

	*next_key = 0;
	pthread_mutex_lock(&r->mu);
	/* Keys grow with creation order, which is the list's order. */
	e = r->oldest;
	if (q->after_key != 0) {
		spd__entry *at = spd__find_key(r, q->after_key);
		if (at != NULL) {
			e = at->newer;
		} else {
			while (e != NULL && e->p.key <= q->after_key)
				e = e->newer;
		}
	}
	for (; e != NULL; e = e->newer) {
		if (!matches(e, q))
			continue;
		if (n == q->page_size) {
			*next_key = last; /* more match: continue after the last returned */
			break;
		}
		spd_watch_event ev = {
			.p = &e->p, .note = SPD_NOTE_SNAPSHOT, .terminal = spd_state_terminal(e->p.state),
		};
		fn(ctx, &ev);
		last = e->p.key;
		n++;
	}
	pthread_mutex_unlock(&r->mu);
}
