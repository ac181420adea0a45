/* vip.c: virtual IPs, public addresses taken from an L3 network's ranges
 * that port-forwarding rules publish VM ports on. */
#include "resources.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "validate.h"
#include "vrouter.h"

LOG_MODULE("mgmt.vip");

static int
check_required_ip(const char *field, const char *s)
{
    return validate_ipv4(field, s, NULL);
}

static const struct field vip_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "l3NetworkUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "l3Network" },
    { .name = "requiredIp", .type = FT_STR, .flags = F_CREATE | F_NOCOL,
      .check = check_required_ip },
    { .name = "ip", .type = FT_STR },
    { .name = "netmask", .type = FT_STR },
    { .name = "gateway", .type = FT_STR },
    { .name = "usedIpUuid", .type = FT_UUID },
    RES_STATE_FIELD,
    { .name = "useFor", .type = FT_STR },
    { .name = "serviceProvider", .type = FT_STR },
    { 0 },
};

static int
vip_prepare(struct db *db, json_t *params, json_t *row)
{
    char ip[16];
    char netmask[16];
    char gateway[16];
    char used[UUID_LEN + 1];

    if (l3_alloc_ip(db, json_string_value(json_object_get(params,
                                                          "l3NetworkUuid")),
                    json_string_value(json_object_get(params, "requiredIp")),
                    "Vip", json_string_value(json_object_get(row, "uuid")),
                    ip, netmask, gateway, used) < 0) {
        return -1;
    }
    json_object_set_new(row, "ip", json_string(ip));
    json_object_set_new(row, "netmask", json_string(netmask));
    json_object_set_new(row, "gateway", json_string(gateway));
    json_object_set_new(row, "usedIpUuid", json_string(used));
    return 0;
}

static int
vip_before_delete(struct db *db, json_t *row)
{
    const char *uuid = json_string_value(json_object_get(row, "uuid"));
    json_t *rules = res_select(db, "SELECT r.uuid, n.l3NetworkUuid FROM "
                               "portForwardingRule r JOIN vmNic n ON n.uuid "
                               "= r.vmNicUuid WHERE r.vipUuid = ?1 ORDER BY "
                               "n.l3NetworkUuid", "s", uuid);
    json_t *by_l3 = json_object();
    json_t *vips = json_pack("[s]", uuid);
    const char *l3;
    json_t *uuids;
    size_t i;
    json_t *r;
    int rc = -1;

    if (!rules) {
        goto out;
    }
    json_array_foreach(rules, i, r) {
        const char *k = json_string_value(json_object_get(r,
                                                          "l3NetworkUuid"));

        if (!json_object_get(by_l3, k)) {
            json_object_set_new(by_l3, k, json_array());
        }
        json_array_append(json_object_get(by_l3, k),
                          json_object_get(r, "uuid"));
    }
    /* Deleting a VIP deletes its rules, as in ZStack, and takes them out
     * of the data path before the answer: one delta per router, removing
     * the rules and the VIP's address. */
    if (db_exec(db, "DELETE FROM portForwardingRule WHERE vipUuid = ?1", "s",
                uuid) < 0) {
        goto out;
    }
    json_object_foreach(by_l3, l3, uuids) {
        if (vrouter_sync_rules(db, l3, uuids, vips) < 0) {
            goto out;
        }
    }
    if (db_exec(db, "UPDATE vip SET usedIpUuid = NULL WHERE uuid = ?1", "s",
                uuid) < 0) {
        goto out;
    }
    rc = l3_release_ip(db, json_string_value(json_object_get(row,
                                                             "usedIpUuid")));

out:
    json_decref(rules);
    json_decref(by_l3);
    json_decref(vips);
    return rc;
}

static const char *const vip_columns[] = {
    "uuid", "name", "ip", "state", "useFor", "l3NetworkUuid", NULL
};

const struct resource vip_resource = {
    .kind = "Vip",
    .label = "VIP",
    .table = "vip",
    .path = "vips",
    .fields = vip_fields,
    .columns = vip_columns,
    .has_state = true,
    .prepare = vip_prepare,
    .before_delete = vip_before_delete,
};

static int
port_arg(struct api_req *req, const char *name, int64_t *out, bool required)
{
    const char *s = api_query_arg(req, name);
    char *end;
    long long n;

    if (!s) {
        if (required) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, name,
                               "query argument '%s' is required", name);
            return -1;
        }
        *out = -1;
        return 0;
    }
    n = strtoll(s, &end, 10);
    if (!*s || *end) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, name,
                           "query argument '%s' must be a port number",
                           name);
        return -1;
    }
    *out = n;
    return validate_port(name, n);
}

/* GET /vips/{uuid}/check-port-availability?protocolType=TCP&start=22
 * [&end=22]: is the range free for a new rule on this VIP? */
int
vip_check_port(struct api_req *req)
{
    struct db *db = db_thread();
    const char *proto = api_query_arg(req, "protocolType");
    int64_t start;
    int64_t end;
    json_t *vip;
    json_t *rules;
    json_t *conflicts = json_array();
    size_t i;
    json_t *r;

    if (!proto || (strcmp(proto, "TCP") && strcmp(proto, "UDP"))) {
        json_decref(conflicts);
        error_report_field(PROBLEM_INVALID_ARGUMENT, "protocolType",
                           "query argument 'protocolType' must be TCP or "
                           "UDP");
        return -1;
    }
    if (port_arg(req, "start", &start, true) < 0
        || port_arg(req, "end", &end, false) < 0) {
        json_decref(conflicts);
        return -1;
    }
    if (end < 0) {
        end = start;
    }
    if (end < start) {
        json_decref(conflicts);
        error_report_field(PROBLEM_INVALID_ARGUMENT, "end",
                           "query argument 'end' is below 'start'");
        return -1;
    }
    vip = res_load(db, &vip_resource, req->args[0]);
    if (!vip) {
        json_decref(conflicts);
        return -1;
    }
    json_decref(vip);
    rules = res_select(db, "SELECT uuid, name, vipPortStart, vipPortEnd FROM "
                       "portForwardingRule WHERE vipUuid = ?1 AND "
                       "protocolType = ?2 AND vipPortStart <= ?3 AND "
                       "vipPortEnd >= ?4", "ssii", req->args[0], proto, end,
                       start);
    json_array_foreach(rules, i, r) {
        json_array_append(conflicts, r);
    }
    json_decref(rules);
    return api_reply(req, 200, json_pack("{s:b, s:o}", "available",
                                         json_array_size(conflicts) == 0,
                                         "conflicts", conflicts));
}
