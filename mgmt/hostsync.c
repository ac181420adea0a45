/* hostsync.c: converges hosts to what their clusters say: every Connected
 * host of a cluster mounts the cluster's primary storage and has a bridge
 * for each of the cluster's L2 networks.  Pushed in the attach jobs and
 * again every time a host (re)connects (the agent calls are idempotent). */
#include "hostsync.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
#include "hostmgr.h"
#include "job.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "res.h"
#include "vmops.h"

LOG_MODULE("mgmt.hostsync");

#define AGENT_TIMEOUT_MS 60000

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

void
l2_bridge_name(json_t *l2, char out[16])
{
    const char *type = jstr(l2, "type");
    const char *ifname = jstr(l2, "physicalInterface");
    char buf[64];

    if (!strcmp(type, "VxlanNetwork")) {
        snprintf(buf, sizeof buf, "br_vx_%lld",
                 (long long) json_integer_value(json_object_get(l2, "vni")));
    } else if (!strcmp(type, "L2VlanNetwork")) {
        snprintf(buf, sizeof buf, "br_%s_%lld", ifname,
                 (long long) json_integer_value(json_object_get(l2,
                                                                "vlan")));
    } else {
        snprintf(buf, sizeof buf, "br_%s", ifname);
    }
    if (strlen(buf) > 15) {
        snprintf(buf, sizeof buf, "br_l2_%.8s", jstr(l2, "uuid"));
    }
    snprintf(out, 16, "%s", buf);
}

static json_t *
cluster_hosts(struct db *db, const char *cluster)
{
    return res_select(db, "SELECT * FROM host WHERE clusterUuid = ?1 AND "
                      "added = 1 ORDER BY createDate", "s", cluster);
}

/* ---- Primary storage ---- */

static json_t *
mount_call(const char *host, json_t *ps)
{
    return hostmgr_call(host, "storage.mount",
                        json_pack("{s:s, s:s, s:s}", "uuid",
                                  jstr(ps, "uuid"), "url", jstr(ps, "url"),
                                  "mountPath", jstr(ps, "mountPath")),
                        AGENT_TIMEOUT_MS);
}

/* Records what storage.mount answered 'r': the storage is Connected, with
 * that capacity. */
static int
ps_set_connected(json_t *ps, json_t *r)
{
    struct db *db = db_thread();

    if (db_write(db, "UPDATE primaryStorage SET status = 'Connected', "
                 "totalCapacity = ?1, availableCapacity = ?2, lastError = "
                 "NULL, lastOpDate = ?3 WHERE uuid = ?4", "iiis",
                 (int64_t) json_integer_value(json_object_get(
                                                  r, "totalCapacity")),
                 (int64_t) json_integer_value(json_object_get(
                                                  r, "availableCapacity")),
                 time_wall_msec(), jstr(ps, "uuid")) < 0) {
        return -1;
    }
    return 0;
}

static int
mount_on_host(const char *host, json_t *ps)
{
    json_t *r = mount_call(host, ps);
    int rc;

    if (!r) {
        return -1;
    }
    rc = ps_set_connected(ps, r);
    json_decref(r);
    return rc;
}

int
primary_storage_before_detach(struct db *db, const char *cluster,
                              const char *ps)
{
    json_t *vms = res_select(db, "SELECT uuid, name FROM vmInstance WHERE "
                             "primaryStorageUuid = ?1 AND clusterUuid = ?2 "
                             "AND state != 'Destroyed' LIMIT 1", "ss", ps,
                             cluster);
    int rc = 0;

    if (!vms) {
        return -1;
    }
    if (json_array_size(vms)) {
        json_t *v = json_array_get(vms, 0);

        error_report(PROBLEM_CONFLICT, "VM '%s' (%s) of this cluster has its "
                     "root volume on the primary storage; destroy it "
                     "first", jstr(v, "name"), jstr(v, "uuid"));
        rc = -1;
    }
    json_decref(vms);
    return rc;
}

/* An operation on one host for a cluster-wide attach or detach. */
typedef int host_op_fn(struct db *db, json_t *host, json_t *obj);

/* Runs 'op' on every Connected host of 'cluster' ('doing' names it in the
 * job's progress).  On the first failure, 'undo' (may be NULL) runs on the
 * hosts already done, and the first failure is reported.  Hosts that are
 * not Connected get the same state from host_sync() when they connect. */
static int
each_cluster_host(struct job *job, const char *cluster, json_t *obj,
                  const char *doing, host_op_fn *op, host_op_fn *undo)
{
    struct db *db = db_thread();
    json_t *hosts = cluster_hosts(db, cluster);
    json_t *done = json_array();
    size_t i;
    json_t *h;
    int rc = 0;

    if (!hosts) {
        json_decref(done);
        return -1;
    }
    json_array_foreach(hosts, i, h) {
        if (!hostmgr_is_connected(jstr(h, "uuid"))) {
            job_progress(job, "host '%s' is %s: it catches up when it "
                         "connects", jstr(h, "name"), jstr(h, "status"));
            continue;
        }
        job_progress(job, "%s on host '%s'", doing, jstr(h, "name"));
        if (op(db, h, obj) < 0) {
            error_prefix("host '%s': ", jstr(h, "name"));
            rc = -1;
            break;
        }
        json_array_append(done, h);
    }
    if (rc < 0 && undo) {
        struct error_saved e;

        error_save(&e);
        json_array_foreach(done, i, h) {
            if (undo(db, h, obj) < 0) {
                LOG_WARN("host '%s': undo failed: %s", jstr(h, "name"),
                         error_last_message());
            }
        }
        error_restore(&e);
    }
    json_decref(done);
    json_decref(hosts);
    return rc;
}

/* The mount of an attach: what the agent answers is kept in 'ps' and
 * recorded only once every host has mounted (primary_storage_attach_hosts),
 * so that an attach that fails and is undone changes nothing. */
static int
op_mount(struct db *db, json_t *host, json_t *ps)
{
    json_t *r = mount_call(jstr(host, "uuid"), ps);

    (void) db;
    if (!r) {
        return -1;
    }
    json_object_set_new(ps, "_mounted", r);
    return 0;
}

static int
op_unmount(struct db *db, json_t *host, json_t *ps)
{
    json_t *r = hostmgr_call(jstr(host, "uuid"), "storage.unmount",
                             json_pack("{s:O, s:O}", "uuid",
                                       json_object_get(ps, "uuid"),
                                       "mountPath",
                                       json_object_get(ps, "mountPath")),
                             AGENT_TIMEOUT_MS);

    (void) db;
    json_decref(r);
    return r ? 0 : -1;
}

int
primary_storage_attach_hosts(struct job *job, const char *cluster,
                             const char *ps_uuid)
{
    json_t *ps = res_load_table(db_thread(), "primaryStorage", ps_uuid);
    char *doing;
    int rc;

    if (!ps) {
        return -1;
    }
    doing = xasprintf("mounting %s", jstr(ps, "url"));
    rc = each_cluster_host(job, cluster, ps, doing, op_mount, op_unmount);
    if (!rc && json_object_get(ps, "_mounted")
        && ps_set_connected(ps, json_object_get(ps, "_mounted")) < 0) {
        struct error_saved e;

        error_save(&e);
        each_cluster_host(job, cluster, ps, "unmounting", op_unmount, NULL);
        error_restore(&e);
        rc = -1;
    }
    free(doing);
    json_decref(ps);
    return rc;
}

int
primary_storage_detach_hosts(struct job *job, const char *cluster,
                             const char *ps_uuid)
{
    struct db *db = db_thread();
    json_t *ps = res_load_table(db, "primaryStorage", ps_uuid);
    int rc;

    if (!ps) {
        return -1;
    }
    rc = primary_storage_before_detach(db, cluster, ps_uuid);
    if (!rc) {
        rc = each_cluster_host(job, cluster, ps, "unmounting", op_unmount,
                               NULL);
    }
    json_decref(ps);
    return rc;
}

/* ---- L2 bridges ---- */

static json_t *
bridge_params(struct db *db, json_t *l2, json_t *host)
{
    char bridge[16];
    json_t *peers = json_array();
    json_t *p;

    l2_bridge_name(l2, bridge);
    if (!strcmp(jstr(l2, "type"), "VxlanNetwork")) {
        json_t *others = res_select(
            db, "SELECT DISTINCT h.managementIp FROM host h JOIN "
            "l2ClusterRef r ON r.clusterUuid = h.clusterUuid WHERE "
            "r.l2NetworkUuid = ?1 AND h.uuid != ?2 AND h.added = 1", "ss",
            jstr(l2, "uuid"), jstr(host, "uuid"));
        size_t i;
        json_t *o;

        json_array_foreach(others, i, o) {
            json_array_append(peers, json_object_get(o, "managementIp"));
        }
        json_decref(others);
    }
    p = json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", jstr(l2, "type"),
                  "physicalInterface", jstr(l2, "physicalInterface"),
                  "bridge", bridge, "localIp", jstr(host, "managementIp"),
                  "peers", peers);
    if (json_is_integer(json_object_get(l2, "vlan"))) {
        json_object_set(p, "vlan", json_object_get(l2, "vlan"));
    }
    if (json_is_integer(json_object_get(l2, "vni"))) {
        json_object_set(p, "vni", json_object_get(l2, "vni"));
    }
    return p;
}

static int
bridge_on_host(struct db *db, json_t *l2, json_t *host)
{
    json_t *r = hostmgr_call(jstr(host, "uuid"), "net.bridge.ensure",
                             bridge_params(db, l2, host), AGENT_TIMEOUT_MS);

    json_decref(r);
    return r ? 0 : -1;
}

int
l2_before_detach(struct db *db, const char *l2, const char *cluster)
{
    json_t *vms = res_select(
        db, "SELECT v.uuid, v.name FROM vmInstance v JOIN vmNic n ON "
        "n.vmInstanceUuid = v.uuid JOIN l3Network l ON l.uuid = "
        "n.l3NetworkUuid WHERE l.l2NetworkUuid = ?1 AND v.clusterUuid = ?2 "
        "AND v.state NOT IN ('Destroyed', 'Stopped', 'Error') LIMIT 1", "ss",
        l2, cluster);
    int rc = 0;

    if (!vms) {
        return -1;
    }
    if (json_array_size(vms)) {
        json_t *v = json_array_get(vms, 0);

        error_report(PROBLEM_CONFLICT, "VM '%s' (%s) of this cluster has a "
                     "NIC on the L2 network; stop it first",
                     jstr(v, "name"), jstr(v, "uuid"));
        rc = -1;
    }
    json_decref(vms);
    return rc;
}

static int
op_bridge(struct db *db, json_t *host, json_t *l2)
{
    return bridge_on_host(db, l2, host);
}

static int
op_unbridge(struct db *db, json_t *host, json_t *l2)
{
    char bridge[16];
    json_t *r;

    (void) db;
    l2_bridge_name(l2, bridge);
    r = hostmgr_call(jstr(host, "uuid"), "net.bridge.remove",
                     json_pack("{s:s}", "bridge", bridge), AGENT_TIMEOUT_MS);
    json_decref(r);
    return r ? 0 : -1;
}

int
l2_attach_hosts(struct job *job, const char *l2_uuid, const char *cluster)
{
    json_t *l2 = res_load_table(db_thread(), "l2Network", l2_uuid);
    char *doing;
    int rc;

    if (!l2) {
        return -1;
    }
    doing = xasprintf("creating the bridge of L2 '%s'", jstr(l2, "name"));
    rc = each_cluster_host(job, cluster, l2, doing, op_bridge, op_unbridge);
    free(doing);
    json_decref(l2);
    return rc;
}

int
l2_detach_hosts(struct job *job, const char *l2_uuid, const char *cluster)
{
    struct db *db = db_thread();
    json_t *l2 = res_load_table(db, "l2Network", l2_uuid);
    int rc;

    if (!l2) {
        return -1;
    }
    rc = l2_before_detach(db, l2_uuid, cluster);
    if (!rc) {
        rc = each_cluster_host(job, cluster, l2, "removing the bridge",
                               op_unbridge, NULL);
    }
    json_decref(l2);
    return rc;
}

/* ---- On (re)connect ---- */

void
host_sync(const char *uuid)
{
    struct db *db = db_thread();
    json_t *host = res_load_table(db, "host", uuid);
    json_t *list;
    size_t i;
    json_t *r;

    if (!host) {
        return;
    }
    list = res_select(db, "SELECT p.* FROM primaryStorage p JOIN "
                      "psClusterRef r ON r.primaryStorageUuid = p.uuid WHERE "
                      "r.clusterUuid = ?1", "s", jstr(host, "clusterUuid"));
    json_array_foreach(list, i, r) {
        if (mount_on_host(uuid, r) < 0) {
            LOG_WARN("host %s: cannot mount primary storage '%s': %s", uuid,
                     jstr(r, "name"), error_last_message());
        }
    }
    json_decref(list);
    list = res_select(db, "SELECT l.* FROM l2Network l JOIN l2ClusterRef r "
                      "ON r.l2NetworkUuid = l.uuid WHERE r.clusterUuid = ?1",
                      "s", jstr(host, "clusterUuid"));
    json_array_foreach(list, i, r) {
        if (bridge_on_host(db, r, host) < 0) {
            LOG_WARN("host %s: cannot create the bridge of L2 '%s': %s",
                     uuid, jstr(r, "name"), error_last_message());
        }
    }
    json_decref(list);
    json_decref(host);
    vm_reconcile_host(uuid);
}

void
hostsync_init(void)
{
    hostmgr_connect_handler = host_sync;
    hostmgr_event_handler = vm_event;
}
