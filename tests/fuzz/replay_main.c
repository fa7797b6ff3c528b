/* The fuzz targets' regression driver for `make test` (tests/fuzz/BUILD): a main
 * for LLVMFuzzerTestOneInput that needs no libFuzzer, so that Bazel builds it
 * with gcc and the plain and --config=asan builds both run it.
 *
 *   replay [--mutations N] [--seed S] [--only K [--save FILE]] PATH...
 *
 * Runs every file of each PATH (a corpus directory, or a file), in name order,
 * then N (default 10000) inputs derived from them by deterministic pseudo-random
 * mutations seeded with S: the same arguments always run the same inputs, so a
 * failure here is reproduced by running the same command. Mutation K alone runs
 * with --only K, and --save writes it to FILE (to add it to the corpus). This
 * is not coverage-guided: tools/fuzz.sh is the real fuzzer; this keeps what it
 * found fixed and still explores a little around the corpus on every test run.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef SPAWND_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#include "tests/fuzz/fuzz.h"

/* Corpus files above this size are refused: seeds are meant to be small. */
#define FILE_MAX (1u << 20)
/* A mutated input never grows past this. */
#define MUTANT_MAX (64u * 1024u)

typedef struct input {
	char *name;
	uint8_t *data;
	size_t len;
} input;

static input *inputs;
static size_t n_inputs, cap_inputs;

/* What runs now, for the crash message (read from a signal handler). */
static const char *current_name;
static long current_mutation = -1;
static uint64_t seed = 0x5eed5a11d0f00dULL;

static uint64_t rng_state;

/* xorshift64*: small, fast, and the same sequence on every machine. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void die(const char *what, const char *path, int err)
{
	fprintf(stderr, "replay: %s %s: %s\n", what, path, strerror(err));
	exit(2);
}

static void add_file(const char *path, const char *name)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	size_t n;

	if (f == NULL)
		die("open", path, errno);
	data = malloc(FILE_MAX + 1);
	if (data == NULL)
		die("read", path, ENOMEM);
	n = fread(data, 1, FILE_MAX + 1, f);
	if (ferror(f))
		die("read", path, EIO);
	fclose(f);
	if (n > FILE_MAX)
		die("read", path, EFBIG);
	if (n_inputs == cap_inputs) {
		cap_inputs = cap_inputs ? 2 * cap_inputs : 64;
		inputs = realloc(inputs, cap_inputs * sizeof *inputs);
		if (inputs == NULL)
			die("read", path, ENOMEM);
	}
	inputs[n_inputs].name = strdup(name);
	inputs[n_inputs].data = data;
	inputs[n_inputs].len = n;
	if (inputs[n_inputs].name == NULL)
		die("read", path, ENOMEM);
	n_inputs++;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void add_path(const char *path)
{
	struct dirent **ents;
	struct stat st;
	int n;

	if (stat(path, &st) < 0)
		die("stat", path, errno);
	if (!S_ISDIR(st.st_mode)) {
		add_file(path, path);
		return;
	}
	n = scandir(path, &ents, NULL, by_name);
	if (n < 0)
		die("scan", path, errno);
	for (int i = 0; i < n; i++) {
		char full[4096];

		if (ents[i]->d_name[0] != '.') {
			snprintf(full, sizeof full, "%s/%s", path, ents[i]->d_name);
			if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
				add_file(full, full);
		}
		free(ents[i]);
	}
	free(ents);
}

/* ---- mutations -------------------------------------------------------------- */

/* Values that break length fields and counters: both ends of each width,
 * around the caps the decoders check, and small counts. */
static const uint64_t interesting[] = {
	0, 1, 2, 3, 7, 8, 16, 63, 64, 65, 127, 128, 255, 256, 257, 1023, 1024, 1025,
	4095, 4096, 65535, 65536, 100000, 100001, 0x7fffffff, 0x80000000, 0xffffffff,
	0x100000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL, UINT64_MAX,
};

/* Bytes that matter to YAML and to protobuf's varints and tags. */
static const char tokens[] = "\n\r\t :-[]{},&*!|>'\"#%@`?\\\x80\xff\x00";

typedef struct buf {
	uint8_t *p;
	size_t len;
} buf;

static void insert(buf *b, size_t at, const uint8_t *src, size_t n)
{
	if (b->len + n > MUTANT_MAX)
		n = MUTANT_MAX - b->len;
	memmove(b->p + at + n, b->p + at, b->len - at);
	memcpy(b->p + at, src, n);
	b->len += n;
}

static void erase(buf *b, size_t at, size_t n)
{
	memmove(b->p + at, b->p + at + n, b->len - at - n);
	b->len -= n;
}

static void mutate_once(buf *b)
{
	size_t at = rnd_below(b->len + 1);
	uint8_t tmp[8];

	switch (rnd_below(10)) {
	case 0: /* flip a bit */
		if (b->len > 0)
			b->p[rnd_below(b->len)] ^= (uint8_t)(1u << rnd_below(8));
		break;
	case 1: /* a random byte */
		if (b->len > 0)
			b->p[rnd_below(b->len)] = (uint8_t)rnd();
		break;
	case 2: /* a syntax byte, inserted */
		tmp[0] = (uint8_t)tokens[rnd_below(sizeof tokens - 1)];
		insert(b, at, tmp, 1);
		break;
	case 3: { /* an interesting 1, 2, 4 or 8 byte value, overwritten */
		uint64_t v = interesting[rnd_below(sizeof interesting / sizeof *interesting)];
		size_t w = (size_t)1 << rnd_below(4);
		if (b->len >= w) {
			memcpy(tmp, &v, sizeof v);
			memcpy(b->p + rnd_below(b->len - w + 1), tmp, w);
		}
		break;
	}
	case 4: /* delete a range */
		if (b->len > 0) {
			size_t n = 1 + rnd_below(b->len - at < 16 ? b->len - at : 16);
			if (at < b->len)
				erase(b, at, n);
		}
		break;
	case 5: /* duplicate a range */
		if (b->len > 0) {
			size_t from = rnd_below(b->len), n = 1 + rnd_below(b->len - from);
			uint8_t *copy;
			if (n > 256)
				n = 256;
			copy = malloc(n);
			if (copy != NULL) {
				memcpy(copy, b->p + from, n);
				insert(b, at, copy, n);
				free(copy);
			}
		}
		break;
	case 6: { /* splice in a range of another input */
		const input *o = &inputs[rnd_below(n_inputs)];
		if (o->len > 0) {
			size_t from = rnd_below(o->len), n = 1 + rnd_below(o->len - from);
			insert(b, at, o->data + from, n);
		}
		break;
	}
	case 7: /* truncate */
		b->len = at;
		break;
	case 8: /* a little-endian length/count nudged by -2..+2 */
		if (b->len >= 4) {
			size_t off = rnd_below(b->len - 3);
			uint32_t v;
			memcpy(&v, b->p + off, 4);
			v += (uint32_t)rnd_below(5) - 2u;
			memcpy(b->p + off, &v, 4);
		}
		break;
	default: /* a run of one byte */
		if (b->len > 0) {
			size_t n = 1 + rnd_below(64);
			memset(tmp, b->p[rnd_below(b->len)], sizeof tmp);
			for (size_t i = 0; i < n; i += sizeof tmp)
				insert(b, at, tmp, n - i < sizeof tmp ? n - i : sizeof tmp);
		}
		break;
	}
}

/* Mutation K of the run: a pure function of (seed, K) and the corpus. */
static void make_mutant(long k, buf *b)
{
	const input *base;
	int ops;

	rng_state = seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(k + 1));
	if (rng_state == 0)
		rng_state = 1;
	base = &inputs[rnd_below(n_inputs)];
	b->len = base->len < MUTANT_MAX ? base->len : MUTANT_MAX;
	memcpy(b->p, base->data, b->len);
	ops = 1 + (int)rnd_below(6);
	for (int i = 0; i < ops; i++)
		mutate_once(b);
	current_name = base->name;
}

/* ---- reporting a crash --------------------------------------------------------- */

static void say_where(void)
{
	char msg[512];
	int n;

	if (current_mutation < 0)
		n = snprintf(msg, sizeof msg, "replay: failed on corpus file %s\n", current_name);
	else
		n = snprintf(msg, sizeof msg,
			     "replay: failed on mutation %ld (of %s, seed %" PRIu64
			     "); rerun with --seed %" PRIu64 " --only %ld --save FILE\n",
			     current_mutation, current_name, seed, seed, current_mutation);
	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* snprintf is not async-signal-safe; this runs only once the process is already
 * dying of a crash, to say which input it was, then dies the same way. */
static void on_fatal(int sig)
{
	say_where();
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	long mutations = 10000, only = -1;
	const char *save = NULL;
	buf b = {NULL, 0};
	int i;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc) {
			fprintf(stderr, "replay: %s needs a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--mutations") == 0)
			mutations = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0)
			seed = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--only") == 0)
			only = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--save") == 0)
			save = argv[i + 1];
		else {
			fprintf(stderr, "replay: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	for (; i < argc; i++)
		add_path(argv[i]);
	if (n_inputs == 0) {
		fprintf(stderr, "replay: no corpus files given\n");
		return 2;
	}
#ifdef SPAWND_ASAN
	/* ASan exits without raising a signal: it calls this instead. */
	__sanitizer_set_death_callback(say_where);
#endif
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	signal(SIGFPE, on_fatal);
	signal(SIGILL, on_fatal);
	signal(SIGABRT, on_fatal);

	b.p = malloc(MUTANT_MAX);
	if (b.p == NULL)
		return 2;
	if (only >= 0) {
		current_mutation = only;
		make_mutant(only, &b);
		if (save != NULL) {
			FILE *f = fopen(save, "wb");
			if (f == NULL || fwrite(b.p, 1, b.len, f) != b.len || fclose(f) != 0)
				die("write", save, errno);
		}
		LLVMFuzzerTestOneInput(b.p, b.len);
		printf("replay: mutation %ld (%zu bytes) passed\n", only, b.len);
		return 0;
	}
	for (size_t j = 0; j < n_inputs; j++) {
		/* An exact-size copy: ASan sees a read one past the end. */
		uint8_t *copy = malloc(inputs[j].len ? inputs[j].len : 1);
		if (copy == NULL)
			return 2;
		memcpy(copy, inputs[j].data, inputs[j].len);
		current_name = inputs[j].name;
		LLVMFuzzerTestOneInput(copy, inputs[j].len);
		free(copy);
	}
	for (long k = 0; k < mutations; k++) {
		uint8_t *copy;

		current_mutation = k;
		make_mutant(k, &b);
		copy = malloc(b.len ? b.len : 1);
		if (copy == NULL)
			return 2;
		memcpy(copy, b.p, b.len);
		LLVMFuzzerTestOneInput(copy, b.len);
		free(copy);
	}
	printf("replay: %zu corpus files and %ld mutations (seed %" PRIu64 ") passed\n",
	       n_inputs, mutations, seed);
	for (size_t j = 0; j < n_inputs; j++) {
		free(inputs[j].name);
		free(inputs[j].data);
	}
	free(inputs);
	free(b.p);
	return 0;
}
