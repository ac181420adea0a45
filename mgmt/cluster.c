/* cluster.c: clusters of KVM hosts inside a zone. */
#include "resources.h"

#include <string.h>

#include "db.h"
#include "kvmstack/error.h"

static const char *const hypervisors[] = { "KVM", NULL };
static const char *const cluster_types[] = { "zstack", NULL };

static const struct field cluster_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "zoneUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "zone" },
    { .name = "hypervisorType", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .choices = hypervisors },
    { .name = "type", .type = FT_STR, .flags = F_CREATE,
      .choices = cluster_types, .dflt = "zstack" },
    RES_STATE_FIELD,
    { 0 },
};

static const struct res_dep cluster_deps[] = {
    { "host", "SELECT uuid, name FROM host WHERE clusterUuid = ?1" },
    { "VM instance",
      "SELECT uuid, name FROM vmInstance WHERE clusterUuid = ?1 "
      "AND state != 'Destroyed'" },
    { "attached primary storage",
      "SELECT p.uuid, p.name FROM psClusterRef r JOIN primaryStorage p "
      "ON p.uuid = r.primaryStorageUuid WHERE r.clusterUuid = ?1" },
    { "attached L2 network",
      "SELECT l.uuid, l.name FROM l2ClusterRef r JOIN l2Network l "
      "ON l.uuid = r.l2NetworkUuid WHERE r.clusterUuid = ?1" },
    { 0 },
};

static const char *const cluster_columns[] = {
    "uuid", "name", "hypervisorType", "state", "zoneUuid", NULL
};

const struct resource cluster_resource = {
    .kind = "Cluster",
    .label = "cluster",
    .table = "cluster",
    .path = "clusters",
    .fields = cluster_fields,
    .deps = cluster_deps,
    .columns = cluster_columns,
    .has_state = true,
};
