/* The sample targets of SPEC §4, used by the default config, the docs and the
 * tests. Their arguments are part of the contract. Compiled both into spawnd (as
 * builtins, see builtins.h) and into libspawnd_samples.so (symbols
 * spawnd_sample_NAME) to exercise the `library:` path. */
#ifndef SPAWND_TARGET_SAMPLES_H
#define SPAWND_TARGET_SAMPLES_H

#include "service/target/spawnd_target.h"

int spawnd_sample_echo(spawnd_call *call);
int spawnd_sample_noop(spawnd_call *call);
int spawnd_sample_sleep(spawnd_call *call);
int spawnd_sample_stubborn(spawnd_call *call);
int spawnd_sample_fail(spawnd_call *call);
int spawnd_sample_crash(spawnd_call *call);
int spawnd_sample_exit(spawnd_call *call);
int spawnd_sample_oom(spawnd_call *call);
int spawnd_sample_tree(spawnd_call *call);
int spawnd_sample_spew(spawnd_call *call);
/* Test aid: result = /proc/self/environ. */
int spawnd_sample_proc_environ(spawnd_call *call);
/* Test-oriented: reports what the child was given, a "KEY VALUE" line each:
 * uid, euid, gid, groups (supplementary, comma-separated), no_new_privs,
 * umask, cwd, fds (open descriptors), and one env line per variable. */
int spawnd_sample_whoami(spawnd_call *call);

#endif
