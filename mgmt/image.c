/* image.c: images registered on backup storage.  AddImage records the
 * image (status Downloading) and starts a job in which every backup
 * storage host downloads it (imageops.c): Ready, or Error with the
 * reason. */
#include "resources.h"

#include <string.h>

#include "api.h"
#include "db.h"
#include "imageops.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/util.h"

static const char *const media_types[] = {
    "RootVolumeTemplate", "DataVolumeTemplate", "ISO", NULL
};
static const char *const formats[] = { "qcow2", "raw", "iso", NULL };
static const char *const platforms[] = {
    "Linux", "Windows", "Other", "Paravirtualization", "WindowsVirtio", NULL
};

static int
check_image_url(const char *field, const char *url)
{
    static const char *const schemes[] = { "http://", "https://", "file://" };
    bool ok = false;

    for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
        size_t n = strlen(schemes[i]);

        if (!strncmp(url, schemes[i], n) && url[n]) {
            ok = true;
        }
    }
    if (!ok) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.256s' must be an http://, "
                           "https:// or file:// URL", field, url);
        return -1;
    }
    if (strlen(url) > 2048) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' is longer than 2048 characters",
                           field);
        return -1;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char) *p <= 0x20 || *p == 0x7f) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                               "field '%s' must not contain spaces or "
                               "control characters", field);
            return -1;
        }
    }
    return 0;
}

static const struct field image_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "url", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .check = check_image_url },
    { .name = "mediaType", .type = FT_STR, .flags = F_CREATE,
      .choices = media_types, .dflt = "RootVolumeTemplate" },
    { .name = "format", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .choices = formats },
    { .name = "platform", .type = FT_STR, .flags = F_CREATE | F_UPDATE,
      .choices = platforms, .dflt = "Linux" },
    { .name = "system", .type = FT_BOOL, .flags = F_CREATE, .dflt = "false" },
    { .name = "guestOsType", .type = FT_STR, .flags = F_CREATE | F_UPDATE },
    { .name = "backupStorageUuids", .type = FT_STRLIST,
      .flags = F_REQ | F_CREATE | F_NOCOL, .ref = "backupStorage" },
    { .name = "type", .type = FT_STR, .dflt = "zstack" },
    RES_STATE_FIELD,
    { .name = "status", .type = FT_STR, .dflt = "Downloading" },
    { .name = "size", .type = FT_INT },
    { .name = "virtualSize", .type = FT_INT },
    { .name = "actualSize", .type = FT_INT },
    { .name = "sha256Sum", .type = FT_STR },
    { .name = "lastError", .type = FT_STR },
    { 0 },
};

static int
image_prepare(struct db *db, json_t *params, json_t *row)
{
    json_t *bs = json_object_get(params, "backupStorageUuids");
    const char *fmt = json_string_value(json_object_get(params, "format"));
    const char *media = json_string_value(json_object_get(row, "mediaType"));

    (void) db;
    if (json_array_size(bs) == 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "backupStorageUuids",
                           "field 'backupStorageUuids' must name at least "
                           "one backup storage");
        return -1;
    }
    if (!strcmp(media, "ISO") != !strcmp(fmt, "iso")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "format",
                           "field 'format': '%s' does not go with media "
                           "type '%s' (ISO images have format iso)", fmt,
                           media);
        return -1;
    }
    return 0;
}

static int
image_after_insert(struct db *db, json_t *params, json_t *row)
{
    json_t *bs = json_object_get(params, "backupStorageUuids");
    const char *uuid = json_string_value(json_object_get(row, "uuid"));
    size_t i;
    json_t *b;

    json_array_foreach(bs, i, b) {
        if (db_exec(db, "INSERT OR IGNORE INTO imageBsRef (imageUuid, "
                    "backupStorageUuid, status) VALUES (?1, ?2, "
                    "'Downloading')",
                    "ss", uuid, json_string_value(b)) < 0) {
            return -1;
        }
    }
    return 0;
}

static void
image_inventory(struct db *db, json_t *inv)
{
    json_t *refs = res_select(db, "SELECT imageUuid, backupStorageUuid, "
                              "installPath, status FROM imageBsRef WHERE "
                              "imageUuid = ?1", "s",
                              json_string_value(json_object_get(inv,
                                                                "uuid")));

    json_object_set_new(inv, "backupStorageRefs", refs ? refs : json_array());
}

static const struct res_dep image_deps[] = {
    { "VM instance",
      "SELECT uuid, name FROM vmInstance WHERE imageUuid = ?1" },
    { "virtual router offering",
      "SELECT uuid, name FROM instanceOffering WHERE imageUuid = ?1" },
    { 0 },
};

static const char *const image_columns[] = {
    "uuid", "name", "format", "mediaType", "system", "status", NULL
};

const struct resource image_resource = {
    .kind = "Image",
    .label = "image",
    .table = "image",
    .path = "images",
    .fields = image_fields,
    .deps = image_deps,
    .columns = image_columns,
    .has_state = true,
    .prepare = image_prepare,
    .after_insert = image_after_insert,
    .inventory = image_inventory,
};

int
image_add(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = api_params(req);
    json_t *row;
    json_t *bs;
    size_t i;
    json_t *b;
    AUTOFREE char *uuid = NULL;

    if (!params) {
        return 0;
    }
    if (res_check_params(&image_resource, params, F_CREATE) < 0
        || db_begin(db) < 0) {
        return -1;
    }
    bs = json_object_get(params, "backupStorageUuids");
    json_array_foreach(bs, i, b) {
        json_t *r = res_load_table(db, "backupStorage",
                                   json_string_value(b));

        if (r && strcmp(json_string_value(json_object_get(r, "status")),
                        "Connected")) {
            error_report_field(PROBLEM_CONFLICT, "backupStorageUuids",
                               "backup storage '%s' is %s, not Connected",
                               json_string_value(json_object_get(r,
                                                                 "name")),
                               json_string_value(json_object_get(r,
                                                                 "status")));
            json_decref(r);
            db_rollback(db);
            return -1;
        }
        json_decref(r);
    }
    row = res_create_row(db, &image_resource, params);
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
    return job_submit(req, "AddImage", uuid, image_add_job,
                      json_pack("{s:s}", "uuid", uuid));
}
