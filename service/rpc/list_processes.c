/* ListProcesses: filters (target, states, label_selector) and stable
 * pagination over the retained records, oldest first. A page token names the
 * last record of the previous page, so records created meanwhile come later
 * and none is visited twice. Records are listed without result and output
 * tails (GetProcess has them). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "service/common/limits.h"
#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

typedef struct page {
	spd_arena arena;
	Spawnd__V1__Process **items;
	size_t n;
} page;

static bool add(void *ctx, const spd_watch_event *ev)
{
	page *pg = ctx;
	Spawnd__V1__Process *m;

	/* A token sees only the processes of its targets (a page may come
	 * out shorter than page_size; its token still continues the list). */
	if (!spd_rpc_caller_allows(ev->p->target))
		return false;
	m = spd_codec_process(&pg->arena, ev->p, false);
	if (m != NULL)
		pg->items[pg->n++] = m;
	return false;
}

/* ---- Page tokens --------------------------------------------------------------
 *
 * A token is "p", the key of the last record of the page (16 lowercase hex
 * digits) and a tag (16 more): SipHash-2-4, under a secret drawn when the
 * first list runs, of that key and of the query's filters. So a token is
 * accepted only by the server that issued it, for the same filters (target,
 * set of states, label_selector, in any order; page_size may change), and
 * nothing else parses as one: "p-1", "p 1", "p0x1" or a token of another
 * query are INVALID_ARGUMENT (SPEC §12). A token from before a restart is
 * refused too; the client starts over. */

#define TOKEN_LEN 33

static uint64_t secret[2];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void draw_secret(void)
{
	/* getrandom() before the pool is ready only blocks at early boot; a
	 * failure leaves a clock-based secret, still one per run. */
	if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		secret[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec;
		secret[1] = (uint64_t)getpid() * 0xC2B2AE3D27D4EB4FULL ^ secret[0];
	}
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                           	do {                                                                               		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                  		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                     		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                     		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                  	} while (0)

static uint64_t siphash(const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ secret[0], v1 = 0x646f72616e646f6dULL ^ secret[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ secret[0], v3 = 0x7465646279746573ULL ^ secret[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, in + i, 8); /* little-endian hosts only; the tag never leaves this run */
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The tag of a token continuing after KEY for the filters of Q. */
static uint64_t token_tag(uint64_t key, const spd_list_query *q)
{
	struct {
		uint64_t key, states, selector, target;
	} h = {.key = key};
	const char *t = q->target != NULL ? q->target : "";

	pthread_once(&secret_once, draw_secret);
	for (size_t i = 0; i < q->state_count; i++)
		h.states |= 1ULL << ((unsigned)q->states[i] & 63);
	/* A sum of one hash per pair: the selector's order does not matter, and
	 * its keys are distinct (strings.h). */
	for (uint32_t i = 0; i < q->selector_count; i++) {
		const char *k = q->selector[2 * i], *v = q->selector[2 * i + 1];
		uint64_t kv[2] = {siphash(k, strlen(k)), siphash(v, strlen(v))};
		h.selector += siphash(kv, sizeof kv);
	}
	h.target = siphash(t, strlen(t));
	return siphash(&h, sizeof h);
}

static int hex64(const char *s, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (uint64_t)d;
	}
	return 0;
}

/* Parses T (NULL or "": the first page) for query Q into *KEY. Returns 0, or
 * -EINVAL for anything but a token issued for Q. */
static int parse_token(const char *t, const spd_list_query *q, uint64_t *key)
{
	uint64_t tag;

	*key = 0;
	if (t == NULL || t[0] == '\0')
		return 0;
	if (strlen(t) != TOKEN_LEN || t[0] != 'p' || hex64(t + 1, key) < 0 || *key == 0 ||
	    hex64(t + 17, &tag) < 0 || tag != token_tag(*key, q))
		return -EINVAL;
	return 0;
}

/* Writes the token continuing after KEY for Q into BUF (TOKEN_LEN + 1 bytes). */
static void make_token(char *buf, uint64_t key, const spd_list_query *q)
{
	snprintf(buf, TOKEN_LEN + 1, "p%016" PRIx64 "%016" PRIx64, key, token_tag(key, q));
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
	char token[TOKEN_LEN + 1];

	if (req == NULL)
		return;
	memset(&q, 0, sizeof q);
	if (req->page_size < 0) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "page_size: negative", NULL);
		goto out;
	}
	if (req->n_states > 16 || req->n_label_selector > SPD_LABELS_MAX) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				req->n_states > 16 ? "states: more than 16" : "label_selector: more than " SPD_LIMIT_STR(SPD_LABELS_MAX),
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
	if (parse_token(req->page_token, &q, &q.after_key) < 0) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"page_token: not a token this server returned for these filters", NULL);
		goto out;
	}
	spd_registry_list(env->registry, &q, add, &pg, &next);
	if (pg.arena.failed) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	resp.processes = pg.items;
	resp.n_processes = pg.n;
	if (next != 0) {
		make_token(token, next, &q);
		resp.next_page_token = token;
	}
	spd_call_finish(call, GRPC_STATUS_OK, NULL, &resp.base);
out:
	spd_arena_release(&pg.arena);
	free(states);
	free(selector);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
