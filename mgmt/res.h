/* res.h: the generic resource machinery behind most API routes.
 *
 * A resource is described once (struct resource): its table, its fields
 * with types and rules, what depends on it, and hooks for the rules that do
 * not fit a table.  From that description res.c serves create, query, get,
 * update, change-state and delete the same way for every resource, and the
 * CLI builds its options and tables.  The table's column names are the
 * API's field names. */
#ifndef MGMT_RES_H
#define MGMT_RES_H 1

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct api_req;
struct db;
struct job;

enum ftype {
    FT_STR,                     /* JSON string. */
    FT_INT,                     /* JSON integer. */
    FT_BOOL,                    /* JSON boolean (stored as 0/1). */
    FT_UUID,                    /* JSON string of 32 hex digits. */
    FT_STRLIST,                 /* JSON array of strings. */
    FT_DATE,                    /* Stored as ms, shown as ZStack's date. */
    FT_OBJ,                     /* Any JSON object (checked by a hook). */
};

#define F_REQ      0x01         /* Required on create. */
#define F_CREATE   0x02         /* Accepted on create. */
#define F_UPDATE   0x04         /* Accepted by update<Kind>. */
#define F_HIDDEN   0x08         /* Column never shown in inventories. */
#define F_NOCOL    0x10         /* A parameter only, not a column. */
#define F_SIZE     0x20         /* CLI accepts 512M, 1G... */
#define F_SECRET   0x40         /* Wiped after use; never echoed. */

struct field {
    const char *name;           /* API name = column name. */
    enum ftype type;
    unsigned flags;             /* F_* */
    const char *ref;            /* Table an FT_UUID (or list) names. */
    const char *const *choices; /* NULL-terminated allowed strings. */
    int64_t min;                /* FT_INT bounds, unless both are 0. */
    int64_t max;
    int (*check)(const char *field, const char *value);
    const char *dflt;           /* Default, as text, for columns. */
};

/* Something that blocks a delete (409): 'sql' selects (uuid, name) of the
 * dependents of the row whose uuid is bound as ?1. */
struct res_dep {
    const char *label;          /* "cluster", for messages. */
    const char *sql;
};

/* An extra PUT .../actions verb. */
struct res_action {
    const char *name;           /* e.g. "startVmInstance". */
    int (*fn)(struct api_req *req, json_t *params);
};

struct resource {
    const char *kind;           /* "Zone": update<Kind>, change<Kind>State. */
    const char *label;          /* "zone", for messages. */
    const char *table;          /* SQL table. */
    const char *path;           /* REST collection below /zstack/v1. */
    const char *where;          /* Fixed SQL filter of this view or NULL. */
    const struct field *fields; /* Ends with a zeroed entry. */
    const struct res_dep *deps; /* Ends with a zeroed entry; may be NULL. */
    const char *const *columns; /* Columns of the CLI's table. */
    bool has_state;             /* Has an Enabled/Disabled 'state'. */
    /* Validates what the field table cannot and completes 'row' (the
     * columns to insert).  Runs inside the create transaction before any
     * write; returns -1 with an error reported to refuse. */
    int (*prepare)(struct db *db, json_t *params, json_t *row);
    /* Writes what goes beside the row (refs, IPs, NICs). */
    int (*after_insert)(struct db *db, json_t *params, json_t *row);
    /* Adds nested data to an inventory built from a row. */
    void (*inventory)(struct db *db, json_t *inv);
    /* Runs in the delete transaction after the dependency checks. */
    int (*before_delete)(struct db *db, json_t *row);
    /* Checks an update; 'changes' holds the new values. */
    int (*before_update)(struct db *db, json_t *row, json_t *changes);
    const struct res_action *actions; /* Ends with a zeroed entry. */
};

/* Generic route handlers; req->res names the resource. */
int res_create_handler(struct api_req *req);
int res_query_handler(struct api_req *req);
int res_get_handler(struct api_req *req);
int res_delete_handler(struct api_req *req);
int res_action_handler(struct api_req *req);

/* Checks 'params' against the fields of 'res' accepted under 'mask'
 * (F_CREATE or F_UPDATE): unknown fields, JSON types, bounds, choices,
 * names and required fields.  No database access. */
int res_check_params(const struct resource *res, json_t *params,
                     unsigned mask);

/* Checks that every uuid field of 'params' that names a table exists. */
int res_check_refs(struct db *db, const struct resource *res,
                   json_t *params);

/* Creates a row from checked 'params': validation hooks, insert, refs.
 * Runs inside an open transaction.  Returns the new row (caller owns) or
 * NULL. */
json_t *res_create_row(struct db *db, const struct resource *res,
                       json_t *params);

/* Loads the row 'uuid' of 'res' as JSON (caller owns), NULL if absent or
 * on error (error_last_problem() tells: not-found when absent). */
json_t *res_load(struct db *db, const struct resource *res,
                 const char *uuid);

/* Like res_load() on any table by uuid, without a view filter. */
json_t *res_load_table(struct db *db, const char *table, const char *uuid);

/* The inventory of row 'uuid' (caller owns), or NULL. */
json_t *res_inventory(struct db *db, const struct resource *res,
                      const char *uuid);

/* Turns a loaded row into its inventory in place. */
void res_row_to_inventory(struct db *db, const struct resource *res,
                          json_t *row);

/* Replaces createDate/lastOpDate/expiredDate integers by ZStack dates. */
void res_format_dates(json_t *obj);

/* Inserts 'row' into 'table'; keys must come from the program. */
int res_insert(struct db *db, const char *table, json_t *row);

/* Sets the columns in 'changes' (and lastOpDate) of row 'uuid'. */
int res_update_row(struct db *db, const char *table, const char *uuid,
                   json_t *changes);

/* Replies {"inventory": inv of uuid} with 200. */
int res_reply_inventory(struct api_req *req, const struct resource *res,
                        const char *uuid);

/* Reads a JSON array of rows for 'sql' (bound per db_stmt 'types'). */
json_t *res_select(struct db *db, const char *sql, const char *types, ...);

/* Looks a field up by name; NULL if unknown. */
const struct field *res_field(const struct resource *res, const char *name);

/* The "hostname::x" system tag value, or NULL. */
const char *res_system_tag(json_t *params, const char *tag);

/* All resources, for the CLI and docs; ends with NULL. */
extern const struct resource *const res_all[];

/* An attachment between two resources, kept in 'table' as the pair
 * ('col0', 'col1'), where the route's path arguments give the uuids of
 * 'res0' and 'res1' in that order.  Both must be in one zone (a zone
 * resource is its own zone).  The reply is the inventory of 'reply'. */
struct res_link {
    const char *table;
    const char *col0;
    const struct resource *res0;
    const char *col1;
    const struct resource *res1;
    const struct resource *reply;  /* res0 or res1. */
    /* Optional check before a detach; -1 refuses. */
    int (*before_detach)(struct db *db, const char *uuid0,
                         const char *uuid1);
    /* Optional host work.  With it, attach and detach are API jobs (202):
     * attach_hosts runs after the attachment is recorded and undoes it
     * when it fails; detach_hosts runs before the record goes and keeps
     * it when it fails.  'api' names the job. */
    int (*attach_hosts)(struct job *job, const char *uuid0,
                        const char *uuid1);
    int (*detach_hosts)(struct job *job, const char *uuid0,
                        const char *uuid1);
    const char *attach_api;
    const char *detach_api;
};

/* Route handlers; req->route_data is a struct res_link. */
int res_link_attach(struct api_req *req);
int res_link_detach(struct api_req *req);

/* The values of column 'col' of the rows 'sql' selects with ?1 = 'arg',
 * as a JSON array (empty on error). */
json_t *res_string_list(struct db *db, const char *sql, const char *col,
                        const char *arg);

#endif
