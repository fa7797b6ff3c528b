/* Fuzzes the decoder of every frame body of service/wire/: the front <->
 * launcher frames (messages.h: START, EXITED, HELLO, HEALTH, STARTED, OUTPUT,
 * DESTROY), the launcher <-> zygote ones (zygote_frames.h: SPAWN is a START,
 * SIGNAL, STARTED, EXITED; READY has no body), and the memfds a zygote and a
 * spawn worker receive (target_spec.h: the target spec, the call spec), and
 * the launcher's boot data (boot.h). Each
 * decoder reads the whole input; what decodes must re-encode to bytes that
 * decode to the same thing; what does not leaves nothing to release. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "service/launcher/target_spec.h"
#include "service/wire/boot.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"
#include "service/wire/zygote_frames.h"
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

/* A decoded A of frame T: encode it, decode that, encode again. Both
 * encodings must match. Releases A and the copy with RELEASE(pointer). */
#define FUZZ_REENCODE(T, a, release)                                                        \
	do {                                                                               \
		T b_;                                                                      \
		spd_wbuf ea_ = SPD_WBUF_INIT, eb_ = SPD_WBUF_INIT;                         \
		FUZZ_CHECK(T##_encode(&(a), &ea_) == 0);                                   \
		FUZZ_CHECK(T##_decode(&b_, ea_.data, ea_.len) == 0);                       \
		FUZZ_CHECK(T##_encode(&b_, &eb_) == 0);                                    \
		same_bytes(&ea_, &eb_);                                                    \
		spd_wbuf_release(&ea_);                                                    \
		spd_wbuf_release(&eb_);                                                    \
		release(&(a));                                                             \
		release(&b_);                                                              \
	} while (0)

/* For frames whose decode allocates nothing. */
#define NO_RELEASE(m) ((void)(m))

static void fuzz_start_req(const uint8_t *data, size_t size)
{
	spd_start_req a;
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

	FUZZ_REENCODE(spd_start_req, a, spd_start_req_release);
}

static void fuzz_exit_report(const uint8_t *data, size_t size)
{
	spd_exit_report a;
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

	FUZZ_REENCODE(spd_exit_report, a, spd_exit_report_release);
}

static void fuzz_hello(const uint8_t *data, size_t size)
{
	spd_launcher_hello a;
	int r;

	memset(&a, 0x5a, sizeof a);
	r = spd_launcher_hello_decode(&a, data, size);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(a.count == 0 && a.names == NULL);
		return;
	}
	for (size_t i = 0; i < a.count; i++)
		FUZZ_CHECK(a.names[i] != NULL && a.memory_limit_mechanisms[i] != NULL);
	FUZZ_CHECK(a.names[a.count] == NULL && a.errors[a.count] == NULL);

	FUZZ_REENCODE(spd_launcher_hello, a, spd_launcher_hello_release);
}

static void fuzz_health(const uint8_t *data, size_t size)
{
	spd_health_msg a;
	int r;

	memset(&a, 0x5a, sizeof a);
	r = spd_health_msg_decode(&a, data, size);
	if (r != 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(a.target == NULL && a.why == NULL);
		return;
	}
	FUZZ_CHECK(a.target != NULL);
	FUZZ_REENCODE(spd_health_msg, a, spd_health_msg_release);
}

/* The frames whose decode allocates nothing (no _release()): decode, encode,
 * decode again, encode again; both encodings must match, and with EXACT
 * (every field kept as it came) they must be the input itself. */
#define FUZZ_FLAT(T, data, size, exact)                                                     \
	do {                                                                               \
		T a;                                                                       \
		spd_wbuf e = SPD_WBUF_INIT;                                                \
		int r_ = T##_decode(&a, (data), (size));                                   \
		if (r_ != 0) {                                                             \
			FUZZ_CHECK(r_ == -EBADMSG);                                        \
			break;                                                             \
		}                                                                          \
		FUZZ_CHECK(T##_encode(&a, &e) == 0);                                       \
		if (exact)                                                                 \
			FUZZ_CHECK(e.len == (size) && memcmp(e.data, (data), (size)) == 0); \
		spd_wbuf_release(&e);                                                      \
		FUZZ_REENCODE(T, a, NO_RELEASE);                                           \
	} while (0)

static void fuzz_flat_frames(const uint8_t *data, size_t size)
{
	spd_output_msg out;

	FUZZ_FLAT(spd_started_msg, data, size, true);
	FUZZ_FLAT(spd_output_msg, data, size, true);
	FUZZ_FLAT(spd_destroy_msg, data, size, true);
	FUZZ_FLAT(spd_idle_msg, data, size, true);
	FUZZ_FLAT(spd_zygote_signal_msg, data, size, true);
	FUZZ_FLAT(spd_zygote_started_msg, data, size, true);
	/* EXITED keeps only the SENT bits of its flags. */
	FUZZ_FLAT(spd_zygote_exited_msg, data, size, false);
	/* OUTPUT's data points into the body, within it. */
	if (spd_output_msg_decode(&out, data, size) == 0) {
		FUZZ_CHECK(out.stream == SPD_OUTPUT_STDOUT || out.stream == SPD_OUTPUT_STDERR);
		FUZZ_CHECK(out.data >= data && out.data + out.len == data + size);
	}
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

/* The spawn worker's call spec: a target spec (skipped when it names a
 * library, as above), then a START body. */
static void fuzz_call_spec(const uint8_t *data, size_t size)
{
	spd_target_spec spec, spec2;
	spd_start_req req, req2;
	spd_wbuf ea = SPD_WBUF_INIT, eb = SPD_WBUF_INIT;
	int rc;

	if (names_a_library(data, size))
		return;
	memset(&spec, 0x5a, sizeof spec);
	memset(&req, 0x5a, sizeof req);
	rc = spd_call_spec_decode(data, size, &spec, &req);
	if (rc != 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -ENOMEM);
		FUZZ_CHECK(spec.cfg.name == NULL && spec.prepared.envp == NULL);
		FUZZ_CHECK(req.process_id == NULL && req.argv == NULL);
		return;
	}
	FUZZ_CHECK(spd_call_spec_encode(&spec.prepared, &req, &ea) == 0);
	FUZZ_CHECK(spd_call_spec_decode(ea.data, ea.len, &spec2, &req2) == 0);
	FUZZ_CHECK(spd_call_spec_encode(&spec2.prepared, &req2, &eb) == 0);
	same_bytes(&ea, &eb);
	spd_wbuf_release(&ea);
	spd_wbuf_release(&eb);
	spd_target_spec_release(&spec);
	spd_target_spec_release(&spec2);
	spd_start_req_release(&req);
	spd_start_req_release(&req2);
}

/* The zygote's fd 4: a target spec and nothing after it. */
static void fuzz_target_spec_body(const uint8_t *data, size_t size)
{
	spd_target_spec spec;
	spd_wreader r;
	int rc;

	if (names_a_library(data, size))
		return;
	memset(&spec, 0x5a, sizeof spec);
	rc = spd_target_spec_decode_body(data, size, &spec);
	if (rc != 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -ENOMEM);
		FUZZ_CHECK(spec.cfg.name == NULL && spec.prepared.envp == NULL);
		return;
	}
	spd_target_spec_release(&spec);
	/* What decodes whole also decodes as a stream, to its end. */
	spd_wreader_init(&r, data, size);
	FUZZ_CHECK(spd_target_spec_decode(&r, &spec) == 0 && r.left == 0);
	spd_target_spec_release(&spec);
}

/* The launcher's boot data. Re-encoded with no environment: the decoded
 * targets' inherit_env is empty already (boot.h). */
static void fuzz_boot(const uint8_t *data, size_t size)
{
	spd_launcher_boot a, b;
	spd_wbuf ea = SPD_WBUF_INIT, eb = SPD_WBUF_INIT;
	int rc;

	memset(&a, 0x5a, sizeof a);
	rc = spd_launcher_boot_decode(data, size, &a);
	if (rc != 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -ENOMEM);
		FUZZ_CHECK(a.cfg == NULL && a.worker == NULL && a.memory_mechanism == NULL);
		return;
	}
	for (size_t i = 0; i < a.cfg->target_count; i++)
		FUZZ_CHECK(a.cfg->targets[i].name != NULL && a.cfg->targets[i].inherit_env_count == 0);
	FUZZ_CHECK(spd_launcher_boot_encode(a.cfg, a.ids, a.front, a.worker, a.memory_mechanism, NULL,
					    &ea) == 0);
	FUZZ_CHECK(spd_launcher_boot_decode(ea.data, ea.len, &b) == 0);
	FUZZ_CHECK(spd_launcher_boot_encode(b.cfg, b.ids, b.front, b.worker, b.memory_mechanism, NULL,
					    &eb) == 0);
	same_bytes(&ea, &eb);
	spd_wbuf_release(&ea);
	spd_wbuf_release(&eb);
	spd_launcher_boot_release(&a);
	spd_launcher_boot_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	fuzz_start_req(data, size);
	fuzz_exit_report(data, size);
	fuzz_hello(data, size);
	fuzz_health(data, size);
	fuzz_flat_frames(data, size);
	fuzz_target_spec(data, size);
	fuzz_target_spec_body(data, size);
	fuzz_call_spec(data, size);
	fuzz_boot(data, size);
	return 0;
}
