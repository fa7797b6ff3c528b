#include "service/front/link.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/common/children.h"
#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/wire/boot.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

/* How long the front keeps killing and reaping reparented processes after the
 * launcher died. */
#define ORPHAN_REAP_NS (10LL * 1000000000LL)

struct spd_link {
	int fd;
	pid_t pid;
	pthread_mutex_t send_mu;   /* guards outq, send_err, writer_stop */
	pthread_cond_t send_cv;    /* the writer waits for frames */
	spd_wire_outq outq;        /* frames the socket did not take yet */
	int send_err;              /* the first failed send (the launcher is gone) */
	bool writer_stop;
	pthread_t reader, writer;
	bool reader_started, writer_started;
	atomic_bool closing;
	spd_registry *registry;
	void (*on_lost)(void *);
	void *on_lost_ctx;
	int launcher_status;
	bool launcher_reaped;
};

spd_link *spd_link_create(int fd, pid_t pid)
{
	spd_link *l = calloc(1, sizeof *l);

	if (l == NULL)
		return NULL;
	l->fd = fd;
	l->pid = pid;
	pthread_mutex_init(&l->send_mu, NULL);
	pthread_cond_init(&l->send_cv, NULL);
	l->outq = (spd_wire_outq)SPD_WIRE_OUTQ_INIT;
	atomic_init(&l->closing, false);
	return l;
}

int spd_link_wait_hello(spd_link *l, int timeout_ms, spd_launcher_hello *hello)
{
	struct pollfd p = {.fd = l->fd, .events = POLLIN};
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;
	int rc;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return -ETIMEDOUT;
	rc = spd_wire_recv(l->fd, &hdr, &body, &len);
	if (rc <= 0)
		return rc == 0 ? -EPIPE : rc;
	rc = hdr.type == SPD_WIRE_HELLO ? spd_launcher_hello_decode(hello, body, len) : -EBADMSG;
	free(body);
	return rc;
}

/* Called with the registry lock held: never blocks on the launcher. The frame
 * goes out at once when the socket takes it and nothing waits, else it is
 * queued (B's data taken) for the writer thread. */
static int send_frame(spd_link *l, uint32_t type, uint64_t key, spd_wbuf *b)
{
	int rc;

	pthread_mutex_lock(&l->send_mu);
	rc = l->send_err;
	if (rc == 0) {
		rc = spd_wire_outq_send(&l->outq, l->fd, type, key, b);
		if (rc < 0 && rc != -ENOMEM)
			l->send_err = rc;
		if (l->outq.head != NULL)
			pthread_cond_signal(&l->send_cv);
	}
	pthread_mutex_unlock(&l->send_mu);
	return rc;
}

size_t spd_link_queued_bytes(spd_link *l)
{
	size_t n;

	pthread_mutex_lock(&l->send_mu);
	n = l->outq.bytes;
	pthread_mutex_unlock(&l->send_mu);
	return n;
}

static bool congested(void *ctx)
{
	return spd_link_queued_bytes(ctx) > SPD_LINK_QUEUE_MAX_BYTES;
}

/* Sends what send_frame() queued, waiting for room with poll(POLLOUT), no lock
 * held meanwhile. A failed send means the launcher is gone: the queue is
 * dropped (the reader sees EOF and ends every live process LOST). */
static void *writer_main(void *arg)
{
	spd_link *l = arg;
	struct timespec nap = {0, 1000000};

	pthread_mutex_lock(&l->send_mu);
	for (;;) {
		struct pollfd p = {.fd = l->fd, .events = POLLOUT};
		size_t before;
		int rc;

		while (l->outq.head == NULL && !l->writer_stop)
			pthread_cond_wait(&l->send_cv, &l->send_mu);
		if (l->writer_stop)
			break;
		pthread_mutex_unlock(&l->send_mu);
		/* Bounded, to see writer_stop even if no wakeup came. */
		rc = poll(&p, 1, 200);
		pthread_mutex_lock(&l->send_mu);
		if (rc <= 0)
			continue;
		before = l->outq.bytes;
		rc = spd_wire_outq_flush(&l->outq, l->fd);
		if (rc < 0) {
			if (l->send_err == 0)
				l->send_err = rc;
			spd_wire_outq_release(&l->outq);
		} else if (l->outq.bytes == before) {
			/* Writable, yet the frame did not fit: do not spin. */
			pthread_mutex_unlock(&l->send_mu);
			nanosleep(&nap, NULL);
			pthread_mutex_lock(&l->send_mu);
		}
	}
	pthread_mutex_unlock(&l->send_mu);
	return NULL;
}

static int send_start(void *ctx, uint64_t key, const spd_launch_req *launch)
{
	/* The registry's request, as the START frame says it (borrowed). */
	spd_start_req req = {
		.process_id = launch->process_id,
		.target = launch->target,
		.target_id = launch->target_id,
		.argv = launch->argv,
		.argc = launch->argc,
		.input = launch->input,
		.input_len = launch->input_len,
		.labels = launch->labels,
		.label_count = launch->label_count,
		.grace_ms = launch->grace_ms,
		.timeout_ms = launch->timeout_ms,
		.traceparent = (char *)launch->traceparent,
	};
	spd_wbuf b = SPD_WBUF_INIT;
	int rc = spd_start_req_encode(&req, &b);

	if (rc == 0)
		rc = send_frame(ctx, SPD_WIRE_START, key, &b);
	spd_wbuf_release(&b);
	return rc;
}

static int send_destroy(void *ctx, uint64_t key, int64_t grace_ms)
{
	spd_destroy_msg m = {.grace_ms = grace_ms};
	spd_wbuf b = SPD_WBUF_INIT;
	int rc = spd_destroy_msg_encode(&m, &b);

	if (rc == 0)
		rc = send_frame(ctx, SPD_WIRE_DESTROY, key, &b);
	spd_wbuf_release(&b);
	return rc;
}

/* RELOAD: a boot body (wire/boot.h) holding only the targets to add, their
 * inherit_env resolved from our environment as at start. */
extern char **environ;

static int send_reload(void *ctx, const spd_reload_req *req)
{
	spd_config cfg = *req->cfg;
	spd_target_config *v = calloc(req->count + 1, sizeof *v);
	spd_wbuf b = SPD_WBUF_INIT;
	int rc = -ENOMEM;

	if (v != NULL) {
		/* Shallow copies: the encoder only reads them. */
		for (size_t i = 0; i < req->count; i++)
			v[i] = *req->targets[i];
		cfg.targets = v;
		cfg.target_count = req->count;
		rc = spd_launcher_boot_encode(&cfg, req->ids, getpid(), NULL, NULL, environ, &b);
	}
	if (rc == 0)
		rc = send_frame(ctx, SPD_WIRE_RELOAD, 0, &b);
	spd_wbuf_release(&b);
	free(v);
	return rc;
}

static int send_retire(void *ctx, uint32_t target_id)
{
	spd_wbuf b = SPD_WBUF_INIT;

	return send_frame(ctx, SPD_WIRE_RETIRE, target_id, &b);
}

static int send_stale(void *ctx, uint32_t target_id)
{
	spd_wbuf b = SPD_WBUF_INIT;

	return send_frame(ctx, SPD_WIRE_STALE, target_id, &b);
}

spd_registry_ops spd_link_ops(spd_link *l)
{
	spd_registry_ops ops = {
		.send_start = send_start,
		.send_destroy = send_destroy,
		.congested = congested,
		.send_reload = send_reload,
		.send_retire = send_retire,
		.send_stale = send_stale,
		.ctx = l,
	};

	return ops;
}

/* SIGKILLs PID, a direct child of ours (children.h). */
static bool kill_child(pid_t pid, void *ctx)
{
	(void)ctx;
	return kill(pid, SIGKILL) == 0;
}

/* The launcher is gone: its children died of PR_SET_PDEATHSIG and whatever they
 * forked is being reparented to us. Kill and reap until nothing is left. */
static void reap_orphans(spd_link *l)
{
	int64_t deadline = spd_clock_mono_ns() + ORPHAN_REAP_NS;
	struct timespec nap = {0, 10 * 1000000};

	/* Polled, not blocking: a child stuck in the kernel (D state) must not
	 * hold the front past its deadline. */
	while (spd_clock_mono_ns() < deadline) {
		int status;
		pid_t pid;

		spd_children_each(kill_child, NULL);
		pid = waitpid(-1, &status, WNOHANG | __WALL);
		if (pid < 0 && errno == ECHILD)
			break;
		if (pid == l->pid) {
			l->launcher_status = status;
			l->launcher_reaped = true;
		}
		if (pid == 0)
			nanosleep(&nap, NULL);
	}
}

static void *reader_main(void *arg)
{
	spd_link *l = arg;

	for (;;) {
		spd_wire_hdr hdr;
		uint8_t *body = NULL;
		size_t len = 0;
		int rc = spd_wire_recv(l->fd, &hdr, &body, &len);

		if (rc <= 0) {
			free(body);
			if (atomic_load(&l->closing))
				return NULL;
			spd_log(SPD_LOG_ERROR, "the launcher is gone; ending every live process LOST",
				SPD_LOG_INT("launcher_pid", l->pid),
				SPD_LOG_STR("error", rc == 0 ? "EOF" : strerror(-rc)), SPD_LOG_END);
			/* A broken frame (or ENOMEM) leaves the launcher alive, and
			 * reap_orphans() would wait for it forever: end it. It is our
			 * unreaped child, so its pid is still its own. */
			if (rc < 0)
				kill(l->pid, SIGKILL);
			reap_orphans(l);
			spd_registry_on_launcher_lost(l->registry);
			if (l->on_lost != NULL)
				l->on_lost(l->on_lost_ctx);
			return NULL;
		}
		if (hdr.type == SPD_WIRE_STARTED) {
			spd_started_msg m;
			if (spd_started_msg_decode(&m, body, len) == 0)
				spd_registry_on_started(l->registry, hdr.key, m.pid, m.started_ns);
		} else if (hdr.type == SPD_WIRE_OUTPUT) {
			spd_output_msg m;
			if (spd_output_msg_decode(&m, body, len) == 0)
				spd_registry_on_output(l->registry, hdr.key, (int)m.stream, m.offset,
						       m.data, m.len);
		} else if (hdr.type == SPD_WIRE_HEALTH) {
			spd_health_msg m;
			if (spd_health_msg_decode(&m, body, len) == 0) {
				if (hdr.key <= UINT32_MAX)
					spd_registry_on_target_health(l->registry, (uint32_t)hdr.key,
								      m.why);
				spd_health_msg_release(&m);
			}
		} else if (hdr.type == SPD_WIRE_IDLE) {
			spd_idle_msg m;
			if (hdr.key <= UINT32_MAX && spd_idle_msg_decode(&m, body, len) == 0)
				spd_registry_on_idle(l->registry, (uint32_t)hdr.key, m.count);
		} else if (hdr.type == SPD_WIRE_RELOADED) {
			spd_launcher_hello h;
			if (spd_launcher_hello_decode(&h, body, len) == 0) {
				spd_registry_on_hello(l->registry, h.count, h.ids, h.errors,
						      h.memory_limit_mechanisms);
				spd_launcher_hello_release(&h);
			}
		} else if (hdr.type == SPD_WIRE_EXITED) {
			spd_exit_report rep;
			if (spd_exit_report_decode(&rep, body, len) == 0) {
				spd_registry_on_exited(l->registry, hdr.key, &rep);
				spd_exit_report_release(&rep);
			}
		}
		free(body);
	}
}

int spd_link_start(spd_link *l, spd_registry *reg, void (*on_lost)(void *ctx), void *ctx)
{
	int rc;

	l->registry = reg;
	l->on_lost = on_lost;
	l->on_lost_ctx = ctx;
	rc = pthread_create(&l->writer, NULL, writer_main, l);
	if (rc != 0)
		return -rc;
	l->writer_started = true;
	rc = pthread_create(&l->reader, NULL, reader_main, l);
	if (rc != 0)
		return -rc;
	l->reader_started = true;
	return 0;
}

int spd_link_close(spd_link *l)
{
	int status = 0;

	atomic_store(&l->closing, true);
	/* shutdown() wakes the reader's recvmsg; the launcher sees EOF too. */
	shutdown(l->fd, SHUT_RDWR);
	if (l->reader_started)
		pthread_join(l->reader, NULL);
	pthread_mutex_lock(&l->send_mu);
	l->writer_stop = true;
	pthread_cond_signal(&l->send_cv);
	pthread_mutex_unlock(&l->send_mu);
	if (l->writer_started)
		pthread_join(l->writer, NULL);
	spd_wire_outq_release(&l->outq);
	close(l->fd);
	if (l->launcher_reaped)
		status = l->launcher_status;
	else if (waitpid(l->pid, &status, 0) < 0)
		status = 0;
	pthread_cond_destroy(&l->send_cv);
	pthread_mutex_destroy(&l->send_mu);
	free(l);
	return status;
}
