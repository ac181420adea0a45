/* host.c: KVM hosts.  AddKVMHost is a job (202 + api-jobs location): the
 * request is checked and the host recorded at once (status Connecting), and
 * the job bootstraps it over SSH (hostmgr.c).  The root password travels
 * only in the job's memory, is wiped after use and never stored; a failed
 * add removes the record so a new add starts clean. */
#include "resources.h"

#include <string.h>

#include "api.h"
#include "db.h"
#include "hostmgr.h"
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
    { .name = "cpuNum", .type = FT_INT },
    { .name = "architecture", .type = FT_STR },
    { .name = "osRelease", .type = FT_STR },
    { .name = "kernelVersion", .type = FT_STR },
    { .name = "libvirtVersion", .type = FT_STR },
    { .name = "qemuVersion", .type = FT_STR },
    { .name = "kvmAvailable", .type = FT_BOOL },
    { .name = "agentVersion", .type = FT_STR },
    { .name = "lastError", .type = FT_STR },
    { .name = "lastConnectDate", .type = FT_INT, .flags = F_HIDDEN },
    { .name = "added", .type = FT_INT, .flags = F_HIDDEN },
    { .name = "playbookHash", .type = FT_STR, .flags = F_HIDDEN },
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

static int host_reconnect(struct api_req *req, json_t *params);
static int host_trust_key(struct api_req *req, json_t *params);
static int host_change_state(struct api_req *req, json_t *params);

static int host_update_kvm(struct api_req *req, json_t *params);

static const struct res_action host_actions[] = {
    { "updateKVMHost", host_update_kvm },
    { "updateHost", host_update_kvm },
    { "reconnectHost", host_reconnect },
    { "trustHostKey", host_trust_key },
    { "changeHostState", host_change_state },
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
    .actions = host_actions,
};

static int
check_only(json_t *params, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(params, key, v) {
        bool ok = !strcmp(key, "systemTags") || !strcmp(key, "userTags");

        for (const char *const *a = allowed; a && *a; a++) {
            ok |= !strcmp(*a, key);
        }
        if (!ok) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    return 0;
}

static int
host_exists(struct api_req *req)
{
    json_t *row = res_load(db_thread(), &host_resource, req->args[0]);

    json_decref(row);
    return row ? 0 : -1;
}

/* ReconnectHost: drop the session and connect again now; answers once the
 * host is Connected again or the attempt failed. */
static int
host_reconnect(struct api_req *req, json_t *params)
{
    if (check_only(params, NULL) < 0 || host_exists(req) < 0) {
        return -1;
    }
    if (hostmgr_reconnect(req->args[0], false, NULL, 120000) < 0) {
        return -1;
    }
    return res_reply_inventory(req, &host_resource, req->args[0]);
}

/* trustHostKey: the operator accepts the host's new SSH key, either the
 * one given in sshHostKeyFingerprint or, without it, whatever key the host
 * presents now (trust on first use again). */
static int
host_trust_key(struct api_req *req, json_t *params)
{
    static const char *const allowed[] = { "sshHostKeyFingerprint", NULL };
    json_t *fp = json_object_get(params, "sshHostKeyFingerprint");

    if (check_only(params, allowed) < 0) {
        return -1;
    }
    if (fp && (!json_is_string(fp)
               || check_fingerprint("sshHostKeyFingerprint",
                                    json_string_value(fp)) < 0)) {
        if (!json_is_string(fp)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT,
                               "sshHostKeyFingerprint",
                               "field 'sshHostKeyFingerprint' must be a "
                               "string");
        }
        return -1;
    }
    if (host_exists(req) < 0) {
        return -1;
    }
    LOG_WARN("host %s: host key re-trusted by the operator (%s)",
             req->args[0], fp ? json_string_value(fp) : "first use");
    if (hostmgr_reconnect(req->args[0], true, json_string_value(fp),
                          120000) < 0) {
        return -1;
    }
    return res_reply_inventory(req, &host_resource, req->args[0]);
}

static int
host_change_state(struct api_req *req, json_t *params)
{
    static const char *const allowed[] = { "stateEvent", NULL };
    const char *ev = json_string_value(json_object_get(params,
                                                       "stateEvent"));
    const char *state;
    struct db *db = db_thread();

    if (check_only(params, allowed) < 0) {
        return -1;
    }
    if (!ev) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "stateEvent",
                           "field 'stateEvent' must be enable, disable or "
                           "maintain");
        return -1;
    }
    if (!strcmp(ev, "enable")) {
        state = "Enabled";
    } else if (!strcmp(ev, "disable")) {
        state = "Disabled";
    } else if (!strcmp(ev, "maintain")) {
        state = "Maintenance";
    } else {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "stateEvent",
                           "field 'stateEvent': '%.32s' is not enable, "
                           "disable or maintain", ev);
        return -1;
    }
    if (db_begin(db) < 0) {
        return -1;
    }
    if (host_exists(req) < 0
        || db_exec(db, "UPDATE host SET state = ?1, lastOpDate = ?2 WHERE "
                   "uuid = ?3", "sis", state, time_wall_msec(),
                   req->args[0]) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, &host_resource, req->args[0]);
}

/* DeleteHost: closes the agent channel first, then removes the record
 * (the host keeps its installed packages). */
int
host_delete(struct api_req *req)
{
    bool managed = uuid_is_valid(req->args[0]);
    int rc;

    if (managed) {
        hostmgr_forget(req->args[0]);
    }
    rc = res_delete_handler(req);
    if (managed && req->status != 200) {
        json_t *row = res_load_table(db_thread(), "host", req->args[0]);

        if (row) {
            hostmgr_reconnect(req->args[0], false, NULL, 0);
            json_decref(row);
        }
    }
    return rc;
}

static void
wipe_json_string(json_t *v)
{
    if (json_is_string(v)) {
        secure_wipe((char *) json_string_value(v), json_string_length(v));
    }
}

/* The job of AddKVMHost: SSH bootstrap, playbook, agent (hostmgr.c). */
static json_t *
host_add_job(struct job *job, json_t *ctx, int *status)
{
    const char *uuid = json_string_value(json_object_get(ctx, "uuid"));
    json_t *inv;
    int rc;

    rc = hostmgr_bootstrap(job, uuid,
                           json_string_value(json_object_get(ctx,
                                                             "password")),
                           json_string_value(json_object_get(
                                                 ctx, "fingerprint")));
    wipe_json_string(json_object_get(ctx, "password"));
    json_object_del(ctx, "password");
    if (rc < 0) {
        return NULL;
    }
    inv = res_inventory(db_thread(), &host_resource, uuid);
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
    json_t *ctx;
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
    LOG_INFO("host '%s' recorded; bootstrapping it", uuid);
    /* A copy: the request's own string is wiped right after. */
    ctx = json_pack("{s:s, s:s, s:O?}", "uuid", uuid, "password",
                    json_string_value(password), "fingerprint",
                    json_object_get(params, "sshHostKeyFingerprint"));
    wipe_json_string(password);
    return job_submit(req, "AddKVMHost", uuid, host_add_job, ctx);

fail:
    wipe_json_string(password);
    return -1;
}

/* The job of an UpdateKVMHost that carries a password. */
static json_t *
host_rekey_job(struct job *job, json_t *ctx, int *status)
{
    const char *uuid = json_string_value(json_object_get(ctx, "uuid"));
    json_t *inv;
    int rc = hostmgr_rekey(job, uuid,
                           json_string_value(json_object_get(ctx,
                                                             "password")));

    wipe_json_string(json_object_get(ctx, "password"));
    json_object_del(ctx, "password");
    if (rc < 0) {
        return NULL;
    }
    inv = res_inventory(db_thread(), &host_resource, uuid);
    if (!inv) {
        return NULL;
    }
    *status = 200;
    return json_pack("{s:o}", "inventory", inv);
}

/* UpdateKVMHost (also updateHost): name, description and sshPort change
 * the record; a password (used once, never stored) re-installs mgmt's key
 * when it was lost on the host, in a job. */
static int
host_update_kvm(struct api_req *req, json_t *params)
{
    struct db *db = db_thread();
    json_t *pw = json_object_get(params, "password");
    json_t *changes = json_deep_copy(params);
    json_t *row;
    json_t *ctx;
    int rc;

    wipe_json_string(json_object_get(changes, "password"));
    json_object_del(changes, "password");
    if (pw && !json_is_string(pw)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "password",
                           "field 'password' must be a string");
        rc = -1;
        goto out;
    }
    rc = res_check_params(&host_resource, changes, F_UPDATE);
    if (rc < 0 || (rc = db_begin(db)) < 0) {
        goto out;
    }
    row = res_load(db, &host_resource, req->args[0]);
    json_object_del(changes, "systemTags");
    json_object_del(changes, "userTags");
    rc = !row ? -1 : json_object_size(changes)
                     ? res_update_row(db, "host", req->args[0], changes)
                     : 0;
    json_decref(row);
    if (rc < 0 || (rc = db_commit(db)) < 0) {
        db_rollback(db);
        goto out;
    }
    if (!pw) {
        rc = res_reply_inventory(req, &host_resource, req->args[0]);
        goto out;
    }
    ctx = json_pack("{s:s, s:s}", "uuid", req->args[0], "password",
                    json_string_value(pw));
    rc = job_submit(req, "UpdateKVMHost", req->args[0], host_rekey_job, ctx);

out:
    if (json_is_string(pw)) {
        wipe_json_string(pw);
    }
    json_decref(changes);
    return rc;
}
