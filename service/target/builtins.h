/* Function targets compiled into spawnd, named by `function: builtin:NAME`. */
#ifndef SPAWND_TARGET_BUILTINS_H
#define SPAWND_TARGET_BUILTINS_H

#include "service/target/spawnd_target.h"

/* The builtin named NAME, or NULL. */
spawnd_fn spd_builtin_find(const char *name);

#endif
