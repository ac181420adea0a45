/* vmops.c: VMs on hosts.
 *
 * DESIGN: the database is the desired state and the host's libvirt the
 * reached one.  Placement runs inside the transaction that records the VM
 * (or its start), so the capacity it reserves is never handed out twice:
 * parallel creates never overcommit.  A start is a job: image into the
 * primary storage's cache (first use), a qcow2 overlay as root volume,
 * then vm.start on the host's agent; a failure rolls back what the job
 * made (domain, overlay on create, reservation, and the IPs of a create),
 * and leaves the VM in Error (create) or Stopped (start) with the reason.
 * The agent reports lifecycle events; after every reconnect mgmt compares
 * its VMs with the host's domains: the host's view of what runs wins, a
 * domain mgmt does not know is reported and left alone. */
#include "vmops.h"

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "hostmgr.h"
#include "hostsync.h"
#include "imageops.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "res.h"
#include "resources.h"
#include "vrouter.h"

LOG_MODULE("mgmt.vmops");

#define AGENT_TIMEOUT_MS 120000

const char *vmops_domain_type = "auto";
int vmops_stop_timeout_ms = 60000;

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t
jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

int
vmops_place(struct db *db, json_t *vm, json_t *l3s)
{
    struct sbuf sql;
    json_t *values = json_array();
    json_t *rows;
    json_t *h;
    size_t i;
    json_t *l3;
    int64_t cpu = jint(vm, "cpuNum");
    int64_t mem = jint(vm, "memorySize");
    sqlite3_stmt *stmt;
    int rc = -1;

    sbuf_init(&sql);
    sbuf_addstr(&sql,
                "SELECT h.uuid, h.clusterUuid, h.name, "
                "(SELECT p.uuid FROM psClusterRef r JOIN primaryStorage p ON "
                "p.uuid = r.primaryStorageUuid WHERE r.clusterUuid = "
                "h.clusterUuid AND p.state = 'Enabled' AND p.status = "
                "'Connected'");
    if (jstr(vm, "primaryStorageUuid")) {
        json_array_append(values, json_object_get(vm, "primaryStorageUuid"));
        sbuf_addf(&sql, " AND p.uuid = ?%zu", json_array_size(values));
    }
    sbuf_addstr(&sql, " ORDER BY p.availableCapacity DESC LIMIT 1) AS ps "
                "FROM host h JOIN cluster c ON c.uuid = h.clusterUuid "
                "WHERE h.status = 'Connected' AND h.state = 'Enabled' AND "
                "c.state = 'Enabled' AND h.added = 1");
    json_array_append_new(values, json_integer(cpu));
    sbuf_addf(&sql, " AND h.availableCpuCapacity >= ?%zu",
              json_array_size(values));
    json_array_append_new(values, json_integer(mem));
    sbuf_addf(&sql, " AND h.availableMemoryCapacity >= ?%zu",
              json_array_size(values));
    if (jstr(vm, "clusterUuid")) {
        json_array_append(values, json_object_get(vm, "clusterUuid"));
        sbuf_addf(&sql, " AND h.clusterUuid = ?%zu",
                  json_array_size(values));
    }
    if (jstr(vm, "hostUuid")) {
        json_array_append(values, json_object_get(vm, "hostUuid"));
        sbuf_addf(&sql, " AND h.uuid = ?%zu", json_array_size(values));
    }
    json_array_foreach(l3s, i, l3) {
        json_array_append(values, l3);
        sbuf_addf(&sql, " AND EXISTS (SELECT 1 FROM l3Network l JOIN "
                  "l2ClusterRef r ON r.l2NetworkUuid = l.l2NetworkUuid "
                  "WHERE l.uuid = ?%zu AND r.clusterUuid = h.clusterUuid)",
                  json_array_size(values));
    }
    sbuf_addstr(&sql, " AND ps IS NOT NULL ORDER BY "
                "h.availableMemoryCapacity DESC, h.createDate LIMIT 1");
    stmt = db_stmt_json(db, sql.s, values);
    rows = json_array();
    if (stmt) {
        int r;

        while ((r = db_step(stmt)) == 1) {
            json_array_append_new(rows, db_row_json(stmt));
        }
        db_done(stmt);
        if (r < 0) {
            goto out;
        }
    } else {
        goto out;
    }
    if (!json_array_size(rows)) {
        error_report(PROBLEM_CONFLICT,
                     "no host can run the VM: it needs a Connected, "
                     "Enabled host with %lld free vCPUs and %lld MiB of "
                     "free memory in a cluster with Connected primary "
                     "storage and every L2 network of the VM's L3 "
                     "networks attached", (long long) cpu,
                     (long long) (mem >> 20));
        goto out;
    }
    h = json_array_get(rows, 0);
    if (db_exec(db, "UPDATE host SET availableCpuCapacity = "
                "availableCpuCapacity - ?1, availableMemoryCapacity = "
                "availableMemoryCapacity - ?2 WHERE uuid = ?3", "iis", cpu,
                mem, jstr(h, "uuid")) < 0) {
        goto out;
    }
    json_object_set(vm, "hostUuid", json_object_get(h, "uuid"));
    json_object_set(vm, "lastHostUuid", json_object_get(h, "uuid"));
    json_object_set(vm, "clusterUuid", json_object_get(h, "clusterUuid"));
    json_object_set(vm, "primaryStorageUuid", json_object_get(h, "ps"));
    json_object_set_new(vm, "reserved", json_integer(1));
    LOG_INFO("VM %s placed on host '%s'", jstr(vm, "uuid"), jstr(h, "name"));
    rc = 0;

out:
    json_decref(rows);
    json_decref(values);
    sbuf_destroy(&sql);
    return rc;
}

int
vmops_release(struct db *db, const char *vm_uuid)
{
    if (db_exec(db, "UPDATE host SET availableCpuCapacity = min("
                "totalCpuCapacity, availableCpuCapacity + (SELECT cpuNum "
                "FROM vmInstance WHERE uuid = ?1)), availableMemoryCapacity "
                "= min(totalMemoryCapacity, availableMemoryCapacity + "
                "(SELECT memorySize FROM vmInstance WHERE uuid = ?1)) WHERE "
                "uuid = (SELECT hostUuid FROM vmInstance WHERE uuid = ?1 "
                "AND reserved = 1)", "s", vm_uuid) < 0) {
        return -1;
    }
    return db_exec(db, "UPDATE vmInstance SET reserved = 0 WHERE uuid = ?1",
                   "s", vm_uuid) < 0 ? -1 : 0;
}

static int
vm_set(const char *uuid, const char *state, const char *error)
{
    struct db *db = db_thread();

    if (db_write(db, "UPDATE vmInstance SET state = ?1, lastError = ?2, "
                 "lastOpDate = ?3 WHERE uuid = ?4", "ssis", state, error,
                 time_wall_msec(), uuid) < 0) {
        return -1;
    }
    return 0;
}

static json_t *
vm_reply(const char *uuid, int *status)
{
    json_t *inv = res_inventory(db_thread(), &vm_resource, uuid);

    if (!inv) {
        return NULL;
    }
    *status = 200;
    return json_pack("{s:o}", "inventory", inv);
}

static const char *
domain_type(json_t *host)
{
    if (strcmp(vmops_domain_type, "auto")) {
        return vmops_domain_type;
    }
    return jint(host, "kvmAvailable") ? "kvm" : "qemu";
}

/* The NICs of 'vm' with the bridge of each one's L2 network. */
static json_t *
vm_nics(struct db *db, const char *vm)
{
    json_t *rows = res_select(db, "SELECT n.mac, n.deviceId, l2.* FROM "
                              "vmNic n JOIN l3Network l3 ON l3.uuid = "
                              "n.l3NetworkUuid JOIN l2Network l2 ON l2.uuid "
                              "= l3.l2NetworkUuid WHERE n.vmInstanceUuid = "
                              "?1 ORDER BY n.deviceId", "s", vm);
    json_t *nics = json_array();
    size_t i;
    json_t *r;

    json_array_foreach(rows, i, r) {
        char bridge[16];

        l2_bridge_name(r, bridge);
        json_array_append_new(nics, json_pack("{s:O, s:s, s:O}", "mac",
                                              json_object_get(r, "mac"),
                                              "bridge", bridge, "deviceId",
                                              json_object_get(r,
                                                              "deviceId")));
    }
    json_decref(rows);
    return nics;
}

/* Pushes the configuration of the routers of a user VM's networks after
 * its rules or leases changed (stop revokes its rules, destroy drops its
 * leases); failures are logged: the routers get everything again when
 * they reconnect. */
static void
sync_vm_routers(struct db *db, const char *vm)
{
    json_t *l3s = res_string_list(db, "SELECT n.l3NetworkUuid FROM vmNic n "
                                  "JOIN vmInstance v ON v.uuid = "
                                  "n.vmInstanceUuid WHERE v.uuid = ?1 AND "
                                  "v.type = 'UserVm'", "l3NetworkUuid", vm);
    size_t i;
    json_t *l3;

    json_array_foreach(l3s, i, l3) {
        if (vrouter_sync_l3(db, json_string_value(l3)) < 0) {
            LOG_WARN("VM %s: %s", vm, error_last_message());
        }
    }
    json_decref(l3s);
}

static void
release_ips(struct db *db, const char *vm)
{
    json_t *nics = res_select(db, "SELECT uuid, usedIpUuid FROM vmNic WHERE "
                              "vmInstanceUuid = ?1", "s", vm);
    size_t i;
    json_t *n;

    json_array_foreach(nics, i, n) {
        db_exec(db, "UPDATE vmNic SET usedIpUuid = NULL, ip = NULL, netmask "
                "= NULL, gateway = NULL WHERE uuid = ?1", "s",
                jstr(n, "uuid"));
        l3_release_ip(db, jstr(n, "usedIpUuid"));
    }
    json_decref(nics);
}

json_t *
vmops_start_job(struct job *job, json_t *ctx, int *status)
{
    struct db *db = db_thread();
    const char *uuid = jstr(ctx, "uuid");
    bool create = json_is_true(json_object_get(ctx, "create"));
    json_t *vm = res_load_table(db, "vmInstance", uuid);
    json_t *host = NULL;
    json_t *ps = NULL;
    json_t *r = NULL;
    AUTOFREE char *image_path = NULL;
    AUTOFREE char *volume = NULL;
    AUTOFREE char *console = NULL;
    bool made_volume = false;
    struct error_saved e;

    if (!vm) {
        return NULL;
    }
    host = res_load_table(db, "host", jstr(vm, "hostUuid"));
    ps = res_load_table(db, "primaryStorage", jstr(vm,
                                                   "primaryStorageUuid"));
    if (!host || !ps) {
        goto fail;
    }
    job_progress(job, "starting VM '%s' on host '%s'", jstr(vm, "name"),
                 jstr(host, "name"));
    if (jstr(vm, "rootVolumePath")) {
        volume = xstrdup(jstr(vm, "rootVolumePath"));
    } else {
        image_path = image_ensure_cached(job, jstr(vm, "imageUuid"),
                                         jstr(ps, "uuid"),
                                         jstr(host, "uuid"));
        if (!image_path) {
            goto fail;
        }
        volume = xasprintf("%s/rootvolumes/%s.qcow2", jstr(ps, "mountPath"),
                           uuid);
        r = hostmgr_call(jstr(host, "uuid"), "volume.create",
                         json_pack("{s:s, s:s}", "path", volume,
                                   "backingFile", image_path),
                         AGENT_TIMEOUT_MS);
        if (!r) {
            goto fail;
        }
        json_decref(r);
        made_volume = true;
        if (db_write(db, "UPDATE vmInstance SET rootVolumePath = ?1 WHERE "
                     "uuid = ?2", "ss", volume, uuid) < 0) {
            goto fail;
        }
        job_progress(job, "root volume %s created over the cached image",
                     volume);
    }
    if (!strcmp(jstr(vm, "type"), "UserVm")) {
        /* The virtual router of each of its networks first: it hands out
         * the VM's address and name by DHCP. */
        json_t *l3s = res_string_list(db, "SELECT l3NetworkUuid FROM vmNic "
                                      "WHERE vmInstanceUuid = ?1 ORDER BY "
                                      "deviceId", "l3NetworkUuid", uuid);
        size_t i;
        json_t *l3;
        int vrc = 0;

        json_array_foreach(l3s, i, l3) {
            if (vrc == 0 && vrouter_ensure(job, json_string_value(l3)) < 0) {
                vrc = -1;
            }
        }
        json_decref(l3s);
        if (vrc < 0) {
            goto fail;
        }
    }
    console = xasprintf("/var/log/kvmstack/vm/%s-console.log", uuid);
    r = hostmgr_call(jstr(host, "uuid"), "vm.start",
                     json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:s, "
                               "s:b}",
                               "uuid", uuid, "name", jstr(vm, "name"),
                               "cpuNum", (json_int_t) jint(vm, "cpuNum"),
                               "memorySize",
                               (json_int_t) jint(vm, "memorySize"),
                               "domainType", domain_type(host),
                               "rootVolume", volume, "nics",
                               vm_nics(db, uuid), "consoleLog", console,
                               "vrChannel",
                               !strcmp(jstr(vm, "type"), "ApplianceVm")),
                     AGENT_TIMEOUT_MS);
    if (!r) {
        goto fail;
    }
    json_decref(r);
    if (vm_set(uuid, "Running", NULL) < 0) {
        goto fail;
    }
    job_progress(job, "VM '%s' is Running", jstr(vm, "name"));
    json_decref(vm);
    json_decref(host);
    json_decref(ps);
    return vm_reply(uuid, status);

fail:
    error_save(&e);
    {
        const char *hu = host ? jstr(host, "uuid") : NULL;

        LOG_WARN("VM %s: start failed: %s", uuid, e.message);
        /* Roll back what this job made. */
        if (hu && hostmgr_is_connected(hu)) {
            json_decref(hostmgr_call(hu, "vm.destroy",
                                     json_pack("{s:s}", "uuid", uuid),
                                     AGENT_TIMEOUT_MS));
            if (made_volume) {
                json_decref(hostmgr_call(hu, "volume.delete",
                                         json_pack("{s:s}", "path", volume),
                                         AGENT_TIMEOUT_MS));
            }
        }
        if (db_begin(db) == 0) {
            if (made_volume) {
                db_exec(db, "UPDATE vmInstance SET rootVolumePath = NULL "
                        "WHERE uuid = ?1", "s", uuid);
            }
            vmops_release(db, uuid);
            if (create) {
                release_ips(db, uuid);
            }
            db_exec(db, "UPDATE vmInstance SET state = ?1, lastError = ?2, "
                    "hostUuid = NULL, lastOpDate = ?3 WHERE uuid = ?4",
                    "ssis", create ? "Error" : "Stopped", e.message,
                    time_wall_msec(), uuid);
            if (db_commit(db) < 0) {
                db_rollback(db);
            }
        }
    }
    error_restore(&e);
    json_decref(vm);
    json_decref(host);
    json_decref(ps);
    return NULL;
}

static json_t *
load_running(struct db *db, const char *uuid, json_t **host)
{
    json_t *vm = res_load_table(db, "vmInstance", uuid);

    *host = NULL;
    if (!vm) {
        return NULL;
    }
    if (!jstr(vm, "hostUuid")
        || !(*host = res_load_table(db, "host", jstr(vm, "hostUuid")))) {
        error_report(PROBLEM_CONFLICT, "VM '%s' is not on a host",
                     jstr(vm, "name"));
        json_decref(vm);
        return NULL;
    }
    return vm;
}

json_t *
vmops_stop_job(struct job *job, json_t *ctx, int *status)
{
    struct db *db = db_thread();
    const char *uuid = jstr(ctx, "uuid");
    bool force = json_is_true(json_object_get(ctx, "force"));
    json_t *host;
    json_t *vm = load_running(db, uuid, &host);
    json_t *r;

    if (!vm) {
        return NULL;
    }
    job_progress(job, "stopping VM '%s' (%s)", jstr(vm, "name"),
                 force ? "forced" : "ACPI power button, forced after the "
                 "timeout");
    r = hostmgr_call(jstr(host, "uuid"), "vm.stop",
                     json_pack("{s:s, s:b, s:i}", "uuid", uuid, "force",
                               force, "timeoutMs", vmops_stop_timeout_ms),
                     vmops_stop_timeout_ms + AGENT_TIMEOUT_MS);
    if (!r) {
        struct error_saved e;

        error_save(&e);
        vm_set(uuid, "Running", e.message);
        error_restore(&e);
        json_decref(vm);
        json_decref(host);
        return NULL;
    }
    json_decref(r);
    if (db_begin(db) < 0 || vmops_release(db, uuid) < 0
        || db_exec(db, "UPDATE vmInstance SET state = 'Stopped', hostUuid = "
                   "NULL, lastError = NULL, lastOpDate = ?1 WHERE uuid = ?2",
                   "is", time_wall_msec(), uuid) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
    }
    sync_vm_routers(db, uuid);
    json_decref(vm);
    json_decref(host);
    return vm_reply(uuid, status);
}

json_t *
vmops_reboot_job(struct job *job, json_t *ctx, int *status)
{
    struct db *db = db_thread();
    const char *uuid = jstr(ctx, "uuid");
    json_t *host;
    json_t *vm = load_running(db, uuid, &host);
    json_t *r;

    if (!vm) {
        return NULL;
    }
    job_progress(job, "rebooting VM '%s'", jstr(vm, "name"));
    r = hostmgr_call(jstr(host, "uuid"), "vm.reboot",
                     json_pack("{s:s}", "uuid", uuid), AGENT_TIMEOUT_MS);
    json_decref(vm);
    json_decref(host);
    if (!r) {
        vm_set(uuid, "Running", error_last_message());
        return NULL;
    }
    json_decref(r);
    vm_set(uuid, "Running", NULL);
    return vm_reply(uuid, status);
}

/* A Connected host that mounts primary storage 'ps', preferring 'first'. */
static char *
host_for_ps(struct db *db, const char *ps, const char *first)
{
    json_t *rows;
    char *uuid = NULL;
    size_t i;
    json_t *r;

    if (first && hostmgr_is_connected(first)) {
        return xstrdup(first);
    }
    rows = res_select(db, "SELECT h.uuid FROM host h JOIN psClusterRef r ON "
                      "r.clusterUuid = h.clusterUuid WHERE "
                      "r.primaryStorageUuid = ?1", "s", ps);
    json_array_foreach(rows, i, r) {
        if (!uuid && hostmgr_is_connected(jstr(r, "uuid"))) {
            uuid = xstrdup(jstr(r, "uuid"));
        }
    }
    json_decref(rows);
    return uuid;
}

static json_t *
destroy_failed(const char *uuid, json_t *ctx)
{
    struct error_saved e;

    error_save(&e);
    vm_set(uuid, jstr(ctx, "previousState") ? jstr(ctx, "previousState")
                                             : "Unknown", e.message);
    error_restore(&e);
    return NULL;
}

json_t *
vmops_destroy_job(struct job *job, json_t *ctx, int *status)
{
    struct db *db = db_thread();
    const char *uuid = jstr(ctx, "uuid");
    json_t *vm = res_load_table(db, "vmInstance", uuid);
    AUTOFREE char *where = NULL;
    json_t *r;

    if (!vm) {
        return NULL;
    }
    /* A stopped VM's domain may still be defined on the host it last ran
     * on (stopped behind mgmt's back): undefine it there too. */
    if (jstr(vm, "hostUuid")
        || (jstr(vm, "lastHostUuid")
            && hostmgr_is_connected(jstr(vm, "lastHostUuid")))) {
        const char *on = jstr(vm, "hostUuid") ? jstr(vm, "hostUuid")
                                              : jstr(vm, "lastHostUuid");

        job_progress(job, "destroying the domain of VM '%s'",
                     jstr(vm, "name"));
        r = hostmgr_call(on, "vm.destroy",
                         json_pack("{s:s}", "uuid", uuid), AGENT_TIMEOUT_MS);
        if (!r) {
            error_prefix("VM '%s' was not destroyed: ", jstr(vm, "name"));
            json_decref(vm);
            return destroy_failed(uuid, ctx);
        }
        json_decref(r);
    }
    if (jstr(vm, "rootVolumePath")) {
        where = host_for_ps(db, jstr(vm, "primaryStorageUuid"),
                            jstr(vm, "hostUuid"));
        if (!where) {
            error_report(PROBLEM_HOST_UNREACHABLE, "no Connected host "
                         "mounts the primary storage of VM '%s'; its root "
                         "volume cannot be deleted now", jstr(vm, "name"));
            json_decref(vm);
            return destroy_failed(uuid, ctx);
        }
        job_progress(job, "deleting root volume %s",
                     jstr(vm, "rootVolumePath"));
        r = hostmgr_call(where, "volume.delete",
                         json_pack("{s:s}", "path",
                                   jstr(vm, "rootVolumePath")),
                         AGENT_TIMEOUT_MS);
        if (!r) {
            json_decref(vm);
            return destroy_failed(uuid, ctx);
        }
        json_decref(r);
    }
    json_decref(vm);
    if (db_begin(db) < 0 || vmops_release(db, uuid) < 0
        || pf_rule_detach_vm(db, uuid) < 0) {
        db_rollback(db);
        return NULL;
    }
    release_ips(db, uuid);
    if (db_exec(db, "UPDATE vmInstance SET state = 'Destroyed', hostUuid = "
                "NULL, rootVolumePath = NULL, lastError = NULL, lastOpDate = "
                "?1 WHERE uuid = ?2", "is", time_wall_msec(), uuid) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return NULL;
    }
    LOG_INFO("VM %s destroyed", uuid);
    sync_vm_routers(db, uuid);
    *status = 200;
    return json_object();
}

int
vmops_console(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *vm = res_load(db, &vm_resource, req->args[0]);
    const char *host;
    json_t *r;

    if (!vm) {
        return -1;
    }
    host = jstr(vm, "hostUuid") ? jstr(vm, "hostUuid")
                                : jstr(vm, "lastHostUuid");
    if (!host) {
        json_decref(vm);
        error_report(PROBLEM_CONFLICT, "VM '%s' never ran on a host",
                     req->args[0]);
        return -1;
    }
    r = hostmgr_call(host, "vm.console",
                     json_pack("{s:s, s:i}", "uuid", req->args[0],
                               "tailBytes", 65536), 30000);
    json_decref(vm);
    if (!r) {
        return -1;
    }
    return api_reply(req, 200, json_pack("{s:o}", "inventory", r));
}

/* ---- Events and reconciliation ---- */

/* Applies the host's word that VM 'uuid' is 'state' (Running or not). */
static void
vm_observed(struct db *db, const char *host, const char *uuid, bool running,
            const char *reason)
{
    json_t *vm = res_load_table(db, "vmInstance", uuid);
    const char *cur;
    bool stopped = false;

    if (!vm) {
        error_reset();
        LOG_WARN("host %s: domain %s is not a VM mgmt knows; left alone",
                 host, uuid);
        return;
    }
    cur = jstr(vm, "state");
    if (!jstr(vm, "hostUuid") || strcmp(jstr(vm, "hostUuid"), host)) {
        if (running) {
            LOG_WARN("host %s runs VM %s, which mgmt places elsewhere (%s); "
                     "left alone", host, uuid,
                     jstr(vm, "hostUuid") ? jstr(vm, "hostUuid") : "none");
        }
        json_decref(vm);
        return;
    }
    if (db_begin(db) < 0) {
        json_decref(vm);
        return;
    }
    if (running && (!strcmp(cur, "Unknown") || !strcmp(cur, "Stopped"))) {
        db_exec(db, "UPDATE vmInstance SET state = 'Running', lastOpDate = "
                "?1 WHERE uuid = ?2", "is", time_wall_msec(), uuid);
        LOG_INFO("VM %s: %s -> Running (host %s)", uuid, cur, host);
    } else if (!running && (!strcmp(cur, "Running")
                            || !strcmp(cur, "Unknown"))) {
        vmops_release(db, uuid);
        db_exec(db, "UPDATE vmInstance SET state = 'Stopped', hostUuid = "
                "NULL, lastError = ?1, lastOpDate = ?2 WHERE uuid = ?3",
                "sis", reason, time_wall_msec(), uuid);
        LOG_INFO("VM %s: %s -> Stopped (%s)", uuid, cur, reason);
        stopped = true;
    }
    if (db_commit(db) < 0) {
        db_rollback(db);
        stopped = false;
    }
    json_decref(vm);
    if (stopped) {
        /* Its rules leave the data path (this runs on the event thread,
         * which may call agents). */
        sync_vm_routers(db, uuid);
    }
}

void
vm_event(const char *host, const char *event, json_t *data)
{
    const char *uuid = jstr(data, "uuid");
    const char *state = jstr(data, "state");

    if (event && !strcmp(event, "vr.state")) {
        vrouter_event(host, data);
        return;
    }
    if (!event || strcmp(event, "vm.state") || !uuid || !state) {
        return;
    }
    if (!strcmp(state, "Running")) {
        vm_observed(db_thread(), host, uuid, true, NULL);
    } else if (!strcmp(state, "Stopped") || !strcmp(state, "Crashed")) {
        AUTOFREE char *why = xasprintf("the domain %s on its host (%s)",
                                       !strcmp(state, "Crashed")
                                       ? "crashed" : "stopped",
                                       jstr(data, "reason")
                                       ? jstr(data, "reason") : "event");

        vm_observed(db_thread(), host, uuid, false, why);
    }
}

void
vm_reconcile_host(const char *host)
{
    struct db *db = db_thread();
    json_t *r = hostmgr_call(host, "vm.list", json_object(),
                             AGENT_TIMEOUT_MS);
    json_t *mine;
    size_t i;
    json_t *d;
    json_t *v;

    if (!r) {
        LOG_WARN("host %s: cannot list its domains: %s", host,
                 error_last_message());
        return;
    }
    json_array_foreach(json_object_get(r, "vms"), i, d) {
        vm_observed(db, host, jstr(d, "uuid"),
                    !strcmp(jstr(d, "state") ? jstr(d, "state") : "",
                            "Running"), "not running on its host after a "
                    "reconnect");
    }
    mine = res_select(db, "SELECT uuid FROM vmInstance WHERE hostUuid = ?1 "
                      "AND state IN ('Running', 'Unknown')", "s", host);
    json_array_foreach(mine, i, v) {
        bool found = false;
        size_t j;

        json_array_foreach(json_object_get(r, "vms"), j, d) {
            found |= !strcmp(jstr(d, "uuid") ? jstr(d, "uuid") : "",
                             jstr(v, "uuid"));
        }
        if (!found) {
            vm_observed(db, host, jstr(v, "uuid"), false,
                        "its domain was gone from the host after a "
                        "reconnect");
        }
    }
    json_decref(mine);
    json_decref(r);
}

int
vmops_host_lost(struct db *db, const char *host)
{
    /* Its routers' channels went with it: they are pushed everything
     * again when the agent reports them connected. */
    if (db_exec(db, "UPDATE vmInstance SET vrStatus = 'Disconnected' WHERE "
                "hostUuid = ?1 AND type = 'ApplianceVm'", "s", host) < 0) {
        return -1;
    }
    return db_exec(db, "UPDATE vmInstance SET state = 'Unknown', lastOpDate = ?1 "
            "WHERE hostUuid = ?2 AND state IN ('Running', 'Starting', "
            "'Stopping', 'Rebooting')", "is", time_wall_msec(), host) < 0
           ? -1 : 0;
}
