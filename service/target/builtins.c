#include "service/target/builtins.h"

#include <string.h>

#include "service/target/samples.h"

static const struct {
	const char *name;
	spawnd_fn fn;
} builtins[] = {
	{"echo", spawnd_sample_echo},       {"noop", spawnd_sample_noop},
	{"sleep", spawnd_sample_sleep},     {"stubborn", spawnd_sample_stubborn},
	{"fail", spawnd_sample_fail},       {"crash", spawnd_sample_crash},
	{"exit", spawnd_sample_exit},       {"oom", spawnd_sample_oom},
	{"tree", spawnd_sample_tree},       {"spew", spawnd_sample_spew},
	{"proc_environ", spawnd_sample_proc_environ},
	{"whoami", spawnd_sample_whoami},
};

spawnd_fn spd_builtin_find(const char *name)
{
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
		if (strcmp(builtins[i].name, name) == 0)
			return builtins[i].fn;
	return NULL;
}
