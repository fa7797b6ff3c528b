/* The store: opening, checking, loading and closing (store.h). */
#include "service/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/store/lock.h"
#include "service/store/store_impl.h"

/* The WAL is truncated back to this after a checkpoint: with the rows, it
 * bounds the files (README "Store"). */
#define WAL_SIZE_LIMIT "4194304"
/* Another connection (spawnd --check-config) may hold SQLite's locks briefly. */
#define BUSY_TIMEOUT_MS 2000

static const char lost_message[] = "spawnd restarted while this process was running";

/* ERR := "store PATH: WHAT: SQLite's message"; returns the errno for RC. */
static int sqlite_fail(sqlite3 *db, int rc, const char *path, const char *what,
		       char err[SPD_STORE_ERR_MAX])
{
	int sys = db != NULL ? sqlite3_system_errno(db) : 0;

	snprintf(err, SPD_STORE_ERR_MAX, "store %s: %s: %s%s%s", path, what,
		 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc), sys ? " (" : "",
		 sys ? strerror(sys) : "");
	if (sys)
		strncat(err, ")", SPD_STORE_ERR_MAX - strlen(err) - 1);
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return -EILSEQ;
	case SQLITE_CANTOPEN:
		return sys ? -sys : -ENOENT;
	case SQLITE_PERM:
	case SQLITE_READONLY:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One-row PRAGMA whose text answer is copied to OUT. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	out[0] = '\0';
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(out, len, "%s", t != NULL ? (const char *)t : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* PRAGMA quick_check: "ok", or the first problem. */
static int integrity(sqlite3 *db, const char *path, char err[SPD_STORE_ERR_MAX])
{
	char answer[512];
	int rc = pragma_text(db, "PRAGMA quick_check(1)", answer, sizeof answer);

	if (rc != SQLITE_OK)
		return sqlite_fail(db, rc, path, "cannot read it", err);
	if (strcmp(answer, "ok") != 0) {
		snprintf(err, SPD_STORE_ERR_MAX, "store %s: corrupt (quick_check: %s)", path, answer);
		return -EILSEQ;
	}
	return 0;
}

static int open_db(const char *path, int flags, sqlite3 **db, char err[SPD_STORE_ERR_MAX])
{
	/* SQLite opens its files O_CLOEXEC (and sets FD_CLOEXEC), so neither
	 * the launcher nor any child inherits them. */
	int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		rc = sqlite_fail(*db, rc, path, "cannot open it", err);
		sqlite3_close(*db);
		*db = NULL;
		return rc;
	}
	sqlite3_extended_result_codes(*db, 1);
	sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
	return 0;
}

/* A missing store file is created here, 0600 whatever the umask: records
 * hold args, labels, results and output, for spawnd's user alone. SQLite
 * would create it 0644 & ~umask, and gives its -wal and -shm files the mode
 * of the database file. An existing file keeps the mode its operator gave. */
static int create_private(const char *path, char err[SPD_STORE_ERR_MAX])
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int saved;

	if (fd >= 0) {
		(void)fchmod(fd, 0600); /* the umask may have taken bits off: none to add */
		close(fd);
		return 0;
	}
	saved = errno;
	if (saved == EEXIST)
		return 0;
	snprintf(err, SPD_STORE_ERR_MAX, "store %s: cannot create it: %s", path, strerror(saved));
	return -saved;
}

/* How far a lost record's sequence jumps. A live process's OUTPUT events
 * (and a RUNNING not yet committed) take sequence numbers the store never
 * sees: the one it kept is a lower bound of what clients were sent. The
 * LOST end takes a number past any the dead spawnd could have given
 * (2^40 output chunks), so that a client resuming from the last sequence
 * it saw (SPEC §12) gets the gap SNAPSHOT of the end, never
 * INVALID_ARGUMENT, and no number it saw is used again. */
#define LOST_SEQ_JUMP (INT64_C(1) << 40)

/* Records found live: spawnd died under them (SPEC §12). */
static int mark_lost(spd_store *s, int64_t now_ns, char err[SPD_STORE_ERR_MAX])
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		s->db,
		"UPDATE processes SET state = ?1, threw = 1, canceled = 0, ran = (state = ?2),"
		" pid = CASE WHEN state = ?2 THEN pid ELSE 0 END,"
		" error_kind = ?3, error_type = 'SpawndRestarted', error_message = ?4,"
		" error_backtrace = NULL, error_exit_code = 0, error_signal = 0,"
		" error_core_dumped = 0, error_oom_suspected = 0,"
		" ended_ns = ?5, seq = seq + ?7"
		" WHERE state IN (?6, ?2)",
		-1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, SPD_STATE_FAILED);
		sqlite3_bind_int(st, 2, SPD_STATE_RUNNING);
		sqlite3_bind_int(st, 3, SPD_ERR_LOST);
		sqlite3_bind_text(st, 4, lost_message, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, now_ns);
		sqlite3_bind_int(st, 6, SPD_STATE_PENDING);
		sqlite3_bind_int64(st, 7, LOST_SEQ_JUMP);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sqlite_fail(s->db, rc, s->path, "cannot record its live processes as lost",
				   err);
	return 0;
}

static int prepare(spd_store *s, char err[SPD_STORE_ERR_MAX])
{
	int rc = spd__store_prepare(s);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT,
					&s->begin, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &s->commit,
					NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db, "ROLLBACK", -1, SQLITE_PREPARE_PERSISTENT,
					&s->rollback, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(s->db, rc, s->path, "cannot prepare its statements", err);
	return 0;
}

int spd_store_open(const spd_store_options *o, spd_store **out, char err[SPD_STORE_ERR_MAX])
{
	spd_store *s = calloc(1, sizeof *s);
	char mode[32];
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (s == NULL || (s->path = strdup(o->path)) == NULL) {
		free(s);
		snprintf(err, SPD_STORE_ERR_MAX, "store %s: out of memory", o->path);
		return -ENOMEM;
	}
	s->lock_fd = -1;
	s->retry_ms = o->retry_ms > 0 ? o->retry_ms : 1000;
	spd__store_queue_init(s);
	rc = spd__store_lock(s->path, err, SPD_STORE_ERR_MAX);
	if (rc < 0)
		goto fail;
	s->lock_fd = rc;
	rc = create_private(s->path, err);
	if (rc < 0)
		goto fail;
	rc = open_db(s->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s->db, err);
	if (rc < 0)
		goto fail;
	rc = pragma_text(s->db, "PRAGMA journal_mode = WAL", mode, sizeof mode);
	if (rc != SQLITE_OK) {
		rc = sqlite_fail(s->db, rc, s->path, "cannot open it", err);
		goto fail;
	}
	if (strcmp(mode, "wal") != 0) {
		snprintf(err, SPD_STORE_ERR_MAX, "store %s: cannot use WAL mode (journal_mode %s)",
			 s->path, mode);
		rc = -EIO;
		goto fail;
	}
	rc = exec(s->db, o->sync == SPD_STORE_SYNC_FULL ? "PRAGMA synchronous = FULL"
							 : "PRAGMA synchronous = NORMAL");
	if (rc == SQLITE_OK)
		rc = exec(s->db, "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT);
	if (rc != SQLITE_OK) {
		rc = sqlite_fail(s->db, rc, s->path, "cannot configure it", err);
		goto fail;
	}
	rc = integrity(s->db, s->path, err);
	if (rc == 0)
		rc = spd__store_schema(s->db, s->path, true, err);
	if (rc == 0)
		rc = mark_lost(s, o->now_ns != 0 ? o->now_ns : spd_clock_real_ns(), err);
	if (rc == 0)
		rc = prepare(s, err);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	spd_store_close(s);
	return rc;
}

int spd_store_check(const char *path, char err[SPD_STORE_ERR_MAX])
{
	char dir[PATH_MAX];
	sqlite3 *db = NULL;
	struct stat sb;
	int rc;

	err[0] = '\0';
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT) {
			rc = -errno;
			snprintf(err, SPD_STORE_ERR_MAX, "store %s: %s", path, strerror(-rc));
			return rc;
		}
		/* Created at start: its directory must take it. */
		snprintf(dir, sizeof dir, "%s", path);
		if (access(dirname(dir), W_OK | X_OK) < 0) {
			rc = -errno;
			snprintf(dir, sizeof dir, "%s", path);
			snprintf(err, SPD_STORE_ERR_MAX, "store %s: cannot be created in %s: %s", path,
				 dirname(dir), strerror(-rc));
			return rc;
		}
		return 0;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, SPD_STORE_ERR_MAX, "store %s: not a regular file", path);
		return -EINVAL;
	}
	rc = open_db(path, SQLITE_OPEN_READWRITE, &db, err);
	if (rc == 0)
		rc = integrity(db, path, err);
	if (rc == 0)
		rc = spd__store_schema(db, path, false, err);
	sqlite3_close(db);
	return rc;
}

int spd_store_load(spd_store *s, spd_store_load_fn fn, void *ctx, char err[SPD_STORE_ERR_MAX])
{
	sqlite3_stmt *st = NULL;
	long row = 0;
	int rc = sqlite3_prepare_v2(s->db, spd__store_select_sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sqlite_fail(s->db, rc, s->path, "cannot read its records", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		spd_process p;
		const char *rid;
		const uint8_t *fp;
		int r = spd__store_read_row(st, &p, &rid, &fp);

		row++;
		if (r < 0) {
			snprintf(err, SPD_STORE_ERR_MAX, "store %s: record %ld cannot be read: %s",
				 s->path, row, r == -ENOMEM ? "out of memory" : "corrupt");
			sqlite3_finalize(st);
			return r;
		}
		r = fn(ctx, &p, rid, fp);
		spd_process_release(&p);
		if (r < 0) {
			snprintf(err, SPD_STORE_ERR_MAX, "store %s: record %ld (%s) cannot be restored: %s",
				 s->path, row, p.id[0] ? p.id : "?", strerror(-r));
			sqlite3_finalize(st);
			return r;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = sqlite_fail(s->db, rc, s->path, "cannot read its records", err);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	return 0;
}

void spd_store_close(spd_store *s)
{
	if (s == NULL)
		return;
	spd_store_stop(s);
	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->remove);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	/* The last connection checkpoints the WAL into the file. */
	sqlite3_close(s->db);
	spd__store_unlock(s->lock_fd);
	spd__store_queue_release(s);
	free(s->path);
	free(s);
}
