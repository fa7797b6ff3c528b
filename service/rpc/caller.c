#include "service/rpc/caller.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <string.h>

#include "service/rpc/call.h"
#include "service/rpc/strings.h"

/* The handlers run on the CQ thread, one at a time: per thread is per call. */
static __thread spd_auth *cur_auth;
static __thread const spd_principal *cur_who;

void spd__rpc_caller_set(spd_auth *auth, const spd_principal *who)
{
	cur_auth = auth;
	cur_who = who;
}

const spd_principal *spd_rpc_caller(void)
{
	return cur_who;
}

bool spd_rpc_caller_allows(const char *target)
{
	return cur_auth == NULL || spd_principal_allows(cur_who, target);
}

struct touch {
	bool allowed;
};

static bool note_target(void *ctx, const spd_watch_event *ev)
{
	struct touch *t = ctx;

	t->allowed = spd_rpc_caller_allows(ev->p->target);
	return false;
}

int spd_rpc_caller_may_touch(spd_registry *r, const char *id)
{
	struct touch t = {.allowed = false};

	if (cur_auth == NULL)
		return 0;
	if (spd_registry_get(r, id, note_target, &t) == -ENOENT)
		return -ENOENT;
	return t.allowed ? 0 : -EPERM;
}

spd_rpc_held_caller spd_rpc_caller_hold(void)
{
	spd_rpc_held_caller c = {.auth = spd_auth_ref(cur_auth), .who = cur_who};

	return c;
}

bool spd_rpc_held_allows(const spd_rpc_held_caller *c, const char *target)
{
	return c->auth == NULL || spd_auth_still_allows(c->auth, c->who, target);
}

bool spd_rpc_held_stale(const spd_rpc_held_caller *c)
{
	return spd_auth_replaced(c->auth);
}

void spd_rpc_caller_release(spd_rpc_held_caller *c)
{
	spd_auth_unref(c->auth);
	c->auth = NULL;
	c->who = NULL;
}

const char *spd_rpc_caller_name(grpc_call *call, char *buf, size_t len)
{
	grpc_auth_context *ctx;
	grpc_auth_property_iterator it;
	const grpc_auth_property *prop;

	buf[0] = '\0';
	if (cur_who != NULL) {
		snprintf(buf, len, "token:%s", cur_who->fingerprint);
		return buf;
	}
	ctx = grpc_call_auth_context(call);
	if (ctx == NULL)
		return buf;
	it = grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_SUBJECT_PROPERTY_NAME);
	prop = grpc_auth_property_iterator_next(&it);
	if (prop != NULL && prop->value != NULL) {
		snprintf(buf, len, "x509:%.*s", (int)prop->value_length, prop->value);
		/* Printable ASCII only: the record's caller is a proto string (valid
		 * UTF-8), and a certificate may hold anything. */
		for (char *c = buf; *c != '\0'; c++)
			if ((unsigned char)*c < ' ' || (unsigned char)*c > '~')
				*c = '?';
	}
	grpc_auth_context_release(ctx);
	return buf;
}

void spd_rpc_caller_deny(grpc_call *call, const char *id)
{
	char msg[192];

	snprintf(msg, sizeof msg, "id: token %s may not use the target of process '%.*s'",
		 cur_who != NULL ? cur_who->fingerprint : "?", spd_strings_cut(id, 64), id);
	spd_call_finish(call, GRPC_STATUS_PERMISSION_DENIED, msg, NULL);
}
