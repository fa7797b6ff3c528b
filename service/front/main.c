/* spawnd: the front process. See README.md and SPEC.md.
 *
 * Startup order matters (SPEC §1, gRPC notes §8): config, then fork and exec
 * the launcher while this process still has one thread, then block signals
 * (every later thread inherits the mask), then grpc_init and serve. The main
 * thread only waits for signals; a reaper thread reaps orphans (below).
 */
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/children.h"
#include "service/common/cgroupdir.h"
#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/common/version.h"
#include "service/config/config.h"
#include "service/front/link.h"
#include "service/front/reload.h"
#include "service/launcher/launcher.h"
#include "service/metrics/http.h"
#include "service/metrics/metrics.h"
#include "service/registry/registry.h"
#include "service/rpc/server.h"
#include "service/store/store.h"

#define HELLO_TIMEOUT_MS 10000
/* After the last process ended, how long open calls get to finish. Every
 * handler answers without blocking and every stream has ended by then, so
 * this only bounds the wait for idle client connections to go away. */
#define CALLS_GRACE_MS 250
/* Beyond shutdown_grace_period, how long to wait for the launcher's reports. */
#define SHUTDOWN_SLACK_MS 5000

static pthread_t main_thread;
static pid_t launcher_pid;

static void usage(FILE *f)
{
	fprintf(f, "usage: spawnd [--config FILE]\n"
		   "       spawnd --check-config FILE\n"
		   "       spawnd --version\n"
		   "Runs registered targets in destroyable child processes, over gRPC.\n"
		   "With no --config, serves the embedded default config (sample targets on\n"
		   "127.0.0.1:50051). SPAWND_LISTEN and SPAWND_LOG_LEVEL override the file.\n");
}

/* Descriptors 0-2 must be open, so that nothing we open lands on them and a
 * child's dup2 onto 0-2 cannot clobber one of our pipes. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}
}

static void on_launcher_lost(void *ctx)
{
	(void)ctx;
	spd_metrics_launcher_up(false);
	pthread_kill(main_thread, SIGUSR1);
}

static void count_target(void *ctx, const spd_target_config *t, uint32_t running,
			 uint32_t pending, uint32_t idle, const char *error, const char *mechanism)
{
	(void)ctx;
	(void)idle;
	(void)error;
	(void)mechanism;
	spd_metrics_target_counts(t->name, running, pending);
}

/* At each scrape: running and pending per target, as the registry has them. */
static void collect_metrics(void *ctx)
{
	spd_registry_list_targets(ctx, count_target, NULL);
}

/* The metrics listener, when the config has one (NULL otherwise, or on
 * failure: then *FAILED). After the signal mask is set: its thread inherits it. */
static spd_metrics_http *start_metrics(const spd_config *cfg, spd_registry *reg, pid_t lpid,
				       bool *failed)
{
	spd_metrics_http *h = NULL;
	char bound[300], err[512];

	*failed = false;
	if (cfg->metrics_listen == NULL)
		return NULL;
	if (spd_metrics_init() < 0) {
		spd_log(SPD_LOG_ERROR, "cannot serve metrics", SPD_LOG_STR("error", "out of memory"),
			SPD_LOG_END);
		*failed = true;
		return NULL;
	}
	for (size_t i = 0; i < cfg->target_count; i++)
		spd_metrics_add_target(cfg->targets[i].name);
	spd_metrics_set_launcher(lpid);
	spd_metrics_launcher_up(true);
	spd_metrics_set_collector(collect_metrics, reg);
	if (spd_metrics_http_start(cfg->metrics_listen, &h, bound, sizeof bound, err, sizeof err) < 0) {
		spd_log(SPD_LOG_ERROR, "cannot serve metrics", SPD_LOG_STR("address", cfg->metrics_listen),
			SPD_LOG_STR("error", err), SPD_LOG_END);
		*failed = true;
		return NULL;
	}
	spd_log(SPD_LOG_INFO, "metrics serving", SPD_LOG_STR("address", bound),
		SPD_LOG_STR("path", "/metrics"), SPD_LOG_END);
	return h;
}

/* Reaps, without signalling, every exited child of ours but the launcher (whose
 * exit status link.c takes). Our children other than the launcher are orphans
 * reparented to us: we are a child subreaper, and in a container's pid
 * namespace PID 1 (exec probes and `kubectl exec` leave such orphans). Each
 * is our unreaped child, so its pid cannot have been reused; the launcher's
 * pid stays ours until link.c reaps it, and then the front is stopping. */
static bool reap_orphan(pid_t pid, void *ctx)
{
	int status;

	(void)ctx;
	if (pid == launcher_pid || waitpid(pid, &status, WNOHANG | __WALL) != pid)
		return false;
	spd_log(SPD_LOG_DEBUG, "reaped an orphan", SPD_LOG_INT("pid", pid), SPD_LOG_END);
	return true;
}

static void reap_orphans(void)
{
	spd_children_each(reap_orphan, NULL);
}

/* The reaper thread: SIGCHLD is blocked in every thread and waited for here
 * only, so orphans are reaped at all times, shutdown included. */
static void *reaper_main(void *arg)
{
	sigset_t chld;
	int sig;

	(void)arg;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		reap_orphans();
		while (sigwait(&chld, &sig) != 0)
			;
	}
	return NULL;
}

static int load_config(const char *path, spd_config **cfg)
{
	char err[SPD_CONFIG_ERR_MAX];
	int rc = spd_front_load_config(path, cfg, err);

	if (rc < 0)
		fprintf(stderr, "%s\n", err);
	return rc;
}

struct restoring {
	spd_registry *reg;
	int64_t count;
};

/* A record read back from the store goes into the registry. */
static int restore_one(void *ctx, spd_process *p, const char *request_id,
		       const uint8_t *fingerprint)
{
	struct restoring *rs = ctx;
	int rc = spd_registry_restore(rs->reg, p, request_id, fingerprint);

	rs->count += rc == 0;
	return rc;
}

/* Opens the store of CFG (none: *STORE NULL), or says why not. Before the
 * launcher exists: a spawnd that cannot keep its promise starts nothing. */
static int open_store(const spd_config *cfg, spd_store **store)
{
	spd_store_options o = SPD_STORE_OPTIONS_INIT;
	char err[SPD_STORE_ERR_MAX];
	int rc;

	*store = NULL;
	if (cfg->store_path == NULL)
		return 0;
	o.path = cfg->store_path;
	o.sync = cfg->store_sync;
	rc = spd_store_open(&o, store, err);
	if (rc < 0)
		spd_log(SPD_LOG_ERROR, "cannot open the store; not starting", SPD_LOG_STR("error", err),
			SPD_LOG_STR("store", cfg->store_path), SPD_LOG_END);
	return rc;
}

/* Gives REG the store's records and journal, and starts its writer. */
static int attach_store(spd_store *store, spd_registry *reg, const spd_config *cfg)
{
	spd_journal_ops jops = spd_store_journal(store);
	struct restoring rs = {.reg = reg};
	char err[SPD_STORE_ERR_MAX];
	int rc;

	spd_registry_set_journal(reg, &jops);
	rc = spd_store_load(store, restore_one, &rs, err);
	if (rc < 0) {
		spd_log(SPD_LOG_ERROR, "cannot load the store; not starting", SPD_LOG_STR("error", err),
			SPD_LOG_END);
		return rc;
	}
	rc = spd_store_start(store, reg);
	if (rc < 0) {
		spd_log(SPD_LOG_ERROR, "cannot start the store's writer", SPD_LOG_STR("error", strerror(-rc)),
			SPD_LOG_END);
		return rc;
	}
	spd_log(SPD_LOG_INFO, "store opened", SPD_LOG_STR("store", cfg->store_path),
		SPD_LOG_STR("sync", cfg->store_sync == SPD_STORE_SYNC_FULL ? "full" : "normal"),
		SPD_LOG_INT("records", rs.count), SPD_LOG_END);
	return 0;
}

/* Serves CFG (loaded from PATH; NULL: the embedded default) until SIGTERM or
 * SIGINT, or the launcher is lost. SIGHUP reloads PATH (reload.h). */
static int serve(const char *path, spd_config *cfg)
{
	spd_config *current = cfg;  /* in force: CFG, or the last reload's */
	spd_launcher_hello hello;
	spd_registry_ops ops;
	spd_registry *reg = NULL;
	spd_server *server = NULL;
	spd_metrics_http *metrics = NULL;
	spd_store *store = NULL;
	spd_link *link = NULL;
	sigset_t mask;
	pid_t lpid;
	int lfd, rc, sig, exit_code = 0;
	bool lost = false, metrics_failed = false;
	char *launcher_cgroup = NULL; /* from HELLO: removed at the end if left behind */
	char err[512];

	spd_log_setup(cfg->log_level, cfg->log_format == SPD_LOG_FORMAT_JSON, "front");
	/* Whatever is orphaned below us after the launcher died comes to us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (open_store(cfg, &store) < 0)
		return 1;
	rc = spd_launcher_fork(cfg, &lpid, &lfd);
	if (rc < 0) {
		spd_log(SPD_LOG_ERROR, "cannot start the launcher",
			SPD_LOG_STR("error", rc == -ENOENT ? "spawnd-worker not found next to spawnd "
							     "(set SPAWND_WORKER)"
							   : strerror(-rc)),
			SPD_LOG_END);
		spd_store_close(store);
		return 1;
	}
	launcher_pid = lpid;
	link = spd_link_create(lfd, lpid);
	if (link == NULL || spd_link_wait_hello(link, HELLO_TIMEOUT_MS, &hello) < 0) {
		spd_log(SPD_LOG_ERROR, "the launcher did not start", SPD_LOG_INT("launcher_pid", lpid),
			SPD_LOG_END);
		if (link != NULL)
			spd_link_close(link);
		spd_store_close(store);
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGCHLD); /* the reaper thread's */
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (RLIMIT_FSIZE) makes a store write fail with EFBIG,
	 * as a full disk does, instead of killing spawnd. Set after the launcher
	 * was forked: it and its children keep the default. */
	signal(SIGXFSZ, SIG_IGN);
	main_thread = pthread_self();
	{
		pthread_t reaper;
		rc = pthread_create(&reaper, NULL, reaper_main, NULL);
		if (rc != 0) {
			spd_log(SPD_LOG_ERROR, "cannot start the reaper thread",
				SPD_LOG_STR("error", strerror(rc)), SPD_LOG_END);
			spd_launcher_hello_release(&hello);
			spd_link_close(link);
			spd_store_close(store);
			return 1;
		}
		pthread_detach(reaper);
	}

	grpc_init();
	ops = spd_link_ops(link);
	reg = spd_registry_create(cfg, &ops);
	if (reg == NULL) {
		spd_launcher_hello_release(&hello);
		exit_code = 1;
		goto out;
	}
	if (store != NULL && attach_store(store, reg, cfg) < 0) {
		spd_launcher_hello_release(&hello);
		exit_code = 1;
		goto out;
	}
	spd_registry_on_hello(reg, hello.count, hello.ids, hello.errors,
			      hello.memory_limit_mechanisms);
	if (hello.cgroup != NULL && hello.cgroup[0] != '\0')
		launcher_cgroup = strdup(hello.cgroup);
	spd_launcher_hello_release(&hello);
	if (spd_link_start(link, reg, on_launcher_lost, NULL) < 0) {
		exit_code = 1;
		goto out;
	}
	/* Before the gRPC server: a scrape counts its first calls, and a
	 * metrics address that cannot be bound stops spawnd before it serves. */
	metrics = start_metrics(cfg, reg, lpid, &metrics_failed);
	if (metrics_failed) {
		exit_code = 1;
		goto out;
	}
	rc = spd_server_start(cfg, reg, &server, err, sizeof err);
	if (rc < 0) {
		spd_log(SPD_LOG_ERROR, "cannot serve", SPD_LOG_STR("error", err), SPD_LOG_END);
		exit_code = 1;
		goto out;
	}
	spd_log(SPD_LOG_INFO, "spawnd ready", SPD_LOG_STR("config", cfg->path),
		SPD_LOG_INT("targets", cfg->target_count), SPD_LOG_INT("launcher_pid", lpid), SPD_LOG_END);

	for (;;) {
		if (sigwait(&mask, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			spd_front_reload(path, cfg, &current, reg, server);
			continue;
		}
		lost = sig == SIGUSR1;
		break;
	}
	if (lost) {
		exit_code = 1;
	} else {
		size_t left;
		spd_log(SPD_LOG_INFO, "shutting down", SPD_LOG_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"),
			SPD_LOG_INT("live_processes", spd_registry_live_count(reg)), SPD_LOG_END);
		left = spd_registry_shutdown(reg, current->shutdown_grace_ms,
					     spd_clock_mono_ns() +
						     (current->shutdown_grace_ms + SHUTDOWN_SLACK_MS) *
							     1000000);
		if (left > 0) {
			spd_log(SPD_LOG_WARN, "processes still live at the end of the grace period",
				SPD_LOG_INT("count", left), SPD_LOG_END);
			/* Their watchers and Destroy(wait) calls get an answer now. */
			spd_registry_abort_watchers(reg);
		}
	}
out:
	/* First: a scrape reads the registry and the server's counts. */
	spd_metrics_http_stop(metrics);
	if (server != NULL)
		spd_server_stop(server, CALLS_GRACE_MS);
	/* Closing the channel tells the launcher to kill whatever is left and exit. */
	rc = spd_link_close(link);
	if (!lost && !(WIFEXITED(rc) && WEXITSTATUS(rc) == 0))
		spd_log(SPD_LOG_WARN, "the launcher did not exit cleanly", SPD_LOG_INT("status", rc),
			SPD_LOG_END);
	/* A launcher that was killed left its memory cgroups: every process in
	 * them is dead and reaped by now, so they are empty. */
	if (launcher_cgroup != NULL && spd_cgroup_dir_remove(launcher_cgroup) == 0 && lost)
		spd_log(SPD_LOG_INFO, "removed the lost launcher's cgroup",
			SPD_LOG_STR("cgroup", launcher_cgroup), SPD_LOG_END);
	free(launcher_cgroup);
	/* Nothing changes records any more: the store commits what is left
	 * (releasing what waits on it) before the registry goes. */
	spd_store_stop(store);
	spd_registry_destroy(reg);
	spd_store_close(store);
	if (current != cfg)
		spd_config_destroy(current);
	spd_metrics_shutdown();
	grpc_shutdown();
	spd_log(SPD_LOG_INFO, "spawnd stopped", SPD_LOG_INT("exit_code", exit_code), SPD_LOG_END);
	return exit_code;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *check = NULL;
	spd_config *cfg = NULL;
	int rc;

	ensure_std_fds();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
		} else if (strcmp(argv[i], "--check-config") == 0 && i + 1 < argc) {
			check = argv[++i];
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("spawnd %s (%s build; gRPC core %s, protobuf-c %s)\n", SPAWND_VERSION,
			       SPAWND_BUILD_KIND, grpc_version_string(), protobuf_c_version());
			return 0;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "spawnd: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (check != NULL) {
		if (load_config(check, &cfg) < 0)
			return 1;
		if (cfg->store_path != NULL) {
			char err[SPD_STORE_ERR_MAX];
			if (spd_store_check(cfg->store_path, err) < 0) {
				fprintf(stderr, "%s: %s\n", check, err);
				spd_config_destroy(cfg);
				return 1;
			}
		}
		printf("%s: ok (%zu targets)\n", check, cfg->target_count);
		spd_config_destroy(cfg);
		return 0;
	}
	/* A SIGHUP during startup (a reload sent too early) must not kill us:
	 * blocked from here, it waits for the signal loop. The launcher unblocks
	 * everything before its exec. */
	{
		sigset_t hup;
		sigemptyset(&hup);
		sigaddset(&hup, SIGHUP);
		sigprocmask(SIG_BLOCK, &hup, NULL);
	}
	if (load_config(config, &cfg) < 0)
		return 1;
	rc = serve(config, cfg);
	spd_config_destroy(cfg);
	return rc;
}
