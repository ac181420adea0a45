/* routes.c: every API route, ZStack v1 paths below /zstack/v1.  Generic
 * routes name their resource; attach/detach routes their struct res_link.
 * Order matters only where a literal segment and a {} could both match:
 * literal routes come first. */
#include "api.h"
#include "auth.h"
#include "hostsync.h"
#include "vmops.h"
#include "resources.h"

static const struct res_link ps_cluster_link = {
    .table = "psClusterRef",
    .col0 = "clusterUuid", .res0 = &cluster_resource,
    .col1 = "primaryStorageUuid", .res1 = &primary_storage_resource,
    .reply = &primary_storage_resource,
    .before_detach = primary_storage_before_detach,
    .attach_hosts = primary_storage_attach_hosts,
    .detach_hosts = primary_storage_detach_hosts,
    .attach_api = "AttachPrimaryStorageToCluster",
    .detach_api = "DetachPrimaryStorageFromCluster",
};

static const struct res_link bs_zone_link = {
    .table = "bsZoneRef",
    .col0 = "zoneUuid", .res0 = &zone_resource,
    .col1 = "backupStorageUuid", .res1 = &backup_storage_resource,
    .reply = &backup_storage_resource,
};

static const struct res_link l2_cluster_link = {
    .table = "l2ClusterRef",
    .col0 = "l2NetworkUuid", .res0 = &l2_resource,
    .col1 = "clusterUuid", .res1 = &cluster_resource,
    .reply = &l2_resource,
    .before_detach = l2_before_detach,
    .attach_hosts = l2_attach_hosts,
    .detach_hosts = l2_detach_hosts,
    .attach_api = "AttachL2NetworkToCluster",
    .detach_api = "DetachL2NetworkFromCluster",
};

#define CRUD(PATH, RES)                                                  \
    { "GET", PATH, res_query_handler, RES, NULL, false },               \
    { "GET", PATH "/{}", res_get_handler, RES, NULL, false },           \
    { "PUT", PATH "/{}/actions", res_action_handler, RES, NULL, false }, \
    { "DELETE", PATH "/{}", res_delete_handler, RES, NULL, false }

const struct api_route api_routes[] = {
    /* Accounts and sessions. */
    { "PUT", "/accounts/login", auth_login, NULL, NULL, true },
    { "DELETE", "/accounts/sessions/{}", auth_logout, NULL, NULL, false },
    { "GET", "/accounts", auth_query_accounts, NULL, NULL, false },
    { "PUT", "/accounts/{}/actions", auth_update_account, NULL, NULL, false },

    /* Jobs. */
    { "GET", "/api-jobs/{}", job_get, NULL, NULL, false },
    { "GET", "/api-jobs", res_query_handler, &api_job_resource, NULL,
      false },

    /* Zones and clusters. */
    { "POST", "/zones", res_create_handler, &zone_resource, NULL, false },
    { "POST", "/zones/{}/backup-storage/{}", res_link_attach, NULL,
      &bs_zone_link, false },
    { "DELETE", "/zones/{}/backup-storage/{}", res_link_detach, NULL,
      &bs_zone_link, false },
    CRUD("/zones", &zone_resource),
    { "POST", "/clusters", res_create_handler, &cluster_resource, NULL,
      false },
    { "POST", "/clusters/{}/primary-storage/{}", res_link_attach, NULL,
      &ps_cluster_link, false },
    { "DELETE", "/clusters/{}/primary-storage/{}", res_link_detach, NULL,
      &ps_cluster_link, false },
    CRUD("/clusters", &cluster_resource),

    /* Hosts. */
    { "POST", "/hosts/kvm", host_add, &host_resource, NULL, false },
    { "DELETE", "/hosts/{}", host_delete, &host_resource, NULL, false },
    { "GET", "/hosts/kvm", res_query_handler, &host_resource, NULL, false },
    { "GET", "/hosts", res_query_handler, &host_resource, NULL, false },
    { "GET", "/hosts/{}", res_get_handler, &host_resource, NULL, false },
    { "PUT", "/hosts/{}/actions", res_action_handler, &host_resource, NULL,
      false },

    /* Storage and images. */
    { "POST", "/primary-storage/nfs", res_create_handler,
      &primary_storage_resource, NULL, false },
    CRUD("/primary-storage", &primary_storage_resource),
    { "POST", "/backup-storage/sftp", backup_storage_add,
      &backup_storage_resource, NULL, false },
    { "GET", "/backup-storage/sftp", res_query_handler,
      &backup_storage_resource, NULL, false },
    CRUD("/backup-storage", &backup_storage_resource),
    { "POST", "/images", image_add, &image_resource, NULL, false },
    CRUD("/images", &image_resource),

    /* L2 networks. */
    { "POST", "/l2-networks/no-vlan", res_create_handler,
      &l2_novlan_resource, NULL, false },
    { "POST", "/l2-networks/vlan", res_create_handler, &l2_vlan_resource,
      NULL, false },
    { "POST", "/l2-networks/vxlan", res_create_handler, &l2_vxlan_resource,
      NULL, false },
    { "GET", "/l2-networks/no-vlan", res_query_handler, &l2_novlan_resource,
      NULL, false },
    { "GET", "/l2-networks/vlan", res_query_handler, &l2_vlan_resource, NULL,
      false },
    { "GET", "/l2-networks/vxlan", res_query_handler, &l2_vxlan_resource,
      NULL, false },
    { "POST", "/l2-networks/{}/clusters/{}", res_link_attach, NULL,
      &l2_cluster_link, false },
    { "DELETE", "/l2-networks/{}/clusters/{}", res_link_detach, NULL,
      &l2_cluster_link, false },
    CRUD("/l2-networks", &l2_resource),

    /* L3 networks, IP ranges, DNS, network services. */
    { "POST", "/l3-networks", res_create_handler, &l3_resource, NULL,
      false },
    { "GET", "/l3-networks/ip-ranges", res_query_handler, &ip_range_resource,
      NULL, false },
    { "GET", "/l3-networks/ip-ranges/{}", res_get_handler,
      &ip_range_resource, NULL, false },
    { "DELETE", "/l3-networks/ip-ranges/{}", res_delete_handler,
      &ip_range_resource, NULL, false },
    { "PUT", "/l3-networks/ip-ranges/{}/actions", res_action_handler,
      &ip_range_resource, NULL, false },
    { "POST", "/l3-networks/{}/ip-ranges", l3_add_ip_range, NULL, NULL,
      false },
    { "POST", "/l3-networks/{}/ip-ranges/by-cidr", l3_add_ip_range_by_cidr,
      NULL, NULL, false },
    { "POST", "/l3-networks/{}/dns", l3_add_dns, NULL, NULL, false },
    { "DELETE", "/l3-networks/{}/dns/{}", l3_remove_dns, NULL, NULL, false },
    { "POST", "/l3-networks/{}/network-services", l3_attach_services, NULL,
      NULL, false },
    CRUD("/l3-networks", &l3_resource),
    { "GET", "/network-services/providers", res_query_handler,
      &provider_resource, NULL, false },

    /* Offerings. */
    { "POST", "/instance-offerings/virtual-routers", res_create_handler,
      &vr_offering_resource, NULL, false },
    CRUD("/instance-offerings/virtual-routers", &vr_offering_resource),
    { "POST", "/instance-offerings", res_create_handler,
      &instance_offering_resource, NULL, false },
    CRUD("/instance-offerings", &instance_offering_resource),

    /* VMs. */
    { "GET", "/vm-instances/nics", res_query_handler, &vm_nic_resource, NULL,
      false },
    { "GET", "/vm-instances/nics/{}", res_get_handler, &vm_nic_resource,
      NULL, false },
    { "GET", "/vm-instances/appliances/virtual-routers", res_query_handler,
      &vr_resource, NULL, false },
    { "GET", "/vm-instances/appliances/virtual-routers/{}", res_get_handler,
      &vr_resource, NULL, false },
    { "POST", "/vm-instances", vm_create, &vm_resource, NULL, false },
    { "DELETE", "/vm-instances/{}", vm_destroy, &vm_resource, NULL, false },
    { "GET", "/vm-instances/{}/console-log", vmops_console, &vm_resource,
      NULL, false },
    { "GET", "/vm-instances", res_query_handler, &vm_resource, NULL, false },
    { "GET", "/vm-instances/{}", res_get_handler, &vm_resource, NULL, false },
    { "PUT", "/vm-instances/{}/actions", res_action_handler, &vm_resource,
      NULL, false },

    /* VIPs and port forwarding. */
    { "POST", "/vips", res_create_handler, &vip_resource, NULL, false },
    { "GET", "/vips/{}/check-port-availability", vip_check_port, NULL, NULL,
      false },
    CRUD("/vips", &vip_resource),
    { "POST", "/port-forwarding", res_create_handler, &pf_rule_resource,
      NULL, false },
    { "POST", "/port-forwarding/{}/vm-instances/nics/{}", pf_rule_attach,
      NULL, NULL, false },
    { "DELETE", "/port-forwarding/{}/vm-instances/nics", pf_rule_detach,
      NULL, NULL, false },
    { "GET", "/port-forwarding/{}/vm-instances/candidate-nics",
      pf_rule_candidate_nics, NULL, NULL, false },
    CRUD("/port-forwarding", &pf_rule_resource),
};

const int api_n_routes = (int) (sizeof api_routes / sizeof api_routes[0]);

const struct resource *const res_all[] = {
    &zone_resource, &cluster_resource, &host_resource,
    &primary_storage_resource, &backup_storage_resource, &image_resource,
    &l2_resource, &l3_resource, &ip_range_resource, &provider_resource,
    &instance_offering_resource, &vr_offering_resource, &vm_resource,
    &vr_resource, &vm_nic_resource, &vip_resource, &pf_rule_resource,
    &api_job_resource, NULL,
};
