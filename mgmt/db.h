/* db.h: the SQLite inventory.  One connection per thread (WAL lets readers
 * run beside the one writer), every write inside BEGIN IMMEDIATE, prepared
 * statements cached per connection.  This is the only module that calls
 * sqlite3; a second backend (a replicated SQL engine) would replace it. */
#ifndef MGMT_DB_H
#define MGMT_DB_H 1

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

struct db;

/* Sets the database file used by db_thread() and opens it once to run the
 * integrity check and the migrations.  Returns -1, with an error reported,
 * when the file is corrupt or cannot be migrated. */
int db_setup(const char *path);

/* The calling thread's connection, opened on first use.  Never NULL. */
struct db *db_thread(void);

/* Closes the calling thread's connection, if any. */
void db_thread_close(void);

int db_begin(struct db *db);      /* BEGIN IMMEDIATE. */
int db_commit(struct db *db);
void db_rollback(struct db *db);  /* Safe to call when no txn is open. */
bool db_in_txn(struct db *db);

/* Rolls back (with an error logged) a transaction a caller left open;
 * run after each request and job so one bug cannot stall every writer. */
void db_settle(struct db *db);

/* Prepares (or takes from the cache) 'sql' and binds the arguments listed
 * in 'types': 's' const char * (NULL binds NULL), 'i' int64_t, 'd' int
 * (as integer), 'b' bool as int, 'n' NULL.  The statement is borrowed: it
 * stays valid until db_done() or the next db_stmt() of the same SQL.
 * Returns NULL with an error reported on failure. */
sqlite3_stmt *db_stmt(struct db *db, const char *sql, const char *types, ...);

/* Like db_stmt(), binding the elements of the JSON array 'values' in
 * order: strings as text, integers, booleans as 0/1, null as NULL. */
sqlite3_stmt *db_stmt_json(struct db *db, const char *sql, json_t *values);

/* Steps 'stmt': 1 row, 0 done, -1 error (reported). */
int db_step(sqlite3_stmt *stmt);

/* Resets a statement returned by db_stmt(); accepts NULL. */
void db_done(sqlite3_stmt *stmt);

/* For AUTO(db_donep). */
void db_donep(sqlite3_stmt **stmt);

/* Runs a statement that returns no rows.  Returns the number of changed
 * rows, or -1. */
int db_exec(struct db *db, const char *sql, const char *types, ...);

/* db_exec() in a write transaction of its own (BEGIN IMMEDIATE ... COMMIT,
 * rolled back on failure).  Returns the number of changed rows, or -1. */
int db_write(struct db *db, const char *sql, const char *types, ...);

/* Runs a query returning one integer in its first column; 'dflt' when no
 * row.  Returns -1 on error (reported) and stores the value in 'out'. */
int db_int(struct db *db, int64_t *out, int64_t dflt, const char *sql,
           const char *types, ...);

/* Column accessors; text is borrowed until the next step. */
const char *db_col_str(sqlite3_stmt *stmt, int col);
int64_t db_col_int(sqlite3_stmt *stmt, int col);

/* Reads one row of 'stmt' into a new JSON object keyed by column name:
 * integers as integers, text as strings, NULL as null. */
json_t *db_row_json(sqlite3_stmt *stmt);

/* The database file in use. */
const char *db_path(void);

#endif
