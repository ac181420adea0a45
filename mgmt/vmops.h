/* vmops.h: VMs on hosts: placement with capacity reservations, and the
 * start, stop, reboot and destroy jobs; state from agent events and
 * reconciliation on reconnect. */
#ifndef MGMT_VMOPS_H
#define MGMT_VMOPS_H 1

#include <jansson.h>
#include <stdbool.h>

struct api_req;
struct db;
struct job;

/* "auto" (kvm where the host has /dev/kvm), "kvm" or "qemu" (TCG). */
extern const char *vmops_domain_type;
/* Graceful stop timeout before a forced one (ms). */
extern int vmops_stop_timeout_ms;
/* CPU overcommit: a host offers cpus * this many vCPUs. */
#define VMOPS_CPU_OVERCOMMIT 10

/* Picks a host for VM row 'vm' (cpuNum, memorySize, and optional
 * clusterUuid/hostUuid/primaryStorageUuid constraints) whose cluster has
 * a Connected primary storage and every L2 of 'l3s' (uuids), reserves the
 * VM's CPU and memory on it, and stores hostUuid, clusterUuid,
 * primaryStorageUuid and reserved=1 into 'vm'.  Runs inside the caller's
 * transaction.  -1 with a conflict error naming why no host fits. */
int vmops_place(struct db *db, json_t *vm, json_t *l3s);

/* Gives a VM's reservation back (inside the caller's transaction). */
int vmops_release(struct db *db, const char *vm_uuid);

/* Jobs; ctx {"uuid": vm, "create": bool, "force": bool}. */
json_t *vmops_start_job(struct job *job, json_t *ctx, int *status);
json_t *vmops_stop_job(struct job *job, json_t *ctx, int *status);
json_t *vmops_reboot_job(struct job *job, json_t *ctx, int *status);
json_t *vmops_destroy_job(struct job *job, json_t *ctx, int *status);

/* GET /vm-instances/{uuid}/console-log */
int vmops_console(struct api_req *req);

/* hostmgr hooks. */
void vm_event(const char *host, const char *event, json_t *data);
void vm_reconcile_host(const char *host);

/* Marks the VMs of a host that went away Unknown. */
int vmops_host_lost(struct db *db, const char *host);

#endif
