/* traceparent validation: see traceparent.h. */
#include "service/common/traceparent.h"

static bool lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* N lowercase hex digits at S; *ZERO tells whether all were '0'. */
static bool hex_run(const char *s, size_t n, bool *zero)
{
	*zero = true;
	for (size_t i = 0; i < n; i++) {
		if (!lower_hex(s[i]))
			return false;
		if (s[i] != '0')
			*zero = false;
	}
	return true;
}

bool spd_traceparent_valid(const char *s, size_t len)
{
	bool zero;

	if (s == NULL || len < SPD_TRACEPARENT_LEN || len > SPD_TRACEPARENT_MAX)
		return false;
	/* 00-TRACEID-PARENTID-FL: separators at 2, 35 and 52. */
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return false;
	if (!hex_run(s, 2, &zero) || (s[0] == 'f' && s[1] == 'f'))
		return false;
	if (!hex_run(s + 3, 32, &zero) || zero)
		return false;
	if (!hex_run(s + 36, 16, &zero) || zero)
		return false;
	if (!hex_run(s + 53, 2, &zero))
		return false;
	if (len == SPD_TRACEPARENT_LEN)
		return true;
	/* Longer: only a later version, and only behind a '-'. */
	if ((s[0] == '0' && s[1] == '0') || s[SPD_TRACEPARENT_LEN] != '-')
		return false;
	for (size_t i = SPD_TRACEPARENT_LEN; i < len; i++)
		if (s[i] != '-' && !lower_hex(s[i]))
			return false;
	return true;
}
