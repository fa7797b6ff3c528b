/* Fuzzes the decoders of the launcher's frames (service/launcher): the bodies of
 * START (spd_start_req), EXITED (spd_exit_report) and HELLO, and the target spec
 * a spawn worker or zygote receives. Each decoder reads the whole input; what
 * decodes must re-encode to bytes that decode to the same thing. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "service/launcher/launcher.h"
#include "service/wire/messages.h"
#include "service/launcher/target_spec.h"
#include "service/wire/wire.h"
#include "tests/fuzz/fuzz.h"

/* Frames are at most a memfd's SPD_WIRE_MAX_BODY; past 64 KiB an input only
 * makes longer strings. */
#define INPUT_MAX (64u * 1024u)

static void same_bytes(const spd_wbuf *a, const spd_wbuf *b)
{
	FUZZ_CHECK(a->err == 0 && b->err == 0);
	FUZZ_CHECK(a->len == b->len);
	FUZZ_CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void fuzz_start_req(const uint8_t *data, size_t size)
{
	spd_start_req a, b;
	spd_wbuf ea = SPD_WBUF_INIT, eb = SPD_WBUF_INIT;
	int r;

	memset(&a, 0x5a, sizeof a); /* the decoder must not read what it did not set */
	r = spd_start_req_decode(&a, data, size);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(a.process_id == NULL && a.argv == NULL && a.labels == NULL);
		return;
	}
	FUZZ_CHECK(a.process_id != NULL && a.target != NULL && a.input != NULL);
	FUZZ_CHECK(a.argv != NULL && a.argv[a.argc] == NULL);
	for (uint32_t i = 0; i < a.argc; i++)
		FUZZ_CHECK(a.argv[i] != NULL);
	FUZZ_CHECK(a.labels != NULL && a.labels[2 * a.label_count] == NULL);
	for (uint32_t i = 0; i < 2 * a.label_count; i++)
		FUZZ_CHECK(a.labels[i] != NULL);

	FUZZ_CHECK(spd_start_req_encode(&a, &ea) == 0);
	FUZZ_CHECK(spd_start_req_decode(&b, ea.data, ea.len) == 0);
	FUZZ_CHECK(spd_start_req_encode(&b, &eb) == 0);
	same_bytes(&ea, &eb);
	spd_wbuf_release(&ea);
	spd_wbuf_release(&eb);
	spd_start_req_release(&a);
	spd_start_req_release(&b);
}

static void fuzz_exit_report(const uint8_t *data, size_t size)
{
	spd_exit_report a, b;
	spd_wbuf ea = SPD_WBUF_INIT, eb = SPD_WBUF_INIT;
	int r;

	memset(&a, 0x5a, sizeof a);
	r = spd_exit_report_decode(&a, data, size);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(a.launch_stage == NULL && a.result == NULL && a.stderr_head == NULL);
		return;
	}
	FUZZ_CHECK(a.launch_stage != NULL && a.launch_message != NULL && a.raise_type != NULL);
	FUZZ_CHECK(a.raise_message != NULL && a.raise_backtrace != NULL);
	FUZZ_CHECK((a.result == NULL) == (a.result_len == 0));
	FUZZ_CHECK((a.stdout_tail == NULL) == (a.stdout_len == 0));
	FUZZ_CHECK((a.stderr_head == NULL) == (a.stderr_head_len == 0));

	FUZZ_CHECK(spd_exit_report_encode(&a, &ea) == 0);
	FUZZ_CHECK(spd_exit_report_decode(&b, ea.data, ea.len) == 0);
	FUZZ_CHECK(spd_exit_report_encode(&b, &eb) == 0);
	same_bytes(&ea, &eb);
	spd_wbuf_release(&ea);
	spd_wbuf_release(&eb);
	spd_exit_report_release(&a);
	spd_exit_report_release(&b);
}

static void fuzz_hello(const uint8_t *data, size_t size)
{
	spd_launcher_hello h;
	int r;

	memset(&h, 0x5a, sizeof h);
	r = spd_launcher_hello_decode(&h, data, size);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(h.count == 0 && h.names == NULL);
		return;
	}
	for (size_t i = 0; i < h.count; i++)
		FUZZ_CHECK(h.names[i] != NULL && h.memory_limit_mechanisms[i] != NULL);
	FUZZ_CHECK(h.names[h.count] == NULL && h.errors[h.count] == NULL);
	spd_launcher_hello_release(&h);
}

/* spd_target_spec_decode() dlopen()s the library a function target names: a
 * fuzzer must not load arbitrary files. Its first fields are name, kind,
 * builtin and library, and an empty library (cut at its first NUL, as the
 * decoder cuts strings) is decoded as none, so this reads them the same way
 * and skips the input when the library is not empty. Builtins and exec specs
 * are decoded in full, resolution included. */
static bool names_a_library(const uint8_t *data, size_t size)
{
	spd_wreader r;
	const char *lib;
	size_t n;

	spd_wreader_init(&r, data, size);
	(void)spd_wreader_bytes(&r, &n); /* name */
	(void)spd_wreader_u32(&r);       /* kind */
	(void)spd_wreader_bytes(&r, &n); /* builtin */
	lib = spd_wreader_bytes(&r, &n); /* library */
	return r.err == 0 && strnlen(lib, n) > 0;
}

static void fuzz_target_spec(const uint8_t *data, size_t size)
{
	spd_target_spec a, b;
	spd_wreader r;
	spd_wbuf ea = SPD_WBUF_INIT, eb = SPD_WBUF_INIT;
	int rc;

	if (names_a_library(data, size))
		return;
	spd_wreader_init(&r, data, size);
	memset(&a, 0x5a, sizeof a);
	rc = spd_target_spec_decode(&r, &a);
	if (rc != 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -ENOMEM);
		FUZZ_CHECK(a.cfg.name == NULL && a.prepared.envp == NULL);
		return;
	}
	FUZZ_CHECK(a.cfg.name != NULL && a.cfg.library == NULL && a.prepared.dl == NULL);
	FUZZ_CHECK(a.prepared.cfg == &a.cfg && a.prepared.envp != NULL);
	if (a.cfg.kind == SPD_TARGET_FUNCTION)
		FUZZ_CHECK((a.prepared.fn != NULL) != (a.prepared.error != NULL));

	FUZZ_CHECK(spd_target_spec_encode(&a.prepared, &ea) == 0);
	spd_wreader_init(&r, ea.data, ea.len);
	FUZZ_CHECK(spd_target_spec_decode(&r, &b) == 0 && r.left == 0);
	FUZZ_CHECK(spd_target_spec_encode(&b.prepared, &eb) == 0);
	same_bytes(&ea, &eb);
	spd_wbuf_release(&ea);
	spd_wbuf_release(&eb);
	spd_target_spec_release(&a);
	spd_target_spec_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	fuzz_start_req(data, size);
	fuzz_exit_report(data, size);
	fuzz_hello(data, size);
	fuzz_target_spec(data, size);
	return 0;
}
