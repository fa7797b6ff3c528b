/* Subscriptions and their delivery: see watchers.h. */
#include "service/registry/watchers.h"

#include <stdlib.h>
#include <string.h>

static void free_selector(char **selector)
{
	for (size_t i = 0; selector != NULL && selector[i] != NULL; i++)
		free(selector[i]);
	free(selector);
}

spd__watcher *spd__watcher_create(uint64_t id, const spd_watch_spec *ws, char **selector)
{
	spd__watcher *w = calloc(1, sizeof *w);

	if (w == NULL) {
		free_selector(selector);
		return NULL;
	}
	w->selector = selector;
	w->selector_count = selector != NULL ? ws->selector_count : 0;
	w->id = id;
	w->fn = ws->fn;
	w->out_fn = ws->out_fn;
	w->codec = ws->codec;
	w->release = ws->release;
	w->ctx = ws->ctx;
	return w;
}

void spd__watcher_end(spd__watcher *w)
{
	if (w->release != NULL)
		w->release(w->ctx);
	free_selector(w->selector);
	free(w);
}

bool spd__labels_match(const spd_process *p, const char *const *selector, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const char *k = selector[2 * i], *v = selector[2 * i + 1];
		bool found = false;
		for (uint32_t j = 0; j < p->label_count && !found; j++)
			found = strcmp(p->labels[2 * j], k) == 0 && strcmp(p->labels[2 * j + 1], v) == 0;
		if (!found)
			return false;
	}
	return true;
}

static bool matches(const spd__watcher *w, const spd_process *p)
{
	return spd__labels_match(p, (const char *const *)w->selector, w->selector_count);
}

/* ---- encoding once per event ------------------------------------------------------ */

/* An event on its way down the watcher lists: encoded by the first watcher's
 * codec that needs it and shared by the next ones with the same codec. */
typedef struct delivery {
	spd_watch_event ev;
	spd_output_event out;
	bool output;
	const spd_watch_codec *codec;  /* what MSG was encoded with */
	void *msg;
} delivery;

static void delivery_release(delivery *d)
{
	if (d->codec != NULL && d->msg != NULL)
		d->codec->free(d->msg);
	d->codec = NULL;
	d->msg = NULL;
}

/* MSG for a watcher with codec C (NULL: none). */
static const void *encoded(delivery *d, const spd_watch_codec *c)
{
	if (c == NULL || (!d->output && d->ev.note == SPD_NOTE_ABORT))
		return NULL; /* an ABORT carries no event to encode */
	if (d->codec != c) {
		delivery_release(d);
		d->codec = c;
		d->msg = d->output ? c->encode_output(&d->out) : c->encode(&d->ev);
	}
	return d->msg;
}

static bool deliver(delivery *d, spd__watcher *w)
{
	if (d->output) {
		d->out.msg = encoded(d, w->codec);
		w->out_fn(w->ctx, &d->out);
		return true;
	}
	d->ev.msg = encoded(d, w->codec);
	return w->fn(w->ctx, &d->ev);
}

static void state_delivery(delivery *d, const spd_process *p, spd_note note)
{
	memset(d, 0, sizeof *d);
	d->ev.p = p;
	d->ev.note = note;
	d->ev.terminal = p != NULL && spd_state_terminal(p->state);
}

/* ---- delivery --------------------------------------------------------------------- */

bool spd__watcher_tell(spd__watcher *w, const spd_process *p, spd_note note)
{
	delivery d;
	bool keep;

	state_delivery(&d, p, note);
	keep = deliver(&d, w);
	delivery_release(&d);
	return keep;
}

void spd__watcher_tell_output(spd__watcher *w, const spd_output_event *ev)
{
	delivery d = {.out = *ev, .output = true};

	if (w->out_fn == NULL)
		return;
	deliver(&d, w);
	delivery_release(&d);
}

void spd__watchers_notify(spd__watcher **own, spd__watcher **all, const spd_process *p)
{
	delivery d;

	state_delivery(&d, p, SPD_NOTE_STATE);
	for (spd__watcher **pp = own; *pp != NULL;) {
		spd__watcher *w = *pp;
		bool keep = deliver(&d, w);
		if (!keep || d.ev.terminal || w->once) {
			*pp = w->next;
			spd__watcher_end(w);
		} else {
			pp = &w->next;
		}
	}
	for (spd__watcher **pp = all; *pp != NULL;) {
		spd__watcher *w = *pp;
		if (matches(w, p) && !deliver(&d, w)) {
			*pp = w->next;
			spd__watcher_end(w);
		} else {
			pp = &w->next;
		}
	}
	delivery_release(&d);
}

void spd__watchers_output(spd__watcher *own, spd__watcher *all, const spd_output_event *ev)
{
	delivery d = {.out = *ev, .output = true};

	for (spd__watcher *w = own; w != NULL; w = w->next)
		if (w->out_fn != NULL)
			deliver(&d, w);
	for (spd__watcher *w = all; w != NULL; w = w->next)
		if (w->out_fn != NULL && matches(w, ev->p))
			deliver(&d, w);
	delivery_release(&d);
}

bool spd__watchers_remove(spd__watcher **list, uint64_t id)
{
	for (spd__watcher **pp = list; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			spd__watcher *w = *pp;
			*pp = w->next;
			spd__watcher_end(w);
			return true;
		}
	}
	return false;
}

void spd__watchers_abort(spd__watcher **list, const spd_process *p)
{
	while (*list != NULL) {
		spd__watcher *w = *list;
		*list = w->next;
		spd__watcher_tell(w, p, SPD_NOTE_ABORT);
		spd__watcher_end(w);
	}
}

void spd__watchers_end_all(spd__watcher **list)
{
	while (*list != NULL) {
		spd__watcher *w = *list;
		*list = w->next;
		spd__watcher_end(w);
	}
}
