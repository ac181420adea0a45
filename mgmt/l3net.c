/* l3net.c: L3 networks with their IP ranges, DNS servers and network
 * services, and the IP address management every NIC, VIP and router
 * address comes from.
 *
 * DESIGN: an allocated address is a usedIp row, UNIQUE on (L3, address),
 * written in the caller's BEGIN IMMEDIATE transaction.  The allocator picks
 * the lowest free address of the L3's ranges with one indexed query, so 50
 * concurrent creates get 50 distinct addresses (the write lock serialises
 * them and the UNIQUE constraint would refuse a duplicate anyway). */
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

LOG_MODULE("mgmt.l3");

static const char *const l3_types[] = { "L3BasicNetwork", NULL };
static const char *const categories[] = { "Public", "Private", "System",
                                          NULL };

static const struct field l3_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "l2NetworkUuid", .type = FT_UUID, .flags = F_REQ | F_CREATE,
      .ref = "l2Network" },
    { .name = "zoneUuid", .type = FT_UUID },
    { .name = "type", .type = FT_STR, .flags = F_CREATE, .choices = l3_types,
      .dflt = "L3BasicNetwork" },
    { .name = "category", .type = FT_STR, .flags = F_CREATE | F_UPDATE,
      .choices = categories },
    { .name = "system", .type = FT_BOOL, .flags = F_CREATE | F_UPDATE,
      .dflt = "false" },
    { .name = "dnsDomain", .type = FT_STR, .flags = F_CREATE | F_UPDATE,
      .check = validate_domain },
    { .name = "ipVersion", .type = FT_INT, .flags = F_CREATE, .min = 4,
      .max = 4, .dflt = "4" },
    RES_STATE_FIELD,
    { 0 },
};

static int
l3_prepare(struct db *db, json_t *params, json_t *row)
{
    json_t *l2 = res_load_table(db, "l2Network",
                                json_string_value(json_object_get(
                                    params, "l2NetworkUuid")));

    if (!l2) {
        return -1;
    }
    json_object_set(row, "zoneUuid", json_object_get(l2, "zoneUuid"));
    json_decref(l2);
    if (!json_object_get(row, "category")) {
        json_object_set_new(row, "category",
                            json_string(json_is_true(json_object_get(
                                            row, "system"))
                                        ? "System" : "Private"));
    }
    return 0;
}

static void
l3_inventory(struct db *db, json_t *inv)
{
    const char *uuid = json_string_value(json_object_get(inv, "uuid"));
    json_t *ranges = res_select(db, "SELECT * FROM ipRange WHERE "
                                "l3NetworkUuid = ?1 ORDER BY startInt", "s",
                                uuid);
    json_t *services = res_select(db, "SELECT l3NetworkUuid, "
                                  "networkServiceProviderUuid, "
                                  "networkServiceType FROM l3NetworkService "
                                  "WHERE l3NetworkUuid = ?1 ORDER BY rowid",
                                  "s", uuid);
    size_t i;
    json_t *r;

    json_array_foreach(ranges, i, r) {
        res_row_to_inventory(db, &ip_range_resource, r);
    }
    json_object_set_new(inv, "ipRanges", ranges ? ranges : json_array());
    json_object_set_new(inv, "dns",
                        res_string_list(db, "SELECT dns FROM l3Dns WHERE "
                                        "l3NetworkUuid = ?1 ORDER BY "
                                        "position", "dns", uuid));
    json_object_set_new(inv, "networkServices",
                        services ? services : json_array());
}

static const struct res_dep l3_deps[] = {
    { "VM instance",
      "SELECT v.uuid, v.name FROM vmNic n JOIN vmInstance v "
      "ON v.uuid = n.vmInstanceUuid WHERE n.l3NetworkUuid = ?1" },
    { "VIP", "SELECT uuid, name FROM vip WHERE l3NetworkUuid = ?1" },
    { "virtual router offering",
      "SELECT uuid, name FROM instanceOffering WHERE "
      "managementNetworkUuid = ?1 OR publicNetworkUuid = ?1" },
    { 0 },
};

static const char *const l3_columns[] = {
    "uuid", "name", "category", "system", "dnsDomain", "l2NetworkUuid", NULL
};

const struct resource l3_resource = {
    .kind = "L3Network",
    .label = "L3 network",
    .table = "l3Network",
    .path = "l3-networks",
    .fields = l3_fields,
    .deps = l3_deps,
    .columns = l3_columns,
    .has_state = true,
    .prepare = l3_prepare,
    .inventory = l3_inventory,
};

/* ---- IP ranges ---- */

static const struct field ip_range_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "l3NetworkUuid", .type = FT_UUID },
    { .name = "startIp", .type = FT_STR, .flags = F_CREATE },
    { .name = "endIp", .type = FT_STR, .flags = F_CREATE },
    { .name = "netmask", .type = FT_STR, .flags = F_CREATE },
    { .name = "gateway", .type = FT_STR, .flags = F_CREATE },
    { .name = "networkCidr", .type = FT_STR, .flags = F_CREATE },
    { .name = "ipVersion", .type = FT_INT },
    { .name = "prefixLen", .type = FT_INT },
    { .name = "startInt", .type = FT_INT, .flags = F_HIDDEN },
    { .name = "endInt", .type = FT_INT, .flags = F_HIDDEN },
    { 0 },
};

static const struct res_dep ip_range_deps[] = {
    { "address user",
      "SELECT coalesce(ownerUuid, uuid) AS uuid, usedFor || ' ' || ip "
      "AS name FROM usedIp WHERE ipRangeUuid = ?1" },
    { 0 },
};

static const char *const ip_range_columns[] = {
    "uuid", "name", "startIp", "endIp", "netmask", "gateway", NULL
};

const struct resource ip_range_resource = {
    .kind = "IpRange",
    .label = "IP range",
    .table = "ipRange",
    .path = "l3-networks/ip-ranges",
    .fields = ip_range_fields,
    .deps = ip_range_deps,
    .columns = ip_range_columns,
};

/* Checks a new range of L3 'l3' against its other ranges and inserts it.
 * Runs in the caller's transaction. */
static int
ip_range_insert(struct api_req *req, struct db *db, const char *l3,
                json_t *params, uint32_t start, uint32_t end, int prefix,
                const char *netmask, const char *gateway)
{
    uint32_t mask = ipv4_prefix_mask(prefix);
    char s[16];
    char e[16];
    char net[16];
    char cidr[24];
    char uuid[UUID_LEN + 1];
    json_t *others;
    json_t *row;
    size_t i;
    json_t *o;
    int64_t now = time_wall_msec();
    const char *field = json_object_get(params, "networkCidr")
                        ? "networkCidr" : "startIp";

    ipv4_format(start, s);
    ipv4_format(end, e);
    ipv4_format(start & mask, net);
    snprintf(cidr, sizeof cidr, "%s/%d", net, prefix);
    others = res_select(db, "SELECT uuid, name, startIp, endIp, startInt, "
                        "endInt, networkCidr, gateway FROM ipRange WHERE "
                        "l3NetworkUuid = ?1", "s", l3);
    if (!others) {
        return -1;
    }
    json_array_foreach(others, i, o) {
        const char *ocidr = json_string_value(json_object_get(o,
                                                              "networkCidr"));
        const char *ogw = json_string_value(json_object_get(o, "gateway"));

        if (strcmp(ocidr, cidr) || strcmp(ogw, gateway)) {
            error_report_field(
                PROBLEM_CONFLICT, field,
                "L3 network %s already uses subnet %s with gateway %s "
                "(range '%s'); one L3 network has one CIDR and gateway",
                l3, ocidr, ogw,
                json_string_value(json_object_get(o, "name")));
            json_decref(others);
            return -1;
        }
        if (ranges_overlap(start, end,
                           json_integer_value(json_object_get(o,
                                                              "startInt")),
                           json_integer_value(json_object_get(o,
                                                              "endInt")))) {
            error_report_field(
                PROBLEM_CONFLICT, field,
                "IP range %s-%s overlaps range '%s' (%s-%s, %s) "
                "of this L3 network", s, e,
                json_string_value(json_object_get(o, "name")),
                json_string_value(json_object_get(o, "startIp")),
                json_string_value(json_object_get(o, "endIp")),
                json_string_value(json_object_get(o, "uuid")));
            json_decref(others);
            return -1;
        }
    }
    json_decref(others);
    uuid_generate_hex(uuid);
    row = json_pack("{s:s, s:O, s:O?, s:s, s:s, s:s, s:s, s:s, s:s, s:i, "
                    "s:i, s:I, s:I, s:I, s:I}",
                    "uuid", uuid, "name", json_object_get(params, "name"),
                    "description", json_object_get(params, "description"),
                    "l3NetworkUuid", l3, "startIp", s, "endIp", e,
                    "netmask", netmask, "gateway", gateway,
                    "networkCidr", cidr, "ipVersion", 4, "prefixLen", prefix,
                    "startInt", (json_int_t) start, "endInt",
                    (json_int_t) end, "createDate", (json_int_t) now,
                    "lastOpDate", (json_int_t) now);
    if (res_insert(db, "ipRange", row) < 0 || db_commit(db) < 0) {
        json_decref(row);
        return -1;
    }
    json_decref(row);
    LOG_INFO("L3 network %s: IP range %s-%s added", l3, s, e);
    return res_reply_inventory(req, &ip_range_resource, uuid);
}

static int
check_range_params(json_t *params, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(params, key, v) {
        bool ok = !strcmp(key, "systemTags") || !strcmp(key, "userTags")
                  || !strcmp(key, "resourceUuid");

        for (const char *const *a = allowed; *a && !ok; a++) {
            ok = !strcmp(*a, key);
        }
        if (!ok) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
        if (strcmp(key, "systemTags") && strcmp(key, "userTags")
            && !json_is_string(v)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "field '%s' must be a string", key);
            return -1;
        }
    }
    if (!json_is_string(json_object_get(params, "name"))) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "name",
                           "field 'name' is required");
        return -1;
    }
    if (validate_name("name", json_string_value(json_object_get(params,
                                                                "name"))) < 0) {
        return -1;
    }
    if (json_is_string(json_object_get(params, "description"))
        && validate_description("description",
                                json_string_value(json_object_get(
                                    params, "description"))) < 0) {
        return -1;
    }
    return 0;
}

static const char *
str_param(json_t *params, const char *name)
{
    const char *s = json_string_value(json_object_get(params, name));

    if (!s) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, name,
                           "field '%s' is required", name);
    }
    return s;
}

static int
l3_lock(struct db *db, const char *l3)
{
    json_t *row;

    if (db_begin(db) < 0) {
        return -1;
    }
    row = res_load(db, &l3_resource, l3);
    if (!row) {
        db_rollback(db);
        return -1;
    }
    json_decref(row);
    return 0;
}

int
l3_add_ip_range(struct api_req *req)
{
    static const char *const allowed[] = {
        "name", "description", "startIp", "endIp", "netmask", "gateway",
        NULL
    };
    struct db *db = db_thread();
    json_t *params = api_params(req);
    const char *start;
    const char *end;
    const char *netmask;
    const char *gateway;
    uint32_t s;
    uint32_t e;
    int prefix;

    if (!params) {
        return 0;
    }
    if (check_range_params(params, allowed) < 0
        || !(start = str_param(params, "startIp"))
        || !(end = str_param(params, "endIp"))
        || !(netmask = str_param(params, "netmask"))
        || !(gateway = str_param(params, "gateway"))
        || validate_ip_range(start, end, netmask, gateway, &s, &e,
                             &prefix) < 0) {
        return -1;
    }
    if (l3_lock(db, req->args[0]) < 0) {
        return -1;
    }
    if (ip_range_insert(req, db, req->args[0], params, s, e, prefix, netmask,
                        gateway) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

int
l3_add_ip_range_by_cidr(struct api_req *req)
{
    static const char *const allowed[] = {
        "name", "description", "networkCidr", "gateway", NULL
    };
    struct db *db = db_thread();
    json_t *params = api_params(req);
    const char *cidr;
    const char *gw_text;
    uint32_t net;
    uint32_t gw;
    uint32_t first;
    uint32_t last;
    uint32_t s;
    uint32_t e;
    int prefix;
    char netmask[16];
    char gateway[16];

    if (!params) {
        return 0;
    }
    if (check_range_params(params, allowed) < 0
        || !(cidr = str_param(params, "networkCidr"))
        || validate_cidr("networkCidr", cidr, &net, &prefix) < 0) {
        return -1;
    }
    if (prefix > 30 || prefix < 1) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "networkCidr",
                           "field 'networkCidr': /%d leaves no room for "
                           "hosts and a gateway", prefix);
        return -1;
    }
    first = net + 1;
    last = (net | ~ipv4_prefix_mask(prefix)) - 1;
    gw_text = json_string_value(json_object_get(params, "gateway"));
    if (gw_text) {
        if (validate_ipv4("gateway", gw_text, &gw) < 0) {
            return -1;
        }
    } else {
        gw = first;
    }
    if (gw == first) {
        s = first + 1;
        e = last;
    } else if (gw == last) {
        s = first;
        e = last - 1;
    } else {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "gateway",
                           "field 'gateway': with a CIDR the gateway must "
                           "be the first or the last host address of %s",
                           cidr);
        return -1;
    }
    ipv4_format(ipv4_prefix_mask(prefix), netmask);
    ipv4_format(gw, gateway);
    if (l3_lock(db, req->args[0]) < 0) {
        return -1;
    }
    if (ip_range_insert(req, db, req->args[0], params, s, e, prefix, netmask,
                        gateway) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

/* ---- DNS ---- */

int
l3_add_dns(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = api_params(req);
    const char *dns;
    const char *key;
    json_t *v;
    int64_t n;
    int64_t pos;

    if (!params) {
        return 0;
    }
    json_object_foreach(params, key, v) {
        if (strcmp(key, "dns") && strcmp(key, "systemTags")
            && strcmp(key, "userTags")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    dns = json_string_value(json_object_get(params, "dns"));
    if (!dns) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "dns",
                           "field 'dns' (an IPv4 address) is required");
        return -1;
    }
    if (validate_ipv4("dns", dns, NULL) < 0 || l3_lock(db, req->args[0]) < 0) {
        return -1;
    }
    if (db_int(db, &n, 0, "SELECT count(*) FROM l3Dns WHERE "
               "l3NetworkUuid = ?1 AND dns = ?2", "ss", req->args[0],
               dns) < 0
        || db_int(db, &pos, 0, "SELECT max(position) + 1 FROM l3Dns WHERE "
                  "l3NetworkUuid = ?1", "s", req->args[0]) < 0) {
        db_rollback(db);
        return -1;
    }
    if (n > 0) {
        db_rollback(db);
        error_report_field(PROBLEM_CONFLICT, "dns",
                           "DNS server '%s' is already set on this L3 "
                           "network", dns);
        return -1;
    }
    if (db_exec(db, "INSERT INTO l3Dns (l3NetworkUuid, dns, position) "
                "VALUES (?1, ?2, ?3)", "ssi", req->args[0], dns, pos) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, &l3_resource, req->args[0]);
}

int
l3_remove_dns(struct api_req *req)
{
    struct db *db = db_thread();

    if (l3_lock(db, req->args[0]) < 0) {
        return -1;
    }
    if (db_exec(db, "DELETE FROM l3Dns WHERE l3NetworkUuid = ?1 AND "
                "dns = ?2", "ss", req->args[0], req->args[1]) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, &l3_resource, req->args[0]);
}

/* ---- Network services ---- */

static bool
type_listed(const char *list, const char *type)
{
    size_t n = strlen(type);

    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen(p);

        if (len == n && !strncmp(p, type, n)) {
            return true;
        }
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

int
l3_attach_services(struct api_req *req)
{
    struct db *db = db_thread();
    json_t *params = api_params(req);
    json_t *services;
    const char *provider;
    json_t *types;
    const char *key;
    json_t *v;

    if (!params) {
        return 0;
    }
    json_object_foreach(params, key, v) {
        if (strcmp(key, "networkServices") && strcmp(key, "systemTags")
            && strcmp(key, "userTags")) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, key,
                               "unknown field '%.64s'", key);
            return -1;
        }
    }
    services = json_object_get(params, "networkServices");
    if (!json_is_object(services) || !json_object_size(services)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "networkServices",
                           "field 'networkServices' must map a provider "
                           "UUID to a list of services, e.g. "
                           "{\"<uuid>\":[\"DHCP\",\"DNS\"]}");
        return -1;
    }
    json_object_foreach(services, provider, types) {
        size_t i;
        json_t *t;

        if (validate_uuid("networkServices", provider) < 0) {
            return -1;
        }
        if (!json_is_array(types) || !json_array_size(types)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "networkServices",
                               "field 'networkServices': the services of "
                               "provider '%s' must be a non-empty list",
                               provider);
            return -1;
        }
        json_array_foreach(types, i, t) {
            if (!json_is_string(t)) {
                error_report_field(PROBLEM_INVALID_ARGUMENT,
                                   "networkServices",
                                   "field 'networkServices': service names "
                                   "are strings");
                return -1;
            }
        }
    }
    if (l3_lock(db, req->args[0]) < 0) {
        return -1;
    }
    json_object_foreach(services, provider, types) {
        json_t *prow = res_load_table(db, "networkServiceProvider",
                                      provider);
        const char *list;
        size_t i;
        json_t *t;

        if (!prow) {
            db_rollback(db);
            error_report_field(PROBLEM_INVALID_ARGUMENT, "networkServices",
                               "field 'networkServices': no network service "
                               "provider with UUID '%s' (see GET "
                               "/zstack/v1/network-services/providers)",
                               provider);
            return -1;
        }
        list = json_string_value(json_object_get(prow,
                                                 "networkServiceTypes"));
        json_array_foreach(types, i, t) {
            const char *type = json_string_value(t);
            json_t *cur;

            if (!type_listed(list, type)) {
                error_report_field(PROBLEM_INVALID_ARGUMENT,
                                   "networkServices",
                                   "field 'networkServices': provider '%s' "
                                   "offers %s, not '%.64s'",
                                   json_string_value(json_object_get(prow,
                                                                     "name")),
                                   list, type);
                json_decref(prow);
                db_rollback(db);
                return -1;
            }
            cur = res_select(db, "SELECT networkServiceProviderUuid FROM "
                             "l3NetworkService WHERE l3NetworkUuid = ?1 "
                             "AND networkServiceType = ?2", "ss",
                             req->args[0], type);
            if (!cur) {
                json_decref(prow);
                db_rollback(db);
                return -1;
            }
            if (json_array_size(cur)
                && strcmp(json_string_value(json_object_get(
                              json_array_get(cur, 0),
                              "networkServiceProviderUuid")), provider)) {
                error_report_field(PROBLEM_CONFLICT, "networkServices",
                                   "service %s of this L3 network is "
                                   "already provided by another provider",
                                   type);
                json_decref(cur);
                json_decref(prow);
                db_rollback(db);
                return -1;
            }
            json_decref(cur);
            if (db_exec(db, "INSERT OR IGNORE INTO l3NetworkService "
                        "(l3NetworkUuid, networkServiceProviderUuid, "
                        "networkServiceType) VALUES (?1, ?2, ?3)", "sss",
                        req->args[0], provider, type) < 0) {
                json_decref(prow);
                db_rollback(db);
                return -1;
            }
        }
        json_decref(prow);
    }
    if (db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    return res_reply_inventory(req, &l3_resource, req->args[0]);
}

/* ---- Providers ---- */

static const struct field provider_fields[] = {
    RES_COMMON_FIELDS,
    { .name = "type", .type = FT_STR },
    { .name = "networkServiceTypes", .type = FT_STR },
    { 0 },
};

static void
provider_inventory(struct db *db, json_t *inv)
{
    const char *list = json_string_value(json_object_get(
                                             inv, "networkServiceTypes"));
    json_t *types = json_array();
    AUTOFREE char *copy = xstrdup(list ? list : "");
    char *save = NULL;

    (void) db;
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        json_array_append_new(types, json_string(t));
    }
    json_object_set_new(inv, "networkServiceTypes", types);
}

static const char *const provider_columns[] = { "uuid", "name", "type",
                                                NULL };

const struct resource provider_resource = {
    .kind = "NetworkServiceProvider",
    .label = "network service provider",
    .table = "networkServiceProvider",
    .path = "network-services/providers",
    .fields = provider_fields,
    .columns = provider_columns,
    .inventory = provider_inventory,
};

/* ---- IP address management ---- */

int
l3_alloc_ip(struct db *db, const char *l3, const char *required,
            const char *used_for, const char *owner, char *ip, char *netmask,
            char *gateway, char *used_uuid)
{
    json_t *ranges = res_select(db, "SELECT uuid, startInt, endInt, "
                                "netmask, gateway FROM ipRange WHERE "
                                "l3NetworkUuid = ?1 ORDER BY startInt", "s",
                                l3);
    uint32_t want = 0;
    int64_t found = -1;
    json_t *range = NULL;
    size_t i;
    json_t *r;

    if (!ranges) {
        return -1;
    }
    if (!json_array_size(ranges)) {
        error_report(PROBLEM_CONFLICT, "L3 network %s has no IP range to "
                     "allocate an address from", l3);
        json_decref(ranges);
        return -1;
    }
    if (required && validate_ipv4("requiredIp", required, &want) < 0) {
        json_decref(ranges);
        return -1;
    }
    json_array_foreach(ranges, i, r) {
        int64_t s = json_integer_value(json_object_get(r, "startInt"));
        int64_t e = json_integer_value(json_object_get(r, "endInt"));
        int64_t used;

        if (required) {
            if (want < s || want > e) {
                continue;
            }
            if (db_int(db, &used, 0, "SELECT count(*) FROM usedIp WHERE "
                       "l3NetworkUuid = ?1 AND ipInt = ?2", "si", l3,
                       (int64_t) want) < 0) {
                json_decref(ranges);
                return -1;
            }
            if (used) {
                error_report_field(PROBLEM_CONFLICT, "requiredIp",
                                   "IP address %s of L3 network %s is "
                                   "already in use", required, l3);
                json_decref(ranges);
                return -1;
            }
            found = want;
            range = r;
            break;
        }
        if (db_int(db, &found, -1,
                   "SELECT c FROM (SELECT ?2 AS c WHERE NOT EXISTS "
                   "(SELECT 1 FROM usedIp WHERE l3NetworkUuid = ?1 AND "
                   "ipInt = ?2) UNION ALL SELECT u.ipInt + 1 AS c FROM "
                   "usedIp u WHERE u.l3NetworkUuid = ?1 AND u.ipInt >= ?2 "
                   "AND u.ipInt < ?3 AND NOT EXISTS (SELECT 1 FROM usedIp "
                   "v WHERE v.l3NetworkUuid = ?1 AND v.ipInt = u.ipInt + 1))"
                   " ORDER BY c LIMIT 1", "sii", l3, s, e) < 0) {
            json_decref(ranges);
            return -1;
        }
        if (found >= 0) {
            range = r;
            break;
        }
    }
    if (found < 0) {
        if (required) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "requiredIp",
                               "IP address %s is not in any IP range of L3 "
                               "network %s", required, l3);
        } else {
            error_report(PROBLEM_CONFLICT, "L3 network %s has no free IP "
                         "address left in its ranges", l3);
        }
        json_decref(ranges);
        return -1;
    }
    ipv4_format((uint32_t) found, ip);
    snprintf(netmask, 16, "%s", json_string_value(json_object_get(range,
                                                                  "netmask")));
    snprintf(gateway, 16, "%s", json_string_value(json_object_get(range,
                                                                  "gateway")));
    uuid_generate_hex(used_uuid);
    if (db_exec(db, "INSERT INTO usedIp (uuid, l3NetworkUuid, ipRangeUuid, "
                "ip, ipInt, usedFor, ownerUuid, createDate) VALUES (?1, ?2, "
                "?3, ?4, ?5, ?6, ?7, ?8)", "ssssissi", used_uuid, l3,
                json_string_value(json_object_get(range, "uuid")), ip,
                found, used_for, owner, time_wall_msec()) < 0) {
        json_decref(ranges);
        return -1;
    }
    json_decref(ranges);
    return 0;
}

int
l3_release_ip(struct db *db, const char *used_uuid)
{
    if (!used_uuid) {
        return 0;
    }
    return db_exec(db, "DELETE FROM usedIp WHERE uuid = ?1", "s",
                   used_uuid) < 0 ? -1 : 0;
}
