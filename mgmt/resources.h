/* resources.h: the resource descriptors and their helpers, one module per
 * resource (zone.c, cluster.c, ...). */
#ifndef MGMT_RESOURCES_H
#define MGMT_RESOURCES_H 1

#include "res.h"

struct api_req;

/* Fields every resource has. */
#define RES_COMMON_FIELDS                                          \
    { .name = "name", .type = FT_STR,                              \
      .flags = F_REQ | F_CREATE | F_UPDATE },                      \
    { .name = "description", .type = FT_STR,                       \
      .flags = F_CREATE | F_UPDATE },                              \
    { .name = "createDate", .type = FT_DATE },                     \
    { .name = "lastOpDate", .type = FT_DATE }

#define RES_STATE_FIELD                                            \
    { .name = "state", .type = FT_STR, .dflt = "Enabled" }

extern const char *const res_enabled_states[];

extern const struct resource zone_resource;
extern const struct resource cluster_resource;
extern const struct resource host_resource;
extern const struct resource primary_storage_resource;
extern const struct resource backup_storage_resource;
extern const struct resource image_resource;
extern const struct resource l2_novlan_resource;
extern const struct resource l2_vlan_resource;
extern const struct resource l2_vxlan_resource;
extern const struct resource l2_resource;
extern const struct resource l3_resource;
extern const struct resource ip_range_resource;
extern const struct resource instance_offering_resource;
extern const struct resource vr_offering_resource;
extern const struct resource vm_resource;
extern const struct resource vr_resource;
extern const struct resource vm_nic_resource;
extern const struct resource vip_resource;
extern const struct resource pf_rule_resource;
extern const struct resource provider_resource;
extern const struct resource api_job_resource;

/* Attach and detach routes (pairs of resources). */
int primary_storage_attach(struct api_req *req);
int primary_storage_detach(struct api_req *req);
int backup_storage_attach(struct api_req *req);
int backup_storage_detach(struct api_req *req);
int l2_attach(struct api_req *req);
int l2_detach(struct api_req *req);
int host_add(struct api_req *req);
int host_delete(struct api_req *req);
int image_add(struct api_req *req);
int backup_storage_add(struct api_req *req);
int l3_add_ip_range(struct api_req *req);
int l3_add_ip_range_by_cidr(struct api_req *req);
int l3_add_dns(struct api_req *req);
int l3_remove_dns(struct api_req *req);
int l3_attach_services(struct api_req *req);
int l3_get_free_ips(struct api_req *req);
int ip_range_delete(struct api_req *req);
int vm_create(struct api_req *req);
int vm_destroy(struct api_req *req);
int pf_rule_attach(struct api_req *req);
int pf_rule_detach(struct api_req *req);
int pf_rule_candidate_nics(struct api_req *req);
int vip_check_port(struct api_req *req);
int job_get(struct api_req *req);

/* IP address management (l3net.c).  Allocates a free address of L3
 * 'l3' (or exactly 'required' when not NULL) for 'used_for' and 'owner';
 * fills 'ip', 'netmask', 'gateway' (16 bytes each) and the usedIp uuid.
 * Runs inside the caller's transaction. */
int l3_alloc_ip(struct db *db, const char *l3, const char *required,
                const char *used_for, const char *owner, char *ip,
                char *netmask, char *gateway, char *used_uuid);
int l3_release_ip(struct db *db, const char *used_uuid);

/* Detaches every port-forwarding rule of the NICs of VM 'vm'. */
int pf_rule_detach_vm(struct db *db, const char *vm);

#endif
