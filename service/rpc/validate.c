#include "service/rpc/validate.h"

#include <stdio.h>
#include <string.h>

#include "service/rpc/codec.h"
#include "service/rpc/strings.h"

/* Per-field caps of SPEC §3. */
#define TARGET_MAX 256u
#define ARGS_MAX 1024u
#define ARG_BYTES_MAX (64u * 1024u)
#define LABELS_MAX 64u
#define LABEL_BYTES_MAX 256u
#define REQUEST_ID_MAX 256u

const char *spd_validate_start_request(const Spawnd__V1__StartProcessRequest *req, char *buf,
				       size_t len, int64_t *timeout_ms, int64_t *grace_ms)
{
	if (req->target == NULL || req->target[0] == '\0')
		return "target: required";
	if (strlen(req->target) > TARGET_MAX)
		return "target: longer than 256 bytes";
	if (req->n_args > ARGS_MAX)
		return "args: more than 1024 arguments";
	for (size_t i = 0; i < req->n_args; i++) {
		if (strlen(req->args[i]) > ARG_BYTES_MAX) {
			snprintf(buf, len, "args[%zu]: longer than 65536 bytes", i);
			return buf;
		}
	}
	if (req->n_labels > LABELS_MAX)
		return "labels: more than 64 labels";
	for (size_t i = 0; i < req->n_labels; i++) {
		const char *k = req->labels[i]->key, *v = req->labels[i]->value;
		if (k == NULL || k[0] == '\0')
			return "labels: empty key";
		if (strlen(k) > LABEL_BYTES_MAX) {
			snprintf(buf, len, "labels: key %.*s...: longer than 256 bytes",
				 spd_strings_cut(k, 32), k);
			return buf;
		}
		if (v != NULL && strlen(v) > LABEL_BYTES_MAX) {
			snprintf(buf, len, "labels[%s]: value longer than 256 bytes", k);
			return buf;
		}
	}
	*timeout_ms = -1;
	*grace_ms = -1;
	if (req->timeout != NULL && spd_codec_duration_to_ms(req->timeout, timeout_ms) < 0)
		return "timeout: negative or malformed duration";
	if (req->destroy_grace_period != NULL &&
	    spd_codec_duration_to_ms(req->destroy_grace_period, grace_ms) < 0)
		return "destroy_grace_period: negative or malformed duration";
	if (req->request_id != NULL && strlen(req->request_id) > REQUEST_ID_MAX)
		return "request_id: longer than 256 bytes";
	return NULL;
}
