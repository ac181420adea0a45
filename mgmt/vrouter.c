/* vrouter.c: virtual routers.
 *
 * DESIGN: a virtual router is a VM instance of type ApplianceVm serving
 * one private L3 network (applianceL3NetworkUuid).  The first VM started
 * on an L3 with VirtualRouter services makes one from the zone's default
 * virtual router offering: a NIC on the offering's public L3 with an
 * address from its range and a NIC on the private L3 holding the L3's
 * gateway address.  Inside runs kvmstack-vr, reached through the host
 * agent over a virtio-serial channel.  The router keeps nothing mgmt
 * cannot rebuild: its whole configuration is computed from the inventory
 * (vrouter_config) and pushed with a generation number every time the
 * router (re)connects and after changes of VMs, leases and networks;
 * kvmstack-vr applies only the difference, as one nftables transaction.
 * A change of port-forwarding rules (create, attach, detach, enable,
 * disable, delete, a VIP's delete) sends only those rules, as a delta on
 * the gen recorded in vmInstance.vrGen (vrouter_sync_rules): parsing and
 * diffing a 30,000-rule configuration costs more than 100 ms, a delta
 * costs the same at any size.  A gen names one configuration: every push
 * reads the inventory, calls the router and records the gen inside one
 * write transaction (the caller's, or its own), so writers never
 * interleave between them; a transaction rolled back after the router
 * applied leaves the router ahead, and its next delta is refused as a gen
 * gap, which (like any refusal: an older image, a rebooted router) makes
 * mgmt send the whole configuration. */
#include "vrouter.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "hostmgr.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "res.h"
#include "resources.h"
#include "validate.h"
#include "vmops.h"

LOG_MODULE("mgmt.vrouter");

#define APPLY_TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 180000

static pthread_mutex_t ensure_mutex = PTHREAD_MUTEX_INITIALIZER;

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool
l3_has_service(struct db *db, const char *l3, const char *type)
{
    int64_t n = 0;

    db_int(db, &n, 0, "SELECT count(*) FROM l3NetworkService s JOIN "
           "networkServiceProvider p ON p.uuid = "
           "s.networkServiceProviderUuid WHERE p.type = 'VirtualRouter' AND "
           "s.l3NetworkUuid = ?1 AND (?2 IS NULL OR "
           "s.networkServiceType = ?2)", "ss", l3, type);
    return n > 0;
}

static json_t *
vr_of_l3(struct db *db, const char *l3)
{
    json_t *rows = res_select(db, "SELECT * FROM vmInstance WHERE type = "
                              "'ApplianceVm' AND applianceL3NetworkUuid = "
                              "?1 AND state NOT IN ('Destroyed', 'Error') "
                              "ORDER BY createDate DESC LIMIT 1", "s", l3);
    json_t *vr = NULL;

    if (rows && json_array_size(rows)) {
        vr = json_incref(json_array_get(rows, 0));
    }
    json_decref(rows);
    return vr;
}

char *
vrouter_l3_of_nic(struct db *db, const char *nic)
{
    json_t *rows = res_select(db, "SELECT l3NetworkUuid FROM vmNic WHERE "
                              "uuid = ?1", "s", nic);
    char *l3 = NULL;

    if (rows && json_array_size(rows)) {
        l3 = xstrdup(jstr(json_array_get(rows, 0), "l3NetworkUuid"));
    }
    json_decref(rows);
    return l3;
}

static int
prefix_of(const char *netmask)
{
    int prefix = 24;

    if (netmask && validate_netmask("netmask", netmask, &prefix) < 0) {
        error_reset();
        prefix = 24;
    }
    return prefix;
}

/* The port-forwarding rules in the configuration of the router of
 * private L3 ?1 whose public L3 is ?2: enabled, attached to a NIC on ?1 of
 * a VM that runs, on a VIP of ?2.  Callers append a condition or an
 * ORDER BY. */
#define PF_RULES_SQL                                                      \
    "SELECT r.*, n.ip AS nicIp FROM portForwardingRule r JOIN vmNic n ON " \
    "n.uuid = r.vmNicUuid JOIN vmInstance v ON v.uuid = "                 \
    "n.vmInstanceUuid JOIN vip p ON p.uuid = r.vipUuid WHERE "            \
    "n.l3NetworkUuid = ?1 AND p.l3NetworkUuid = ?2 AND r.state = "        \
    "'Enabled' AND v.state IN ('Starting', 'Running', 'Rebooting', "      \
    "'Unknown')"

/* The portForwarding entry (proto.h) of a row of PF_RULES_SQL. */
static json_t *
pf_entry(json_t *r)
{
    return json_pack("{s:O, s:O, s:s, s:[O,O], s:O, s:[O,O], s:O}",
                     "uuid", json_object_get(r, "uuid"), "vip",
                     json_object_get(r, "vipIp"), "protocol",
                     strcmp(jstr(r, "protocolType"), "UDP") ? "tcp" : "udp",
                     "vipPorts", json_object_get(r, "vipPortStart"),
                     json_object_get(r, "vipPortEnd"), "guestIp",
                     json_object_get(r, "nicIp"), "guestPorts",
                     json_object_get(r, "privatePortStart"),
                     json_object_get(r, "privatePortEnd"),
                     "allowedCidr", json_object_get(r, "allowedCidr"));
}

/* The public L3 of router 'vr_uuid' (its first NIC off its private L3
 * 'l3'), or NULL; caller frees. */
static char *
vr_public_l3(struct db *db, const char *vr_uuid, const char *l3)
{
    json_t *rows = res_select(db, "SELECT l3NetworkUuid FROM vmNic WHERE "
                              "vmInstanceUuid = ?1 AND l3NetworkUuid != ?2 "
                              "ORDER BY deviceId LIMIT 1", "ss", vr_uuid,
                              l3);
    char *pub = NULL;

    if (rows && json_array_size(rows)) {
        pub = xstrdup(jstr(json_array_get(rows, 0), "l3NetworkUuid"));
    }
    json_decref(rows);
    return pub;
}

json_t *
vrouter_config(struct db *db, const char *vr_uuid)
{
    json_t *vr = res_load_table(db, "vmInstance", vr_uuid);
    json_t *c;
    json_t *nics;
    json_t *ifs = json_array();
    json_t *rows;
    const char *l3;
    const char *pub_l3 = NULL;
    const char *pub_ip = NULL;
    const char *priv_ip = NULL;
    json_t *range = NULL;
    size_t i;
    json_t *r;

    if (!vr) {
        json_decref(ifs);
        return NULL;
    }
    l3 = jstr(vr, "applianceL3NetworkUuid");
    nics = res_select(db, "SELECT * FROM vmNic WHERE vmInstanceUuid = ?1 "
                      "ORDER BY deviceId", "s", vr_uuid);
    json_array_foreach(nics, i, r) {
        bool priv = !strcmp(jstr(r, "l3NetworkUuid"), l3);
        char addr[40];

        snprintf(addr, sizeof addr, "%s/%d", jstr(r, "ip"),
                 prefix_of(jstr(r, "netmask")));
        json_array_append_new(ifs, json_pack(
                                  "{s:O, s:s, s:s, s:O}", "mac",
                                  json_object_get(r, "mac"), "role",
                                  priv ? "private" : "public", "address",
                                  addr, "gateway",
                                  priv ? json_null()
                                       : json_object_get(r, "gateway")));
        if (priv) {
            priv_ip = jstr(r, "ip");
        } else if (!pub_l3) {
            pub_l3 = jstr(r, "l3NetworkUuid");
            pub_ip = jstr(r, "ip");
        }
    }
    c = json_pack("{s:I, s:o}", "gen",
                  (json_int_t) json_integer_value(json_object_get(vr,
                                                                  "vrGen"))
                  + 1, "interfaces", ifs);
    rows = res_select(db, "SELECT networkCidr, gateway FROM ipRange WHERE "
                      "l3NetworkUuid = ?1 LIMIT 1", "s", l3);
    if (rows && json_array_size(rows)) {
        range = json_incref(json_array_get(rows, 0));
    }
    json_decref(rows);

    /* SNAT of the private network to the router's public address. */
    json_object_set_new(c, "snat", json_array());
    if (range && pub_ip && l3_has_service(db, l3, "SNAT")) {
        json_array_append_new(json_object_get(c, "snat"),
                              json_pack("{s:O, s:s}", "source",
                                        json_object_get(range,
                                                        "networkCidr"),
                                        "to", pub_ip));
    }

    /* DHCP and DNS for the VMs of the private network. */
    if (range && l3_has_service(db, l3, "DHCP")) {
        json_t *l3row = res_load_table(db, "l3Network", l3);
        json_t *dns = res_string_list(db, "SELECT dns FROM l3Dns WHERE "
                                      "l3NetworkUuid = ?1 ORDER BY "
                                      "position", "dns", l3);
        json_t *hosts = res_select(db, "SELECT n.mac, n.ip, v.hostname FROM "
                                   "vmNic n JOIN vmInstance v ON v.uuid = "
                                   "n.vmInstanceUuid WHERE n.l3NetworkUuid "
                                   "= ?1 AND v.type = 'UserVm' AND v.state "
                                   "!= 'Destroyed' AND n.ip IS NOT NULL "
                                   "ORDER BY n.createDate", "s", l3);
        bool dns_service = l3_has_service(db, l3, "DNS");

        json_object_set_new(c, "dhcp", json_pack(
                                "{s:O, s:O, s:O?, s:o, s:o, s:o}", "subnet",
                                json_object_get(range, "networkCidr"),
                                "gateway", json_object_get(range, "gateway"),
                                "domain", l3row ? json_object_get(l3row,
                                                                  "dnsDomain")
                                                : NULL,
                                "dns", dns_service && priv_ip
                                ? json_pack("[s]", priv_ip)
                                : json_deep_copy(dns),
                                "upstreams", dns_service
                                ? json_deep_copy(dns) : json_array(),
                                "hosts", hosts ? hosts : json_array()));
        json_decref(dns);
        json_decref(l3row);
    } else {
        json_object_set_new(c, "dhcp", json_null());
    }

    /* VIPs and port forwarding to VMs that run. */
    json_object_set_new(c, "vips", json_array());
    json_object_set_new(c, "portForwarding", json_array());
    if (pub_l3 && l3_has_service(db, l3, "PortForwarding")) {
        json_t *rules = res_select(db, PF_RULES_SQL " ORDER BY r.createDate",
                                   "ss", l3, pub_l3);
        json_t *vips = json_object();
        const char *k;
        json_t *v;

        json_array_foreach(rules, i, r) {
            json_array_append_new(json_object_get(c, "portForwarding"),
                                  pf_entry(r));
            json_object_set_new(vips, jstr(r, "vipIp"), json_true());
        }
        json_object_foreach(vips, k, v) {
            json_array_append_new(json_object_get(c, "vips"),
                                  json_string(k));
        }
        json_decref(vips);
        json_decref(rules);
    }
    json_decref(range);
    json_decref(nics);
    json_decref(vr);
    return c;
}

/* Whether router 'vr' (a vmInstance row) can take a configuration now;
 * when not, it gets the whole one when it connects. */
static bool
vr_reachable(json_t *vr)
{
    if (strcmp(jstr(vr, "state"), "Running")
        || !jstr(vr, "vrStatus") || strcmp(jstr(vr, "vrStatus"), "Connected")
        || !jstr(vr, "hostUuid") || !hostmgr_is_connected(jstr(vr,
                                                               "hostUuid"))) {
        LOG_INFO("virtual router %s is %s/%s: its configuration is pushed "
                 "when it connects", jstr(vr, "uuid"), jstr(vr, "state"),
                 jstr(vr, "vrStatus") ? jstr(vr, "vrStatus") : "-");
        return false;
    }
    return true;
}

/* Records that router 'vr_uuid' reached 'gen', in the open transaction
 * (rolled back with it: the router is then ahead, and the next delta is
 * refused as a gen gap). */
static void
vr_set_gen(struct db *db, const char *vr_uuid, int64_t gen)
{
    if (db_exec(db, "UPDATE vmInstance SET vrGen = ?1 WHERE uuid = ?2",
                "is", gen, vr_uuid) < 0) {
        LOG_WARN("virtual router %s: cannot record gen %lld: %s", vr_uuid,
                 (long long) gen, error_last_message());
        error_reset();
    }
}

static int
sync_l3_txn(struct db *db, const char *l3)
{
    json_t *vr = vr_of_l3(db, l3);
    json_t *config;
    json_t *r;
    int rc = 0;

    if (!vr) {
        return 0;
    }
    if (!vr_reachable(vr)) {
        /* Not reachable now: it gets everything when it connects. */
        json_decref(vr);
        return 0;
    }
    config = vrouter_config(db, jstr(vr, "uuid"));
    if (!config) {
        json_decref(vr);
        return -1;
    }
    r = hostmgr_call(jstr(vr, "hostUuid"), "vr.apply",
                     json_pack("{s:s, s:O}", "uuid", jstr(vr, "uuid"),
                               "config", config), APPLY_TIMEOUT_MS);
    if (!r) {
        error_prefix("virtual router '%s': ", jstr(vr, "name"));
        rc = -1;
    } else {
        vr_set_gen(db, jstr(vr, "uuid"),
                   (int64_t) json_integer_value(json_object_get(config,
                                                                "gen")));
        LOG_INFO("virtual router %s: configuration gen %lld applied",
                 jstr(vr, "uuid"),
                 (long long) json_integer_value(json_object_get(config,
                                                                "gen")));
    }
    json_decref(r);
    json_decref(config);
    json_decref(vr);
    return rc;
}

int
vrouter_sync_l3(struct db *db, const char *l3)
{
    int rc;

    if (db_in_txn(db)) {
        return sync_l3_txn(db, l3);
    }
    /* A transaction of our own, so that no other writer's change (and its
     * delta) comes between reading the inventory and recording the gen:
     * each gen names one configuration. */
    if (db_begin(db) < 0) {
        return -1;
    }
    rc = sync_l3_txn(db, l3);
    if (rc < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

/* The delta vrouter_sync_rules() sends (D of proto.h) to router 'vr' (a
 * vmInstance row) of L3 'l3'; caller owns.  NULL with an error reported
 * when the inventory cannot be read. */
static json_t *
vr_rules_delta(struct db *db, json_t *vr, const char *l3, json_t *rules,
               json_t *vips)
{
    AUTOFREE char *pub_l3 = vr_public_l3(db, jstr(vr, "uuid"), l3);
    bool pf = pub_l3 && l3_has_service(db, l3, "PortForwarding");
    int64_t base = (int64_t) json_integer_value(json_object_get(vr,
                                                                "vrGen"));
    json_t *d = json_pack("{s:I, s:I, s:[], s:[], s:[], s:[]}",
                          "gen", (json_int_t) (base + 1),
                          "baseGen", (json_int_t) base,
                          "portForwardingAdd", "portForwardingDel",
                          "vipsAdd", "vipsDel");
    size_t i;
    json_t *v;

    json_array_foreach(rules, i, v) {
        json_t *rows = NULL;

        if (pf) {
            rows = res_select(db, PF_RULES_SQL " AND r.uuid = ?3", "sss", l3,
                              pub_l3, json_string_value(v));
            if (!rows) {
                json_decref(d);
                return NULL;
            }
        }
        if (rows && json_array_size(rows)) {
            json_array_append_new(json_object_get(d, "portForwardingAdd"),
                                  pf_entry(json_array_get(rows, 0)));
        } else {
            json_array_append(json_object_get(d, "portForwardingDel"), v);
        }
        json_decref(rows);
    }
    /* A VIP's /32 is there while the configuration has a rule on it. */
    json_array_foreach(vips, i, v) {
        json_t *rows = res_select(db, "SELECT ip FROM vip WHERE uuid = ?1",
                                  "s", json_string_value(v));
        const char *ip = rows && json_array_size(rows)
                         ? jstr(json_array_get(rows, 0), "ip") : NULL;
        int64_t used = 0;

        if (!rows
            || (ip && pf
                && db_int(db, &used, 0, "SELECT EXISTS (" PF_RULES_SQL
                          " AND r.vipUuid = ?3)", "sss", l3, pub_l3,
                          json_string_value(v)) < 0)) {
            json_decref(rows);
            json_decref(d);
            return NULL;
        }
        if (ip) {
            json_array_append_new(json_object_get(d, used ? "vipsAdd"
                                                          : "vipsDel"),
                                  json_string(ip));
        }
        json_decref(rows);
    }
    return d;
}

static int
sync_rules_txn(struct db *db, const char *l3, json_t *rules, json_t *vips)
{
    json_t *vr = vr_of_l3(db, l3);
    json_t *d;
    json_t *r;
    enum problem p;

    if (!vr) {
        return 0;
    }
    if (!vr_reachable(vr)) {
        json_decref(vr);
        return 0;
    }
    d = vr_rules_delta(db, vr, l3, rules, vips);
    if (!d) {
        json_decref(vr);
        return -1;
    }
    r = hostmgr_call(jstr(vr, "hostUuid"), "vr.apply",
                     json_pack("{s:s, s:O}", "uuid", jstr(vr, "uuid"),
                               "delta", d), APPLY_TIMEOUT_MS);
    if (r) {
        vr_set_gen(db, jstr(vr, "uuid"),
                   (int64_t) json_integer_value(json_object_get(d, "gen")));
        LOG_INFO("virtual router %s: delta gen %lld (on %lld) applied: +%zu "
                 "-%zu rules", jstr(vr, "uuid"),
                 (long long) json_integer_value(json_object_get(d, "gen")),
                 (long long) json_integer_value(json_object_get(d,
                                                                "baseGen")),
                 json_array_size(json_object_get(d, "portForwardingAdd")),
                 json_array_size(json_object_get(d, "portForwardingDel")));
        json_decref(r);
        json_decref(d);
        json_decref(vr);
        return 0;
    }
    json_decref(d);
    p = error_last_problem();
    if (p == PROBLEM_HOST_UNREACHABLE || p == PROBLEM_TIMEOUT) {
        /* The whole configuration would not get through either. */
        error_prefix("virtual router '%s': ", jstr(vr, "name"));
        json_decref(vr);
        return -1;
    }
    /* A gen gap (the router rebooted, or an earlier change of ours was
     * rolled back after it applied it), an older router or agent that
     * takes no deltas, or a refusal: everything, as after a reconnect. */
    LOG_INFO("virtual router %s refused a delta (%s); sending the whole "
             "configuration", jstr(vr, "uuid"), error_last_message());
    json_decref(vr);
    error_reset();
    return sync_l3_txn(db, l3);
}

int
vrouter_sync_rules(struct db *db, const char *l3, json_t *rules,
                   json_t *vips)
{
    int rc;

    if (db_in_txn(db)) {
        return sync_rules_txn(db, l3, rules, vips);
    }
    if (db_begin(db) < 0) {
        return -1;
    }
    rc = sync_rules_txn(db, l3, rules, vips);
    if (rc < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

/* Creates the record of a virtual router for 'l3' (Starting, placed). */
static char *
vrouter_create(struct db *db, const char *l3)
{
    json_t *l3row = res_load_table(db, "l3Network", l3);
    json_t *offs = NULL;
    json_t *off;
    json_t *img = NULL;
    json_t *vm = NULL;
    json_t *l3s = NULL;
    json_t *range = NULL;
    char uuid[UUID_LEN + 1];
    char *out = NULL;
    int64_t now = time_wall_msec();
    const char *pub;
    const char *mgmt;

    if (!l3row) {
        return NULL;
    }
    offs = res_select(db, "SELECT * FROM instanceOffering WHERE type = "
                      "'VirtualRouter' AND zoneUuid = ?1 AND state = "
                      "'Enabled' ORDER BY isDefault DESC, createDate LIMIT 1",
                      "s", jstr(l3row, "zoneUuid"));
    if (!offs || !json_array_size(offs)) {
        error_report(PROBLEM_CONFLICT, "L3 network '%s' uses VirtualRouter "
                     "services, but its zone has no virtual router offering;"
                     " create one (and mark it default)",
                     jstr(l3row, "name"));
        goto out;
    }
    off = json_array_get(offs, 0);
    img = res_load_table(db, "image", jstr(off, "imageUuid"));
    if (!img || strcmp(jstr(img, "status"), "Ready")) {
        error_report(PROBLEM_CONFLICT, "the image of virtual router "
                     "offering '%s' is not Ready", jstr(off, "name"));
        goto out;
    }
    pub = jstr(off, "publicNetworkUuid");
    mgmt = jstr(off, "managementNetworkUuid");
    uuid_generate_hex(uuid);
    vm = json_pack("{s:s, s:s, s:s, s:I, s:I, s:O, s:O, s:O, s:O, s:s, s:s,"
                   " s:s, s:O, s:O, s:O, s:s, s:I, s:I}",
                   "uuid", uuid, "name", "", "description",
                   "virtual router", "createDate", (json_int_t) now,
                   "lastOpDate", (json_int_t) now, "zoneUuid",
                   json_object_get(l3row, "zoneUuid"),
                   "instanceOfferingUuid", json_object_get(off, "uuid"),
                   "imageUuid", json_object_get(off, "imageUuid"),
                   "defaultL3NetworkUuid", json_object_get(off,
                                                           "publicNetworkUuid"),
                   "hypervisorType", "KVM", "type", "ApplianceVm",
                   "state", "Starting", "platform",
                   json_object_get(img, "platform"), "cpuNum",
                   json_object_get(off, "cpuNum"), "memorySize",
                   json_object_get(off, "memorySize"),
                   "applianceL3NetworkUuid", l3, "cpuSpeed",
                   (json_int_t) json_integer_value(json_object_get(
                                                       off, "cpuSpeed")),
                   "vrGen", (json_int_t) 0);
    {
        char *name = xasprintf("vrouter.l3.%s.%.6s", jstr(l3row, "name"),
                               uuid);

        json_object_set_new(vm, "name", json_string(name));
        free(name);
    }
    l3s = json_pack("[s, s]", pub, l3);
    if (mgmt && strcmp(mgmt, pub)) {
        json_array_append_new(l3s, json_string(mgmt));
    }
    if (vmops_place(db, vm, l3s) < 0) {
        error_prefix("virtual router for '%s': ", jstr(l3row, "name"));
        goto out;
    }
    if (res_insert(db, "vmInstance", vm) < 0) {
        goto out;
    }
    /* NICs: public (an address from its range), private (the gateway),
     * and a management NIC when that network differs. */
    {
        size_t i;
        json_t *net;

        json_array_foreach(l3s, i, net) {
            char nic[UUID_LEN + 1];
            char mac[18];
            unsigned char b[5];
            char ip[16];
            char netmask[16];
            char gateway[16];
            char used[UUID_LEN + 1];
            bool priv = !strcmp(json_string_value(net), l3);

            random_bytes(b, sizeof b);
            snprintf(mac, sizeof mac, "fa:%02x:%02x:%02x:%02x:%02x", b[0],
                     b[1], b[2], b[3], b[4]);
            uuid_generate_hex(nic);
            if (priv) {
                json_t *rr = res_select(db, "SELECT gateway, netmask FROM "
                                        "ipRange WHERE l3NetworkUuid = ?1 "
                                        "LIMIT 1", "s", l3);

                if (!rr || !json_array_size(rr)) {
                    json_decref(rr);
                    error_report(PROBLEM_CONFLICT, "L3 network '%s' has no "
                                 "IP range", jstr(l3row, "name"));
                    goto out;
                }
                snprintf(ip, sizeof ip, "%s",
                         jstr(json_array_get(rr, 0), "gateway"));
                snprintf(netmask, sizeof netmask, "%s",
                         jstr(json_array_get(rr, 0), "netmask"));
                snprintf(gateway, sizeof gateway, "%s", ip);
                json_decref(rr);
                if (db_exec(db, "INSERT INTO vmNic (uuid, vmInstanceUuid, "
                            "l3NetworkUuid, ip, netmask, gateway, mac, "
                            "deviceId, createDate, lastOpDate) VALUES (?1, "
                            "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                            "sssssssii", nic, uuid, l3, ip, netmask, gateway,
                            mac, (int64_t) 1, now) < 0) {
                    goto out;
                }
            } else {
                if (l3_alloc_ip(db, json_string_value(net), NULL,
                                "VirtualRouter", uuid, ip, netmask, gateway,
                                used) < 0
                    || db_exec(db, "INSERT INTO vmNic (uuid, vmInstanceUuid,"
                               " l3NetworkUuid, usedIpUuid, ip, netmask, "
                               "gateway, mac, deviceId, createDate, "
                               "lastOpDate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                               "?7, ?8, ?9, ?10, ?10)", "ssssssssii", nic,
                               uuid, json_string_value(net), used, ip,
                               netmask, gateway, mac,
                               (int64_t) (i == 0 ? 0 : i + 1), now) < 0) {
                    goto out;
                }
            }
        }
    }
    out = xstrdup(uuid);

out:
    json_decref(range);
    json_decref(l3s);
    json_decref(vm);
    json_decref(img);
    json_decref(offs);
    json_decref(l3row);
    return out;
}

/* Waits until VR 'uuid' reports its agent connected. */
static int
wait_connected(const char *uuid, int timeout_ms)
{
    int64_t deadline = time_msec() + timeout_ms;

    for (;;) {
        json_t *vr = res_load_table(db_thread(), "vmInstance", uuid);
        bool up = vr && jstr(vr, "vrStatus")
                  && !strcmp(jstr(vr, "vrStatus"), "Connected");
        bool dead = vr && strcmp(jstr(vr, "state"), "Running")
                    && strcmp(jstr(vr, "state"), "Starting");

        json_decref(vr);
        if (up) {
            return 0;
        }
        if (dead || time_msec() > deadline) {
            error_report(PROBLEM_TIMEOUT, "virtual router %s did not connect"
                         " within %d s", uuid, timeout_ms / 1000);
            return -1;
        }
        struct timespec ts = { 0, 100 * 1000000 };

        nanosleep(&ts, NULL);
    }
}

int
vrouter_ensure(struct job *job, const char *l3)
{
    struct db *db = db_thread();
    json_t *vr;
    AUTOFREE char *uuid = NULL;
    bool start = false;
    int rc = -1;

    if (!l3_has_service(db, l3, NULL)) {
        return 0;
    }
    pthread_mutex_lock(&ensure_mutex);
    vr = vr_of_l3(db, l3);
    if (vr) {
        uuid = xstrdup(jstr(vr, "uuid"));
        if (!strcmp(jstr(vr, "state"), "Stopped")) {
            json_t *l3s = res_string_list(db, "SELECT l3NetworkUuid FROM "
                                          "vmNic WHERE vmInstanceUuid = ?1",
                                          "l3NetworkUuid", uuid);
            json_t *changes;

            if (db_begin(db) < 0) {
                json_decref(l3s);
                goto out;
            }
            json_object_set_new(vr, "hostUuid", json_null());
            json_object_set_new(vr, "clusterUuid", json_null());
            if (vmops_place(db, vr, l3s) < 0) {
                json_decref(l3s);
                db_rollback(db);
                goto out;
            }
            json_decref(l3s);
            changes = json_pack("{s:O, s:O, s:O, s:O, s:O, s:s}", "hostUuid",
                                json_object_get(vr, "hostUuid"),
                                "lastHostUuid",
                                json_object_get(vr, "hostUuid"),
                                "clusterUuid",
                                json_object_get(vr, "clusterUuid"),
                                "primaryStorageUuid",
                                json_object_get(vr, "primaryStorageUuid"),
                                "reserved", json_object_get(vr, "reserved"),
                                "state", "Starting");
            if (res_update_row(db, "vmInstance", uuid, changes) < 0
                || db_commit(db) < 0) {
                json_decref(changes);
                db_rollback(db);
                goto out;
            }
            json_decref(changes);
            start = true;
        } else if (strcmp(jstr(vr, "state"), "Running")
                   && strcmp(jstr(vr, "state"), "Starting")) {
            error_report(PROBLEM_CONFLICT, "virtual router '%s' is %s",
                         jstr(vr, "name"), jstr(vr, "state"));
            goto out;
        }
    } else {
        job_progress(job, "creating the virtual router of this L3 network");
        if (db_begin(db) < 0) {
            goto out;
        }
        uuid = vrouter_create(db, l3);
        if (!uuid || db_commit(db) < 0) {
            db_rollback(db);
            goto out;
        }
        start = true;
    }
    if (start) {
        json_t *ctx = json_pack("{s:s, s:b}", "uuid", uuid, "create",
                                vr == NULL);
        int status = 0;
        json_t *res;

        job_progress(job, "starting virtual router %s", uuid);
        res = vmops_start_job(job, ctx, &status);
        json_decref(ctx);
        if (!res) {
            error_prefix("virtual router: ");
            goto out;
        }
        json_decref(res);
    }
    job_progress(job, "waiting for the virtual router's agent");
    if (wait_connected(uuid, CONNECT_TIMEOUT_MS) < 0) {
        goto out;
    }
    rc = vrouter_sync_l3(db, l3);

out:
    pthread_mutex_unlock(&ensure_mutex);
    json_decref(vr);
    return rc;
}

void
vrouter_event(const char *host, json_t *data)
{
    struct db *db = db_thread();
    const char *uuid = jstr(data, "uuid");
    const char *state = jstr(data, "state");
    json_t *vr;

    if (!uuid || !state) {
        return;
    }
    vr = res_load_table(db, "vmInstance", uuid);
    if (!vr) {
        error_reset();
        return;
    }
    if (db_begin(db) == 0) {
        if (db_exec(db, "UPDATE vmInstance SET vrStatus = ?1 WHERE uuid = "
                    "?2", "ss", state, uuid) < 0 || db_commit(db) < 0) {
            db_rollback(db);
        }
    }
    LOG_INFO("virtual router %s on host %s: %s", uuid, host, state);
    if (!strcmp(state, "Connected") && jstr(vr, "applianceL3NetworkUuid")
        && !strcmp(jstr(vr, "state"), "Running")) {
        /* A boot, a reboot, a re-creation: everything again. */
        if (vrouter_sync_l3(db, jstr(vr, "applianceL3NetworkUuid")) < 0) {
            LOG_WARN("virtual router %s: %s", uuid, error_last_message());
        }
    }
    json_decref(vr);
}
