/* Writes the binary seeds of corpus/frames_fuzz and corpus/requests_fuzz with
 * the real encoders, so that they start from valid frames and messages:
 *
 *   bazel run //tests/fuzz:seeds_gen -- "$PWD/tests/fuzz/corpus"
 *
 * The seeds are checked in; rerun this after a change of the wire format or of
 * the API and commit what changed (the config seeds are plain YAML files). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "service/launcher/target_spec.h"
#include "service/wire/boot.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"
#include "service/wire/zygote_frames.h"
#include "spawnd/v1/spawnd.pb-c.h"

static const char *root;

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "seeds_gen: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	printf("%s (%zu bytes)\n", path, n);
}

static void frame(const char *name, spd_wbuf *b)
{
	if (b->err != 0) {
		fprintf(stderr, "seeds_gen: %s: out of memory\n", name);
		exit(1);
	}
	write_file("frames_fuzz", name, b->data, b->len);
	spd_wbuf_release(b);
}

static void message(const char *name, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(n ? n : 1);

	if (p == NULL)
		exit(1);
	protobuf_c_message_pack(m, p);
	write_file("requests_fuzz", name, p, n);
	free(p);
}

/* ---- launcher frames ----------------------------------------------------------- */

static void start_reqs(void)
{
	char *argv[] = {"a", "b c", "", NULL};
	char *labels[] = {"team", "infra", "k", "", NULL};
	char *many[41];
	spd_start_req r = {
		.process_id = "p-0001", .target = "echo", .argv = argv, .argc = 3,
		.input = (uint8_t *)"hello\0world", .input_len = 11,
		.labels = labels, .label_count = 2, .grace_ms = -1, .timeout_ms = 2500,
		.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	spd_start_req empty = {.process_id = "", .target = "", .argv = argv, .argc = 0,
			       .labels = labels, .label_count = 0};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_start_req_encode(&r, &b);
	frame("start_req", &b);
	spd_start_req_encode(&empty, &b);
	frame("start_req_empty", &b);
	for (int i = 0; i < 40; i++)
		many[i] = "arg";
	many[40] = NULL;
	r.argv = many;
	r.argc = 40;
	r.input_len = 0;
	spd_start_req_encode(&r, &b);
	frame("start_req_many_args", &b);
}

static void exit_reports(void)
{
	spd_exit_report ok = {
		.flags = SPD_EXIT_CGROUP, .pid = 4242, .wait_status = 3 << 8,
		.started_ns = 1700000000000000000, .ended_ns = 1700000001000000000,
		.utime_us = 1200, .stime_us = 300, .maxrss_bytes = 4 << 20,
		.result = (uint8_t *)"42", .result_len = 2,
		.stdout_tail = (uint8_t *)"out\n", .stdout_len = 4, .stdout_total = 4,
		.stderr_tail = (uint8_t *)"err\n", .stderr_len = 4, .stderr_total = 9000,
		.stderr_head = (uint8_t *)"first", .stderr_head_len = 5,
	};
	spd_exit_report failed = {
		.flags = SPD_EXIT_LAUNCH_FAILED, .launch_stage = "exec", .launch_errno = ENOENT,
		.launch_message = "/bin/nonexistent",
	};
	spd_exit_report raised = {
		.flags = SPD_EXIT_RAISED | SPD_EXIT_SENT_STOP | SPD_EXIT_TIMED_OUT, .pid = 7,
		.wait_status = 15, .raise_type = "ValueError", .raise_message = "bad input",
		.raise_backtrace = "#0 f\n#1 main\n",
	};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_exit_report_encode(&ok, &b);
	frame("exit_report", &b);
	spd_exit_report_encode(&failed, &b);
	frame("exit_report_launch_failed", &b);
	spd_exit_report_encode(&raised, &b);
	frame("exit_report_raised", &b);
}

static void hellos(void)
{
	char *names[] = {"echo", "resize", "convert"};
	char *errors[] = {NULL, "dlopen: libimg.so: cannot open shared object file", NULL};
	char *mechanisms[] = {"", "cgroup_v2", "rlimit_as"};
	uint32_t ids[] = {1, 2, 7};
	spd_launcher_hello h = {.count = 3, .ids = ids, .names = names, .errors = errors,
				.memory_limit_mechanisms = mechanisms};
	spd_launcher_hello empty = {.count = 0};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_launcher_hello_encode(&h, &b);
	frame("hello", &b);
	spd_launcher_hello_encode(&empty, &b);
	frame("hello_empty", &b);
}

/* The small frames: HEALTH, STARTED, OUTPUT, DESTROY and the zygote's. */
static void small_frames(void)
{
	spd_health_msg down = {.target = "resize", .why = "the zygote exited with code 4"};
	spd_health_msg up = {.target = "resize", .why = NULL};
	spd_started_msg started = {.pid = 4242, .started_ns = 1700000000000000000};
	spd_output_msg out = {.stream = SPD_OUTPUT_STDERR, .offset = 65000,
			      .data = (const uint8_t *)"line\n\0bin", .len = 9};
	spd_destroy_msg destroy = {.grace_ms = 10000};
	spd_zygote_signal_msg sig = {.sig = 15};
	spd_zygote_started_msg zpid = {.pid_or_err = 777}, zerr = {.pid_or_err = -EAGAIN};
	spd_zygote_exited_msg zexit = {.wait_status = 9, .utime_us = 1500000, .stime_us = 20,
				       .maxrss_bytes = 8 << 20, .sent = SPD_EXIT_SENT_KILL};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_health_msg_encode(&down, &b);
	frame("health_down", &b);
	spd_health_msg_encode(&up, &b);
	frame("health_up", &b);
	spd_started_msg_encode(&started, &b);
	frame("started", &b);
	spd_output_msg_encode(&out, &b);
	frame("output", &b);
	spd_destroy_msg_encode(&destroy, &b);
	frame("destroy", &b);
	spd_zygote_signal_msg_encode(&sig, &b);
	frame("zygote_signal", &b);
	spd_zygote_started_msg_encode(&zpid, &b);
	frame("zygote_started", &b);
	spd_zygote_started_msg_encode(&zerr, &b);
	frame("zygote_started_failed", &b);
	spd_zygote_exited_msg_encode(&zexit, &b);
	frame("zygote_exited", &b);
}

static void target_specs(void)
{
	char *envp[] = {"LANG=C.UTF-8", "PATH=/usr/bin:/bin", NULL};
	char *no_env[] = {NULL};
	spd_target_config c = {
		.name = "echo", .kind = SPD_TARGET_FUNCTION, .builtin = "echo",
		.limits = {.start_method = SPD_START_SPAWN, .destroy_grace_ms = 10000,
			   .stop_signal = 15, .max_result_bytes = 1 << 20,
			   .max_output_bytes = 1 << 20, .open_files_limit = 1024},
	};
	spd_prepared_target p = {.cfg = &c, .envp = envp, .set_uid = true, .uid = 65534,
				 .set_gid = true, .gid = 65534};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_target_spec_encode(&p, &b);
	frame("target_spec_builtin", &b);
	{
		char *argv[] = {"x", NULL}, *labels[] = {NULL};
		spd_start_req req = {.process_id = "p-0002", .target = "echo", .argv = argv,
				     .argc = 1, .input = (uint8_t *)"in", .input_len = 2,
				     .labels = labels, .grace_ms = -1};
		spd_call_spec_encode(&p, &req, &b);
		frame("call_spec", &b);
	}
	c.name = "nope";
	c.builtin = "nope";
	p.envp = no_env;
	p.set_uid = p.set_gid = false;
	spd_target_spec_encode(&p, &b);
	frame("target_spec_unknown_builtin", &b);
	c.name = "convert";
	c.kind = SPD_TARGET_EXEC;
	c.builtin = NULL;
	c.cwd = "/tmp";
	c.limits.memory_limit = 512u << 20;
	c.limits.timeout_ms = 120000;
	c.limits.cpu_time_limit_ms = 1500;
	spd_target_spec_encode(&p, &b);
	frame("target_spec_exec", &b);
	/* The fuzzer skips specs naming a library (frames_fuzz.c): this one keeps
	 * that skip itself exercised. */
	c.name = "resize";
	c.kind = SPD_TARGET_FUNCTION;
	c.library = "/opt/targets/libimg.so";
	c.symbol = "resize";
	spd_target_spec_encode(&p, &b);
	frame("target_spec_library", &b);
}

/* The launcher's boot data, with one inherit_env variable found in the
 * environment and one not. */
static void boots(void)
{
	char *argv[] = {"/bin/echo", "-n", NULL};
	char *env[] = {"LANG=C", NULL};
	char *inherit[] = {"HOME", "NOT_SET_HERE", NULL};
	char *envp[] = {"HOME=/root", "PATH=/bin", NULL};
	spd_target_config t[] = {
		{.name = "echo", .kind = SPD_TARGET_EXEC, .exec_argv = argv, .exec_argc = 2,
		 .env = env, .env_count = 1, .inherit_env = inherit, .inherit_env_count = 2,
		 .cwd = "/tmp", .limits = {.start_method = SPD_START_FORK, .stop_signal = 15}},
		{.name = "sum", .description = "", .kind = SPD_TARGET_FUNCTION, .builtin = "sum",
		 .limits = {.start_method = SPD_START_FORKSERVER, .memory_limit = 64u << 20,
			    .zygote_start = SPD_ZYGOTE_BOOT}},
	};
	spd_config cfg = {.path = "/etc/spawnd.yaml", .dir = "/etc", .max_running = 64,
			  .targets = t, .target_count = 2};
	spd_config none = {.path = "<default>"};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_launcher_boot_encode(&cfg, NULL, 4242, "/usr/lib/spawnd/spawnd-worker", "cgroup_v2", envp,
				 &b);
	frame("boot", &b);
	spd_launcher_boot_encode(&none, NULL, 1, NULL, NULL, NULL, &b);
	frame("boot_no_targets", &b);
}

/* ---- spawnd.v1 requests ---------------------------------------------------------- */

static void requests(void)
{
	Spawnd__V1__StartProcessRequest start = SPAWND__V1__START_PROCESS_REQUEST__INIT;
	Spawnd__V1__StartProcessRequest__LabelsEntry l1 =
		SPAWND__V1__START_PROCESS_REQUEST__LABELS_ENTRY__INIT;
	Spawnd__V1__StartProcessRequest__LabelsEntry l2 =
		SPAWND__V1__START_PROCESS_REQUEST__LABELS_ENTRY__INIT;
	Spawnd__V1__StartProcessRequest__LabelsEntry *labels[] = {&l1, &l2};
	Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
	Google__Protobuf__Duration grace = GOOGLE__PROTOBUF__DURATION__INIT;
	char *args[] = {"fail", "ValueError", "bad input"};
	Spawnd__V1__DestroyRequest destroy = SPAWND__V1__DESTROY_REQUEST__INIT;
	Spawnd__V1__WatchRequest watch = SPAWND__V1__WATCH_REQUEST__INIT;
	Spawnd__V1__WatchRequest__LabelSelectorEntry sel =
		SPAWND__V1__WATCH_REQUEST__LABEL_SELECTOR_ENTRY__INIT;
	Spawnd__V1__WatchRequest__LabelSelectorEntry *sels[] = {&sel};
	Spawnd__V1__GetProcessRequest get = SPAWND__V1__GET_PROCESS_REQUEST__INIT;
	Spawnd__V1__ListProcessesRequest list = SPAWND__V1__LIST_PROCESSES_REQUEST__INIT;
	Spawnd__V1__ListProcessesRequest__LabelSelectorEntry lsel =
		SPAWND__V1__LIST_PROCESSES_REQUEST__LABEL_SELECTOR_ENTRY__INIT;
	Spawnd__V1__ListProcessesRequest__LabelSelectorEntry *lsels[] = {&lsel};
	Spawnd__V1__State states[] = {SPAWND__V1__STATE__STATE_RUNNING,
				      SPAWND__V1__STATE__STATE_FAILED};
	Spawnd__V1__ListTargetsRequest targets = SPAWND__V1__LIST_TARGETS_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckRequest health = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;

	start.target = "fail";
	start.n_args = 3;
	start.args = args;
	start.input.data = (uint8_t *)"\x00\x01payload";
	start.input.len = 9;
	l1.key = "team";
	l1.value = "infra";
	l2.key = "job";
	l2.value = "";
	start.n_labels = 2;
	start.labels = labels;
	start.request_id = "req-7";
	timeout.seconds = 2;
	timeout.nanos = 500000000;
	grace.nanos = 1;
	start.timeout = &timeout;
	start.destroy_grace_period = &grace;
	message("start", &start.base);

	start = (Spawnd__V1__StartProcessRequest)SPAWND__V1__START_PROCESS_REQUEST__INIT;
	start.target = "echo";
	message("start_minimal", &start.base);
	timeout.seconds = -1;
	timeout.nanos = 0;
	start.timeout = &timeout;
	message("start_negative_timeout", &start.base);
	timeout.seconds = 1;
	timeout.nanos = 1000000000;
	message("start_bad_nanos", &start.base);
	start.timeout = NULL;
	l1.key = "";
	start.n_labels = 1;
	start.labels = labels;
	message("start_empty_label_key", &start.base);
	start = (Spawnd__V1__StartProcessRequest)SPAWND__V1__START_PROCESS_REQUEST__INIT;
	start.request_id = "no target";
	message("start_no_target", &start.base);

	destroy.id = "p-0001";
	grace.seconds = 3;
	grace.nanos = 0;
	destroy.grace_period = &grace;
	destroy.wait = 1;
	message("destroy", &destroy.base);

	watch.include_output = 1;
	watch.after_sequence = 0;
	sel.key = "team";
	sel.value = "infra";
	watch.n_label_selector = 1;
	watch.label_selector = sels;
	message("watch_all", &watch.base);
	watch = (Spawnd__V1__WatchRequest)SPAWND__V1__WATCH_REQUEST__INIT;
	watch.id = "p-0001";
	watch.after_sequence = 12;
	message("watch_resume", &watch.base);

	get.id = "p-0001";
	message("get_process", &get.base);

	list.target = "echo";
	list.n_states = 2;
	list.states = states;
	lsel.key = "team";
	lsel.value = "infra";
	list.n_label_selector = 1;
	list.label_selector = lsels;
	list.page_size = 50;
	list.page_token = "p1f";
	message("list_processes", &list.base);

	message("list_targets", &targets.base);

	health.service = "spawnd.v1.ProcessService";
	message("health_check", &health.base);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seeds_gen CORPUS_DIR\n");
		return 2;
	}
	root = argv[1];
	start_reqs();
	exit_reports();
	hellos();
	small_frames();
	target_specs();
	boots();
	requests();
	return 0;
}
