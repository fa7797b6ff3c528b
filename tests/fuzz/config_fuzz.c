/* Fuzzes the config loader (service/config): YAML text from an untrusted file,
 * and the size and duration parsers it uses for every scalar. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service/config/config.h"
#include "tests/fuzz/fuzz.h"

/* The loader caps a file at its own CONFIG_FILE_MAX; inputs past 64 KiB only
 * slow the fuzzer down without reaching new code. */
#define INPUT_MAX (64u * 1024u)

static void check_config(const spd_config *cfg)
{
	FUZZ_CHECK(cfg->listen != NULL && cfg->listen_count >= 1);
	FUZZ_CHECK(cfg->listen[cfg->listen_count] == NULL);
	for (size_t i = 0; i < cfg->target_count; i++) {
		const spd_target_config *t = &cfg->targets[i];

		FUZZ_CHECK(t->name != NULL && t->description != NULL);
		FUZZ_CHECK(spd_config_find_target(cfg, t->name) != NULL);
		if (t->kind == SPD_TARGET_EXEC) {
			FUZZ_CHECK(t->exec_argv != NULL && t->exec_argc >= 1);
			FUZZ_CHECK(t->exec_argv[t->exec_argc] == NULL);
			FUZZ_CHECK(t->limits.start_method == SPD_START_SPAWN);
		} else {
			FUZZ_CHECK(t->kind == SPD_TARGET_FUNCTION);
			FUZZ_CHECK((t->builtin != NULL) != (t->library != NULL));
		}
		FUZZ_CHECK(t->env_count == 0 || t->env[t->env_count] == NULL);
		FUZZ_CHECK(t->inherit_env_count == 0 || t->inherit_env[t->inherit_env_count] == NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[SPD_CONFIG_ERR_MAX];
	spd_config *cfg = (spd_config *)&cfg; /* the loader must reset it */
	char word[64];
	uint64_t bytes;
	int64_t ms;
	int r;

	if (size > INPUT_MAX)
		return 0;
	memset(err, 'x', sizeof err);
	r = spd_config_load_string((const char *)data, size, "fuzz.yaml", "/fuzz", &cfg, err);
	FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
	if (r == 0) {
		FUZZ_CHECK(cfg != NULL);
		check_config(cfg);
		spd_config_destroy(cfg);
	} else {
		/* Nothing allocated on failure, and one line saying why. */
		FUZZ_CHECK(r < 0 && cfg == NULL);
		FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	}

	/* The first word of the input, as a size and as a duration. */
	r = 0;
	while ((size_t)r < size && (size_t)r < sizeof word - 1 && data[r] != '\n') {
		word[r] = (char)data[r];
		r++;
	}
	word[r] = '\0';
	(void)spd_config_parse_size(word, &bytes);
	if (spd_config_parse_duration_ms(word, &ms) == 0)
		FUZZ_CHECK(ms >= 0);
	return 0;
}
