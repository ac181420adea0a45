/* config.c: parsing and validation of the virtual router's configuration
 * (C of vr.apply, include/kvmstack/proto.h).  Everything is checked here,
 * before any side effect: addresses with inet_pton (never a name that nft
 * or dnsmasq would try to resolve), MACs, ports, host names.  What only
 * the kernel can judge (overlapping SNAT sources, say) is left to the one
 * nftables transaction, whose error text then fails the call. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/util.h"

static const char *const vr_role_names[] = {
#define VR_ROLE(ENUM, NAME) NAME,
    VR_ROLES
#undef VR_ROLE
};

static const char *const vr_proto_names[] = {
    "none",
#define VR_PROTO(ENUM, NAME) NAME,
    VR_PROTOS
#undef VR_PROTO
};

const char *
vr_proto_name(enum vr_proto p)
{
    return p < VR_PROTO_N ? vr_proto_names[p] : "?";
}

const char *
vr_role_name(enum vr_role r)
{
    return r < VR_ROLE_N ? vr_role_names[r] : "?";
}

char *
vr_cidr_format(const struct vr_cidr *cidr, char *buf)
{
    char a[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &cidr->net, a, sizeof a);
    sprintf(buf, "%s/%u", a, cidr->len);
    return buf;
}

/* Parses a dotted-quad IPv4 address.  Returns 0, or -1 with
 * invalid-argument reported against 'field'. */
static int
vr_parse_addr(json_t *v, const char *field, struct in_addr *out)
{
    const char *s = json_string_value(v);

    if (!s || inet_pton(AF_INET, s, out) != 1) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' is not an IPv4 address",
                           s ? s : "(not a string)");
        return -1;
    }
    return 0;
}

/* Parses "A/LEN" (LEN 0-32; a bare A is /32).  With 'keep_host' the
 * address is kept as given (an interface address), else its host bits are
 * cleared (a network).  Returns 0 or -1 with an error reported. */
static int
vr_parse_prefixed(json_t *v, const char *field, bool keep_host,
                  struct in_addr *addr, uint8_t *len)
{
    const char *s = json_string_value(v);
    const char *slash = s ? strchr(s, '/') : NULL;
    char a[INET_ADDRSTRLEN];
    unsigned long n = 32;
    char *end;

    if (!s) {
        goto bad;
    }
    if (slash) {
        if ((size_t) (slash - s) >= sizeof a || !isdigit((unsigned char)
                                                         slash[1])) {
            goto bad;
        }
        memcpy(a, s, (size_t) (slash - s));
        a[slash - s] = '\0';
        n = strtoul(slash + 1, &end, 10);
        if (*end || n > 32) {
            goto bad;
        }
    } else if (strlen(s) >= sizeof a) {
        goto bad;
    } else {
        strcpy(a, s);
    }
    if (inet_pton(AF_INET, a, addr) != 1) {
        goto bad;
    }
    *len = (uint8_t) n;
    if (!keep_host) {
        uint32_t mask = n ? htonl(~0u << (32 - n)) : 0;

        addr->s_addr &= mask;
    }
    return 0;

bad:
    error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                       "'%s' is not an IPv4 address with a prefix (A/LEN)",
                       s ? s : "(not a string)");
    return -1;
}

static int
vr_parse_cidr(json_t *v, const char *field, struct vr_cidr *out)
{
    return vr_parse_prefixed(v, field, false, &out->net, &out->len);
}

/* Parses a MAC into lower case "xx:xx:xx:xx:xx:xx" ('out' 18 bytes). */
static int
vr_parse_mac(json_t *v, const char *field, char out[18])
{
    const char *s = json_string_value(v);

    if (!s || strlen(s) != 17) {
        goto bad;
    }
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char) s[i])) {
            goto bad;
        }
        out[i] = (char) tolower((unsigned char) s[i]);
    }
    out[17] = '\0';
    return 0;

bad:
    error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                       "'%s' is not a MAC address (xx:xx:xx:xx:xx:xx)",
                       s ? s : "(not a string)");
    return -1;
}

/* A DNS name: labels of A-Za-z0-9 and '-', not starting or ending with
 * '-', 1-63 characters each, 253 in all. */
static bool
vr_dns_name_ok(const char *s)
{
    size_t label = 0;
    size_t len = strlen(s);

    if (len == 0 || len > 253) {
        return false;
    }
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];

        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-') {
                return false;
            }
            label = 0;
        } else if (isalnum((unsigned char) c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static int
vr_parse_dns_name(json_t *v, const char *field, char **out)
{
    const char *s = json_string_value(v);

    *out = NULL;
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (!s || !vr_dns_name_ok(s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' is not a valid DNS name",
                           s ? s : "(not a string)");
        return -1;
    }
    *out = xstrdup(s);
    return 0;
}

/* 'v' must be an array or absent/null (then empty).  Returns its size or
 * -1 with an error reported. */
static long
vr_array_size(json_t *v, const char *field)
{
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (!json_is_array(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be an array", field);
        return -1;
    }
    return (long) json_array_size(v);
}

static int
vr_parse_addr_list(json_t *v, const char *field, struct in_addr **out,
                   size_t *n)
{
    long size = vr_array_size(v, field);

    *out = NULL;
    *n = 0;
    if (size < 0) {
        return -1;
    }
    *out = xcalloc((size_t) size + 1, sizeof **out);
    for (long i = 0; i < size; i++) {
        char f[64];

        snprintf(f, sizeof f, "%s[%ld]", field, i);
        if (vr_parse_addr(json_array_get(v, (size_t) i), f, &(*out)[i]) < 0) {
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* Parses a [first, last] port pair, 1-65535, first <= last. */
static int
vr_parse_ports(json_t *v, const char *field, uint16_t out[2])
{
    json_int_t a;
    json_int_t b;

    if (!json_is_array(v) || json_array_size(v) != 2
        || !json_is_integer(json_array_get(v, 0))
        || !json_is_integer(json_array_get(v, 1))) {
        goto bad;
    }
    a = json_integer_value(json_array_get(v, 0));
    b = json_integer_value(json_array_get(v, 1));
    if (a < 1 || b > 65535 || a > b) {
        goto bad;
    }
    out[0] = (uint16_t) a;
    out[1] = (uint16_t) b;
    return 0;

bad:
    error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                       "ports must be [first, last] with 1 <= first <= "
                       "last <= 65535");
    return -1;
}

static int
vr_parse_iface(json_t *v, const char *field, struct vr_iface *iface)
{
    const char *role = json_string_value(json_object_get(v, "role"));
    json_t *gw = json_object_get(v, "gateway");
    char f[96];

    if (!json_is_object(v)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be an object", field);
        return -1;
    }
    snprintf(f, sizeof f, "%s.mac", field);
    if (vr_parse_mac(json_object_get(v, "mac"), f, iface->mac) < 0) {
        return -1;
    }
    if (role && !strcmp(role, "public")) {
        iface->role = VR_ROLE_PUBLIC;
    } else if (role && !strcmp(role, "private")) {
        iface->role = VR_ROLE_PRIVATE;
    } else {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s.role' must be \"public\" or \"private\"",
                           field);
        return -1;
    }
    snprintf(f, sizeof f, "%s.address", field);
    if (vr_parse_prefixed(json_object_get(v, "address"), f, true,
                          &iface->addr, &iface->prefix) < 0) {
        return -1;
    }
    snprintf(f, sizeof f, "%s.gateway", field);
    if (gw && !json_is_null(gw)) {
        if (vr_parse_addr(gw, f, &iface->gateway) < 0) {
            return -1;
        }
        iface->has_gateway = true;
    }
    return 0;
}

static int
vr_parse_dhcp(json_t *v, struct vr_dhcp *d)
{
    json_t *hosts = json_object_get(v, "hosts");
    long n;

    if (vr_parse_cidr(json_object_get(v, "subnet"), "dhcp.subnet",
                      &d->subnet) < 0
        || vr_parse_addr(json_object_get(v, "gateway"), "dhcp.gateway",
                         &d->gateway) < 0
        || vr_parse_dns_name(json_object_get(v, "domain"), "dhcp.domain",
                             &d->domain) < 0
        || vr_parse_addr_list(json_object_get(v, "dns"), "dhcp.dns",
                              &d->dns, &d->n_dns) < 0
        || vr_parse_addr_list(json_object_get(v, "upstreams"),
                              "dhcp.upstreams", &d->upstreams,
                              &d->n_upstreams) < 0) {
        return -1;
    }
    n = vr_array_size(hosts, "dhcp.hosts");
    if (n < 0) {
        return -1;
    }
    d->hosts = xcalloc((size_t) n + 1, sizeof *d->hosts);
    for (long i = 0; i < n; i++) {
        json_t *h = json_array_get(hosts, (size_t) i);
        struct vr_dhcp_host *dh = &d->hosts[i];
        char f[64];

        d->n_hosts++;
        snprintf(f, sizeof f, "dhcp.hosts[%ld].mac", i);
        if (vr_parse_mac(json_object_get(h, "mac"), f, dh->mac) < 0) {
            return -1;
        }
        snprintf(f, sizeof f, "dhcp.hosts[%ld].ip", i);
        if (vr_parse_addr(json_object_get(h, "ip"), f, &dh->ip) < 0) {
            return -1;
        }
        snprintf(f, sizeof f, "dhcp.hosts[%ld].hostname", i);
        if (vr_parse_dns_name(json_object_get(h, "hostname"), f,
                              &dh->hostname) < 0) {
            return -1;
        }
        if (dh->hostname && strchr(dh->hostname, '.')) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, f,
                               "hostname '%s' must be a single label",
                               dh->hostname);
            return -1;
        }
    }
    return 0;
}

/* Re-reports the last error against "LIST[i].name" (LIST:
 * portForwarding, or a delta's portForwardingAdd).  Rules are parsed with
 * no field names (formatting them for each of tens of thousands of rules
 * would cost more than the parsing); only a failure pays for one.
 * Returns -1. */
static int
vr_rule_fail(const char *list, long i, const char *name)
{
    enum problem p = error_last_problem();
    char *msg = xstrdup(error_last_message());
    char f[80];

    snprintf(f, sizeof f, "%s[%ld]%s%s", list, i, *name ? "." : "", name);
    error_report_field(p, f, "%s", msg);
    free(msg);
    return -1;
}

static int
vr_parse_rule(json_t *v, const char *list, long i, struct vr_pf_rule *r)
{
    const char *proto = json_string_value(json_object_get(v, "protocol"));
    const char *uuid = json_string_value(json_object_get(v, "uuid"));
    json_t *cidr = json_object_get(v, "allowedCidr");

    if (!json_is_object(v)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "a rule must be an object");
        return vr_rule_fail(list, i, "");
    }
    r->uuid = uuid ? xstrdup(uuid) : NULL;
    if (vr_parse_addr(json_object_get(v, "vip"), NULL, &r->vip) < 0) {
        return vr_rule_fail(list, i, "vip");
    }
    if (proto && !strcasecmp(proto, "tcp")) {
        r->proto = VR_PROTO_TCP;
    } else if (proto && !strcasecmp(proto, "udp")) {
        r->proto = VR_PROTO_UDP;
    } else {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "protocol '%s' is not \"tcp\" or \"udp\"",
                     proto ? proto : "(not a string)");
        return vr_rule_fail(list, i, "protocol");
    }
    if (vr_parse_ports(json_object_get(v, "vipPorts"), NULL,
                       r->vip_port) < 0) {
        return vr_rule_fail(list, i, "vipPorts");
    }
    if (vr_parse_addr(json_object_get(v, "guestIp"), NULL,
                      &r->guest_ip) < 0) {
        return vr_rule_fail(list, i, "guestIp");
    }
    if (vr_parse_ports(json_object_get(v, "guestPorts"), NULL,
                       r->guest_port) < 0) {
        return vr_rule_fail(list, i, "guestPorts");
    }
    if (r->guest_port[1] - r->guest_port[0]
        != r->vip_port[1] - r->vip_port[0]) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "guest ports %u-%u and VIP ports %u-%u of rule '%s' "
                     "differ in length", r->guest_port[0], r->guest_port[1],
                     r->vip_port[0], r->vip_port[1],
                     r->uuid ? r->uuid : "");
        return vr_rule_fail(list, i, "guestPorts");
    }
    if (cidr && !json_is_null(cidr)) {
        if (vr_parse_cidr(cidr, NULL, &r->allowed) < 0) {
            return vr_rule_fail(list, i, "allowedCidr");
        }
        r->has_cidr = true;
    }
    return 0;
}

static struct vr_config *
vr_config_parse__(json_t *json, struct vr_config *cfg)
{
    json_t *gen = json_object_get(json, "gen");
    json_t *ifaces = json_object_get(json, "interfaces");
    json_t *snat = json_object_get(json, "snat");
    json_t *dhcp = json_object_get(json, "dhcp");
    json_t *rules = json_object_get(json, "portForwarding");
    long n;

    if (!json_is_object(json)) {
        error_report(PROBLEM_INVALID_ARGUMENT,
                     "the configuration must be an object");
        return NULL;
    }
    if (!json_is_integer(gen) || json_integer_value(gen) < 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "gen",
                           "'gen' must be an integer >= 0");
        return NULL;
    }
    cfg->gen = json_integer_value(gen);

    n = vr_array_size(ifaces, "interfaces");
    if (n < 0) {
        return NULL;
    }
    cfg->ifaces = xcalloc((size_t) n + 1, sizeof *cfg->ifaces);
    for (long i = 0; i < n; i++) {
        char f[64];

        snprintf(f, sizeof f, "interfaces[%ld]", i);
        if (vr_parse_iface(json_array_get(ifaces, (size_t) i), f,
                           &cfg->ifaces[i]) < 0) {
            return NULL;
        }
        for (long j = 0; j < i; j++) {
            if (!strcmp(cfg->ifaces[j].mac, cfg->ifaces[i].mac)) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, f,
                                   "MAC '%s' is listed twice",
                                   cfg->ifaces[i].mac);
                return NULL;
            }
        }
        cfg->n_ifaces++;
    }

    if (vr_parse_addr_list(json_object_get(json, "vips"), "vips",
                           &cfg->vips, &cfg->n_vips) < 0) {
        return NULL;
    }
    if (cfg->n_vips && !vr_config_public(cfg)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "vips",
                           "VIPs need an interface with role \"public\"");
        return NULL;
    }

    n = vr_array_size(snat, "snat");
    if (n < 0) {
        return NULL;
    }
    cfg->snat = xcalloc((size_t) n + 1, sizeof *cfg->snat);
    for (long i = 0; i < n; i++) {
        json_t *s = json_array_get(snat, (size_t) i);
        char f[64];

        snprintf(f, sizeof f, "snat[%ld].source", i);
        if (vr_parse_cidr(json_object_get(s, "source"), f,
                          &cfg->snat[i].source) < 0) {
            return NULL;
        }
        snprintf(f, sizeof f, "snat[%ld].to", i);
        if (vr_parse_addr(json_object_get(s, "to"), f, &cfg->snat[i].to)
            < 0) {
            return NULL;
        }
        cfg->n_snat++;
    }

    if (dhcp && !json_is_null(dhcp)) {
        if (!json_is_object(dhcp)) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "dhcp",
                               "'dhcp' must be an object or null");
            return NULL;
        }
        cfg->dhcp = xcalloc(1, sizeof *cfg->dhcp);
        if (vr_parse_dhcp(dhcp, cfg->dhcp) < 0) {
            return NULL;
        }
        for (n = 0; n < (long) cfg->n_ifaces; n++) {
            if (cfg->ifaces[n].role == VR_ROLE_PRIVATE) {
                break;
            }
        }
        if (n == (long) cfg->n_ifaces) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "dhcp",
                               "DHCP needs an interface with role "
                               "\"private\"");
            return NULL;
        }
    }

    n = vr_array_size(rules, "portForwarding");
    if (n < 0) {
        return NULL;
    }
    cfg->rules = xcalloc((size_t) n + 1, sizeof *cfg->rules);
    cfg->cap_rules = (size_t) n + 1;
    for (long i = 0; i < n; i++) {
        cfg->n_rules++;
        if (vr_parse_rule(json_array_get(rules, (size_t) i),
                          "portForwarding", i, &cfg->rules[i]) < 0) {
            return NULL;
        }
    }
    /* The uuid index that deltas find rules by. */
    cfg->rule_index = json_object();
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const char *uuid = cfg->rules[i].uuid;

        if (!uuid) {
            continue;
        }
        if (json_object_get(cfg->rule_index, uuid)) {
            char f[64];

            snprintf(f, sizeof f, "portForwarding[%zu].uuid", i);
            error_report_field(PROBLEM_INVALID_ARGUMENT, f,
                               "rule uuid '%s' is listed twice", uuid);
            return NULL;
        }
        json_object_set_new(cfg->rule_index, uuid,
                            json_integer((json_int_t) i));
    }
    return cfg;
}

struct vr_config *
vr_config_parse(json_t *json)
{
    struct vr_config *cfg = xcalloc(1, sizeof *cfg);

    if (!vr_config_parse__(json, cfg)) {
        vr_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void
vr_config_free(struct vr_config *cfg)
{
    if (!cfg) {
        return;
    }
    free(cfg->ifaces);
    free(cfg->vips);
    free(cfg->snat);
    if (cfg->dhcp) {
        free(cfg->dhcp->domain);
        free(cfg->dhcp->dns);
        free(cfg->dhcp->upstreams);
        for (size_t i = 0; i < cfg->dhcp->n_hosts; i++) {
            free(cfg->dhcp->hosts[i].hostname);
        }
        free(cfg->dhcp->hosts);
        free(cfg->dhcp);
    }
    for (size_t i = 0; i < cfg->n_rules; i++) {
        free(cfg->rules[i].uuid);
    }
    free(cfg->rules);
    json_decref(cfg->rule_index);
    free(cfg);
}

const struct vr_iface *
vr_config_public(const struct vr_config *cfg)
{
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        if (cfg->ifaces[i].role == VR_ROLE_PUBLIC) {
            return &cfg->ifaces[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Deltas. */

static struct vr_delta *
vr_delta_parse__(json_t *json, struct vr_delta *d)
{
    json_t *gen = json_object_get(json, "gen");
    json_t *base = json_object_get(json, "baseGen");
    json_t *add = json_object_get(json, "portForwardingAdd");
    json_t *del = json_object_get(json, "portForwardingDel");
    json_t *seen;
    long n;

    if (!json_is_object(json)) {
        error_report(PROBLEM_INVALID_ARGUMENT, "the delta must be an object");
        return NULL;
    }
    if (!json_is_integer(gen) || json_integer_value(gen) < 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "gen",
                           "'gen' must be an integer >= 0");
        return NULL;
    }
    if (!json_is_integer(base) || json_integer_value(base) < 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "baseGen",
                           "'baseGen' must be an integer >= 0");
        return NULL;
    }
    d->gen = json_integer_value(gen);
    d->base_gen = json_integer_value(base);

    n = vr_array_size(del, "portForwardingDel");
    if (n < 0) {
        return NULL;
    }
    d->del = xcalloc((size_t) n + 1, sizeof *d->del);
    for (long i = 0; i < n; i++) {
        const char *uuid = json_string_value(json_array_get(del, (size_t) i));

        if (!uuid || !*uuid) {
            char f[64];

            snprintf(f, sizeof f, "portForwardingDel[%ld]", i);
            error_report_field(PROBLEM_INVALID_ARGUMENT, f,
                               "'%s' must be a rule uuid (a string)", f);
            return NULL;
        }
        d->del[d->n_del++] = xstrdup(uuid);
    }

    n = vr_array_size(add, "portForwardingAdd");
    if (n < 0) {
        return NULL;
    }
    d->add = xcalloc((size_t) n + 1, sizeof *d->add);
    seen = json_object();
    for (long i = 0; i < n; i++) {
        struct vr_pf_rule *r = &d->add[i];

        d->n_add++;
        if (vr_parse_rule(json_array_get(add, (size_t) i),
                          "portForwardingAdd", i, r) < 0) {
            json_decref(seen);
            return NULL;
        }
        if (!r->uuid || !*r->uuid || json_object_get(seen, r->uuid)) {
            char f[64];

            snprintf(f, sizeof f, "portForwardingAdd[%ld].uuid", i);
            if (r->uuid && *r->uuid) {
                error_report_field(PROBLEM_INVALID_ARGUMENT, f,
                                   "rule uuid '%s' is listed twice",
                                   r->uuid);
            } else {
                error_report_field(PROBLEM_INVALID_ARGUMENT, f,
                                   "a rule of a delta needs a uuid");
            }
            json_decref(seen);
            return NULL;
        }
        json_object_set_new(seen, r->uuid, json_true());
    }
    json_decref(seen);

    if (vr_parse_addr_list(json_object_get(json, "vipsAdd"), "vipsAdd",
                           &d->vips_add, &d->n_vips_add) < 0
        || vr_parse_addr_list(json_object_get(json, "vipsDel"), "vipsDel",
                              &d->vips_del, &d->n_vips_del) < 0) {
        return NULL;
    }
    return d;
}

struct vr_delta *
vr_delta_parse(json_t *json)
{
    struct vr_delta *d = xcalloc(1, sizeof *d);

    if (!vr_delta_parse__(json, d)) {
        vr_delta_free(d);
        return NULL;
    }
    return d;
}

void
vr_delta_free(struct vr_delta *d)
{
    if (!d) {
        return;
    }
    for (size_t i = 0; i < d->n_add; i++) {
        free(d->add[i].uuid);
    }
    free(d->add);
    for (size_t i = 0; i < d->n_del; i++) {
        free(d->del[i]);
    }
    free(d->del);
    free(d->vips_add);
    free(d->vips_del);
    free(d);
}

struct vr_pf_rule *
vr_config_rule(const struct vr_config *cfg, const char *uuid)
{
    json_t *i = cfg->rule_index ? json_object_get(cfg->rule_index, uuid)
                                : NULL;

    return i ? &cfg->rules[json_integer_value(i)] : NULL;
}

bool
vr_config_remove_rule(struct vr_config *cfg, const char *uuid)
{
    json_t *iv = cfg->rule_index ? json_object_get(cfg->rule_index, uuid)
                                 : NULL;
    size_t i;
    size_t last;

    if (!iv) {
        return false;
    }
    i = (size_t) json_integer_value(iv);
    last = cfg->n_rules - 1;
    json_object_del(cfg->rule_index, uuid);     /* 'uuid' may be freed next. */
    free(cfg->rules[i].uuid);
    if (i != last) {
        cfg->rules[i] = cfg->rules[last];
        if (cfg->rules[i].uuid) {
            json_object_set_new(cfg->rule_index, cfg->rules[i].uuid,
                                json_integer((json_int_t) i));
        }
    }
    memset(&cfg->rules[last], 0, sizeof cfg->rules[last]);
    cfg->n_rules--;
    return true;
}

void
vr_config_append_rule(struct vr_config *cfg, struct vr_pf_rule *r)
{
    if (cfg->n_rules + 1 > cfg->cap_rules) {
        cfg->cap_rules = 2 * cfg->cap_rules + 16;
        cfg->rules = xrealloc(cfg->rules,
                              cfg->cap_rules * sizeof *cfg->rules);
    }
    if (!cfg->rule_index) {
        cfg->rule_index = json_object();
    }
    cfg->rules[cfg->n_rules] = *r;
    json_object_set_new(cfg->rule_index, r->uuid,
                        json_integer((json_int_t) cfg->n_rules));
    cfg->n_rules++;
    r->uuid = NULL;
}

bool
vr_config_add_vip(struct vr_config *cfg, struct in_addr a)
{
    for (size_t i = 0; i < cfg->n_vips; i++) {
        if (cfg->vips[i].s_addr == a.s_addr) {
            return false;
        }
    }
    cfg->vips = xrealloc(cfg->vips, (cfg->n_vips + 1) * sizeof *cfg->vips);
    cfg->vips[cfg->n_vips++] = a;
    return true;
}

bool
vr_config_del_vip(struct vr_config *cfg, struct in_addr a)
{
    for (size_t i = 0; i < cfg->n_vips; i++) {
        if (cfg->vips[i].s_addr == a.s_addr) {
            memmove(&cfg->vips[i], &cfg->vips[i + 1],
                    (cfg->n_vips - i - 1) * sizeof *cfg->vips);
            cfg->n_vips--;
            return true;
        }
    }
    return false;
}
