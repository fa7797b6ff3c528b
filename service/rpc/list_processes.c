/* ListProcesses: filters (target, states, label_selector) and stable
 * pagination over the retained records, oldest first. A page token names the
 * last record of the previous page, so records created meanwhile come later
 * and none is visited twice. Records are listed without result and output
 * tails (GetProcess has them). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

typedef struct page {
	spd_arena arena;
	Spawnd__V1__Process **items;
	size_t n;
} page;

static bool add(void *ctx, const spd_process *p, spd_note note, bool terminal)
{
	page *pg = ctx;
	Spawnd__V1__Process *m = spd_codec_process(&pg->arena, p, false);

	(void)note;
	(void)terminal;
	if (m != NULL)
		pg->items[pg->n++] = m;
	return false;
}

/* "p" + the hex key of the last record: opaque to clients. */
static int parse_token(const char *t, uint64_t *key)
{
	char *end;

	*key = 0;
	if (t == NULL || t[0] == '\0')
		return 0;
	if (t[0] != 'p' || t[1] == '\0' || strlen(t) > 17)
		return -1;
	*key = strtoull(t + 1, &end, 16);
	return *end == '\0' && *key != 0 ? 0 : -1;
}

void spd_rpc_list_processes(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__ListProcessesRequest *req = (Spawnd__V1__ListProcessesRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__list_processes_request__descriptor);
	Spawnd__V1__ListProcessesResponse resp = SPAWND__V1__LIST_PROCESSES_RESPONSE__INIT;
	page pg = {.arena = SPD_ARENA_INIT};
	spd_list_query q;
	const char **selector = NULL;
	spd_state *states = NULL;
	uint64_t next = 0;
	char token[32];

	if (req == NULL)
		return;
	memset(&q, 0, sizeof q);
	if (req->page_size < 0) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "page_size: negative", NULL);
		goto out;
	}
	if (parse_token(req->page_token, &q.after_key) < 0) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"page_token: not a token this server returned", NULL);
		goto out;
	}
	if (req->n_states > 16 || req->n_label_selector > 64) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				req->n_states > 16 ? "states: more than 16" : "label_selector: more than 64",
				NULL);
		goto out;
	}
	states = calloc(req->n_states + 1, sizeof *states);
	selector = calloc(2 * req->n_label_selector + 1, sizeof *selector);
	q.page_size = req->page_size == 0 ? PAGE_DEFAULT
					  : (size_t)(req->page_size > PAGE_MAX ? PAGE_MAX : req->page_size);
	pg.items = spd_arena_alloc(&pg.arena, q.page_size * sizeof *pg.items);
	if (states == NULL || selector == NULL || pg.items == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	for (size_t i = 0; i < req->n_states; i++) {
		if (req->states[i] < SPAWND__V1__STATE__STATE_PENDING ||
		    req->states[i] > SPAWND__V1__STATE__STATE_CANCELED) {
			spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "states: unknown state", NULL);
			goto out;
		}
		states[i] = (spd_state)req->states[i];
	}
	for (size_t i = 0; i < req->n_label_selector; i++) {
		selector[2 * i] = req->label_selector[i]->key;
		selector[2 * i + 1] = req->label_selector[i]->value ? req->label_selector[i]->value : "";
	}
	q.target = req->target;
	q.states = states;
	q.state_count = req->n_states;
	q.selector = selector;
	q.selector_count = (uint32_t)req->n_label_selector;
	spd_registry_list(env->registry, &q, add, &pg, &next);
	if (pg.arena.failed) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	resp.processes = pg.items;
	resp.n_processes = pg.n;
	if (next != 0) {
		snprintf(token, sizeof token, "p%" PRIx64, next);
		resp.next_page_token = token;
	}
	spd_call_finish(call, GRPC_STATUS_OK, NULL, &resp.base);
out:
	spd_arena_release(&pg.arena);
	free(states);
	free(selector);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
