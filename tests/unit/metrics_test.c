/* service/metrics: the text exposition format (escaping, values), families
 * (counters, gauges, histograms, bounded series), spawnd's families as a
 * scrape shows them, and the HTTP listener (GET /metrics, 404, 405, its
 * descriptors closed when it stops). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "service/metrics/family.h"
#include "service/metrics/http.h"
#include "service/metrics/metrics.h"
#include "service/metrics/procstat.h"
#include "service/metrics/text.h"

static void value_is(double v, const char *want)
{
	spd_mbuf b = SPD_MBUF_INIT;

	spd_mbuf_value(&b, v);
	assert_int_equal(b.err, 0);
	assert_string_equal(b.data, want);
	spd_mbuf_release(&b);
}

static void text_values(void **state)
{
	(void)state;
	value_is(0, "0");
	value_is(3, "3");
	value_is(-2, "-2");
	value_is(1e15, "1000000000000000");
	value_is(0.005, "0.005");
	value_is(2.5, "2.5");
	value_is(0.1 + 0.2, "0.30000000000000004"); /* %.15g would not read back */
	value_is(1e300, "1e+300");
	value_is(INFINITY, "+Inf");
	value_is(-INFINITY, "-Inf");
	value_is(NAN, "NaN");
}

static void text_escaping(void **state)
{
	spd_mbuf b = SPD_MBUF_INIT;

	(void)state;
	spd_mbuf_label_value(&b, "a\"b\\c\nd");
	assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
	b.len = 0;
	spd_mbuf_help_text(&b, "say \"hi\"\\\n");
	assert_string_equal(b.data, "say \"hi\"\\\\\\n");
	b.len = 0;
	/* A long append grows the buffer. */
	for (int i = 0; i < 10000; i++)
		spd_mbuf_printf(&b, "%05d", i);
	assert_int_equal(b.len, 50000);
	assert_int_equal(strncmp(b.data + 49995, "09999", 5), 0);
	spd_mbuf_release(&b);
}

static char *render(spd_metric_family *f)
{
	spd_mbuf b = SPD_MBUF_INIT;

	spd_metric_family_render(f, &b);
	assert_int_equal(b.err, 0);
	return b.data;
}

static void counter_and_gauge(void **state)
{
	static const char *const labels[] = {"target", "state"};
	spd_metric_desc d = {"t_total", "Things.\nDone", SPD_METRIC_COUNTER, labels, 2, NULL, 0, 8};
	spd_metric_desc g = {"t_now", "Now.", SPD_METRIC_GAUGE, NULL, 0, NULL, 0, 1};
	spd_metric_family *f = spd_metric_family_create(&d), *fg = spd_metric_family_create(&g);
	const char *a[] = {"echo", "SUCCEEDED"}, *b[] = {"we\"ird", ""};
	char *text;

	(void)state;
	assert_non_null(f);
	spd_metric_add(spd_metric_series_get(f, a), 1);
	spd_metric_add(spd_metric_series_get(f, a), 2);
	spd_metric_series_get(f, b); /* created at 0 */
	assert_ptr_equal(spd_metric_series_get(f, a), spd_metric_series_get(f, a));
	text = render(f);
	assert_string_equal(text, "# HELP t_total Things.\\nDone\n"
				  "# TYPE t_total counter\n"
				  "t_total{target=\"echo\",state=\"SUCCEEDED\"} 3\n"
				  "t_total{target=\"we\\\"ird\",state=\"\"} 0\n");
	free(text);
	spd_metric_set(spd_metric_series_get(fg, NULL), 7.5);
	spd_metric_add(spd_metric_series_get(fg, NULL), -0.5);
	text = render(fg);
	assert_string_equal(text, "# HELP t_now Now.\n# TYPE t_now gauge\nt_now 7\n");
	free(text);
	spd_metric_family_zero(fg);
	assert_true(spd_metric_value(spd_metric_series_get(fg, NULL)) == 0);
	/* NULL series and families are no-ops. */
	spd_metric_add(NULL, 1);
	spd_metric_observe(NULL, 1);
	assert_null(spd_metric_series_get(NULL, a));
	spd_metric_family_destroy(f);
	spd_metric_family_destroy(fg);
}

static void histogram(void **state)
{
	static const char *const labels[] = {"target"};
	static const double buckets[] = {0.01, 0.1, 1};
	spd_metric_desc d = {"lat_seconds", "Latency.", SPD_METRIC_HISTOGRAM, labels, 1,
			     buckets, 3, 4};
	spd_metric_family *f = spd_metric_family_create(&d);
	const char *echo[] = {"echo"};
	spd_metric_series *s;
	char *text;

	(void)state;
	s = spd_metric_series_get(f, echo);
	spd_metric_observe(s, 0.005);
	spd_metric_observe(s, 0.01); /* upper bounds are inclusive */
	spd_metric_observe(s, 0.5);
	spd_metric_observe(s, 7);
	text = render(f);
	assert_string_equal(text, "# HELP lat_seconds Latency.\n"
				  "# TYPE lat_seconds histogram\n"
				  "lat_seconds_bucket{target=\"echo\",le=\"0.01\"} 2\n"
				  "lat_seconds_bucket{target=\"echo\",le=\"0.1\"} 2\n"
				  "lat_seconds_bucket{target=\"echo\",le=\"1\"} 3\n"
				  "lat_seconds_bucket{target=\"echo\",le=\"+Inf\"} 4\n"
				  "lat_seconds_sum{target=\"echo\"} 7.515\n"
				  "lat_seconds_count{target=\"echo\"} 4\n");
	free(text);
	spd_metric_family_destroy(f);
	/* Buckets must increase. */
	{
		static const double bad[] = {1, 1};
		spd_metric_desc bd = {"x", "x", SPD_METRIC_HISTOGRAM, NULL, 0, bad, 2, 1};
		assert_null(spd_metric_family_create(&bd));
	}
}

/* Label values beyond max_series are not counted, and say so. */
static void bounded_series(void **state)
{
	static const char *const labels[] = {"id"};
	spd_metric_desc d = {"b_total", "B.", SPD_METRIC_COUNTER, labels, 1, NULL, 0, 3};
	spd_metric_family *f = spd_metric_family_create(&d);
	char id[32], *text;
	const char *v[] = {id};

	(void)state;
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "p%d", i);
		spd_metric_add(spd_metric_series_get(f, v), 1);
	}
	assert_int_equal(spd_metric_family_overflow(f), 97);
	text = render(f);
	assert_non_null(strstr(text, "b_total{id=\"p2\"} 1\n"));
	assert_null(strstr(text, "p3"));
	free(text);
	spd_metric_family_destroy(f);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void collect(void *ctx)
{
	int *calls = ctx;

	(*calls)++;
	spd_metrics_target_counts("echo", 2, 5);
}

/* Every family of SPEC §12, with the values the verbs put there. */
static void spawnd_families(void **state)
{
	static const char *const names[] = {
		"spawnd_processes_started_total", "spawnd_processes_ended_total",
		"spawnd_processes_running", "spawnd_processes_pending",
		"spawnd_process_start_latency_seconds", "spawnd_process_duration_seconds",
		"spawnd_watchers", "spawnd_zygote_restarts_total", "spawnd_launcher_up",
		"spawnd_store_commit_seconds", "spawnd_store_errors_total",
		"grpc_server_started_total", "grpc_server_handled_total",
		"grpc_server_handling_seconds", "process_resident_memory_bytes",
		"process_open_fds", "process_cpu_seconds_total", "process_start_time_seconds",
		"spawnd_launcher_resident_memory_bytes", "spawnd_launcher_open_fds",
		"spawnd_launcher_cpu_seconds_total",
	};
	spd_mbuf b = SPD_MBUF_INIT;
	int calls = 0;

	(void)state;
	/* Before init: no-ops, nothing rendered. */
	spd_metrics_process_started("echo");
	assert_false(spd_metrics_active());
	assert_int_equal(spd_metrics_render(&b), 0);
	assert_null(b.data);

	assert_int_equal(spd_metrics_init(), 0);
	assert_true(spd_metrics_active());
	spd_metrics_add_target("echo");
	spd_metrics_add_target("sleep");
	spd_metrics_set_launcher(getppid());
	spd_metrics_launcher_up(true);
	spd_metrics_set_collector(collect, &calls);
	for (int i = 0; i < 3; i++) {
		spd_metrics_process_started("echo");
		spd_metrics_process_running("echo", 0.002);
		spd_metrics_process_ended("echo", "SUCCEEDED", "", 0.5);
	}
	spd_metrics_process_started("echo");
	spd_metrics_process_ended("echo", "FAILED", "LAUNCH", -1);
	spd_metrics_zygote_restart("sleep");
	spd_metrics_watchers_add(1);
	spd_metrics_watchers_add(1);
	spd_metrics_watchers_add(-1);
	spd_metrics_grpc_declare("unary", "spawnd.v1.ProcessService", "GetProcess");
	spd_metrics_grpc_started("unary", "spawnd.v1.ProcessService", "StartProcess");
	spd_metrics_grpc_handled("unary", "spawnd.v1.ProcessService", "StartProcess", "NOT_FOUND",
				 0.001);
	spd_metrics_store_commit(0.003);
	spd_metrics_store_error();

	assert_int_equal(spd_metrics_render(&b), 0);
	assert_int_equal(calls, 1);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char want[128];
		snprintf(want, sizeof want, "# TYPE %s ", names[i]);
		if (count(b.data, want) != 1)
			fail_msg("%s: %zu TYPE lines in:\n%s", names[i], count(b.data, want), b.data);
	}
	assert_non_null(strstr(b.data, "\nspawnd_processes_started_total{target=\"echo\"} 4\n"));
	assert_non_null(strstr(b.data, "\nspawnd_processes_started_total{target=\"sleep\"} 0\n"));
	assert_non_null(strstr(b.data, "\nspawnd_processes_ended_total{target=\"echo\",state="
				       "\"SUCCEEDED\",error_kind=\"\"} 3\n"));
	assert_non_null(strstr(b.data, "\nspawnd_processes_ended_total{target=\"echo\",state="
				       "\"FAILED\",error_kind=\"LAUNCH\"} 1\n"));
	assert_non_null(strstr(b.data, "\nspawnd_processes_running{target=\"echo\"} 2\n"));
	assert_non_null(strstr(b.data, "\nspawnd_processes_pending{target=\"echo\"} 5\n"));
	assert_non_null(strstr(b.data, "\nspawnd_processes_running{target=\"sleep\"} 0\n"));
	assert_non_null(strstr(b.data,
			       "\nspawnd_process_start_latency_seconds_count{target=\"echo\"} 3\n"));
	/* Never ran: no duration observed. */
	assert_non_null(strstr(b.data, "\nspawnd_process_duration_seconds_count{target=\"echo\"} 3\n"));
	assert_non_null(strstr(b.data, "\nspawnd_process_duration_seconds_sum{target=\"echo\"} 1.5\n"));
	assert_non_null(strstr(b.data, "\nspawnd_zygote_restarts_total{target=\"sleep\"} 1\n"));
	assert_non_null(strstr(b.data, "\nspawnd_watchers 1\n"));
	assert_non_null(strstr(b.data, "\nspawnd_launcher_up 1\n"));
	assert_non_null(strstr(b.data, "\nspawnd_store_errors_total 1\n"));
	assert_non_null(strstr(b.data, "\nspawnd_store_commit_seconds_count 1\n"));
	assert_non_null(strstr(b.data, "\ngrpc_server_started_total{grpc_type=\"unary\",grpc_service="
				       "\"spawnd.v1.ProcessService\",grpc_method=\"GetProcess\"} 0\n"));
	assert_non_null(strstr(b.data, "\ngrpc_server_handled_total{grpc_type=\"unary\",grpc_service="
				       "\"spawnd.v1.ProcessService\",grpc_method=\"StartProcess\","
				       "grpc_code=\"NOT_FOUND\"} 1\n"));
	assert_non_null(strstr(b.data, "\ngrpc_server_handling_seconds_count{grpc_type=\"unary\","
				       "grpc_service=\"spawnd.v1.ProcessService\",grpc_method="
				       "\"StartProcess\"} 1\n"));
	assert_null(strstr(b.data, "\nprocess_open_fds 0\n"));
	assert_null(strstr(b.data, "\nprocess_resident_memory_bytes 0\n"));
	spd_mbuf_release(&b);
	spd_metrics_shutdown();
	assert_false(spd_metrics_active());
	spd_metrics_process_started("echo"); /* a no-op again */
}

static void procstat_self(void **state)
{
	spd_procstat ps;
	DIR *d = opendir("/proc/self/fd");
	int fds = -1; /* the DIR's own */

	(void)state;
	assert_non_null(d);
	while (readdir(d) != NULL)
		fds++;
	closedir(d);
	fds -= 2; /* . and .. */
	assert_int_equal(spd_procstat_read(0, &ps), 0);
	assert_true(ps.resident_bytes > 0);
	assert_int_equal((int)ps.open_fds, fds);
	assert_true(ps.cpu_seconds >= 0);
	assert_true(ps.start_time_seconds > 1e9 && ps.start_time_seconds <= (double)time(NULL) + 1);
	assert_int_equal(spd_procstat_read(getppid(), &ps), 0);
	assert_int_equal(spd_procstat_read(0x7ffffff0, &ps), -ENOENT);
}

static int open_fds(void)
{
	spd_procstat ps;

	assert_int_equal(spd_procstat_read(0, &ps), 0);
	return (int)ps.open_fds;
}

/* One HTTP/1.0 exchange with 127.0.0.1:PORT; the whole answer, NUL-terminated. */
static char *http(int port, const char *request)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	size_t len = 0, cap = 1 << 20;
	char *buf = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	assert_non_null(buf);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void http_listener(void **state)
{
	spd_metrics_http *h = NULL;
	char bound[64], err[256], *r;
	int before, port;

	(void)state;
	assert_int_equal(spd_metrics_init(), 0);
	spd_metrics_add_target("echo");
	before = open_fds();
	assert_int_equal(spd_metrics_http_start("127.0.0.1:0", &h, bound, sizeof bound, err,
						 sizeof err),
			 0);
	assert_int_equal(strncmp(bound, "127.0.0.1:", 10), 0);
	port = atoi(bound + 10);
	assert_true(port > 0);

	r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_int_equal(strncmp(r, "HTTP/1.", 7), 0);
	assert_non_null(strstr(r, " 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(r, "\nspawnd_processes_started_total{target=\"echo\"} 0\n"));
	free(r);
	r = http(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 200 "));
	free(r);
	r = http(port, "GET / HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 404 "));
	free(r);
	r = http(port, "DELETE /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 405 "));
	assert_non_null(strstr(r, "Allow: GET, HEAD\r\n"));
	free(r);
	/* A body is never read: the answer comes at the headers. */
	r = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 11\r\n\r\nhello=world");
	assert_non_null(strstr(r, " 405 "));
	free(r);
	r = http(port, "GET /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nabcde");
	assert_non_null(strstr(r, " 200 "));
	free(r);
	r = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, " 200 "));
	assert_null(strstr(r, "spawnd_processes_started_total"));
	free(r);
	spd_metrics_http_stop(h);
	/* The listener, its epoll and its other descriptors are all gone. */
	assert_int_equal(open_fds(), before);

	/* An address in use, a unix address, a bad one. */
	assert_int_equal(spd_metrics_http_start("127.0.0.1:0", &h, bound, sizeof bound, err,
						 sizeof err),
			 0);
	{
		spd_metrics_http *h2 = NULL;
		char b2[64];
		assert_true(spd_metrics_http_start(bound, &h2, b2, sizeof b2, err, sizeof err) < 0);
		assert_null(h2);
		assert_non_null(strstr(err, "Address already in use"));
	}
	spd_metrics_http_stop(h);
	assert_int_equal(spd_metrics_http_start("unix:/tmp/x.sock", &h, bound, sizeof bound, err,
						 sizeof err),
			 -EINVAL);
	assert_int_equal(spd_metrics_http_start("nope", &h, bound, sizeof bound, err, sizeof err),
			 -EINVAL);
	assert_int_equal(open_fds(), before);
	spd_metrics_http_stop(NULL);
	spd_metrics_shutdown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_values),
		cmocka_unit_test(text_escaping),
		cmocka_unit_test(counter_and_gauge),
		cmocka_unit_test(histogram),
		cmocka_unit_test(bounded_series),
		cmocka_unit_test(spawnd_families),
		cmocka_unit_test(procstat_self),
		cmocka_unit_test(http_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
