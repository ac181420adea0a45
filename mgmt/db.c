/* db.c: SQLite inventory access for mgmt.
 *
 * DESIGN: every thread that touches the inventory (HTTP workers, job
 * workers) owns one connection, opened lazily with the same pragmas: WAL,
 * synchronous=FULL, foreign_keys=ON, busy_timeout.  Writers take the write
 * lock up front with BEGIN IMMEDIATE, so a read-then-write decision (a free
 * IP, a free VIP port) is never made on a snapshot that another writer has
 * moved past.  Prepared statements are cached per connection keyed by their
 * SQL text, which always comes from the program, never from a user. */
#include "db.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "schema.h"

LOG_MODULE("mgmt.db");

#define STMT_CACHE_SIZE 256
#define BUSY_TIMEOUT_MS 10000

struct stmt_slot {
    const char *sql;            /* Key: the SQL text (program constant or
                                 * owned copy in 'sql_copy'). */
    char *sql_copy;             /* Owned copy of the key. */
    sqlite3_stmt *stmt;         /* Prepared with SQLITE_PREPARE_PERSISTENT. */
};

struct db {
    sqlite3 *conn;
    struct stmt_slot cache[STMT_CACHE_SIZE];
    int n_cache;
    int next_evict;
};

static char *db_file;
static __thread struct db *thread_db;
static pthread_key_t thread_db_key;     /* Closes a thread's connection
                                         * when the thread exits. */
static pthread_once_t thread_db_once = PTHREAD_ONCE_INIT;

const char *
db_path(void)
{
    return db_file;
}

static int
db_report(struct db *db, const char *what)
{
    error_report(PROBLEM_INTERNAL_ERROR, "database: %s: %s", what,
                 sqlite3_errmsg(db->conn));
    return -1;
}

static int
db_pragmas(struct db *db)
{
    static const char *const pragmas =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;"
        "PRAGMA foreign_keys=ON;";
    char *err = NULL;

    sqlite3_busy_timeout(db->conn, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(db->conn, pragmas, NULL, NULL, &err) != SQLITE_OK) {
        error_report(PROBLEM_INTERNAL_ERROR, "database '%s': %s", db_file,
                     err ? err : "pragma failed");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static struct db *
db_open(const char *path)
{
    struct db *db = xcalloc(1, sizeof *db);
    int rc;

    rc = sqlite3_open_v2(path, &db->conn,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot open database '%s': %s",
                     path, db->conn ? sqlite3_errmsg(db->conn)
                                    : sqlite3_errstr(rc));
        sqlite3_close(db->conn);
        free(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db->conn, 1);
    if (db_pragmas(db) < 0) {
        sqlite3_close(db->conn);
        free(db);
        return NULL;
    }
    return db;
}

static void
db_close(struct db *db)
{
    if (!db) {
        return;
    }
    for (int i = 0; i < db->n_cache; i++) {
        sqlite3_finalize(db->cache[i].stmt);
        free(db->cache[i].sql_copy);
    }
    sqlite3_close(db->conn);
    free(db);
}

static int
db_exec_script(struct db *db, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(db->conn, sql, NULL, NULL, &err) != SQLITE_OK) {
        error_report(PROBLEM_INTERNAL_ERROR, "database '%s': %s", db_file,
                     err ? err : "exec failed");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int
db_check_integrity(struct db *db)
{
    sqlite3_stmt *stmt = NULL;
    int rc;
    char *problem = NULL;

    rc = sqlite3_prepare_v2(db->conn, "PRAGMA quick_check", -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "database '%s' is not a usable SQLite file: %s",
                     db_file, sqlite3_errmsg(db->conn));
        return -1;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *line = (const char *) sqlite3_column_text(stmt, 0);

        if (line && strcmp(line, "ok") && !problem) {
            problem = xstrdup(line);
        }
    }
    if (rc != SQLITE_DONE && !problem) {
        problem = xstrdup(sqlite3_errmsg(db->conn));
    }
    sqlite3_finalize(stmt);
    if (problem) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "database '%s' failed its integrity check (%s); "
                     "refusing to serve it: restore it from a backup",
                     db_file, problem);
        free(problem);
        return -1;
    }
    return 0;
}

static int
db_migrate(struct db *db)
{
    int64_t version = 0;
    int n = schema_migration_count();

    if (db_int(db, &version, 0, "PRAGMA user_version", "") < 0) {
        return -1;
    }
    if (version > n) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "database '%s' has schema version %lld, newer than "
                     "this kvmstack (%d): refusing to downgrade",
                     db_file, (long long) version, n);
        return -1;
    }
    for (int v = (int) version; v < n; v++) {
        char pragma[64];

        if (db_begin(db) < 0) {
            return -1;
        }
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if (db_exec_script(db, schema_migration(v)) < 0
            || schema_migration_seed(db, v) < 0
            || db_exec_script(db, pragma) < 0
            || db_commit(db) < 0) {
            error_prefix("schema migration to version %d: ", v + 1);
            db_rollback(db);
            return -1;
        }
        LOG_INFO("database '%s': migrated to schema version %d", db_file,
                 v + 1);
    }
    return 0;
}

int
db_setup(const char *path)
{
    struct db *db;
    int rc;

    free(db_file);
    db_file = xstrdup(path);
    db = db_open(path);
    if (!db) {
        error_prefix("refusing to serve the inventory (restore it from a "
                     "backup, or move it away to start empty): ");
        return -1;
    }
    rc = db_check_integrity(db);
    if (!rc) {
        rc = db_migrate(db);
    }
    db_close(db);
    return rc;
}

static void
thread_db_exit(void *db)
{
    db_close(db);
}

static void
thread_db_key_init(void)
{
    pthread_key_create(&thread_db_key, thread_db_exit);
}

struct db *
db_thread(void)
{
    if (!thread_db) {
        thread_db = db_open(db_file);
        if (!thread_db) {
            LOG_ERR("%s", error_last_message());
            abort();
        }
        pthread_once(&thread_db_once, thread_db_key_init);
        pthread_setspecific(thread_db_key, thread_db);
    }
    return thread_db;
}

void
db_thread_close(void)
{
    if (thread_db) {
        pthread_setspecific(thread_db_key, NULL);
    }
    db_close(thread_db);
    thread_db = NULL;
}

/* Writers of this process queue for the write lock in FIFO order (a
 * ticket lock) before BEGIN IMMEDIATE.  SQLite's own busy handler backs
 * off in sleeps of up to 100 ms, so under contention the thread that just
 * committed tends to win again and the others starve (the create
 * benchmark showed a p99 of seconds); waiting on a condition variable in
 * turn gives every writer its place.  Only this process writes the
 * inventory, so the in-process queue covers every writer. */
static pthread_mutex_t writer_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t writer_cond = PTHREAD_COND_INITIALIZER;
static unsigned long writer_next;       /* Next ticket to hand out. */
static unsigned long writer_serving;    /* Ticket allowed to write. */
static __thread bool writer_holding;    /* This thread holds the turn. */

static void
writer_acquire(void)
{
    unsigned long ticket;

    pthread_mutex_lock(&writer_mutex);
    ticket = writer_next++;
    while (ticket != writer_serving) {
        pthread_cond_wait(&writer_cond, &writer_mutex);
    }
    pthread_mutex_unlock(&writer_mutex);
    writer_holding = true;
}

static void
writer_release(void)
{
    if (!writer_holding) {
        return;
    }
    writer_holding = false;
    pthread_mutex_lock(&writer_mutex);
    writer_serving++;
    pthread_cond_broadcast(&writer_cond);
    pthread_mutex_unlock(&writer_mutex);
}

int
db_begin(struct db *db)
{
    writer_acquire();
    if (db_exec(db, "BEGIN IMMEDIATE", "") < 0) {
        writer_release();
        return -1;
    }
    return 0;
}

int
db_commit(struct db *db)
{
    if (db_exec(db, "COMMIT", "") < 0) {
        return -1;              /* Still in the transaction: roll back. */
    }
    writer_release();
    return 0;
}

void
db_rollback(struct db *db)
{
    if (!sqlite3_get_autocommit(db->conn)) {
        sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
    }
    writer_release();
}

void
db_settle(struct db *db)
{
    if (db_in_txn(db) || writer_holding) {
        LOG_ERR("a transaction was left open; rolling it back");
        db_rollback(db);
    }
}

bool
db_in_txn(struct db *db)
{
    return !sqlite3_get_autocommit(db->conn);
}

static sqlite3_stmt *
db_cached(struct db *db, const char *sql)
{
    struct stmt_slot *slot;
    sqlite3_stmt *stmt = NULL;

    for (int i = 0; i < db->n_cache; i++) {
        if (db->cache[i].sql == sql || !strcmp(db->cache[i].sql, sql)) {
            sqlite3_reset(db->cache[i].stmt);
            sqlite3_clear_bindings(db->cache[i].stmt);
            return db->cache[i].stmt;
        }
    }
    if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &stmt, NULL) != SQLITE_OK) {
        db_report(db, "prepare");
        return NULL;
    }
    if (db->n_cache < STMT_CACHE_SIZE) {
        slot = &db->cache[db->n_cache++];
    } else {
        slot = &db->cache[db->next_evict];
        db->next_evict = (db->next_evict + 1) % STMT_CACHE_SIZE;
        sqlite3_finalize(slot->stmt);
        free(slot->sql_copy);
    }
    slot->sql_copy = xstrdup(sql);
    slot->sql = slot->sql_copy;
    slot->stmt = stmt;
    return stmt;
}

static sqlite3_stmt *
db_vstmt(struct db *db, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *stmt = db_cached(db, sql);
    int idx = 1;
    int rc = SQLITE_OK;

    if (!stmt) {
        return NULL;
    }
    for (const char *t = types; *t && rc == SQLITE_OK; t++, idx++) {
        switch (*t) {
        case 's': {
            const char *s = va_arg(ap, const char *);

            rc = s ? sqlite3_bind_text(stmt, idx, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(stmt, idx);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(stmt, idx, va_arg(ap, int64_t));
            break;
        case 'd':
        case 'b':
            rc = sqlite3_bind_int64(stmt, idx, va_arg(ap, int));
            break;
        case 'n':
            rc = sqlite3_bind_null(stmt, idx);
            break;
        default:
            abort();
        }
    }
    if (rc != SQLITE_OK) {
        db_report(db, "bind");
        sqlite3_reset(stmt);
        return NULL;
    }
    return stmt;
}

sqlite3_stmt *
db_stmt(struct db *db, const char *sql, const char *types, ...)
{
    sqlite3_stmt *stmt;
    va_list ap;

    va_start(ap, types);
    stmt = db_vstmt(db, sql, types, ap);
    va_end(ap);
    return stmt;
}

sqlite3_stmt *
db_stmt_json(struct db *db, const char *sql, json_t *values)
{
    sqlite3_stmt *stmt = db_cached(db, sql);
    size_t i;
    json_t *v;
    int rc = SQLITE_OK;

    if (!stmt) {
        return NULL;
    }
    json_array_foreach(values, i, v) {
        int idx = (int) i + 1;

        if (json_is_string(v)) {
            rc = sqlite3_bind_text(stmt, idx, json_string_value(v), -1,
                                   SQLITE_TRANSIENT);
        } else if (json_is_integer(v)) {
            rc = sqlite3_bind_int64(stmt, idx, json_integer_value(v));
        } else if (json_is_boolean(v)) {
            rc = sqlite3_bind_int64(stmt, idx, json_is_true(v));
        } else if (json_is_real(v)) {
            rc = sqlite3_bind_double(stmt, idx, json_real_value(v));
        } else {
            rc = sqlite3_bind_null(stmt, idx);
        }
        if (rc != SQLITE_OK) {
            break;
        }
    }
    if (rc != SQLITE_OK) {
        db_report(db, "bind");
        sqlite3_reset(stmt);
        return NULL;
    }
    return stmt;
}

int
db_step(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        error_report(PROBLEM_CONFLICT, "database constraint: %s",
                     sqlite3_errmsg(sqlite3_db_handle(stmt)));
    } else {
        error_report(PROBLEM_INTERNAL_ERROR, "database: %s",
                     sqlite3_errmsg(sqlite3_db_handle(stmt)));
    }
    return -1;
}

void
db_done(sqlite3_stmt *stmt)
{
    if (stmt) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
}

void
db_donep(sqlite3_stmt **stmt)
{
    db_done(*stmt);
}

static int
db_vexec(struct db *db, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *stmt = db_vstmt(db, sql, types, ap);
    int rc;

    if (!stmt) {
        return -1;
    }
    while ((rc = db_step(stmt)) == 1) {
        continue;
    }
    db_done(stmt);
    return rc < 0 ? -1 : sqlite3_changes(db->conn);
}

int
db_exec(struct db *db, const char *sql, const char *types, ...)
{
    va_list ap;
    int rc;

    va_start(ap, types);
    rc = db_vexec(db, sql, types, ap);
    va_end(ap);
    return rc;
}

int
db_write(struct db *db, const char *sql, const char *types, ...)
{
    va_list ap;
    int rc;

    if (db_begin(db) < 0) {
        return -1;
    }
    va_start(ap, types);
    rc = db_vexec(db, sql, types, ap);
    va_end(ap);
    if (rc < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return rc;
}

int
db_int(struct db *db, int64_t *out, int64_t dflt, const char *sql,
       const char *types, ...)
{
    sqlite3_stmt *stmt;
    va_list ap;
    int rc;

    va_start(ap, types);
    stmt = db_vstmt(db, sql, types, ap);
    va_end(ap);
    if (!stmt) {
        return -1;
    }
    rc = db_step(stmt);
    *out = rc == 1 && sqlite3_column_type(stmt, 0) != SQLITE_NULL
           ? sqlite3_column_int64(stmt, 0) : dflt;
    db_done(stmt);
    return rc < 0 ? -1 : 0;
}

const char *
db_col_str(sqlite3_stmt *stmt, int col)
{
    return (const char *) sqlite3_column_text(stmt, col);
}

int64_t
db_col_int(sqlite3_stmt *stmt, int col)
{
    return sqlite3_column_int64(stmt, col);
}

json_t *
db_row_json(sqlite3_stmt *stmt)
{
    json_t *row = json_object();
    int n = sqlite3_column_count(stmt);

    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(stmt, i);

        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            json_object_set_new(row, name,
                                json_integer(sqlite3_column_int64(stmt, i)));
            break;
        case SQLITE_NULL:
            json_object_set_new(row, name, json_null());
            break;
        default:
            json_object_set_new(row, name,
                                json_string(db_col_str(stmt, i)));
            break;
        }
    }
    return row;
}
