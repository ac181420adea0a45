/* l2net.c: L2 networks (no VLAN, 802.1q VLAN, VXLAN) and their
 * attachment to clusters.  The bridges themselves are the host agent's
 * (issue 4). */
#include "resources.h"

#include <string.h>

#include "db.h"
#include "kvmstack/error.h"
#include "kvmstack/util.h"
#include "validate.h"

#define L2_FIELDS(TYPE)                                                   \
    RES_COMMON_FIELDS,                                                    \
    { .name = "zoneUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,     \
      .ref = "zone" },                                                    \
    { .name = "physicalInterface", .type = FT_STR,                        \
      .flags = F_REQ | F_CREATE, .check = validate_ifname },              \
    { .name = "type", .type = FT_STR, .dflt = TYPE }

static const struct field novlan_fields[] = {
    L2_FIELDS("L2NoVlanNetwork"),
    { .name = "vlan", .type = FT_INT },
    { .name = "vni", .type = FT_INT },
    { 0 },
};

static const struct field vlan_fields[] = {
    L2_FIELDS("L2VlanNetwork"),
    { .name = "vlan", .type = FT_INT, .flags = F_REQ | F_CREATE,
      .min = 1, .max = 4094 },
    { .name = "vni", .type = FT_INT },
    { 0 },
};

static const struct field vxlan_fields[] = {
    L2_FIELDS("VxlanNetwork"),
    { .name = "vlan", .type = FT_INT },
    { .name = "vni", .type = FT_INT, .flags = F_REQ | F_CREATE,
      .min = 1, .max = 16777215 },
    { 0 },
};

static const struct field all_fields[] = {
    L2_FIELDS("L2NoVlanNetwork"),
    { .name = "vlan", .type = FT_INT },
    { .name = "vni", .type = FT_INT },
    { 0 },
};

/* Two L2 networks of one zone may not claim the same wire: the same
 * interface untagged, the same interface and VLAN, or the same VNI. */
static int
l2_prepare(struct db *db, json_t *params, json_t *row)
{
    const char *zone = json_string_value(json_object_get(row, "zoneUuid"));
    const char *type = json_string_value(json_object_get(row, "type"));
    const char *ifname = json_string_value(json_object_get(row,
                                                           "physicalInterface"));
    json_t *dup;
    const char *what;

    (void) params;
    if (!strcmp(type, "L2NoVlanNetwork")) {
        dup = res_select(db, "SELECT uuid, name FROM l2Network WHERE "
                         "zoneUuid = ?1 AND type = ?2 AND "
                         "physicalInterface = ?3", "sss", zone, type,
                         ifname);
        what = "the untagged interface";
    } else if (!strcmp(type, "L2VlanNetwork")) {
        dup = res_select(db, "SELECT uuid, name FROM l2Network WHERE "
                         "zoneUuid = ?1 AND type = ?2 AND "
                         "physicalInterface = ?3 AND vlan = ?4", "sssi",
                         zone, type, ifname,
                         json_integer_value(json_object_get(row, "vlan")));
        what = "this interface and VLAN";
    } else {
        dup = res_select(db, "SELECT uuid, name FROM l2Network WHERE "
                         "zoneUuid = ?1 AND type = ?2 AND vni = ?3", "ssi",
                         zone, type,
                         json_integer_value(json_object_get(row, "vni")));
        what = "this VNI";
    }
    if (!dup) {
        return -1;
    }
    if (json_array_size(dup)) {
        json_t *d = json_array_get(dup, 0);

        error_report(PROBLEM_CONFLICT,
                     "L2 network '%s' (%s) of this zone already uses %s",
                     json_string_value(json_object_get(d, "name")),
                     json_string_value(json_object_get(d, "uuid")), what);
        json_decref(dup);
        return -1;
    }
    json_decref(dup);
    return 0;
}

static void
l2_inventory(struct db *db, json_t *inv)
{
    const char *type = json_string_value(json_object_get(inv, "type"));

    if (strcmp(type, "L2VlanNetwork")) {
        json_object_del(inv, "vlan");
    }
    if (strcmp(type, "VxlanNetwork")) {
        json_object_del(inv, "vni");
    }
    json_object_set_new(inv, "attachedClusterUuids",
                        res_string_list(db, "SELECT clusterUuid FROM "
                                        "l2ClusterRef WHERE "
                                        "l2NetworkUuid = ?1", "clusterUuid",
                                        json_string_value(
                                            json_object_get(inv, "uuid"))));
}

static const struct res_dep l2_deps[] = {
    { "L3 network", "SELECT uuid, name FROM l3Network WHERE "
      "l2NetworkUuid = ?1" },
    { 0 },
};

static const char *const l2_columns[] = {
    "uuid", "name", "type", "physicalInterface", "vlan", "vni", NULL
};

#define L2_RESOURCE(FIELDS, WHERE)                                        \
    .kind = "L2Network",                                                  \
    .label = "L2 network",                                                \
    .table = "l2Network",                                                 \
    .path = "l2-networks",                                                \
    .where = WHERE,                                                       \
    .fields = FIELDS,                                                     \
    .deps = l2_deps,                                                      \
    .columns = l2_columns,                                                \
    .prepare = l2_prepare,                                                \
    .inventory = l2_inventory

const struct resource l2_novlan_resource = {
    L2_RESOURCE(novlan_fields, "type = 'L2NoVlanNetwork'"),
};
const struct resource l2_vlan_resource = {
    L2_RESOURCE(vlan_fields, "type = 'L2VlanNetwork'"),
};
const struct resource l2_vxlan_resource = {
    L2_RESOURCE(vxlan_fields, "type = 'VxlanNetwork'"),
};
const struct resource l2_resource = {
    L2_RESOURCE(all_fields, NULL),
};
