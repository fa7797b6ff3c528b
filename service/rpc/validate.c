#include "service/rpc/validate.h"

#include <stdio.h>
#include <string.h>

#include "service/common/limits.h"
#include "service/rpc/codec.h"
#include "service/rpc/strings.h"

/* The per-field caps of SPEC §3 are common/limits.h's. */
#define N SPD_LIMIT_STR

const char *spd_validate_start_request(const Spawnd__V1__StartProcessRequest *req, char *buf,
				       size_t len, int64_t *timeout_ms, int64_t *grace_ms)
{
	if (req->target == NULL || req->target[0] == '\0')
		return "target: required";
	if (strlen(req->target) > SPD_TARGET_NAME_MAX)
		return "target: longer than " N(SPD_TARGET_NAME_MAX) " bytes";
	if (req->n_args > SPD_ARGS_MAX)
		return "args: more than " N(SPD_ARGS_MAX) " arguments";
	for (size_t i = 0; i < req->n_args; i++) {
		if (strlen(req->args[i]) > SPD_ARG_BYTES_MAX) {
			snprintf(buf, len, "args[%zu]: longer than " N(SPD_ARG_BYTES_MAX) " bytes", i);
			return buf;
		}
	}
	if (req->n_labels > SPD_LABELS_MAX)
		return "labels: more than " N(SPD_LABELS_MAX) " labels";
	for (size_t i = 0; i < req->n_labels; i++) {
		const char *k = req->labels[i]->key, *v = req->labels[i]->value;
		if (k == NULL || k[0] == '\0')
			return "labels: empty key";
		if (strlen(k) > SPD_LABEL_BYTES_MAX) {
			snprintf(buf, len,
				 "labels: key %.*s...: longer than " N(SPD_LABEL_BYTES_MAX) " bytes",
				 spd_strings_cut(k, 32), k);
			return buf;
		}
		if (v != NULL && strlen(v) > SPD_LABEL_BYTES_MAX) {
			snprintf(buf, len,
				 "labels[%s]: value longer than " N(SPD_LABEL_BYTES_MAX) " bytes", k);
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
	if (req->request_id != NULL && strlen(req->request_id) > SPD_REQUEST_ID_MAX)
		return "request_id: longer than " N(SPD_REQUEST_ID_MAX) " bytes";
	return NULL;
}
