/* What every fuzz target of tests/fuzz/ shares: the libFuzzer entry point, which
 * libFuzzer's own main calls under tools/fuzz.sh and replay_main.c calls in
 * `make test`, and a check that stops at a broken invariant. */
#ifndef SPAWND_TESTS_FUZZ_FUZZ_H
#define SPAWND_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input. Returns 0 (libFuzzer reserves other values); a bug shows as
 * a crash, a sanitizer report or a FUZZ_CHECK failure. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort()s, so that libFuzzer saves the input and replay_main.c names it. */
#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#endif
