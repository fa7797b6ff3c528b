/* The current call's request metadata: see metadata.h. */
#include "service/rpc/metadata.h"

#include <string.h>

#include "service/common/log.h"

static __thread const grpc_metadata_array *cur_md;

void spd__rpc_metadata_set(const grpc_metadata_array *md)
{
	cur_md = md;
}

size_t spd_rpc_metadata_find(const char *key, const char **value, size_t *len)
{
	size_t n = 0;

	*value = NULL;
	*len = 0;
	for (size_t i = 0; cur_md != NULL && i < cur_md->count; i++) {
		const grpc_metadata *m = &cur_md->metadata[i];
		if (grpc_slice_str_cmp(m->key, key) != 0)
			continue;
		if (n++ == 0) {
			*value = (const char *)GRPC_SLICE_START_PTR(m->value);
			*len = GRPC_SLICE_LENGTH(m->value);
		}
	}
	return n;
}

const char *spd_rpc_traceparent(char *buf)
{
	const char *v;
	size_t len, n = spd_rpc_metadata_find("traceparent", &v, &len);

	if (n == 0)
		return NULL;
	if (n > 1 || !spd_traceparent_valid(v, len)) {
		spd_log(SPD_LOG_DEBUG, "traceparent ignored: not one valid W3C traceparent",
			SPD_LOG_INT("entries", n), SPD_LOG_END);
		return NULL;
	}
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}
