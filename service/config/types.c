/* What the config's types need without the loader (the :types library). */
#include <stdlib.h>

#include "service/common/strv.h"
#include "service/config/config.h"

void spd_target_config_release(spd_target_config *t)
{
	free(t->name);
	free(t->description);
	free(t->builtin);
	free(t->library);
	free(t->symbol);
	spd_strv_free(t->exec_argv);
	spd_strv_free(t->env);
	spd_strv_free(t->inherit_env);
	free(t->cwd);
	free(t->user);
	free(t->group);
}
