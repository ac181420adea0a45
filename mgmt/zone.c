/* zone.c: zones, the top of the inventory tree. */
#include "resources.h"

const char *const res_enabled_states[] = { "Enabled", "Disabled", NULL };

static const struct field zone_fields[] = {
    RES_COMMON_FIELDS,
    RES_STATE_FIELD,
    { .name = "type", .type = FT_STR, .dflt = "zstack" },
    { 0 },
};

static const struct res_dep zone_deps[] = {
    { "cluster", "SELECT uuid, name FROM cluster WHERE zoneUuid = ?1" },
    { "primary storage",
      "SELECT uuid, name FROM primaryStorage WHERE zoneUuid = ?1" },
    { "L2 network", "SELECT uuid, name FROM l2Network WHERE zoneUuid = ?1" },
    { "backup storage",
      "SELECT b.uuid, b.name FROM bsZoneRef r JOIN backupStorage b "
      "ON b.uuid = r.backupStorageUuid WHERE r.zoneUuid = ?1" },
    { "virtual router offering",
      "SELECT uuid, name FROM instanceOffering WHERE zoneUuid = ?1" },
    { 0 },
};

static const char *const zone_columns[] = { "uuid", "name", "state",
                                            "createDate", NULL };

const struct resource zone_resource = {
    .kind = "Zone",
    .label = "zone",
    .table = "zone",
    .path = "zones",
    .fields = zone_fields,
    .deps = zone_deps,
    .columns = zone_columns,
    .has_state = true,
};
