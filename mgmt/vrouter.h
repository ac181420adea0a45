/* vrouter.h: virtual routers: the ApplianceVm that gives a private L3
 * network its VirtualRouter services (DHCP, DNS, SNAT, port forwarding),
 * and the configuration mgmt pushes to it. */
#ifndef MGMT_VROUTER_H
#define MGMT_VROUTER_H 1

#include <jansson.h>
#include <stdbool.h>

struct db;
struct job;

/* Makes sure L3 'l3' has a Running virtual router that has taken its
 * configuration, creating or starting it from the zone's default virtual
 * router offering when needed.  No-op (0) for an L3 without VirtualRouter
 * services.  Runs in a job.  -1 with an error reported. */
int vrouter_ensure(struct job *job, const char *l3);

/* Pushes the whole configuration of the virtual router of L3 'l3' to it
 * when it runs and is connected; 0 (nothing to do) otherwise.  'db' may
 * hold an open transaction: the configuration then includes its
 * uncommitted changes, and the caller commits only if this succeeds, so
 * an API answer comes after the change is in the data path.  Without one
 * it runs in a write transaction of its own (reading the inventory,
 * calling the router and recording the gen are atomic). */
int vrouter_sync_l3(struct db *db, const char *l3);

/* Pushes only the port-forwarding rules 'rules' (an array of rule uuids)
 * to the virtual router of L3 'l3' when it runs and is connected, as a
 * delta (proto.h "Virtual routers") on the gen mgmt recorded for it: each
 * rule is added (or replaces its old self) when the inventory, with the
 * uncommitted changes of the caller's transaction, puts it in the router's
 * configuration, else removed.  'vips' (an array of VIP uuids: those the
 * rules are or were on) get their /32 added while a rule of the
 * configuration uses them, removed otherwise.  When the router refuses
 * the delta (a gen gap: it rebooted or missed a change; an older image)
 * this falls back to vrouter_sync_l3().  0 (also when there is nothing to
 * do), or -1 with an error reported; 'db' as for vrouter_sync_l3(). */
int vrouter_sync_rules(struct db *db, const char *l3, json_t *rules,
                       json_t *vips);

/* The configuration (proto.h "Virtual routers") of VR 'vr'; caller owns. */
json_t *vrouter_config(struct db *db, const char *vr);

/* The private L3 served by a VM NIC's network, or NULL: the L3 of NIC
 * 'nic' (caller frees). */
char *vrouter_l3_of_nic(struct db *db, const char *nic);

/* Agent event vr.state. */
void vrouter_event(const char *host, json_t *data);

#endif
