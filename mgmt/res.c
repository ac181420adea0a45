/* res.c: create, query, get, update, change-state and delete for every
 * resource described by a struct resource.
 *
 * DESIGN: a request is checked in full before anything is written:
 * res_check_params() needs no database; the reference checks and the
 * resource's prepare hook run inside the BEGIN IMMEDIATE transaction that
 * then writes, so a decision such as "this port range is free" cannot be
 * overtaken by a concurrent writer.  Any failure rolls the transaction
 * back.  SQL text is built only from the descriptor's own table and column
 * names; every user value is bound. */
#include "res.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "validate.h"

LOG_MODULE("mgmt.res");

#define QUERY_DEFAULT_LIMIT 1000
#define QUERY_MAX_LIMIT 100000

const struct field *
res_field(const struct resource *res, const char *name)
{
    for (const struct field *f = res->fields; f->name; f++) {
        if (!strcmp(f->name, name)) {
            return f;
        }
    }
    return NULL;
}

static const char *
type_name(enum ftype t)
{
    switch (t) {
    case FT_STR:
        return "a string";
    case FT_INT:
        return "an integer";
    case FT_BOOL:
        return "a boolean";
    case FT_UUID:
        return "a UUID string";
    case FT_STRLIST:
        return "an array of strings";
    case FT_DATE:
        return "a date";
    case FT_OBJ:
        return "an object";
    }
    return "a value";
}

static int
check_string_list(const char *name, json_t *v)
{
    size_t i;
    json_t *e;

    if (!json_is_array(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, name,
                           "field '%s' must be an array of strings", name);
        return -1;
    }
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, name,
                               "field '%s': element %zu must be a string",
                               name, i);
            return -1;
        }
    }
    return 0;
}

static int
check_value(const struct field *f, json_t *v)
{
    bool ok;

    switch (f->type) {
    case FT_STR:
    case FT_UUID:
        ok = json_is_string(v);
        break;
    case FT_INT:
        ok = json_is_integer(v);
        break;
    case FT_BOOL:
        ok = json_is_boolean(v);
        break;
    case FT_STRLIST:
        return check_string_list(f->name, v);
    case FT_OBJ:
        ok = json_is_object(v);
        break;
    default:
        ok = false;
        break;
    }
    if (!ok) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, f->name,
                           "field '%s' must be %s", f->name,
                           type_name(f->type));
        return -1;
    }
    if (f->type == FT_UUID) {
        return validate_uuid(f->name, json_string_value(v));
    }
    if (f->type == FT_INT && (f->min || f->max)) {
        int64_t n = json_integer_value(v);

        if (n < f->min || n > f->max) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, f->name,
                               "field '%s': %lld is outside %lld..%lld",
                               f->name, (long long) n, (long long) f->min,
                               (long long) f->max);
            return -1;
        }
    }
    if (f->type == FT_STR) {
        const char *s = json_string_value(v);

        if (!strcmp(f->name, "name") && validate_name(f->name, s) < 0) {
            return -1;
        }
        if (!strcmp(f->name, "description")
            && validate_description(f->name, s) < 0) {
            return -1;
        }
        if (f->choices) {
            const char *const *c;
            struct sbuf all;

            for (c = f->choices; *c; c++) {
                if (!strcmp(*c, s)) {
                    break;
                }
            }
            if (!*c) {
                sbuf_init(&all);
                for (c = f->choices; *c; c++) {
                    sbuf_addf(&all, "%s%s", c == f->choices ? "" : ", ", *c);
                }
                error_report_field(PROBLEM_INVALID_ARGUMENT, f->name,
                                   "field '%s': '%.64s' is not one of %s",
                                   f->name, s, all.s);
                sbuf_destroy(&all);
                return -1;
            }
        }
        if (f->check && f->check(f->name, s) < 0) {
            return -1;
        }
    }
    return 0;
}

int
res_check_params(const struct resource *res, json_t *params, unsigned mask)
{
    const char *key;
    json_t *v;

    json_object_foreach(params, key, v) {
        const struct field *f;

        if (!strcmp(key, "systemTags") || !strcmp(key, "userTags")) {
            if (!json_is_null(v) && check_string_list(key, v) < 0) {
                return -1;
            }
            continue;
        }
        if (!strcmp(key, "resourceUuid") && mask == F_CREATE) {
            if (!json_is_null(v)
                && (!json_is_string(v)
                    || validate_uuid(key, json_string_value(v)) < 0)) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                                   "field 'resourceUuid' must be a UUID of "
                                   "32 hex digits");
                return -1;
            }
            continue;
        }
        f = res_field(res, key);
        if (!f || !(f->flags & mask)) {
            if (f && mask == F_UPDATE) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                                   "field '%s' cannot be changed by "
                                   "update%s", key, res->kind);
            } else {
                error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                                   "unknown field '%.64s'", key);
            }
            return -1;
        }
        if (json_is_null(v)) {
            if ((f->flags & F_REQ) && mask == F_CREATE) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                                   "field '%s' is required", key);
                return -1;
            }
            continue;
        }
        if (check_value(f, v) < 0) {
            return -1;
        }
    }
    if (mask == F_CREATE) {
        for (const struct field *f = res->fields; f->name; f++) {
            if ((f->flags & F_REQ) && !json_object_get(params, f->name)) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, f->name,
                                   "field '%s' is required", f->name);
                return -1;
            }
        }
    }
    return 0;
}

static int
ref_exists(struct db *db, const char *table, const char *uuid, bool *found)
{
    char *sql = xasprintf("SELECT 1 FROM %s WHERE uuid = ?1", table);
    int64_t n;
    int rc = db_int(db, &n, 0, sql, "s", uuid);

    free(sql);
    *found = n == 1;
    return rc;
}

static const char *
table_label(const char *table)
{
    static const struct {
        const char *table;
        const char *label;
    } labels[] = {
        { "zone", "zone" }, { "cluster", "cluster" }, { "host", "host" },
        { "primaryStorage", "primary storage" },
        { "backupStorage", "backup storage" }, { "image", "image" },
        { "l2Network", "L2 network" }, { "l3Network", "L3 network" },
        { "instanceOffering", "instance offering" },
        { "vmInstance", "VM instance" }, { "vmNic", "VM NIC" },
        { "vip", "VIP" }, { "portForwardingRule", "port forwarding rule" },
        { "ipRange", "IP range" },
        { "networkServiceProvider", "network service provider" },
        { "apiJob", "API job" }, { "usedIp", "used IP address" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(labels); i++) {
        if (!strcmp(labels[i].table, table)) {
            return labels[i].label;
        }
    }
    return table;
}

int
res_check_refs(struct db *db, const struct resource *res, json_t *params)
{
    for (const struct field *f = res->fields; f->name; f++) {
        json_t *v = json_object_get(params, f->name);
        bool found;

        if (!f->ref || !v || json_is_null(v)) {
            continue;
        }
        if (f->type == FT_UUID) {
            if (ref_exists(db, f->ref, json_string_value(v), &found) < 0) {
                return -1;
            }
            if (!found) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, f->name,
                                   "field '%s': no %s with UUID '%s'",
                                   f->name, table_label(f->ref),
                                   json_string_value(v));
                return -1;
            }
        } else if (f->type == FT_STRLIST) {
            size_t i;
            json_t *e;

            json_array_foreach(v, i, e) {
                if (validate_uuid(f->name, json_string_value(e)) < 0
                    || ref_exists(db, f->ref, json_string_value(e),
                                  &found) < 0) {
                    return -1;
                }
                if (!found) {
                    error_report_field(PROBLEM_INVALID_ARGUMENT, f->name,
                                       "field '%s': no %s with UUID '%s'",
                                       f->name, table_label(f->ref),
                                       json_string_value(e));
                    return -1;
                }
            }
        }
    }
    return 0;
}

static json_t *
default_value(const struct field *f)
{
    if (!f->dflt) {
        return NULL;
    }
    switch (f->type) {
    case FT_INT:
        return json_integer(strtoll(f->dflt, NULL, 10));
    case FT_BOOL:
        return json_boolean(!strcmp(f->dflt, "true"));
    default:
        return json_string(f->dflt);
    }
}

int
res_insert(struct db *db, const char *table, json_t *row)
{
    struct sbuf sql;
    json_t *values = json_array();
    const char *key;
    json_t *v;
    int n = 0;
    sqlite3_stmt *stmt;
    int rc;

    sbuf_init(&sql);
    sbuf_addf(&sql, "INSERT INTO %s (", table);
    json_object_foreach(row, key, v) {
        sbuf_addf(&sql, "%s%s", n++ ? ", " : "", key);
        json_array_append(values, v);
    }
    sbuf_addstr(&sql, ") VALUES (");
    for (int i = 1; i <= n; i++) {
        sbuf_addf(&sql, "%s?%d", i > 1 ? ", " : "", i);
    }
    sbuf_addstr(&sql, ")");
    stmt = db_stmt_json(db, sql.s, values);
    rc = stmt ? db_step(stmt) : -1;
    db_done(stmt);
    sbuf_destroy(&sql);
    json_decref(values);
    return rc < 0 ? -1 : 0;
}

int
res_update_row(struct db *db, const char *table, const char *uuid,
               json_t *changes)
{
    struct sbuf sql;
    json_t *values = json_array();
    const char *key;
    json_t *v;
    int n = 0;
    sqlite3_stmt *stmt;
    int rc;

    sbuf_init(&sql);
    sbuf_addf(&sql, "UPDATE %s SET ", table);
    json_object_foreach(changes, key, v) {
        if (!strcmp(key, "lastOpDate")) {
            continue;
        }
        sbuf_addf(&sql, "%s = ?%d, ", key, ++n);
        json_array_append(values, v);
    }
    sbuf_addf(&sql, "lastOpDate = ?%d WHERE uuid = ?%d", n + 1, n + 2);
    json_array_append_new(values, json_integer(time_wall_msec()));
    json_array_append_new(values, json_string(uuid));
    stmt = db_stmt_json(db, sql.s, values);
    rc = stmt ? db_step(stmt) : -1;
    db_done(stmt);
    sbuf_destroy(&sql);
    json_decref(values);
    return rc < 0 ? -1 : 0;
}

json_t *
res_create_row(struct db *db, const struct resource *res, json_t *params)
{
    json_t *row = json_object();
    json_t *ruuid = json_object_get(params, "resourceUuid");
    char uuid[UUID_LEN + 1];
    int64_t now = time_wall_msec();

    if (res_check_refs(db, res, params) < 0) {
        goto fail;
    }
    if (json_is_string(ruuid)) {
        bool found;

        snprintf(uuid, sizeof uuid, "%s", json_string_value(ruuid));
        for (char *p = uuid; *p; p++) {
            *p = (char) tolower((unsigned char) *p);
        }
        if (ref_exists(db, res->table, uuid, &found) < 0) {
            goto fail;
        }
        if (found) {
            error_report_field(PROBLEM_CONFLICT, "resourceUuid",
                               "a %s with UUID '%s' already exists",
                               res->label, uuid);
            goto fail;
        }
    } else {
        uuid_generate_hex(uuid);
    }
    json_object_set_new(row, "uuid", json_string(uuid));
    for (const struct field *f = res->fields; f->name; f++) {
        json_t *v;

        if (f->flags & F_NOCOL || f->type == FT_DATE) {
            continue;
        }
        v = json_object_get(params, f->name);
        if (v && !json_is_null(v) && (f->flags & F_CREATE)) {
            json_object_set(row, f->name, v);
        } else if ((v = default_value(f))) {
            json_object_set_new(row, f->name, v);
        }
    }
    json_object_set_new(row, "createDate", json_integer(now));
    json_object_set_new(row, "lastOpDate", json_integer(now));
    if (res->prepare && res->prepare(db, params, row) < 0) {
        goto fail;
    }
    if (res_insert(db, res->table, row) < 0) {
        goto fail;
    }
    if (res->after_insert && res->after_insert(db, params, row) < 0) {
        goto fail;
    }
    return row;

fail:
    json_decref(row);
    return NULL;
}

json_t *
res_select(struct db *db, const char *sql, const char *types, ...)
{
    json_t *rows = json_array();
    sqlite3_stmt *stmt;
    va_list ap;
    json_t *values = json_array();
    int rc;

    va_start(ap, types);
    for (const char *t = types; *t; t++) {
        switch (*t) {
        case 's': {
            const char *s = va_arg(ap, const char *);

            json_array_append_new(values, s ? json_string(s) : json_null());
            break;
        }
        case 'i':
            json_array_append_new(values, json_integer(va_arg(ap, int64_t)));
            break;
        case 'd':
            json_array_append_new(values, json_integer(va_arg(ap, int)));
            break;
        default:
            abort();
        }
    }
    va_end(ap);
    stmt = db_stmt_json(db, sql, values);
    json_decref(values);
    if (!stmt) {
        json_decref(rows);
        return NULL;
    }
    while ((rc = db_step(stmt)) == 1) {
        json_array_append_new(rows, db_row_json(stmt));
    }
    db_done(stmt);
    if (rc < 0) {
        json_decref(rows);
        return NULL;
    }
    return rows;
}

json_t *
res_load_table(struct db *db, const char *table, const char *uuid)
{
    char *sql = xasprintf("SELECT * FROM %s WHERE uuid = ?1", table);
    json_t *rows = res_select(db, sql, "s", uuid);
    json_t *row = NULL;

    free(sql);
    if (!rows) {
        return NULL;
    }
    if (json_array_size(rows) == 1) {
        row = json_incref(json_array_get(rows, 0));
    } else {
        error_report(PROBLEM_NOT_FOUND, "no %s with UUID '%s'",
                     table_label(table), uuid);
    }
    json_decref(rows);
    return row;
}

json_t *
res_load(struct db *db, const struct resource *res, const char *uuid)
{
    char *sql;
    json_t *rows;
    json_t *row = NULL;

    if (!uuid_is_valid(uuid)) {
        error_report(PROBLEM_NOT_FOUND, "no %s with UUID '%.64s'",
                     res->label, uuid);
        return NULL;
    }
    sql = xasprintf("SELECT * FROM %s WHERE uuid = ?1%s%s", res->table,
                    res->where ? " AND " : "", res->where ? res->where : "");
    rows = res_select(db, sql, "s", uuid);
    free(sql);
    if (!rows) {
        return NULL;
    }
    if (json_array_size(rows) == 1) {
        row = json_incref(json_array_get(rows, 0));
    } else {
        error_report(PROBLEM_NOT_FOUND, "no %s with UUID '%s'", res->label,
                     uuid);
    }
    json_decref(rows);
    return row;
}

void
res_format_dates(json_t *obj)
{
    static const char *const dates[] = { "createDate", "lastOpDate",
                                         "expiredDate" };

    for (size_t i = 0; i < ARRAY_SIZE(dates); i++) {
        json_t *v = json_object_get(obj, dates[i]);

        if (json_is_integer(v)) {
            char buf[64];

            json_object_set_new(obj, dates[i],
                                json_string(time_format(json_integer_value(v),
                                                        buf, sizeof buf)));
        }
    }
}

void
res_row_to_inventory(struct db *db, const struct resource *res, json_t *row)
{
    for (const struct field *f = res->fields; f->name; f++) {
        json_t *v = json_object_get(row, f->name);

        if (!v) {
            continue;
        }
        if (f->flags & F_HIDDEN) {
            json_object_del(row, f->name);
        } else if (f->type == FT_BOOL && json_is_integer(v)) {
            json_object_set_new(row, f->name,
                                json_boolean(json_integer_value(v)));
        }
    }
    res_format_dates(row);
    if (res->inventory) {
        res->inventory(db, row);
    }
}

json_t *
res_inventory(struct db *db, const struct resource *res, const char *uuid)
{
    json_t *row = res_load(db, res, uuid);

    if (row) {
        res_row_to_inventory(db, res, row);
    }
    return row;
}

int
res_reply_inventory(struct api_req *req, const struct resource *res,
                    const char *uuid)
{
    json_t *inv = res_inventory(db_thread(), res, uuid);

    if (!inv) {
        return -1;
    }
    return api_reply(req, 200, json_pack("{s:o}", "inventory", inv));
}

const char *
res_system_tag(json_t *params, const char *tag)
{
    json_t *tags = json_object_get(params, "systemTags");
    size_t n = strlen(tag);
    size_t i;
    json_t *t;

    json_array_foreach(tags, i, t) {
        const char *s = json_string_value(t);

        if (s && !strncmp(s, tag, n) && !strncmp(s + n, "::", 2)) {
            return s + n + 2;
        }
    }
    return NULL;
}

int
res_create_handler(struct api_req *req)
{
    const struct resource *res = req->res;
    struct db *db = db_thread();
    json_t *params = api_params(req);
    json_t *row;
    AUTOFREE char *uuid = NULL;

    if (!params) {
        return 0;
    }
    if (res_check_params(res, params, F_CREATE) < 0 || db_begin(db) < 0) {
        return -1;
    }
    row = res_create_row(db, res, params);
    if (!row) {
        db_rollback(db);
        return -1;
    }
    uuid = xstrdup(json_string_value(json_object_get(row, "uuid")));
    json_decref(row);
    if (db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    LOG_INFO("%s '%s' created", res->label, uuid);
    return res_reply_inventory(req, res, uuid);
}

int
res_get_handler(struct api_req *req)
{
    json_t *inv = res_inventory(db_thread(), req->res, req->args[0]);

    if (!inv) {
        return -1;
    }
    return api_reply(req, 200, json_pack("{s:[o]}", "inventories", inv));
}

/* ---- Queries: ?q=field=value&q=field>value&limit=&start=&sort= ---- */

struct query {
    const struct resource *res;
    struct sbuf where;          /* " AND ..." conditions. */
    json_t *values;             /* Bound values in order. */
};

static const char *const query_ops[] = {
    "!?=", "?=", "!~=", "~=", "!=", ">=", "<=", "=", ">", "<",
};

static int
query_value(const struct field *f, const char *text, json_t **out)
{
    if (f->type == FT_INT || f->type == FT_DATE) {
        char *end;
        long long n = strtoll(text, &end, 10);

        if (!*text || *end) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "q",
                               "q: field '%s' takes an integer, not "
                               "'%.64s'", f->name, text);
            return -1;
        }
        *out = json_integer(n);
    } else if (f->type == FT_BOOL) {
        if (strcmp(text, "true") && strcmp(text, "false")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "q",
                               "q: field '%s' takes true or false",
                               f->name);
            return -1;
        }
        *out = json_integer(!strcmp(text, "true"));
    } else {
        *out = json_string(text);
    }
    return 0;
}

static int
query_add(void *aux, const char *cond)
{
    struct query *q = aux;
    const struct field *f = NULL;
    const char *op = NULL;
    size_t name_len = 0;
    char name[64];
    const char *value;
    json_t *v;

    /* "field is null" / "field not null". */
    for (const char *p = cond; *p; p++) {
        if (*p == ' ') {
            name_len = (size_t) (p - cond);
            if (!strcmp(p, " is null") || !strcmp(p, " not null")) {
                op = p[1] == 'i' ? "IS NULL" : "IS NOT NULL";
            }
            break;
        }
    }
    if (!op) {
        size_t best = strlen(cond);

        for (size_t i = 0; i < ARRAY_SIZE(query_ops); i++) {
            const char *at = strstr(cond, query_ops[i]);

            if (at && ((size_t) (at - cond) < best
                       || ((size_t) (at - cond) == best && op
                           && strlen(query_ops[i]) > strlen(op)))) {
                best = (size_t) (at - cond);
                op = query_ops[i];
            }
        }
        name_len = best;
    }
    if (!op || name_len == 0 || name_len >= sizeof name) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "q",
                           "q: '%.128s' is not a condition such as "
                           "name=VM1", cond);
        return -1;
    }
    memcpy(name, cond, name_len);
    name[name_len] = '\0';
    if (strcmp(name, "uuid") && strcmp(name, "createDate")
        && strcmp(name, "lastOpDate")) {
        f = res_field(q->res, name);
        if (!f || (f->flags & (F_HIDDEN | F_NOCOL)) || f->type == FT_OBJ
            || f->type == FT_STRLIST) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "q",
                               "q: %s has no queryable field '%s'",
                               q->res->label, name);
            return -1;
        }
    }
    if (!strcmp(op, "IS NULL") || !strcmp(op, "IS NOT NULL")) {
        sbuf_addf(&q->where, " AND %s %s", name, op);
        return 0;
    }
    value = cond + name_len + strlen(op);
    if (!strcmp(op, "?=") || !strcmp(op, "!?=")) {
        AUTOFREE char *copy = xstrdup(value);
        char *save = NULL;
        int n = 0;

        sbuf_addf(&q->where, " AND %s %sIN (", name,
                  op[0] == '!' ? "NOT " : "");
        for (char *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (f && query_value(f, tok, &v) < 0) {
                return -1;
            }
            if (!f) {
                v = json_string(tok);
            }
            json_array_append_new(q->values, v);
            sbuf_addf(&q->where, "%s?%zu", n++ ? ", " : "",
                      json_array_size(q->values));
        }
        if (!n) {
            sbuf_addstr(&q->where, "NULL");
        }
        sbuf_addstr(&q->where, ")");
        return 0;
    }
    if (!strcmp(op, "~=") || !strcmp(op, "!~=")) {
        json_array_append_new(q->values, json_string(value));
        sbuf_addf(&q->where, " AND %s %sLIKE ?%zu", name,
                  op[0] == '!' ? "NOT " : "", json_array_size(q->values));
        return 0;
    }
    if (f) {
        if (query_value(f, value, &v) < 0) {
            return -1;
        }
    } else if (strcmp(name, "uuid")) {
        char *end;
        long long n = strtoll(value, &end, 10);

        v = json_integer(n);
    } else {
        v = json_string(value);
    }
    json_array_append_new(q->values, v);
    sbuf_addf(&q->where, " AND %s %s ?%zu", name, op,
              json_array_size(q->values));
    return 0;
}

static int
query_int_arg(struct api_req *req, const char *name, int64_t dflt,
              int64_t max, int64_t *out)
{
    const char *s = api_query_arg(req, name);
    char *end;
    long long n;

    *out = dflt;
    if (!s) {
        return 0;
    }
    n = strtoll(s, &end, 10);
    if (!*s || *end || n < 0 || n > max) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, name,
                           "'%s' must be an integer in 0..%lld", name,
                           (long long) max);
        return -1;
    }
    *out = n;
    return 0;
}

int
res_query_handler(struct api_req *req)
{
    const struct resource *res = req->res;
    struct db *db = db_thread();
    struct query q = { res, { 0 }, json_array() };
    const char *sort = api_query_arg(req, "sort");
    const char *count = api_query_arg(req, "count");
    const char *with_count = api_query_arg(req, "replyWithCount");
    const char *sort_col = "createDate";
    bool desc = false;
    int64_t limit;
    int64_t start;
    int64_t total = -1;
    struct sbuf sql;
    json_t *rows = NULL;
    sqlite3_stmt *stmt;
    int rc = -1;
    size_t i;
    json_t *row;

    sbuf_init(&q.where);
    sbuf_init(&sql);
    if (api_query_each(req, "q", query_add, &q) < 0
        || query_int_arg(req, "limit", QUERY_DEFAULT_LIMIT, QUERY_MAX_LIMIT,
                         &limit) < 0
        || query_int_arg(req, "start", 0, INT32_MAX, &start) < 0) {
        goto out;
    }
    if (sort) {
        const struct field *f;

        desc = sort[0] == '-';
        if (sort[0] == '-' || sort[0] == '+') {
            sort++;
        }
        f = res_field(res, sort);
        if (strcmp(sort, "createDate") && strcmp(sort, "lastOpDate")
            && strcmp(sort, "uuid")
            && (!f || (f->flags & (F_HIDDEN | F_NOCOL)))) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "sort",
                               "sort: %s has no field '%.64s'", res->label,
                               sort);
            goto out;
        }
        sort_col = f ? f->name : sort;
    }
    if ((count && !strcmp(count, "true"))
        || (with_count && !strcmp(with_count, "true"))) {
        sbuf_addf(&sql, "SELECT count(*) FROM %s WHERE 1%s%s%s", res->table,
                  res->where ? " AND " : "", res->where ? res->where : "",
                  q.where.s);
        stmt = db_stmt_json(db, sql.s, q.values);
        if (!stmt || db_step(stmt) < 0) {
            db_done(stmt);
            goto out;
        }
        total = db_col_int(stmt, 0);
        db_done(stmt);
        if (count && !strcmp(count, "true")) {
            rc = api_reply(req, 200, json_pack("{s:I}", "total",
                                               (json_int_t) total));
            goto out;
        }
    }
    sbuf_destroy(&sql);
    sbuf_init(&sql);
    sbuf_addf(&sql, "SELECT * FROM %s WHERE 1%s%s%s ORDER BY %s %s, rowid "
              "%s LIMIT %lld OFFSET %lld", res->table,
              res->where ? " AND " : "", res->where ? res->where : "",
              q.where.s, sort_col, desc ? "DESC" : "ASC",
              desc ? "DESC" : "ASC", (long long) limit, (long long) start);
    stmt = db_stmt_json(db, sql.s, q.values);
    if (!stmt) {
        goto out;
    }
    rows = json_array();
    while ((rc = db_step(stmt)) == 1) {
        json_array_append_new(rows, db_row_json(stmt));
    }
    db_done(stmt);
    if (rc < 0) {
        goto out;
    }
    json_array_foreach(rows, i, row) {
        res_row_to_inventory(db, res, row);
    }
    if (total >= 0) {
        rc = api_reply(req, 200, json_pack("{s:O, s:I}", "inventories", rows,
                                           "total", (json_int_t) total));
    } else {
        rc = api_reply(req, 200, json_pack("{s:O}", "inventories", rows));
    }

out:
    json_decref(rows);
    json_decref(q.values);
    sbuf_destroy(&q.where);
    sbuf_destroy(&sql);
    return rc;
}

/* ---- Delete ---- */

int
res_delete_handler(struct api_req *req)
{
    const struct resource *res = req->res;
    struct db *db = db_thread();
    json_t *row;
    char *sql;
    int rc;

    if (!uuid_is_valid(req->args[0])) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "'%.64s' is not a UUID of 32 hex digits", req->args[0]);
        return -1;
    }
    if (db_begin(db) < 0) {
        return -1;
    }
    row = res_load(db, res, req->args[0]);
    if (!row) {
        if (error_last_problem() == PROBLEM_NOT_FOUND) {
            /* Deleting what is already gone succeeds, as in ZStack. */
            db_rollback(db);
            return api_reply(req, 200, json_object());
        }
        db_rollback(db);
        return -1;
    }
    for (const struct res_dep *d = res->deps; d && d->label; d++) {
        json_t *deps = res_select(db, d->sql, "s", req->args[0]);

        if (!deps) {
            db_rollback(db);
            json_decref(row);
            return -1;
        }
        if (json_array_size(deps) > 0) {
            json_t *dep = json_array_get(deps, 0);
            const char *dname = json_string_value(json_object_get(dep,
                                                                  "name"));
            const char *duuid = json_string_value(json_object_get(dep,
                                                                  "uuid"));

            error_report(PROBLEM_CONFLICT,
                         "cannot delete %s '%s' (%s): %s '%s' (%s) still "
                         "uses it", res->label,
                         json_string_value(json_object_get(row, "name")),
                         req->args[0], d->label, dname ? dname : "",
                         duuid ? duuid : "");
            json_decref(deps);
            json_decref(row);
            db_rollback(db);
            return -1;
        }
        json_decref(deps);
    }
    if (res->before_delete && res->before_delete(db, row) < 0) {
        json_decref(row);
        db_rollback(db);
        return -1;
    }
    sql = xasprintf("DELETE FROM %s WHERE uuid = ?1", res->table);
    rc = db_exec(db, sql, "s", req->args[0]);
    free(sql);
    json_decref(row);
    if (rc < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    LOG_INFO("%s '%s' deleted", res->label, req->args[0]);
    return api_reply(req, 200, json_object());
}

/* ---- Actions: PUT .../{uuid}/actions {"<action>": {...}} ---- */

static int
res_update(struct api_req *req, json_t *params)
{
    const struct resource *res = req->res;
    struct db *db = db_thread();
    json_t *row;
    const char *key;
    json_t *v;
    json_t *changes;
    int rc;

    if (res_check_params(res, params, F_UPDATE) < 0) {
        return -1;
    }
    if (db_begin(db) < 0) {
        return -1;
    }
    row = res_load(db, res, req->args[0]);
    if (!row) {
        db_rollback(db);
        return -1;
    }
    changes = json_object();
    json_object_foreach(params, key, v) {
        if (res_field(res, key) && !json_is_null(v)) {
            json_object_set(changes, key, v);
        }
    }
    rc = res->before_update ? res->before_update(db, row, changes) : 0;
    if (!rc && json_object_size(changes)) {
        rc = res_update_row(db, res->table, req->args[0], changes);
    }
    json_decref(changes);
    json_decref(row);
    if (rc < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, res, req->args[0]);
}

static int
res_change_state(struct api_req *req, json_t *params)
{
    const struct resource *res = req->res;
    struct db *db = db_thread();
    json_t *ev = json_object_get(params, "stateEvent");
    const char *key;
    json_t *v;
    const char *state;
    json_t *row;
    json_t *changes;
    int rc;

    json_object_foreach(params, key, v) {
        if (strcmp(key, "stateEvent") && strcmp(key, "systemTags")
            && strcmp(key, "userTags")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    if (!json_is_string(ev)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "stateEvent",
                           "field 'stateEvent' must be 'enable' or "
                           "'disable'");
        return -1;
    }
    if (!strcmp(json_string_value(ev), "enable")) {
        state = "Enabled";
    } else if (!strcmp(json_string_value(ev), "disable")) {
        state = "Disabled";
    } else {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "stateEvent",
                           "field 'stateEvent': '%.32s' is not 'enable' or "
                           "'disable'", json_string_value(ev));
        return -1;
    }
    if (db_begin(db) < 0) {
        return -1;
    }
    row = res_load(db, res, req->args[0]);
    if (!row) {
        db_rollback(db);
        return -1;
    }
    changes = json_pack("{s:s}", "state", state);
    rc = res->before_update ? res->before_update(db, row, changes) : 0;
    if (!rc) {
        rc = res_update_row(db, res->table, req->args[0], changes);
    }
    json_decref(changes);
    json_decref(row);
    if (rc < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, res, req->args[0]);
}

int
res_action_handler(struct api_req *req)
{
    const struct resource *res = req->res;
    const char *action = NULL;
    json_t *params = NULL;
    char name[128];
    const char *key;
    json_t *v;

    if (!req->body || json_object_size(req->body) != 1) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "the body must hold exactly one action, e.g. "
                     "{\"update%s\":{\"name\":\"...\"}}", res->kind);
        return -1;
    }
    json_object_foreach(req->body, key, v) {
        action = key;
        params = v;
    }
    if (!json_is_object(params)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, action,
                           "action '%.64s' takes a JSON object", action);
        return -1;
    }
    if (!uuid_is_valid(req->args[0])) {
        error_report(PROBLEM_NOT_FOUND, "no %s with UUID '%.64s'",
                     res->label, req->args[0]);
        return -1;
    }
    for (const struct res_action *a = res->actions; a && a->name; a++) {
        if (!strcmp(a->name, action)) {
            return a->fn(req, params);
        }
    }
    snprintf(name, sizeof name, "update%s", res->kind);
    if (!strcmp(action, name)) {
        return res_update(req, params);
    }
    snprintf(name, sizeof name, "change%sState", res->kind);
    if (res->has_state && !strcmp(action, name)) {
        return res_change_state(req, params);
    }
    error_report_field(PROBLEM_INVALID_ARGUMENT, action,
                       "unknown action '%.64s' for %s", action, res->label);
    return -1;
}

/* ---- Attachments ---- */

static const char *
row_zone(const struct resource *res, json_t *row)
{
    if (!strcmp(res->table, "zone")) {
        return json_string_value(json_object_get(row, "uuid"));
    }
    return json_string_value(json_object_get(row, "zoneUuid"));
}

static int
link_load(struct api_req *req, const struct res_link *l, json_t **r0,
          json_t **r1)
{
    struct db *db = db_thread();

    *r0 = res_load(db, l->res0, req->args[0]);
    *r1 = *r0 ? res_load(db, l->res1, req->args[1]) : NULL;
    if (!*r0 || !*r1) {
        json_decref(*r0);
        *r0 = NULL;
        return -1;
    }
    return 0;
}

static const char *
row_name(json_t *row)
{
    return json_string_value(json_object_get(row, "name"));
}

static int
link_delete(struct db *db, const struct res_link *l, const char *u0,
            const char *u1)
{
    char *sql = xasprintf("DELETE FROM %s WHERE %s = ?1 AND %s = ?2",
                          l->table, l->col0, l->col1);
    int changed = db_exec(db, sql, "ss", u0, u1);

    free(sql);
    return changed;
}

static json_t *
link_ctx(const struct res_link *l, struct api_req *req, bool attach)
{
    return json_pack("{s:I, s:s, s:s, s:b}", "link",
                     (json_int_t) (intptr_t) l, "uuid0", req->args[0],
                     "uuid1", req->args[1], "attach", attach);
}

/* The job of an attach or detach with host work. */
static json_t *
link_job(struct job *job, json_t *ctx, int *status)
{
    const struct res_link *l = (const struct res_link *) (intptr_t)
        json_integer_value(json_object_get(ctx, "link"));
    const char *u0 = json_string_value(json_object_get(ctx, "uuid0"));
    const char *u1 = json_string_value(json_object_get(ctx, "uuid1"));
    struct db *db = db_thread();
    json_t *inv;

    if (json_is_true(json_object_get(ctx, "attach"))) {
        if (l->attach_hosts(job, u0, u1) < 0) {
            struct error_saved e;

            error_save(&e);
            if (db_begin(db) == 0 && link_delete(db, l, u0, u1) >= 0) {
                db_commit(db);
            }
            db_rollback(db);
            error_restore(&e);
            error_prefix("the attachment was undone: ");
            return NULL;
        }
    } else {
        if (l->detach_hosts(job, u0, u1) < 0) {
            return NULL;
        }
        if (db_begin(db) < 0 || link_delete(db, l, u0, u1) < 0
            || db_commit(db) < 0) {
            db_rollback(db);
            return NULL;
        }
    }
    inv = res_inventory(db, l->reply, l->reply == l->res0 ? u0 : u1);
    if (!inv) {
        return NULL;
    }
    *status = 200;
    return json_pack("{s:o}", "inventory", inv);
}

int
res_link_attach(struct api_req *req)
{
    const struct res_link *l = req->route_data;
    struct db *db = db_thread();
    json_t *r0 = NULL;
    json_t *r1 = NULL;
    char *sql;
    int64_t n;
    int rc = -1;
    const char *z0;
    const char *z1;

    if (db_begin(db) < 0) {
        return -1;
    }
    if (link_load(req, l, &r0, &r1) < 0) {
        goto out;
    }
    z0 = row_zone(l->res0, r0);
    z1 = row_zone(l->res1, r1);
    if (z0 && z1 && strcmp(z0, z1)) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "%s '%s' and %s '%s' are in different zones",
                     l->res0->label, row_name(r0), l->res1->label,
                     row_name(r1));
        goto out;
    }
    sql = xasprintf("SELECT count(*) FROM %s WHERE %s = ?1 AND %s = ?2",
                    l->table, l->col0, l->col1);
    rc = db_int(db, &n, 0, sql, "ss", req->args[0], req->args[1]);
    free(sql);
    if (rc < 0) {
        goto out;
    }
    rc = -1;
    if (n > 0) {
        error_report(PROBLEM_CONFLICT, "%s '%s' is already attached to %s "
                     "'%s'", l->res1->label, row_name(r1), l->res0->label,
                     row_name(r0));
        goto out;
    }
    sql = xasprintf("INSERT INTO %s (%s, %s) VALUES (?1, ?2)", l->table,
                    l->col0, l->col1);
    rc = db_exec(db, sql, "ss", req->args[0], req->args[1]) < 0 ? -1 : 0;
    free(sql);
    if (!rc) {
        rc = db_commit(db);
    }

out:
    json_decref(r0);
    json_decref(r1);
    if (rc < 0) {
        db_rollback(db);
        return -1;
    }
    LOG_INFO("%s '%s' attached to %s '%s'", l->res1->label, req->args[1],
             l->res0->label, req->args[0]);
    if (l->attach_hosts) {
        return job_submit(req, l->attach_api, req->args[1], link_job,
                          link_ctx(l, req, true));
    }
    return res_reply_inventory(req, l->reply,
                               req->args[l->reply == l->res0 ? 0 : 1]);
}

int
res_link_detach(struct api_req *req)
{
    const struct res_link *l = req->route_data;
    struct db *db = db_thread();
    json_t *r0 = NULL;
    json_t *r1 = NULL;
    int changed;
    int rc = -1;

    if (db_begin(db) < 0) {
        return -1;
    }
    if (link_load(req, l, &r0, &r1) < 0) {
        goto out;
    }
    if (l->before_detach
        && l->before_detach(db, req->args[0], req->args[1]) < 0) {
        goto out;
    }
    if (l->detach_hosts) {
        int64_t n;
        char *q = xasprintf("SELECT count(*) FROM %s WHERE %s = ?1 AND "
                            "%s = ?2", l->table, l->col0, l->col1);

        rc = db_int(db, &n, 0, q, "ss", req->args[0], req->args[1]);
        free(q);
        if (rc < 0) {
            goto out;
        }
        rc = -1;
        if (!n) {
            error_report(PROBLEM_CONFLICT, "%s '%s' is not attached to %s "
                         "'%s'", l->res1->label, row_name(r1),
                         l->res0->label, row_name(r0));
            goto out;
        }
        json_decref(r0);
        json_decref(r1);
        db_rollback(db);
        return job_submit(req, l->detach_api, req->args[1], link_job,
                          link_ctx(l, req, false));
    }
    changed = link_delete(db, l, req->args[0], req->args[1]);
    if (changed < 0) {
        goto out;
    }
    if (changed == 0) {
        error_report(PROBLEM_CONFLICT, "%s '%s' is not attached to %s '%s'",
                     l->res1->label, row_name(r1), l->res0->label,
                     row_name(r0));
        goto out;
    }
    rc = db_commit(db);

out:
    json_decref(r0);
    json_decref(r1);
    if (rc < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, l->reply,
                               req->args[l->reply == l->res0 ? 0 : 1]);
}

json_t *
res_string_list(struct db *db, const char *sql, const char *col,
                const char *arg)
{
    json_t *rows = res_select(db, sql, "s", arg);
    json_t *out = json_array();
    size_t i;
    json_t *row;

    json_array_foreach(rows, i, row) {
        json_array_append(out, json_object_get(row, col));
    }
    json_decref(rows);
    return out;
}
