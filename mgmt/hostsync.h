/* hostsync.h: what each host must have: its clusters' primary storage
 * mounted and L2 bridges present, pushed when they are attached and every
 * time the host (re)connects. */
#ifndef MGMT_HOSTSYNC_H
#define MGMT_HOSTSYNC_H 1

#include <jansson.h>

struct db;
struct job;

int primary_storage_before_detach(struct db *db, const char *cluster,
                                  const char *ps);
int primary_storage_attach_hosts(struct job *job, const char *cluster,
                                 const char *ps);
int primary_storage_detach_hosts(struct job *job, const char *cluster,
                                 const char *ps);
int l2_before_detach(struct db *db, const char *l2, const char *cluster);
int l2_attach_hosts(struct job *job, const char *l2, const char *cluster);
int l2_detach_hosts(struct job *job, const char *l2, const char *cluster);

/* The bridge an L2 network uses on hosts ("br_eth0", "br_eth0_100",
 * "br_vx_5000"); 'out' holds 16 bytes. */
void l2_bridge_name(json_t *l2, char out[16]);

/* Mounts, bridges and VM reconciliation of host 'uuid' (the
 * hostmgr_connect_handler). */
void host_sync(const char *uuid);

/* Installs host_sync and the VM event handler into hostmgr. */
void hostsync_init(void);

#endif
