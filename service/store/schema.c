/* The store's schema and its migrations.
 *
 * `schema_version` holds one row, the version the file is at. Version N is
 * reached from N-1 by migrations[N-1]; a new release that changes the schema
 * appends one (never edits a shipped one) and raises SPD_STORE_SCHEMA_VERSION.
 * Opening runs every step from the file's version up, in one transaction: a
 * file is at one version or the next, never between. A file at a higher
 * version than this spawnd knows is refused (it was written by a newer
 * spawnd, and this one could not read it truthfully). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service/store/store_impl.h"

/* Version 1, the first release: one row per process record (record.c keeps
 * the column list). The rowid is the creation order. */
static const char v1[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"INSERT INTO schema_version (version) VALUES (0);"
	"CREATE TABLE processes ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" target TEXT NOT NULL,"
	" caller TEXT NOT NULL,"
	" args BLOB NOT NULL,"
	" labels BLOB NOT NULL,"
	" request_id TEXT,"
	" fingerprint BLOB,"
	" start_method INTEGER NOT NULL,"
	" state INTEGER NOT NULL,"
	" destroyed INTEGER NOT NULL, canceled INTEGER NOT NULL,"
	" ran INTEGER NOT NULL, threw INTEGER NOT NULL,"
	" error_kind INTEGER NOT NULL, error_type TEXT, error_message TEXT,"
	" error_backtrace TEXT, error_exit_code INTEGER NOT NULL,"
	" error_signal INTEGER NOT NULL, error_core_dumped INTEGER NOT NULL,"
	" error_oom_suspected INTEGER NOT NULL,"
	" pid INTEGER NOT NULL, exit_code INTEGER NOT NULL, signal INTEGER NOT NULL,"
	" result BLOB,"
	" stdout_head BLOB, stdout_tail BLOB, stderr_head BLOB, stderr_tail BLOB,"
	" stdout_bytes INTEGER NOT NULL, stderr_bytes INTEGER NOT NULL,"
	" output_truncated INTEGER NOT NULL,"
	" user_cpu_us INTEGER NOT NULL, system_cpu_us INTEGER NOT NULL,"
	" max_rss_bytes INTEGER NOT NULL,"
	" created_ns INTEGER NOT NULL, started_ns INTEGER NOT NULL, ended_ns INTEGER NOT NULL,"
	" seq INTEGER NOT NULL, grace_ms INTEGER NOT NULL, timeout_ms INTEGER NOT NULL);";

/* migrations[i] takes a file from version i to i + 1. */
static const char *const migrations[SPD_STORE_SCHEMA_VERSION] = {v1};

/* The file's version: 0 for an empty file, -EILSEQ for a database that is
 * not a store (tables, but no schema_version), or an SQLite failure. */
static int read_version(sqlite3 *db, const char *path, char err[SPD_STORE_ERR_MAX])
{
	sqlite3_stmt *st = NULL;
	int rc, version = 0, tables = 0;
	bool has_version = false;

	rc = sqlite3_prepare_v2(db, "SELECT name FROM sqlite_schema WHERE type = 'table'", -1, &st,
				NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		tables++;
		has_version |= strcmp((const char *)sqlite3_column_text(st, 0), "schema_version") == 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto sqlite_error;
	if (tables == 0)
		return 0;
	if (!has_version) {
		snprintf(err, SPD_STORE_ERR_MAX,
			 "store %s: not a spawnd store (an SQLite database without schema_version)",
			 path);
		return -EILSEQ;
	}
	rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		version = sqlite3_column_int(st, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto sqlite_error;
	if (version < 0) {
		snprintf(err, SPD_STORE_ERR_MAX, "store %s: schema version %d is not valid", path,
			 version);
		return -EILSEQ;
	}
	return version;
sqlite_error:
	snprintf(err, SPD_STORE_ERR_MAX, "store %s: cannot read its schema: %s", path,
		 sqlite3_errmsg(db));
	return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? -EILSEQ : -EIO;
}

int spd__store_schema(sqlite3 *db, const char *path, bool write, char err[SPD_STORE_ERR_MAX])
{
	char sql[64];
	char *msg = NULL;
	int version, rc;

	if (write && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto sqlite_error;
	version = read_version(db, path, err);
	if (version < 0) {
		rc = version;
		goto rollback;
	}
	if (version > SPD_STORE_SCHEMA_VERSION) {
		snprintf(err, SPD_STORE_ERR_MAX,
			 "store %s: schema version %d is newer than this spawnd's (%d): it was "
			 "written by a newer spawnd",
			 path, version, SPD_STORE_SCHEMA_VERSION);
		rc = -EPROTO;
		goto rollback;
	}
	if (!write)
		return 0;
	for (int v = version; v < SPD_STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK)
			goto sqlite_error;
	}
	snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d",
		 SPD_STORE_SCHEMA_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
		goto sqlite_error;
	return 0;
sqlite_error:
	rc = sqlite3_errcode(db);
	snprintf(err, SPD_STORE_ERR_MAX, "store %s: cannot set up its schema: %s", path,
		 msg != NULL ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	rc = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? -EILSEQ : -EIO;
rollback:
	if (write)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
