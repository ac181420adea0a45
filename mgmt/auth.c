/* auth.c: accounts and sessions.
 *
 * DESIGN: passwords are stored only as yescrypt hashes (libxcrypt) of their
 * SHA-512 hex digest, because ZStack's clients send that digest rather than
 * the password; a login may carry either form.  The password string of a
 * request is wiped as soon as it has been checked.  Sessions are rows with a
 * fixed expiry; every route but login looks its session up.  Failed logins
 * are counted per (client address, account) in memory: after
 * AUTH_MAX_FAILURES within AUTH_FAILURE_WINDOW the pair is locked out for
 * AUTH_LOCKOUT seconds, correct password or not. */
#include "auth.h"

#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <microhttpd.h>

#include "api.h"
#include "db.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "res.h"

LOG_MODULE("mgmt.auth");

#define AUTH_MAX_FAILURES 5
#define AUTH_FAILURE_WINDOW_MS (60 * 1000)
#define AUTH_LOCKOUT_MS (30 * 1000)
#define AUTH_SLOTS 256

int64_t auth_session_timeout_sec = 7200;

struct login_failures {
    char key[320];              /* "client-ip|account"; "" when unused. */
    int count;                  /* Failures since 'first_ms'. */
    int64_t first_ms;           /* Monotonic time of the first failure. */
    int64_t locked_until_ms;    /* Monotonic; 0 when not locked. */
};

static struct login_failures failures[AUTH_SLOTS];
static pthread_mutex_t failures_mutex = PTHREAD_MUTEX_INITIALIZER;

char *
auth_hash_password(const char *plain)
{
    char digest[129];
    char *salt;
    void *data = NULL;
    int size = 0;
    char *hash;
    char *out;

    sha512_hex(plain, strlen(plain), digest);
    salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
    if (!salt) {
        abort();
    }
    hash = crypt_ra(digest, salt, &data, &size);
    if (!hash || hash[0] == '*') {
        abort();
    }
    out = xstrdup(hash);
    secure_wipe(digest, sizeof digest);
    secure_wipe(data, (size_t) size);
    free(data);
    free(salt);
    return out;
}

static bool
hash_matches(const char *digest, const char *stored)
{
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *h = crypt_r(digest, stored, cd);
    bool ok = h && h[0] != '*' && str_equal_ct(h, stored);

    secure_wipe(cd, sizeof *cd);
    free(cd);
    return ok;
}

int
auth_verify_password(const char *given, const char *stored)
{
    char digest[129];
    bool ok = false;

    if (str_is_hex(given, 128)) {
        char lower[129];

        for (int i = 0; i < 129; i++) {
            lower[i] = (char) (given[i] >= 'A' && given[i] <= 'F'
                               ? given[i] - 'A' + 'a' : given[i]);
        }
        ok = hash_matches(lower, stored);
        secure_wipe(lower, sizeof lower);
    }
    if (!ok) {
        sha512_hex(given, strlen(given), digest);
        ok = hash_matches(digest, stored);
        secure_wipe(digest, sizeof digest);
    }
    return ok;
}

int
auth_bootstrap_admin(void)
{
    struct db *db = db_thread();
    const char *env = getenv("KVMSTACK_ADMIN_PASSWORD");
    char uuid[UUID_LEN + 1];
    char *password;
    char *hash;
    int64_t n;
    int64_t now = time_wall_msec();

    if (db_int(db, &n, 0, "SELECT count(*) FROM account WHERE name='admin'",
               "") < 0) {
        return -1;
    }
    if (n > 0) {
        return 0;
    }
    if (env && *env) {
        password = xstrdup(env);
    } else {
        unsigned char raw[12];
        static const char alphabet[] =
            "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

        random_bytes(raw, sizeof raw);
        password = xmalloc(sizeof raw + 1);
        for (size_t i = 0; i < sizeof raw; i++) {
            password[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
        }
        password[sizeof raw] = '\0';
    }
    hash = auth_hash_password(password);
    uuid_generate_hex(uuid);
    if (db_write(db, "INSERT INTO account (uuid, name, description, "
                 "createDate, lastOpDate, type, passwordHash, "
                 "passwordChangeRequired) VALUES (?1, 'admin', 'the "
                 "administrator', ?2, ?2, 'SystemAdmin', ?3, ?4)", "sisb",
                 uuid, now, hash, !(env && *env)) < 0) {
        free(hash);
        secret_free(password);
        return -1;
    }
    free(hash);
    if (env && *env) {
        printf("kvmstack: created account 'admin' with the password from "
               "KVMSTACK_ADMIN_PASSWORD\n");
    } else {
        printf("kvmstack: created account 'admin' with password '%s'.\n"
               "kvmstack: it is shown only this once; change it with "
               "'kvmstack update-account --password'.\n", password);
    }
    fflush(stdout);
    secret_free(password);
    return 0;
}

static struct login_failures *
failures_slot(const char *key, bool create)
{
    struct login_failures *oldest = &failures[0];

    for (int i = 0; i < AUTH_SLOTS; i++) {
        if (!strcmp(failures[i].key, key)) {
            return &failures[i];
        }
        if (failures[i].first_ms < oldest->first_ms) {
            oldest = &failures[i];
        }
    }
    if (!create) {
        return NULL;
    }
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    return oldest;
}

/* Returns the milliseconds left in a lockout of 'key', 0 if none. */
static int64_t
login_locked(const char *key)
{
    struct login_failures *f;
    int64_t now = time_msec();
    int64_t left = 0;

    pthread_mutex_lock(&failures_mutex);
    f = failures_slot(key, false);
    if (f && f->locked_until_ms > now) {
        left = f->locked_until_ms - now;
    }
    pthread_mutex_unlock(&failures_mutex);
    return left;
}

static void
login_failed(const char *key)
{
    struct login_failures *f;
    int64_t now = time_msec();

    pthread_mutex_lock(&failures_mutex);
    f = failures_slot(key, true);
    if (now - f->first_ms > AUTH_FAILURE_WINDOW_MS) {
        f->count = 0;
        f->first_ms = now;
    }
    if (++f->count >= AUTH_MAX_FAILURES) {
        f->locked_until_ms = now + AUTH_LOCKOUT_MS;
        f->count = 0;
        f->first_ms = now;
    }
    pthread_mutex_unlock(&failures_mutex);
}

static void
login_succeeded(const char *key)
{
    struct login_failures *f;

    pthread_mutex_lock(&failures_mutex);
    f = failures_slot(key, false);
    if (f) {
        memset(f, 0, sizeof *f);
    }
    pthread_mutex_unlock(&failures_mutex);
}

static json_t *
session_inventory(const char *uuid, const char *account, int64_t expires,
                  int64_t created)
{
    char d1[64];
    char d2[64];

    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "uuid", uuid,
                     "accountUuid", account, "userUuid", account,
                     "expiredDate", time_format(expires, d1, sizeof d1),
                     "createDate", time_format(created, d2, sizeof d2));
}

int
auth_login(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = req->body ? json_object_get(req->body,
                                                 "logInByAccount") : NULL;
    json_t *jname;
    json_t *jpass;
    const char *key_name;
    char key[320];
    char account[UUID_LEN + 1];
    char session[UUID_LEN + 1];
    char *hash = NULL;
    int64_t locked;
    int64_t now = time_wall_msec();
    int64_t expires;
    sqlite3_stmt *stmt;
    bool ok = false;
    bool change_required = false;
    const char *k;
    json_t *v;
    json_t *inv;

    if (!params || !json_is_object(params)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "logInByAccount",
                           "the body must be {\"logInByAccount\":"
                           "{\"accountName\":...,\"password\":...}}");
        return -1;
    }
    json_object_foreach(params, k, v) {
        if (strcmp(k, "accountName") && strcmp(k, "password")
            && strcmp(k, "systemTags") && strcmp(k, "userTags")
            && strcmp(k, "clientInfo")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, k,
                               "unknown field '%s'", k);
            return -1;
        }
    }
    jname = json_object_get(params, "accountName");
    jpass = json_object_get(params, "password");
    if (!json_is_string(jname) || !json_string_length(jname)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "accountName",
                           "field 'accountName' must be a non-empty "
                           "string");
        return -1;
    }
    if (!json_is_string(jpass)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "password",
                           "field 'password' must be a string");
        return -1;
    }
    key_name = json_string_value(jname);
    snprintf(key, sizeof key, "%s|%.255s", req->client_ip, key_name);
    locked = login_locked(key);
    if (locked > 0) {
        secure_wipe((char *) json_string_value(jpass),
                    json_string_length(jpass));
        error_report(PROBLEM_RATE_LIMITED,
                     "too many failed logins for account '%.255s' from %s; "
                     "try again in %lld seconds", key_name, req->client_ip,
                     (long long) (locked + 999) / 1000);
        return -1;
    }
    stmt = db_stmt(db, "SELECT uuid, passwordHash, passwordChangeRequired "
                   "FROM account WHERE name = ?1", "s", key_name);
    if (!stmt) {
        return -1;
    }
    if (db_step(stmt) == 1) {
        snprintf(account, sizeof account, "%s", db_col_str(stmt, 0));
        hash = xstrdup(db_col_str(stmt, 1));
        change_required = db_col_int(stmt, 2) != 0;
    }
    db_done(stmt);
    if (hash) {
        ok = auth_verify_password(json_string_value(jpass), hash);
        free(hash);
    }
    secure_wipe((char *) json_string_value(jpass), json_string_length(jpass));
    if (!ok) {
        login_failed(key);
        LOG_WARN("failed login for account '%.64s' from %s", key_name,
                 req->client_ip);
        error_report(PROBLEM_ACCESS_DENIED,
                     "wrong account name or password");
        return -1;
    }
    login_succeeded(key);
    uuid_generate_hex(session);
    expires = now + auth_session_timeout_sec * 1000;
    if (db_begin(db) < 0
        || db_exec(db, "DELETE FROM session WHERE expiredDate < ?1", "i",
                   now) < 0
        || db_exec(db, "INSERT INTO session (uuid, accountUuid, expiredDate,"
                   " createDate) VALUES (?1, ?2, ?3, ?4)", "ssii", session,
                   account, expires, now) < 0
        || db_commit(db) < 0) {
        return -1;
    }
    inv = session_inventory(session, account, expires, now);
    /* The generated first password must be changed (the UI asks). */
    json_object_set_new(inv, "passwordChangeRequired",
                        json_boolean(change_required));
    return api_reply(req, 200, json_pack("{s:o}", "inventory", inv));
}

int
auth_check_request(struct api_req *req)
{
    const char *hdr = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                  "Authorization");
    const char *token;
    sqlite3_stmt *stmt;
    int rc;
    int64_t expires = 0;

    if (!hdr) {
        error_report(PROBLEM_ACCESS_DENIED,
                     "this API needs a session: log in with PUT "
                     "/zstack/v1/accounts/login and send "
                     "'Authorization: OAuth <session uuid>'");
        return -1;
    }
    if (strncasecmp(hdr, "OAuth ", 6)) {
        error_report(PROBLEM_ACCESS_DENIED,
                     "the Authorization header must be 'OAuth <session "
                     "uuid>'");
        return -1;
    }
    token = hdr + 6;
    while (*token == ' ') {
        token++;
    }
    if (!uuid_is_valid(token)) {
        error_report(PROBLEM_ACCESS_DENIED, "invalid session");
        return -1;
    }
    stmt = db_stmt(db_thread(), "SELECT accountUuid, expiredDate FROM "
                   "session WHERE uuid = ?1", "s", token);
    if (!stmt) {
        return -1;
    }
    rc = db_step(stmt);
    if (rc == 1) {
        snprintf(req->account_uuid, sizeof req->account_uuid, "%s",
                 db_col_str(stmt, 0));
        expires = db_col_int(stmt, 1);
    }
    db_done(stmt);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        error_report(PROBLEM_ACCESS_DENIED,
                     "invalid session: it does not exist or was logged out");
        return -1;
    }
    if (expires < time_wall_msec()) {
        error_report(PROBLEM_ACCESS_DENIED,
                     "the session expired; log in again");
        return -1;
    }
    snprintf(req->session_uuid, sizeof req->session_uuid, "%s", token);
    return 0;
}

int
auth_logout(struct api_req *req)
{
    struct db *db = db_thread();

    if (db_write(db, "DELETE FROM session WHERE uuid = ?1 AND "
                 "accountUuid = ?2", "ss", req->args[0],
                 req->account_uuid) < 0) {
        return -1;
    }
    return api_reply(req, 200, json_object());
}

static json_t *
account_inventory(struct db *db, const char *uuid)
{
    sqlite3_stmt *stmt = db_stmt(db, "SELECT uuid, name, description, type,"
                                 " createDate, lastOpDate, "
                                 "passwordChangeRequired FROM account "
                                 "WHERE uuid = ?1", "s", uuid);
    json_t *inv = NULL;

    if (stmt && db_step(stmt) == 1) {
        inv = db_row_json(stmt);
        res_format_dates(inv);
        json_object_set_new(inv, "passwordChangeRequired",
                            json_boolean(json_integer_value(json_object_get(
                                inv, "passwordChangeRequired"))));
    }
    db_done(stmt);
    return inv;
}

int
auth_query_accounts(struct api_req *req)
{
    json_t *inv = account_inventory(db_thread(), req->account_uuid);
    json_t *list = json_array();

    if (inv) {
        json_array_append_new(list, inv);
    }
    return api_reply(req, 200, json_pack("{s:o}", "inventories", list));
}

int
auth_update_account(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = req->body ? json_object_get(req->body, "updateAccount")
                               : NULL;
    json_t *jpass;
    json_t *jold;
    char *hash;
    AUTOFREE char *stored = NULL;
    sqlite3_stmt *stmt;
    const char *k;
    json_t *v;
    int rc;

    if (!params || !json_is_object(params)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "updateAccount",
                           "the body must be {\"updateAccount\":{...}}");
        return -1;
    }
    if (strcmp(req->args[0], req->account_uuid)) {
        error_report(PROBLEM_ACCESS_DENIED,
                     "a session may change only its own account");
        return -1;
    }
    json_object_foreach(params, k, v) {
        if (strcmp(k, "password") && strcmp(k, "oldPassword")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, k,
                               "unknown field '%s'", k);
            return -1;
        }
    }
    jpass = json_object_get(params, "password");
    jold = json_object_get(params, "oldPassword");
    if (!json_is_string(jpass) || json_string_length(jpass) < 8) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "password",
                           "field 'password' must be a string of at least "
                           "8 characters");
        return -1;
    }
    if (!json_is_string(jold)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "oldPassword",
                           "field 'oldPassword' (the current password) is "
                           "required");
        return -1;
    }
    stmt = db_stmt(db, "SELECT passwordHash FROM account WHERE uuid = ?1",
                   "s", req->account_uuid);
    if (!stmt) {
        return -1;
    }
    if (db_step(stmt) == 1) {
        stored = xstrdup(db_col_str(stmt, 0));
    }
    db_done(stmt);
    if (!stored || !auth_verify_password(json_string_value(jold), stored)) {
        secure_wipe((char *) json_string_value(jold),
                    json_string_length(jold));
        secure_wipe((char *) json_string_value(jpass),
                    json_string_length(jpass));
        error_report_field(PROBLEM_ACCESS_DENIED, "oldPassword",
                           "the current password is wrong");
        return -1;
    }
    hash = auth_hash_password(json_string_value(jpass));
    secure_wipe((char *) json_string_value(jold), json_string_length(jold));
    secure_wipe((char *) json_string_value(jpass), json_string_length(jpass));
    rc = db_begin(db);
    if (!rc) {
        rc = db_exec(db, "UPDATE account SET passwordHash = ?1, "
                     "passwordChangeRequired = 0, lastOpDate = ?2 WHERE "
                     "uuid = ?3", "sis", hash, time_wall_msec(),
                     req->account_uuid) < 0 ? -1 : 0;
    }
    free(hash);
    if (rc < 0 || db_commit(db) < 0) {
        return -1;
    }
    return api_reply(req, 200, json_pack("{s:o*}", "inventory",
                                         account_inventory(db,
                                                           req->account_uuid)));
}
