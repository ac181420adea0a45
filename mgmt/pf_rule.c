/* pf_rule.c: elastic port-forwarding rules: a VIP port range published on
 * a VM NIC's port range, created attached or detached, detached and
 * re-attached to another VM, several rules on one VIP.  The data path (the
 * virtual router's nftables maps) is issue 5; these are the rules of the
 * records, enforced in the transaction that writes them:
 * - ports 1..65535, equal VIP and private range lengths;
 * - rules of one protocol on one VIP never overlap, attached or not;
 * - a NIC on the VIP's own L3 network is refused, and the NIC's L3 needs
 *   the PortForwarding network service;
 * - all rules of one VM use one VIP;
 * - attach only an Enabled, detached rule; detach only an attached one.
 * Each change reaches the virtual router as a delta of that one rule
 * (vrouter_sync_rules), inside the transaction that writes it: the API
 * answers after the router applied it, in time independent of how many
 * rules the router holds. */
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
#include "vrouter.h"

LOG_MODULE("mgmt.pf_rule");

static const char *const protocols[] = { "TCP", "UDP", NULL };

static int
check_cidr(const char *field, const char *s)
{
    uint32_t net;
    int prefix;

    return validate_cidr(field, s, &net, &prefix);
}

static const struct field pf_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "vipUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "vip" },
    { .name = "vipIp", .type = FT_STR },
    { .name = "vipPortStart", .type = FT_INT, .flags = F_REQ | F_CREATE },
    { .name = "vipPortEnd", .type = FT_INT, .flags = F_CREATE },
    { .name = "privatePortStart", .type = FT_INT, .flags = F_CREATE },
    { .name = "privatePortEnd", .type = FT_INT, .flags = F_CREATE },
    { .name = "protocolType", .type = FT_STR, .flags = F_REQ | F_CREATE,
      .choices = protocols },
    { .name = "allowedCidr", .type = FT_STR, .flags = F_CREATE,
      .check = check_cidr },
    { .name = "vmNicUuid", .type = FT_UUID, .flags = F_CREATE,
      .ref = "vmNic" },
    { .name = "guestIp", .type = FT_STR },
    RES_STATE_FIELD,
    { 0 },
};

static const char *
jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Checks that NIC 'nic' may carry a rule on VIP 'vip' (a vip row); stores
 * the NIC's address in 'guest_ip' (16 bytes). */
static int
pf_check_nic(struct db *db, json_t *vip, const char *nic, const char *rule,
             char *guest_ip)
{
    json_t *nrow = res_load_table(db, "vmNic", nic);
    json_t *vm = NULL;
    json_t *l3 = NULL;
    json_t *other = NULL;
    int64_t has_pf;
    int rc = -1;

    if (!nrow) {
        error_report_field(PROBLEM_NOT_FOUND, "vmNicUuid",
                           "no VM NIC with UUID '%s'", nic);
        return -1;
    }
    vm = res_load_table(db, "vmInstance", jstr(nrow, "vmInstanceUuid"));
    l3 = res_load_table(db, "l3Network", jstr(nrow, "l3NetworkUuid"));
    if (!vm || !l3) {
        goto out;
    }
    if (!strcmp(jstr(nrow, "l3NetworkUuid"), jstr(vip, "l3NetworkUuid"))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "vmNicUuid",
                           "NIC %s of VM '%s' is on L3 network '%s', the "
                           "VIP's own network; a port-forwarding rule "
                           "needs a NIC on a private L3 network", nic,
                           jstr(vm, "name"), jstr(l3, "name"));
        goto out;
    }
    if (!strcmp(jstr(vm, "state"), "Destroyed")) {
        error_report_field(PROBLEM_CONFLICT, "vmNicUuid",
                           "VM '%s' is Destroyed", jstr(vm, "name"));
        goto out;
    }
    if (!jstr(nrow, "ip")) {
        error_report_field(PROBLEM_CONFLICT, "vmNicUuid",
                           "NIC %s of VM '%s' has no IP address", nic,
                           jstr(vm, "name"));
        goto out;
    }
    if (db_int(db, &has_pf, 0, "SELECT count(*) FROM l3NetworkService "
               "WHERE l3NetworkUuid = ?1 AND networkServiceType = "
               "'PortForwarding'", "s", jstr(nrow, "l3NetworkUuid")) < 0) {
        goto out;
    }
    if (!has_pf) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "vmNicUuid",
                           "L3 network '%s' of NIC %s has no PortForwarding "
                           "network service", jstr(l3, "name"), nic);
        goto out;
    }
    other = res_select(db, "SELECT r.uuid, r.name, r.vipUuid FROM "
                       "portForwardingRule r JOIN vmNic n ON n.uuid = "
                       "r.vmNicUuid WHERE n.vmInstanceUuid = ?1 AND "
                       "r.vipUuid != ?2 AND r.uuid != ?3 LIMIT 1", "sss",
                       jstr(vm, "uuid"), jstr(vip, "uuid"),
                       rule ? rule : "");
    if (!other) {
        goto out;
    }
    if (json_array_size(other)) {
        json_t *o = json_array_get(other, 0);

        error_report_field(PROBLEM_CONFLICT, "vmNicUuid",
                           "VM '%s' already has port-forwarding rule '%s' "
                           "(%s) on another VIP (%s); all rules of one VM "
                           "use one VIP", jstr(vm, "name"), jstr(o, "name"),
                           jstr(o, "uuid"), jstr(o, "vipUuid"));
        goto out;
    }
    snprintf(guest_ip, 16, "%s", jstr(nrow, "ip"));
    rc = 0;

out:
    json_decref(nrow);
    json_decref(vm);
    json_decref(l3);
    json_decref(other);
    return rc;
}

static int64_t
int_or(json_t *params, const char *key)
{
    json_t *v = json_object_get(params, key);

    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static int
pf_prepare(struct db *db, json_t *params, json_t *row)
{
    int64_t vs = int_or(params, "vipPortStart");
    int64_t ve = int_or(params, "vipPortEnd");
    int64_t ps = int_or(params, "privatePortStart");
    int64_t pe = int_or(params, "privatePortEnd");
    const char *proto = jstr(params, "protocolType");
    const char *nic = jstr(params, "vmNicUuid");
    json_t *vip;
    json_t *clash;
    char guest_ip[16];
    int rc = -1;

    if (validate_pf_ports(&vs, &ve, &ps, &pe) < 0) {
        return -1;
    }
    vip = res_load_table(db, "vip", jstr(params, "vipUuid"));
    if (!vip) {
        return -1;
    }
    /* The rules of one VIP and protocol never overlap (this check, inside
     * the writing transaction, is the only way in), so sorted by their
     * start their ends rise too: of the rules starting at or below 've',
     * the last one reaches furthest.  One index probe (pf_vip_port), not a
     * scan of the VIP's rules. */
    clash = res_select(db, "SELECT uuid, name, vipPortStart, vipPortEnd "
                       "FROM portForwardingRule WHERE vipUuid = ?1 AND "
                       "protocolType = ?2 AND vipPortStart <= ?3 "
                       "ORDER BY vipPortStart DESC LIMIT 1", "ssi",
                       jstr(vip, "uuid"), proto, ve);
    if (!clash) {
        goto out;
    }
    if (json_array_size(clash)
        && json_integer_value(json_object_get(json_array_get(clash, 0),
                                              "vipPortEnd")) >= vs) {
        json_t *c = json_array_get(clash, 0);

        error_report_field(PROBLEM_CONFLICT, "vipPortStart",
                           "VIP %s: %s ports %lld-%lld overlap "
                           "port-forwarding rule '%s' (%s, ports %lld-%lld)",
                           jstr(vip, "ip"), proto, (long long) vs,
                           (long long) ve, jstr(c, "name"), jstr(c, "uuid"),
                           (long long) json_integer_value(
                               json_object_get(c, "vipPortStart")),
                           (long long) json_integer_value(
                               json_object_get(c, "vipPortEnd")));
        goto out;
    }
    if (nic && pf_check_nic(db, vip, nic, NULL, guest_ip) < 0) {
        goto out;
    }
    json_object_set_new(row, "vipPortStart", json_integer(vs));
    json_object_set_new(row, "vipPortEnd", json_integer(ve));
    json_object_set_new(row, "privatePortStart", json_integer(ps));
    json_object_set_new(row, "privatePortEnd", json_integer(pe));
    json_object_set(row, "vipIp", json_object_get(vip, "ip"));
    if (nic) {
        json_object_set_new(row, "guestIp", json_string(guest_ip));
    }
    rc = 0;

out:
    json_decref(clash);
    json_decref(vip);
    return rc;
}

/* Pushes the change of rule 'rule' (on VIP 'vip') to the router of the
 * L3 of NIC 'nic' (NULL: none) as a delta of that one rule, inside the
 * caller's open transaction: the caller commits only when the change is
 * in the data path (or there is no running router yet). */
static int
pf_sync_rule(struct db *db, const char *nic, const char *rule,
             const char *vip)
{
    AUTOFREE char *l3 = nic ? vrouter_l3_of_nic(db, nic) : NULL;
    json_t *rules;
    json_t *vips;
    int rc;

    if (!l3) {
        return 0;
    }
    rules = json_pack("[s]", rule);
    vips = json_pack("[s]", vip);
    rc = vrouter_sync_rules(db, l3, rules, vips);
    json_decref(rules);
    json_decref(vips);
    return rc;
}

/* Rule 'rule' moved from NIC 'from' to NIC 'to' (either may be NULL):
 * taken out of the old router, put into the new one; one delta when both
 * NICs are on one L3. */
static int
pf_sync_move(struct db *db, const char *rule, const char *vip,
             const char *from, const char *to)
{
    AUTOFREE char *l3_from = from ? vrouter_l3_of_nic(db, from) : NULL;
    AUTOFREE char *l3_to = to ? vrouter_l3_of_nic(db, to) : NULL;

    if (l3_from && (!l3_to || strcmp(l3_from, l3_to))
        && pf_sync_rule(db, from, rule, vip) < 0) {
        return -1;
    }
    return pf_sync_rule(db, to, rule, vip);
}

static int
pf_after_insert(struct db *db, json_t *params, json_t *row)
{
    (void) params;
    if (db_exec(db, "UPDATE vip SET useFor = 'PortForwarding', "
                "serviceProvider = 'VirtualRouter' WHERE uuid = ?1", "s",
                jstr(row, "vipUuid")) < 0) {
        return -1;
    }
    return pf_sync_rule(db, jstr(row, "vmNicUuid"), jstr(row, "uuid"),
                        jstr(row, "vipUuid"));
}

static int
pf_before_delete(struct db *db, json_t *row)
{
    if (db_exec(db, "DELETE FROM portForwardingRule WHERE uuid = ?1", "s",
                jstr(row, "uuid")) < 0) {
        return -1;
    }
    return pf_sync_rule(db, jstr(row, "vmNicUuid"), jstr(row, "uuid"),
                        jstr(row, "vipUuid"));
}

static int pf_change_state(struct api_req *req, json_t *params);

static const struct res_action pf_actions[] = {
    { "changePortForwardingRuleState", pf_change_state },
    { 0 },
};

static const char *const pf_columns[] = {
    "uuid", "name", "vipIp", "protocolType", "vipPortStart", "vipPortEnd",
    "privatePortStart", "privatePortEnd", "guestIp", "state", NULL
};

const struct resource pf_rule_resource = {
    .kind = "PortForwardingRule",
    .label = "port forwarding rule",
    .table = "portForwardingRule",
    .path = "port-forwarding",
    .fields = pf_fields,
    .columns = pf_columns,
    .has_state = true,
    .prepare = pf_prepare,
    .after_insert = pf_after_insert,
    .before_delete = pf_before_delete,
    .actions = pf_actions,
};

/* Enable puts the rule back into the data path, disable really takes it
 * out; the answer comes after the router applied it. */
static int
pf_change_state(struct api_req *req, json_t *params)
{
    struct db *db = db_thread();
    json_t *ev = json_object_get(params, "stateEvent");
    const char *key;
    json_t *v;
    const char *state;
    json_t *rule;

    json_object_foreach(params, key, v) {
        if (strcmp(key, "stateEvent") && strcmp(key, "systemTags")
            && strcmp(key, "userTags")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    if (!json_is_string(ev) || (strcmp(json_string_value(ev), "enable")
                                && strcmp(json_string_value(ev),
                                          "disable"))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "stateEvent",
                           "field 'stateEvent' must be 'enable' or "
                           "'disable'");
        return -1;
    }
    state = strcmp(json_string_value(ev), "enable") ? "Disabled"
                                                    : "Enabled";
    if (db_begin(db) < 0) {
        return -1;
    }
    rule = res_load(db, &pf_rule_resource, req->args[0]);
    if (!rule
        || db_exec(db, "UPDATE portForwardingRule SET state = ?1, lastOpDate "
                   "= ?2 WHERE uuid = ?3", "sis", state, time_wall_msec(),
                   req->args[0]) < 0
        || pf_sync_rule(db, jstr(rule, "vmNicUuid"), req->args[0],
                        jstr(rule, "vipUuid")) < 0
        || db_commit(db) < 0) {
        json_decref(rule);
        db_rollback(db);
        return -1;
    }
    json_decref(rule);
    return res_reply_inventory(req, &pf_rule_resource, req->args[0]);
}

int
pf_rule_attach(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *rule = NULL;
    json_t *vip = NULL;
    char guest_ip[16];
    int rc = -1;

    if (db_begin(db) < 0) {
        return -1;
    }
    rule = res_load(db, &pf_rule_resource, req->args[0]);
    if (!rule) {
        goto out;
    }
    if (!uuid_is_valid(req->args[1])) {
        error_report(PROBLEM_NOT_FOUND, "no VM NIC with UUID '%.64s'",
                     req->args[1]);
        goto out;
    }
    if (strcmp(jstr(rule, "state"), "Enabled")) {
        error_report(PROBLEM_CONFLICT, "port-forwarding rule '%s' is %s; "
                     "enable it before attaching it", jstr(rule, "name"),
                     jstr(rule, "state"));
        goto out;
    }
    if (jstr(rule, "vmNicUuid")) {
        error_report(PROBLEM_CONFLICT, "port-forwarding rule '%s' is already "
                     "attached to VM NIC %s (%s); detach it first",
                     jstr(rule, "name"), jstr(rule, "vmNicUuid"),
                     jstr(rule, "guestIp"));
        goto out;
    }
    vip = res_load_table(db, "vip", jstr(rule, "vipUuid"));
    if (!vip || pf_check_nic(db, vip, req->args[1], req->args[0],
                             guest_ip) < 0) {
        goto out;
    }
    if (db_exec(db, "UPDATE portForwardingRule SET vmNicUuid = ?1, "
                "guestIp = ?2, lastOpDate = ?3 WHERE uuid = ?4", "ssis",
                req->args[1], guest_ip, time_wall_msec(), req->args[0]) < 0
        || pf_sync_move(db, req->args[0], jstr(rule, "vipUuid"),
                        jstr(rule, "vmNicUuid"), req->args[1]) < 0
        || db_commit(db) < 0) {
        goto out;
    }
    rc = 0;
    LOG_INFO("port-forwarding rule '%s' attached to NIC %s (%s)",
             req->args[0], req->args[1], guest_ip);

out:
    json_decref(rule);
    json_decref(vip);
    if (rc < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, &pf_rule_resource, req->args[0]);
}

int
pf_rule_detach(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *rule;

    if (db_begin(db) < 0) {
        return -1;
    }
    rule = res_load(db, &pf_rule_resource, req->args[0]);
    if (!rule) {
        db_rollback(db);
        return -1;
    }
    if (!jstr(rule, "vmNicUuid")) {
        error_report(PROBLEM_CONFLICT, "port-forwarding rule '%s' is not "
                     "attached to any VM NIC", jstr(rule, "name"));
        json_decref(rule);
        db_rollback(db);
        return -1;
    }
    if (db_exec(db, "UPDATE portForwardingRule SET vmNicUuid = NULL, "
                "guestIp = NULL, lastOpDate = ?1 WHERE uuid = ?2", "is",
                time_wall_msec(), req->args[0]) < 0
        || pf_sync_rule(db, jstr(rule, "vmNicUuid"), req->args[0],
                        jstr(rule, "vipUuid")) < 0
        || db_commit(db) < 0) {
        json_decref(rule);
        db_rollback(db);
        return -1;
    }
    json_decref(rule);
    LOG_INFO("port-forwarding rule '%s' detached", req->args[0]);
    return res_reply_inventory(req, &pf_rule_resource, req->args[0]);
}

int
pf_rule_candidate_nics(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *rule = res_load(db, &pf_rule_resource, req->args[0]);
    json_t *nics;
    size_t i;
    json_t *nic;

    if (!rule) {
        return -1;
    }
    nics = res_select(
        db,
        "SELECT n.* FROM vmNic n JOIN vmInstance v ON v.uuid = "
        "n.vmInstanceUuid JOIN vip p ON p.uuid = ?1 WHERE "
        "v.state != 'Destroyed' AND v.type = 'UserVm' AND n.ip IS NOT NULL "
        "AND n.l3NetworkUuid != p.l3NetworkUuid AND EXISTS (SELECT 1 FROM "
        "l3NetworkService s WHERE s.l3NetworkUuid = n.l3NetworkUuid AND "
        "s.networkServiceType = 'PortForwarding') AND NOT EXISTS (SELECT 1 "
        "FROM portForwardingRule r JOIN vmNic m ON m.uuid = r.vmNicUuid "
        "WHERE m.vmInstanceUuid = v.uuid AND r.vipUuid != p.uuid) "
        "ORDER BY v.createDate, n.deviceId", "s", jstr(rule, "vipUuid"));
    json_decref(rule);
    if (!nics) {
        return -1;
    }
    json_array_foreach(nics, i, nic) {
        res_row_to_inventory(db, &vm_nic_resource, nic);
    }
    return api_reply(req, 200, json_pack("{s:o}", "inventories", nics));
}

int
pf_rule_detach_vm(struct db *db, const char *vm)
{
    return db_exec(db, "UPDATE portForwardingRule SET vmNicUuid = NULL, "
                   "guestIp = NULL, lastOpDate = ?1 WHERE vmNicUuid IN "
                   "(SELECT uuid FROM vmNic WHERE vmInstanceUuid = ?2)", "is",
                   time_wall_msec(), vm) < 0 ? -1 : 0;
}
