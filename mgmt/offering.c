/* offering.c: instance offerings (CPU and memory of user VMs) and virtual
 * router offerings (the same plus the router image and its networks). */
#include "resources.h"

#include <string.h>

#include "db.h"
#include "kvmstack/error.h"
#include "kvmstack/util.h"

#define MIB (1024LL * 1024)

static const char *const allocators[] = {
    "DefaultHostAllocatorStrategy", "LeastVmPreferredHostAllocatorStrategy",
    NULL
};

#define OFFERING_FIELDS(TYPE)                                             \
    RES_COMMON_FIELDS,                                                    \
    { .name = "cpuNum", .type = FT_INT, .flags = F_REQ | F_CREATE,        \
      .min = 1, .max = 1024 },                                            \
    { .name = "cpuSpeed", .type = FT_INT, .flags = F_CREATE,              \
      .min = 0, .max = 1000000, .dflt = "0" },                            \
    { .name = "memorySize", .type = FT_INT,                               \
      .flags = F_REQ | F_CREATE | F_SIZE, .min = 16 * MIB,                \
      .max = 16 * 1024 * 1024 * MIB },                                    \
    { .name = "allocatorStrategy", .type = FT_STR, .flags = F_CREATE,     \
      .choices = allocators, .dflt = "DefaultHostAllocatorStrategy" },    \
    { .name = "sortKey", .type = FT_INT, .flags = F_CREATE | F_UPDATE,    \
      .min = 0, .max = 1000000, .dflt = "0" },                            \
    { .name = "type", .type = FT_STR, .dflt = TYPE },                     \
    RES_STATE_FIELD

static const struct field io_fields[] = {
    OFFERING_FIELDS("UserVm"),
    { .name = "zoneUuid", .type = FT_UUID },
    { .name = "imageUuid", .type = FT_UUID },
    { .name = "managementNetworkUuid", .type = FT_UUID },
    { .name = "publicNetworkUuid", .type = FT_UUID },
    { .name = "isDefault", .type = FT_BOOL },
    { 0 },
};

static const struct field vro_fields[] = {
    OFFERING_FIELDS("VirtualRouter"),
    { .name = "zoneUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "zone" },
    { .name = "imageUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "image" },
    { .name = "managementNetworkUuid", .type = FT_UUID,
      .flags = F_REQ | F_CREATE, .ref = "l3Network" },
    { .name = "publicNetworkUuid", .type = FT_UUID, .flags = F_CREATE,
      .ref = "l3Network" },
    { .name = "isDefault", .type = FT_BOOL, .flags = F_CREATE | F_UPDATE,
      .dflt = "false" },
    { 0 },
};

static void
io_inventory(struct db *db, json_t *inv)
{
    (void) db;
    if (strcmp(json_string_value(json_object_get(inv, "type")),
               "VirtualRouter")) {
        json_object_del(inv, "zoneUuid");
        json_object_del(inv, "imageUuid");
        json_object_del(inv, "managementNetworkUuid");
        json_object_del(inv, "publicNetworkUuid");
        json_object_del(inv, "isDefault");
    } else if (json_is_integer(json_object_get(inv, "isDefault"))) {
        json_object_set_new(inv, "isDefault",
                            json_boolean(json_integer_value(
                                             json_object_get(inv,
                                                             "isDefault"))));
    }
}

static const struct res_dep io_deps[] = {
    { "VM instance", "SELECT uuid, name FROM vmInstance WHERE "
      "instanceOfferingUuid = ?1" },
    { 0 },
};

static const char *const io_columns[] = {
    "uuid", "name", "cpuNum", "memorySize", "type", "state", NULL
};

const struct resource instance_offering_resource = {
    .kind = "InstanceOffering",
    .label = "instance offering",
    .table = "instanceOffering",
    .path = "instance-offerings",
    .fields = io_fields,
    .deps = io_deps,
    .columns = io_columns,
    .has_state = true,
    .inventory = io_inventory,
};

static int
check_l3_zone(struct db *db, const char *field, const char *l3,
              const char *zone)
{
    json_t *row = res_load_table(db, "l3Network", l3);
    int rc = 0;

    if (!row) {
        return -1;
    }
    if (strcmp(json_string_value(json_object_get(row, "zoneUuid")), zone)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': L3 network '%s' is not in zone %s",
                           field, json_string_value(json_object_get(row,
                                                                    "name")),
                           zone);
        rc = -1;
    }
    json_decref(row);
    return rc;
}

static int
vro_prepare(struct db *db, json_t *params, json_t *row)
{
    const char *zone = json_string_value(json_object_get(row, "zoneUuid"));
    const char *mgmt = json_string_value(json_object_get(
                                             row, "managementNetworkUuid"));
    json_t *image;
    int rc;

    (void) params;
    if (!json_object_get(row, "publicNetworkUuid")) {
        json_object_set_new(row, "publicNetworkUuid", json_string(mgmt));
    }
    if (check_l3_zone(db, "managementNetworkUuid", mgmt, zone) < 0
        || check_l3_zone(db, "publicNetworkUuid",
                         json_string_value(json_object_get(
                                               row, "publicNetworkUuid")),
                         zone) < 0) {
        return -1;
    }
    image = res_load_table(db, "image", json_string_value(
                               json_object_get(row, "imageUuid")));
    if (!image) {
        return -1;
    }
    rc = 0;
    if (!json_integer_value(json_object_get(image, "system"))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "imageUuid",
                           "field 'imageUuid': image '%s' is not a system "
                           "image; add the virtual router image with "
                           "system=true", json_string_value(
                               json_object_get(image, "name")));
        rc = -1;
    } else if (strcmp(json_string_value(json_object_get(image, "mediaType")),
                      "RootVolumeTemplate")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "imageUuid",
                           "field 'imageUuid': image '%s' is not a "
                           "RootVolumeTemplate",
                           json_string_value(json_object_get(image,
                                                             "name")));
        rc = -1;
    }
    json_decref(image);
    if (!rc && json_is_true(json_object_get(row, "isDefault"))) {
        rc = db_exec(db, "UPDATE instanceOffering SET isDefault = 0 WHERE "
                     "type = 'VirtualRouter' AND zoneUuid = ?1", "s",
                     zone) < 0 ? -1 : 0;
    }
    return rc;
}

static int
vro_before_update(struct db *db, json_t *row, json_t *changes)
{
    if (json_is_true(json_object_get(changes, "isDefault"))) {
        return db_exec(db, "UPDATE instanceOffering SET isDefault = 0 WHERE "
                       "type = 'VirtualRouter' AND zoneUuid = ?1", "s",
                       json_string_value(json_object_get(row, "zoneUuid")))
               < 0 ? -1 : 0;
    }
    return 0;
}

static const struct res_dep vro_deps[] = {
    { "virtual router", "SELECT uuid, name FROM vmInstance WHERE "
      "instanceOfferingUuid = ?1" },
    { 0 },
};

static const char *const vro_columns[] = {
    "uuid", "name", "cpuNum", "memorySize", "isDefault", "imageUuid", NULL
};

const struct resource vr_offering_resource = {
    .kind = "VirtualRouterOffering",
    .label = "virtual router offering",
    .table = "instanceOffering",
    .path = "instance-offerings/virtual-routers",
    .where = "type = 'VirtualRouter'",
    .fields = vro_fields,
    .deps = vro_deps,
    .columns = vro_columns,
    .has_state = true,
    .prepare = vro_prepare,
    .inventory = io_inventory,
    .before_update = vro_before_update,
};
