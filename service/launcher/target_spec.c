#include "service/launcher/target_spec.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/target/builtins.h"
#include "service/wire/target.h"

/* T as it travels: borrows T's strings. */
static spd_wire_target to_wire(const spd_prepared_target *t)
{
	spd_wire_target w = {.cfg = *t->cfg,
			     .envp = t->envp,
			     .set_uid = t->set_uid,
			     .set_gid = t->set_gid,
			     .uid = t->uid,
			     .gid = t->gid};

	return w;
}

int spd_target_spec_encode(const spd_prepared_target *t, spd_wbuf *out)
{
	spd_wire_target w = to_wire(t);

	return spd_wire_target_encode(&w, out);
}

static void resolve(spd_prepared_target *p)
{
	const spd_target_config *c = p->cfg;
	char msg[1024];
	void *sym;

	if (c->kind != SPD_TARGET_FUNCTION)
		return;
	if (c->builtin != NULL) {
		p->fn = spd_builtin_find(c->builtin);
		if (p->fn == NULL) {
			snprintf(msg, sizeof msg, "builtin:%s: no such builtin", c->builtin);
			p->error = strdup(msg);
		}
		return;
	}
	p->dl = c->library != NULL ? dlopen(c->library, RTLD_NOW | RTLD_LOCAL) : NULL;
	if (p->dl == NULL) {
		snprintf(msg, sizeof msg, "dlopen: %s", c->library != NULL ? dlerror() : "no library");
		p->error = strdup(msg);
		return;
	}
	sym = c->symbol != NULL ? dlsym(p->dl, c->symbol) : NULL;
	if (sym == NULL) {
		snprintf(msg, sizeof msg, "dlsym %s: symbol not found", c->symbol ? c->symbol : "");
		p->error = strdup(msg);
		return;
	}
	memcpy(&p->fn, &sym, sizeof p->fn);
}

/* Takes W's strings into S, then resolves its function. */
static void adopt(spd_target_spec *s, spd_wire_target *w)
{
	spd_prepared_target *p = &s->prepared;

	memset(s, 0, sizeof *s);
	s->cfg = w->cfg;
	p->cfg = &s->cfg;
	p->envp = w->envp;
	p->set_uid = w->set_uid;
	p->set_gid = w->set_gid;
	p->uid = w->uid;
	p->gid = w->gid;
	memset(w, 0, sizeof *w);
	resolve(p);
}

int spd_target_spec_decode(spd_wreader *r, spd_target_spec *s)
{
	spd_wire_target w;
	int rc = spd_wire_target_decode(r, &w);

	memset(s, 0, sizeof *s);
	if (rc == 0)
		adopt(s, &w);
	return rc;
}

int spd_target_spec_decode_body(const void *data, size_t len, spd_target_spec *s)
{
	spd_wire_target w;
	int rc = spd_wire_target_decode_body(data, len, &w);

	memset(s, 0, sizeof *s);
	if (rc == 0)
		adopt(s, &w);
	return rc;
}

void spd_target_spec_release(spd_target_spec *s)
{
	spd_prepared_target *p = &s->prepared;
	spd_wire_target w = {.cfg = s->cfg, .envp = p->envp};

	spd_wire_target_release(&w);
	free(p->error);
	if (p->dl != NULL)
		dlclose(p->dl);
	memset(s, 0, sizeof *s);
}

int spd_call_spec_encode(const spd_prepared_target *t, const spd_start_req *req, spd_wbuf *out)
{
	spd_wire_target w = to_wire(t);

	return spd_wire_call_encode(&w, req, out);
}

int spd_call_spec_decode(const void *data, size_t len, spd_target_spec *spec,
			 spd_start_req *req)
{
	spd_wire_target w;
	int rc = spd_wire_call_decode(data, len, &w, req);

	memset(spec, 0, sizeof *spec);
	if (rc == 0)
		adopt(spec, &w);
	return rc;
}
