#include "service/common/strv.h"

#include <stdlib.h>
#include <string.h>

char **spd_strv_dup(const char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof *out);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (out[i] == NULL) {
			spd_strv_free(out);
			return NULL;
		}
	}
	return out;
}

void spd_strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

size_t spd_strv_count(const char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}
