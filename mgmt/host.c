/* host.c: KVM hosts.  AddKVMHost is a job (202 + api-jobs location): the
 * request is checked and the host recorded at once, and the job brings the
 * host up.  Until the SSH bootstrap lands (issue 3) the job records the
 * host and leaves it Disconnected; the root password is checked for shape,
 * used by nobody, wiped and never stored. */
#include "resources.h"

#include <string.h>

#include "api.h"
#include "db.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "validate.h"

LOG_MODULE("mgmt.host");

static const char *const usernames[] = { "root", NULL };

static int
check_fingerprint(const char *field, const char *s)
{
    if (strncmp(s, "SHA256:", 7) || strlen(s) < 20 || strlen(s) > 64) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' must be an OpenSSH SHA256 "
                           "fingerprint such as 'SHA256:3k8...'", field);
        return -1;
    }
    return 0;
}

static const struct field host_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "clusterUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "cluster" },
    { .name = "zoneUuid", .type = FT_UUID },
    { .name = "managementIp", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .check = validate_host_address },
    { .name = "username", .type = FT_STR, .flags = F_CREATE,
      .choices = usernames, .dflt = "root" },
    { .name = "password", .type = FT_STR,
      .flags = F_REQ | F_CREATE | F_NOCOL | F_SECRET },
    { .name = "sshPort", .type = FT_INT, .flags = F_CREATE | F_UPDATE,
      .min = 1, .max = 65535, .dflt = "22" },
    { .name = "sshHostKeyFingerprint", .type = FT_STR, .flags = F_CREATE,
      .check = check_fingerprint },
    { .name = "hypervisorType", .type = FT_STR, .dflt = "KVM" },
    RES_STATE_FIELD,
    { .name = "status", .type = FT_STR, .dflt = "Connecting" },
    { .name = "totalCpuCapacity", .type = FT_INT },
    { .name = "availableCpuCapacity", .type = FT_INT },
    { .name = "totalMemoryCapacity", .type = FT_INT },
    { .name = "availableMemoryCapacity", .type = FT_INT },
    { 0 },
};

static int
host_prepare(struct db *db, json_t *params, json_t *row)
{
    const char *ip = json_string_value(json_object_get(params,
                                                       "managementIp"));
    json_t *cluster = res_load_table(db, "cluster",
                                     json_string_value(
                                         json_object_get(params,
                                                         "clusterUuid")));
    json_t *dup;

    if (!cluster) {
        return -1;
    }
    json_object_set(row, "zoneUuid", json_object_get(cluster, "zoneUuid"));
    json_decref(cluster);
    dup = res_select(db, "SELECT uuid, name FROM host WHERE managementIp = "
                     "?1", "s", ip);
    if (!dup) {
        return -1;
    }
    if (json_array_size(dup)) {
        json_t *h = json_array_get(dup, 0);

        error_report_field(PROBLEM_CONFLICT, "managementIp",
                           "field 'managementIp': host '%s' (%s) already "
                           "has the management IP '%s'",
                           json_string_value(json_object_get(h, "name")),
                           json_string_value(json_object_get(h, "uuid")),
                           ip);
        json_decref(dup);
        return -1;
    }
    json_decref(dup);
    return 0;
}

static const struct res_dep host_deps[] = {
    { "VM instance",
      "SELECT uuid, name FROM vmInstance WHERE hostUuid = ?1 "
      "AND state NOT IN ('Destroyed', 'Stopped')" },
    { 0 },
};

static int
host_before_delete(struct db *db, json_t *row)
{
    const char *uuid = json_string_value(json_object_get(row, "uuid"));

    return db_exec(db, "UPDATE vmInstance SET hostUuid = NULL WHERE "
                   "hostUuid = ?1", "s", uuid) < 0 ? -1 : 0;
}

static const char *const host_columns[] = {
    "uuid", "name", "managementIp", "state", "status", "clusterUuid", NULL
};

const struct resource host_resource = {
    .kind = "Host",
    .label = "host",
    .table = "host",
    .path = "hosts",
    .fields = host_fields,
    .deps = host_deps,
    .columns = host_columns,
    .has_state = true,
    .prepare = host_prepare,
    .before_delete = host_before_delete,
};

/* The job of AddKVMHost.  The SSH bootstrap (issue 3) plugs in here; for
 * now the host is a record and is reported Disconnected. */
static json_t *
host_add_job(struct job *job, json_t *ctx, int *status)
{
    struct db *db = db_thread();
    const char *uuid = json_string_value(json_object_get(ctx, "uuid"));
    json_t *inv;

    job_progress(job, "host recorded; SSH bootstrap is not available in "
                 "this version, the host stays Disconnected");
    if (db_begin(db) < 0
        || db_exec(db, "UPDATE host SET status = 'Disconnected', "
                   "lastOpDate = ?1 WHERE uuid = ?2", "is",
                   time_wall_msec(), uuid) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return NULL;
    }
    inv = res_inventory(db, &host_resource, uuid);
    if (!inv) {
        return NULL;
    }
    *status = 200;
    return json_pack("{s:o}", "inventory", inv);
}

int
host_add(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = api_params(req);
    json_t *password;
    json_t *row;
    AUTOFREE char *uuid = NULL;

    if (!params) {
        return 0;
    }
    password = json_object_get(params, "password");
    if (res_check_params(&host_resource, params, F_CREATE) < 0
        || db_begin(db) < 0) {
        goto fail;
    }
    row = res_create_row(db, &host_resource, params);
    if (!row) {
        db_rollback(db);
        goto fail;
    }
    uuid = xstrdup(json_string_value(json_object_get(row, "uuid")));
    json_decref(row);
    if (db_commit(db) < 0) {
        db_rollback(db);
        goto fail;
    }
    if (json_is_string(password)) {
        secure_wipe((char *) json_string_value(password),
                    json_string_length(password));
    }
    LOG_INFO("host '%s' added", uuid);
    return job_submit(req, "AddKVMHost", uuid, host_add_job,
                      json_pack("{s:s}", "uuid", uuid));

fail:
    if (json_is_string(password)) {
        secure_wipe((char *) json_string_value(password),
                    json_string_length(password));
    }
    return -1;
}
