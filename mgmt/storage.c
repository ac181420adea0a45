/* storage.c: NFS primary storage (attached to clusters) and SFTP backup
 * storage (attached to zones).  Records and attachments here; mounting and
 * image transfer are the host agent's (issue 4). */
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

LOG_MODULE("mgmt.storage");

/* ---- Primary storage ---- */

static const char *const ps_types[] = { "NFS", NULL };

static const struct field ps_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "zoneUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "zone" },
    { .name = "url", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .check = validate_nfs_url },
    { .name = "type", .type = FT_STR, .flags = F_CREATE, .choices = ps_types,
      .dflt = "NFS" },
    { .name = "mountPath", .type = FT_STR },
    RES_STATE_FIELD,
    { .name = "status", .type = FT_STR, .dflt = "Disconnected" },
    { .name = "totalCapacity", .type = FT_INT },
    { .name = "availableCapacity", .type = FT_INT },
    { 0 },
};

static int
ps_prepare(struct db *db, json_t *params, json_t *row)
{
    const char *url = json_string_value(json_object_get(params, "url"));
    const char *zone = json_string_value(json_object_get(params,
                                                         "zoneUuid"));
    const char *uuid = json_string_value(json_object_get(row, "uuid"));
    json_t *dup = res_select(db, "SELECT uuid, name FROM primaryStorage "
                             "WHERE zoneUuid = ?1 AND url = ?2", "ss", zone,
                             url);
    char *mount;

    if (!dup) {
        return -1;
    }
    if (json_array_size(dup)) {
        json_t *p = json_array_get(dup, 0);

        error_report_field(PROBLEM_CONFLICT, "url",
                           "field 'url': primary storage '%s' (%s) of this "
                           "zone already uses '%s'",
                           json_string_value(json_object_get(p, "name")),
                           json_string_value(json_object_get(p, "uuid")),
                           url);
        json_decref(dup);
        return -1;
    }
    json_decref(dup);
    mount = xasprintf("/var/lib/kvmstack/nfs/%s", uuid);
    json_object_set_new(row, "mountPath", json_string(mount));
    free(mount);
    return 0;
}

static void
ps_inventory(struct db *db, json_t *inv)
{
    json_object_set_new(inv, "attachedClusterUuids",
                        res_string_list(db, "SELECT clusterUuid FROM "
                                        "psClusterRef WHERE "
                                        "primaryStorageUuid = ?1",
                                        "clusterUuid",
                                        json_string_value(
                                            json_object_get(inv, "uuid"))));
}

static const struct res_dep ps_deps[] = {
    { "attached cluster",
      "SELECT c.uuid, c.name FROM psClusterRef r JOIN cluster c "
      "ON c.uuid = r.clusterUuid WHERE r.primaryStorageUuid = ?1" },
    { 0 },
};

static const char *const ps_columns[] = {
    "uuid", "name", "type", "url", "state", "status", NULL
};

const struct resource primary_storage_resource = {
    .kind = "PrimaryStorage",
    .label = "primary storage",
    .table = "primaryStorage",
    .path = "primary-storage",
    .fields = ps_fields,
    .deps = ps_deps,
    .columns = ps_columns,
    .has_state = true,
    .prepare = ps_prepare,
    .inventory = ps_inventory,
};

/* ---- Backup storage ---- */

static const char *const bs_types[] = { "SftpBackupStorage", NULL };
static const char *const usernames[] = { "root", NULL };

static const struct field bs_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "url", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .check = validate_storage_path },
    { .name = "hostname", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .check = validate_host_address },
    { .name = "username", .type = FT_STR, .flags = F_CREATE,
      .choices = usernames, .dflt = "root" },
    { .name = "password", .type = FT_STR,
      .flags = F_REQ | F_CREATE | F_NOCOL | F_SECRET },
    { .name = "sshPort", .type = FT_INT, .flags = F_CREATE | F_UPDATE,
      .min = 1, .max = 65535, .dflt = "22" },
    { .name = "type", .type = FT_STR, .flags = F_CREATE, .choices = bs_types,
      .dflt = "SftpBackupStorage" },
    { .name = "importImages", .type = FT_BOOL, .flags = F_CREATE | F_NOCOL },
    { .name = "sshHostKeyFingerprint", .type = FT_STR },
    RES_STATE_FIELD,
    { .name = "status", .type = FT_STR, .dflt = "Connecting" },
    { .name = "totalCapacity", .type = FT_INT },
    { .name = "availableCapacity", .type = FT_INT },
    { .name = "lastError", .type = FT_STR },
    { .name = "added", .type = FT_INT, .flags = F_HIDDEN },
    { 0 },
};

static int
bs_prepare(struct db *db, json_t *params, json_t *row)
{
    const char *url = json_string_value(json_object_get(params, "url"));
    const char *host = json_string_value(json_object_get(params,
                                                         "hostname"));
    json_t *dup = res_select(db, "SELECT uuid, name FROM backupStorage "
                             "WHERE hostname = ?1 AND url = ?2", "ss", host,
                             url);

    (void) row;
    if (!dup) {
        return -1;
    }
    if (json_array_size(dup)) {
        json_t *b = json_array_get(dup, 0);

        error_report_field(PROBLEM_CONFLICT, "url",
                           "field 'url': backup storage '%s' (%s) already "
                           "uses '%s' on '%s'",
                           json_string_value(json_object_get(b, "name")),
                           json_string_value(json_object_get(b, "uuid")),
                           url, host);
        json_decref(dup);
        return -1;
    }
    json_decref(dup);
    return 0;
}

static void
bs_inventory(struct db *db, json_t *inv)
{
    json_object_set_new(inv, "attachedZoneUuids",
                        res_string_list(db, "SELECT zoneUuid FROM bsZoneRef "
                                        "WHERE backupStorageUuid = ?1",
                                        "zoneUuid",
                                        json_string_value(
                                            json_object_get(inv, "uuid"))));
}

static const struct res_dep bs_deps[] = {
    { "image",
      "SELECT i.uuid, i.name FROM imageBsRef r JOIN image i "
      "ON i.uuid = r.imageUuid WHERE r.backupStorageUuid = ?1" },
    { 0 },
};

static const char *const bs_columns[] = {
    "uuid", "name", "hostname", "url", "state", "status", NULL
};

const struct resource backup_storage_resource = {
    .kind = "BackupStorage",
    .label = "backup storage",
    .table = "backupStorage",
    .path = "backup-storage",
    .fields = bs_fields,
    .deps = bs_deps,
    .columns = bs_columns,
    .has_state = true,
    .prepare = bs_prepare,
    .inventory = bs_inventory,
};

/* The job of AddSftpBackupStorage: SSH bootstrap of the storage host with
 * playbooks/sftp-backup-storage.yaml (hostmgr.c). */
static json_t *
bs_add_job(struct job *job, json_t *ctx, int *status)
{
    const char *uuid = json_string_value(json_object_get(ctx, "uuid"));
    json_t *pw = json_object_get(ctx, "password");
    json_t *inv;
    int rc;

    rc = hostmgr_bootstrap_bs(job, uuid, json_string_value(pw),
                              json_string_value(json_object_get(
                                                    ctx, "fingerprint")));
    if (json_is_string(pw)) {
        secure_wipe((char *) json_string_value(pw), json_string_length(pw));
    }
    json_object_del(ctx, "password");
    if (rc < 0) {
        return NULL;
    }
    inv = res_inventory(db_thread(), &backup_storage_resource, uuid);
    if (!inv) {
        return NULL;
    }
    *status = 200;
    return json_pack("{s:o}", "inventory", inv);
}

int
backup_storage_add(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = api_params(req);
    json_t *password;
    json_t *row;
    json_t *ctx = NULL;
    AUTOFREE char *uuid = NULL;
    int rc = -1;

    if (!params) {
        return 0;
    }
    password = json_object_get(params, "password");
    if (res_check_params(&backup_storage_resource, params, F_CREATE) < 0
        || db_begin(db) < 0) {
        goto out;
    }
    row = res_create_row(db, &backup_storage_resource, params);
    if (!row) {
        db_rollback(db);
        goto out;
    }
    uuid = xstrdup(json_string_value(json_object_get(row, "uuid")));
    json_decref(row);
    if (db_commit(db) < 0) {
        db_rollback(db);
        goto out;
    }
    rc = 0;

out:
    if (rc == 0) {
        /* A copy: the request's own string is wiped right after. */
        ctx = json_pack("{s:s, s:s}", "uuid", uuid, "password",
                        json_string_value(password));
    }
    if (json_is_string(password)) {
        secure_wipe((char *) json_string_value(password),
                    json_string_length(password));
    }
    if (rc < 0) {
        return -1;
    }
    LOG_INFO("backup storage '%s' recorded; bootstrapping its host", uuid);
    return job_submit(req, "AddSftpBackupStorage", uuid, bs_add_job, ctx);
}
