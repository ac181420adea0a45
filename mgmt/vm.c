/* vm.c: VM instances and their NICs.
 *
 * CreateVmInstance checks the offering, image and L3 networks, allocates a
 * MAC and an address on every L3 and records the VM.  With strategy
 * InstantStart (the default) it also places the VM on a host, reserving
 * its CPU and memory in the same transaction, and starts it in a job
 * (vmops.c); JustCreate records a Stopped VM.  Start, stop, reboot and
 * destroy are jobs on the VM's host.  Destroy releases the addresses and
 * detaches the VM's port-forwarding rules (they survive, detached);
 * Recover takes addresses again; Expunge removes the record. */
#include "resources.h"

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "validate.h"
#include "vmops.h"
#include "job.h"

LOG_MODULE("mgmt.vm");

static const char *const strategies[] = { "InstantStart", "JustCreate",
                                          "CreateStopped", NULL };

static const struct field vm_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "instanceOfferingUuid", .type = FT_UUID,
      .flags = F_REQ | F_CREATE, .ref = "instanceOffering" },
    { .name = "imageUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "image" },
    { .name = "l3NetworkUuids", .type = FT_STRLIST,
      .flags = F_REQ | F_CREATE | F_NOCOL, .ref = "l3Network" },
    { .name = "defaultL3NetworkUuid", .type = FT_UUID, .flags = F_CREATE,
      .ref = "l3Network" },
    { .name = "zoneUuid", .type = FT_UUID, .flags = F_CREATE, .ref = "zone" },
    { .name = "clusterUuid", .type = FT_UUID, .flags = F_CREATE,
      .ref = "cluster" },
    { .name = "hostUuid", .type = FT_UUID, .flags = F_CREATE, .ref = "host" },
    { .name = "lastHostUuid", .type = FT_UUID },
    { .name = "strategy", .type = FT_STR, .flags = F_CREATE | F_NOCOL,
      .choices = strategies },
    { .name = "hostname", .type = FT_STR, .flags = F_CREATE,
      .check = validate_hostname },
    { .name = "type", .type = FT_STR, .dflt = "UserVm" },
    { .name = "hypervisorType", .type = FT_STR, .dflt = "KVM" },
    { .name = "state", .type = FT_STR },
    { .name = "platform", .type = FT_STR },
    { .name = "cpuNum", .type = FT_INT },
    { .name = "cpuSpeed", .type = FT_INT },
    { .name = "memorySize", .type = FT_INT },
    { .name = "allocatorStrategy", .type = FT_STR },
    { .name = "primaryStorageUuid", .type = FT_UUID },
    { .name = "rootVolumePath", .type = FT_STR },
    { .name = "lastError", .type = FT_STR },
    { .name = "reserved", .type = FT_INT, .flags = F_HIDDEN },
    { .name = "applianceL3NetworkUuid", .type = FT_UUID },
    { .name = "vrStatus", .type = FT_STR },
    { .name = "vrGen", .type = FT_INT },
    { 0 },
};

static void
random_mac(char out[18])
{
    unsigned char b[5];

    random_bytes(b, sizeof b);
    snprintf(out, 18, "fa:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3],
             b[4]);
}

static const char *
jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Allocates an address for NIC 'nic' (a vmNic row) and stores it. */
static int
nic_take_ip(struct db *db, const char *vm, const char *nic, const char *l3)
{
    char ip[16];
    char netmask[16];
    char gateway[16];
    char used[UUID_LEN + 1];

    if (l3_alloc_ip(db, l3, NULL, "VmNic", vm, ip, netmask, gateway,
                    used) < 0) {
        return -1;
    }
    return db_exec(db, "UPDATE vmNic SET usedIpUuid = ?1, ip = ?2, "
                   "netmask = ?3, gateway = ?4, lastOpDate = ?5 WHERE "
                   "uuid = ?6", "ssssis", used, ip, netmask, gateway,
                   time_wall_msec(), nic) < 0 ? -1 : 0;
}

static int
vm_prepare(struct db *db, json_t *params, json_t *row)
{
    const char *strategy = jstr(params, "strategy");
    json_t *l3s = json_object_get(params, "l3NetworkUuids");
    const char *dflt = jstr(params, "defaultL3NetworkUuid");
    const char *hostname = jstr(params, "hostname");
    const char *zone = NULL;
    json_t *offering = NULL;
    json_t *image = NULL;
    int rc = -1;
    size_t i;
    json_t *l3;

    if (!hostname) {
        hostname = res_system_tag(params, "hostname");
        if (hostname && validate_hostname("systemTags", hostname) < 0) {
            return -1;
        }
    }
    if (!json_array_size(l3s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "l3NetworkUuids",
                           "field 'l3NetworkUuids' must name at least one "
                           "L3 network");
        return -1;
    }
    offering = res_load_table(db, "instanceOffering",
                              jstr(params, "instanceOfferingUuid"));
    image = res_load_table(db, "image", jstr(params, "imageUuid"));
    if (!offering || !image) {
        goto out;
    }
    if (strcmp(jstr(offering, "type"), "UserVm")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "instanceOfferingUuid",
                           "field 'instanceOfferingUuid': '%s' is a %s "
                           "offering, not one for user VMs",
                           jstr(offering, "name"), jstr(offering, "type"));
        goto out;
    }
    if (strcmp(jstr(offering, "state"), "Enabled")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "instanceOfferingUuid",
                           "instance offering '%s' is Disabled",
                           jstr(offering, "name"));
        goto out;
    }
    if (strcmp(jstr(image, "state"), "Enabled")
        || !strcmp(jstr(image, "status"), "Error")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "imageUuid",
                           "image '%s' is %s/%s and cannot be used",
                           jstr(image, "name"), jstr(image, "state"),
                           jstr(image, "status"));
        goto out;
    }
    if (json_integer_value(json_object_get(image, "system"))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "imageUuid",
                           "image '%s' is a system image (for virtual "
                           "routers), not for user VMs", jstr(image, "name"));
        goto out;
    }
    json_array_foreach(l3s, i, l3) {
        json_t *net;
        int64_t n;

        for (size_t j = 0; j < i; j++) {
            if (!strcmp(json_string_value(json_array_get(l3s, j)),
                        json_string_value(l3))) {
                error_report_field(PROBLEM_INVALID_ARGUMENT,
                                   "l3NetworkUuids",
                                   "field 'l3NetworkUuids' names L3 network "
                                   "%s twice", json_string_value(l3));
                goto out;
            }
        }
        net = res_load_table(db, "l3Network", json_string_value(l3));
        if (!net) {
            goto out;
        }
        if (json_integer_value(json_object_get(net, "system"))) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "l3NetworkUuids",
                               "L3 network '%s' is a system network; user "
                               "VMs cannot be placed on it",
                               jstr(net, "name"));
            json_decref(net);
            goto out;
        }
        if (!zone) {
            json_object_set(row, "zoneUuid", json_object_get(net,
                                                             "zoneUuid"));
            zone = jstr(row, "zoneUuid");
        } else if (strcmp(zone, jstr(net, "zoneUuid"))) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "l3NetworkUuids",
                               "the L3 networks of a VM must be in one "
                               "zone");
            json_decref(net);
            goto out;
        }
        if (hostname) {
            if (db_int(db, &n, 0, "SELECT count(*) FROM vmInstance v JOIN "
                       "vmNic c ON c.vmInstanceUuid = v.uuid WHERE "
                       "c.l3NetworkUuid = ?1 AND v.hostname = ?2 AND "
                       "v.state != 'Destroyed'", "ss", json_string_value(l3),
                       hostname) < 0) {
                json_decref(net);
                goto out;
            }
            if (n) {
                error_report_field(PROBLEM_CONFLICT, "hostname",
                                   "host name '%s' is already used on L3 "
                                   "network '%s'", hostname,
                                   jstr(net, "name"));
                json_decref(net);
                goto out;
            }
        }
        json_decref(net);
    }
    if (dflt) {
        bool listed = false;

        json_array_foreach(l3s, i, l3) {
            listed |= !strcmp(json_string_value(l3), dflt);
        }
        if (!listed) {
            error_report_field(PROBLEM_INVALID_ARGUMENT,
                               "defaultL3NetworkUuid",
                               "field 'defaultL3NetworkUuid' must be one of "
                               "'l3NetworkUuids'");
            goto out;
        }
    } else {
        json_object_set(row, "defaultL3NetworkUuid",
                        json_array_get(l3s, 0));
    }
    if (jstr(params, "zoneUuid") && strcmp(jstr(params, "zoneUuid"), zone)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "zoneUuid",
                           "field 'zoneUuid' differs from the zone of the "
                           "L3 networks");
        goto out;
    }
    if (hostname) {
        json_object_set_new(row, "hostname", json_string(hostname));
    }
    json_object_set(row, "cpuNum", json_object_get(offering, "cpuNum"));
    json_object_set(row, "cpuSpeed", json_object_get(offering, "cpuSpeed"));
    json_object_set(row, "memorySize", json_object_get(offering,
                                                       "memorySize"));
    if (!strategy || !strcmp(strategy, "InstantStart")) {
        if (!json_is_string(json_object_get(image, "status"))
            || strcmp(jstr(image, "status"), "Ready")) {
            error_report_field(PROBLEM_CONFLICT, "imageUuid",
                               "image '%s' is %s, not Ready",
                               jstr(image, "name"), jstr(image, "status"));
            goto out;
        }
        if (vmops_place(db, row, l3s) < 0) {
            goto out;
        }
        json_object_set_new(row, "state", json_string("Starting"));
    } else {
        json_object_set_new(row, "state", json_string("Stopped"));
    }
    json_object_set(row, "allocatorStrategy",
                    json_object_get(offering, "allocatorStrategy"));
    json_object_set(row, "platform", json_object_get(image, "platform"));
    rc = 0;

out:
    json_decref(offering);
    json_decref(image);
    return rc;
}

static int
vm_after_insert(struct db *db, json_t *params, json_t *row)
{
    json_t *l3s = json_object_get(params, "l3NetworkUuids");
    const char *vm = jstr(row, "uuid");
    int64_t now = time_wall_msec();
    size_t i;
    json_t *l3;

    json_array_foreach(l3s, i, l3) {
        char nic[UUID_LEN + 1];
        char mac[18];
        int64_t taken;

        do {
            random_mac(mac);
            if (db_int(db, &taken, 0, "SELECT count(*) FROM vmNic WHERE "
                       "mac = ?1", "s", mac) < 0) {
                return -1;
            }
        } while (taken);
        uuid_generate_hex(nic);
        if (db_exec(db, "INSERT INTO vmNic (uuid, vmInstanceUuid, "
                    "l3NetworkUuid, mac, deviceId, createDate, lastOpDate) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)", "ssssii", nic, vm,
                    json_string_value(l3), mac, (int64_t) i, now) < 0
            || nic_take_ip(db, vm, nic, json_string_value(l3)) < 0) {
            return -1;
        }
    }
    return 0;
}

static void
vm_inventory(struct db *db, json_t *inv)
{
    json_t *nics = res_select(db, "SELECT * FROM vmNic WHERE "
                              "vmInstanceUuid = ?1 ORDER BY deviceId", "s",
                              jstr(inv, "uuid"));
    size_t i;
    json_t *nic;

    json_array_foreach(nics, i, nic) {
        res_row_to_inventory(db, &vm_nic_resource, nic);
    }
    json_object_set_new(inv, "vmNics", nics ? nics : json_array());
}

static const char *const vr_columns[] = {
    "uuid", "name", "state", "vrStatus", "applianceL3NetworkUuid",
    "hostUuid", NULL
};

static const char *const vm_columns[] = {
    "uuid", "name", "state", "hostname", "type", "hostUuid", NULL
};

static int vm_recover(struct api_req *req, json_t *params);
static int vm_expunge(struct api_req *req, json_t *params);
static int vm_start(struct api_req *req, json_t *params);
static int vm_stop(struct api_req *req, json_t *params);
static int vm_reboot(struct api_req *req, json_t *params);

static const struct res_action vm_actions[] = {
    { "recoverVmInstance", vm_recover },
    { "expungeVmInstance", vm_expunge },
    { "startVmInstance", vm_start },
    { "stopVmInstance", vm_stop },
    { "rebootVmInstance", vm_reboot },
    { 0 },
};

const struct resource vm_resource = {
    .kind = "VmInstance",
    .label = "VM instance",
    .table = "vmInstance",
    .path = "vm-instances",
    .fields = vm_fields,
    .columns = vm_columns,
    .prepare = vm_prepare,
    .after_insert = vm_after_insert,
    .inventory = vm_inventory,
    .actions = vm_actions,
};

/* QueryVirtualRouterVm: the ApplianceVm view of vmInstance. */
const struct resource vr_resource = {
    .kind = "VmInstance",
    .label = "virtual router",
    .table = "vmInstance",
    .path = "vm-instances/appliances/virtual-routers",
    .where = "type = 'ApplianceVm'",
    .fields = vm_fields,
    .columns = vr_columns,
    .inventory = vm_inventory,
    .actions = vm_actions,
};

/* ---- NICs ---- */

static const struct field nic_fields[] = {
    { .name = "vmInstanceUuid", .type = FT_UUID, .ref = "vmInstance" },
    { .name = "l3NetworkUuid", .type = FT_UUID, .ref = "l3Network" },
    { .name = "usedIpUuid", .type = FT_UUID },
    { .name = "ip", .type = FT_STR },
    { .name = "netmask", .type = FT_STR },
    { .name = "gateway", .type = FT_STR },
    { .name = "mac", .type = FT_STR },
    { .name = "deviceId", .type = FT_INT },
    { .name = "createDate", .type = FT_DATE },
    { .name = "lastOpDate", .type = FT_DATE },
    { 0 },
};

static const char *const nic_columns[] = {
    "uuid", "vmInstanceUuid", "ip", "mac", "l3NetworkUuid", NULL
};

const struct resource vm_nic_resource = {
    .kind = "VmNic",
    .label = "VM NIC",
    .table = "vmNic",
    .path = "vm-instances/nics",
    .fields = nic_fields,
    .columns = nic_columns,
};

/* ---- Lifecycle ---- */

static int
vm_release_ips(struct db *db, const char *vm)
{
    json_t *nics = res_select(db, "SELECT uuid, usedIpUuid FROM vmNic "
                              "WHERE vmInstanceUuid = ?1", "s", vm);
    size_t i;
    json_t *nic;

    if (!nics) {
        return -1;
    }
    json_array_foreach(nics, i, nic) {
        const char *used = jstr(nic, "usedIpUuid");

        if (db_exec(db, "UPDATE vmNic SET usedIpUuid = NULL, ip = NULL, "
                    "netmask = NULL, gateway = NULL WHERE uuid = ?1", "s",
                    jstr(nic, "uuid")) < 0
            || l3_release_ip(db, used) < 0) {
            json_decref(nics);
            return -1;
        }
    }
    json_decref(nics);
    return 0;
}

static json_t *
vm_lock(struct api_req *req, struct db *db)
{
    json_t *row;

    if (db_begin(db) < 0) {
        return NULL;
    }
    row = res_load(db, &vm_resource, req->args[0]);
    if (!row) {
        db_rollback(db);
    }
    return row;
}

int
vm_destroy(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *row;

    if (!uuid_is_valid(req->args[0])) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "'%.64s' is not a UUID of 32 hex digits", req->args[0]);
        return -1;
    }
    row = vm_lock(req, db);
    if (!row) {
        if (error_last_problem() == PROBLEM_NOT_FOUND) {
            return api_reply(req, 200, json_object());
        }
        return -1;
    }
    if (!strcmp(jstr(row, "state"), "Destroyed")) {
        json_decref(row);
        db_rollback(db);
        return api_reply(req, 200, json_object());
    }
    if (!strcmp(jstr(row, "state"), "Starting")
        || !strcmp(jstr(row, "state"), "Stopping")
        || !strcmp(jstr(row, "state"), "Rebooting")
        || !strcmp(jstr(row, "state"), "Destroying")) {
        error_report(PROBLEM_CONFLICT, "VM '%s' is %s; wait for that to "
                     "finish", jstr(row, "name"), jstr(row, "state"));
        json_decref(row);
        db_rollback(db);
        return -1;
    }
    if (jstr(row, "hostUuid") || jstr(row, "rootVolumePath")) {
        /* There is something on a host to destroy: a job. */
        json_t *ctx = json_pack("{s:s, s:s}", "uuid", req->args[0],
                                "previousState", jstr(row, "state"));

        json_decref(row);
        if (db_exec(db, "UPDATE vmInstance SET state = 'Destroying', "
                    "lastOpDate = ?1 WHERE uuid = ?2", "is",
                    time_wall_msec(), req->args[0]) < 0
            || db_commit(db) < 0) {
            db_rollback(db);
            json_decref(ctx);
            return -1;
        }
        return job_submit(req, "DestroyVmInstance", req->args[0],
                          vmops_destroy_job, ctx);
    }
    if (pf_rule_detach_vm(db, req->args[0]) < 0
        || vm_release_ips(db, req->args[0]) < 0
        || db_exec(db, "UPDATE vmInstance SET state = 'Destroyed', "
                   "hostUuid = NULL, lastOpDate = ?1 WHERE uuid = ?2", "is",
                   time_wall_msec(), req->args[0]) < 0
        || db_commit(db) < 0) {
        json_decref(row);
        db_rollback(db);
        return -1;
    }
    LOG_INFO("VM '%s' destroyed", req->args[0]);
    json_decref(row);
    return api_reply(req, 200, json_object());
}

static int
no_params(json_t *params)
{
    const char *key;
    json_t *v;

    json_object_foreach(params, key, v) {
        if (strcmp(key, "systemTags") && strcmp(key, "userTags")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    return 0;
}

static int
vm_recover(struct api_req *req, json_t *params)
{
    struct db *db = db_thread();
    json_t *row;
    json_t *nics;
    size_t i;
    json_t *nic;

    if (no_params(params) < 0) {
        return -1;
    }
    row = vm_lock(req, db);
    if (!row) {
        return -1;
    }
    if (strcmp(jstr(row, "state"), "Destroyed")) {
        error_report(PROBLEM_CONFLICT, "VM '%s' is %s, not Destroyed",
                     jstr(row, "name"), jstr(row, "state"));
        json_decref(row);
        db_rollback(db);
        return -1;
    }
    json_decref(row);
    nics = res_select(db, "SELECT uuid, l3NetworkUuid FROM vmNic WHERE "
                      "vmInstanceUuid = ?1 ORDER BY deviceId", "s",
                      req->args[0]);
    json_array_foreach(nics, i, nic) {
        if (nic_take_ip(db, req->args[0], jstr(nic, "uuid"),
                        jstr(nic, "l3NetworkUuid")) < 0) {
            json_decref(nics);
            db_rollback(db);
            return -1;
        }
    }
    json_decref(nics);
    if (db_exec(db, "UPDATE vmInstance SET state = 'Stopped', lastOpDate = "
                "?1 WHERE uuid = ?2", "is", time_wall_msec(),
                req->args[0]) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, &vm_resource, req->args[0]);
}

static int
vm_expunge(struct api_req *req, json_t *params)
{
    struct db *db = db_thread();
    json_t *row;

    if (no_params(params) < 0) {
        return -1;
    }
    row = vm_lock(req, db);
    if (!row) {
        return -1;
    }
    if (strcmp(jstr(row, "state"), "Destroyed")) {
        error_report(PROBLEM_CONFLICT, "VM '%s' is %s; destroy it before "
                     "expunging it", jstr(row, "name"), jstr(row, "state"));
        json_decref(row);
        db_rollback(db);
        return -1;
    }
    json_decref(row);
    if (pf_rule_detach_vm(db, req->args[0]) < 0
        || vm_release_ips(db, req->args[0]) < 0
        || db_exec(db, "DELETE FROM vmInstance WHERE uuid = ?1", "s",
                   req->args[0]) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    LOG_INFO("VM '%s' expunged", req->args[0]);
    return api_reply(req, 200, json_object());
}

/* Moves the VM from one of 'from' (NULL-terminated) to 'to' and starts
 * 'fn' as a job; the check and the move are one transaction, so two
 * operations never run on one VM at once. */
static int
vm_transition(struct api_req *req, const char *const *from, const char *to,
              const char *api, job_fn *fn, json_t *ctx, bool place)
{
    struct db *db = db_thread();
    json_t *row = vm_lock(req, db);
    const char *state;
    bool ok = false;

    if (!row) {
        json_decref(ctx);
        return -1;
    }
    state = jstr(row, "state");
    for (const char *const *f = from; *f; f++) {
        ok |= !strcmp(*f, state);
    }
    if (!ok) {
        error_report(PROBLEM_CONFLICT, "VM '%s' is %s; %s needs it %s",
                     jstr(row, "name"), state, api, from[0]);
        goto fail;
    }
    if (place) {
        json_t *l3s = res_string_list(db, "SELECT l3NetworkUuid FROM vmNic "
                                      "WHERE vmInstanceUuid = ?1 ORDER BY "
                                      "deviceId", "l3NetworkUuid",
                                      req->args[0]);
        json_t *changes;
        int rc;

        json_object_set_new(row, "hostUuid", json_null());
        if (!jstr(row, "rootVolumePath")) {
            json_object_set_new(row, "primaryStorageUuid", json_null());
        }
        json_object_set_new(row, "clusterUuid", json_null());
        rc = vmops_place(db, row, l3s);
        json_decref(l3s);
        if (rc < 0) {
            goto fail;
        }
        changes = json_pack("{s:O, s:O, s:O, s:O, s:O}", "hostUuid",
                            json_object_get(row, "hostUuid"), "lastHostUuid",
                            json_object_get(row, "hostUuid"), "clusterUuid",
                            json_object_get(row, "clusterUuid"),
                            "primaryStorageUuid",
                            json_object_get(row, "primaryStorageUuid"),
                            "reserved", json_object_get(row, "reserved"));
        rc = res_update_row(db, "vmInstance", req->args[0], changes);
        json_decref(changes);
        if (rc < 0) {
            goto fail;
        }
    }
    if (db_exec(db, "UPDATE vmInstance SET state = ?1, lastError = NULL, "
                "lastOpDate = ?2 WHERE uuid = ?3", "sis", to,
                time_wall_msec(), req->args[0]) < 0
        || db_commit(db) < 0) {
        goto fail;
    }
    json_decref(row);
    return job_submit(req, api, req->args[0], fn, ctx);

fail:
    json_decref(row);
    json_decref(ctx);
    db_rollback(db);
    return -1;
}

static int
vm_start(struct api_req *req, json_t *params)
{
    static const char *const from[] = { "Stopped", NULL };

    if (no_params(params) < 0) {
        return -1;
    }
    return vm_transition(req, from, "Starting", "StartVmInstance",
                         vmops_start_job,
                         json_pack("{s:s, s:b}", "uuid", req->args[0],
                                   "create", false), true);
}

static int
vm_stop(struct api_req *req, json_t *params)
{
    static const char *const from[] = { "Running", "Unknown", NULL };
    json_t *type = json_object_get(params, "type");
    const char *key;
    json_t *v;

    json_object_foreach(params, key, v) {
        if (strcmp(key, "type") && strcmp(key, "systemTags")
            && strcmp(key, "userTags")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    if (type && (!json_is_string(type)
                 || (strcmp(json_string_value(type), "grace")
                     && strcmp(json_string_value(type), "cold")))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "type",
                           "field 'type' must be 'grace' (ACPI, then forced "
                           "after a timeout) or 'cold' (forced at once)");
        return -1;
    }
    return vm_transition(req, from, "Stopping", "StopVmInstance",
                         vmops_stop_job,
                         json_pack("{s:s, s:b}", "uuid", req->args[0],
                                   "force", type && !strcmp(
                                       json_string_value(type), "cold")),
                         false);
}

static int
vm_reboot(struct api_req *req, json_t *params)
{
    static const char *const from[] = { "Running", NULL };

    if (no_params(params) < 0) {
        return -1;
    }
    return vm_transition(req, from, "Rebooting", "RebootVmInstance",
                         vmops_reboot_job,
                         json_pack("{s:s}", "uuid", req->args[0]), false);
}

int
vm_create(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = api_params(req);
    json_t *row;
    const char *strategy;
    AUTOFREE char *uuid = NULL;

    if (!params) {
        return 0;
    }
    if (res_check_params(&vm_resource, params, F_CREATE) < 0
        || db_begin(db) < 0) {
        return -1;
    }
    row = res_create_row(db, &vm_resource, params);
    if (!row) {
        db_rollback(db);
        return -1;
    }
    uuid = xstrdup(jstr(row, "uuid"));
    json_decref(row);
    if (db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    strategy = jstr(params, "strategy");
    if (strategy && strcmp(strategy, "InstantStart")) {
        return res_reply_inventory(req, &vm_resource, uuid);
    }
    return job_submit(req, "CreateVmInstance", uuid, vmops_start_job,
                      json_pack("{s:s, s:b}", "uuid", uuid, "create", true));
}
