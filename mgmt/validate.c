/* validate.c: input checks for the API, kept free of I/O so the unit tests
 * can drive every rule from a table. */
#include "validate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/util.h"

static bool
has_control_chars(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

int
validate_name(const char *field, const char *s)
{
    size_t n = strlen(s);

    if (n == 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' must not be empty", field);
        return -1;
    }
    if (n > NAME_MAX_LEN) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' is %zu characters long; the maximum "
                           "is %d", field, n, NAME_MAX_LEN);
        return -1;
    }
    if (isspace((unsigned char) s[0]) || isspace((unsigned char) s[n - 1])) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' must not begin or end with white "
                           "space", field);
        return -1;
    }
    if (has_control_chars(s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' must not contain control characters",
                           field);
        return -1;
    }
    return 0;
}

int
validate_description(const char *field, const char *s)
{
    size_t n = strlen(s);

    if (n > DESCRIPTION_MAX_LEN) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' is %zu characters long; the maximum "
                           "is %d", field, n, DESCRIPTION_MAX_LEN);
        return -1;
    }
    return 0;
}

int
validate_uuid(const char *field, const char *s)
{
    if (!uuid_is_valid(s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s' must be a UUID of 32 hex digits, "
                           "not '%.64s'", field, s);
        return -1;
    }
    return 0;
}

bool
ipv4_parse(const char *s, uint32_t *addr)
{
    uint32_t a = 0;

    for (int part = 0; part < 4; part++) {
        int v = 0;
        int digits = 0;

        if (part > 0) {
            if (*s != '.') {
                return false;
            }
            s++;
        }
        if (*s == '0' && isdigit((unsigned char) s[1])) {
            return false;
        }
        while (isdigit((unsigned char) *s)) {
            v = v * 10 + (*s - '0');
            if (++digits > 3 || v > 255) {
                return false;
            }
            s++;
        }
        if (!digits) {
            return false;
        }
        a = (a << 8) | (uint32_t) v;
    }
    if (*s) {
        return false;
    }
    *addr = a;
    return true;
}

void
ipv4_format(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
             (a >> 8) & 0xff, a & 0xff);
}

int
validate_ipv4(const char *field, const char *s, uint32_t *addr)
{
    uint32_t a;

    if (!ipv4_parse(s, &a)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.64s' is not an IPv4 address",
                           field, s);
        return -1;
    }
    if (addr) {
        *addr = a;
    }
    return 0;
}

uint32_t
ipv4_prefix_mask(int prefix)
{
    return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

int
validate_netmask(const char *field, const char *s, int *prefix)
{
    uint32_t m;
    int p = 0;

    if (validate_ipv4(field, s, &m) < 0) {
        return -1;
    }
    while (p < 32 && (m & (0x80000000u >> p))) {
        p++;
    }
    if (m != ipv4_prefix_mask(p) || p == 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%s' is not a valid netmask", field,
                           s);
        return -1;
    }
    if (p > 30) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': netmask '%s' leaves no room for "
                           "hosts and a gateway", field, s);
        return -1;
    }
    *prefix = p;
    return 0;
}

int
validate_cidr(const char *field, const char *s, uint32_t *net, int *prefix)
{
    const char *slash = strchr(s, '/');
    char addr[16];
    char *end;
    long p;
    uint32_t a;

    if (!slash || slash - s >= (long) sizeof addr || !slash[1]) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.64s' is not an IPv4 CIDR such as "
                           "10.0.0.0/24", field, s);
        return -1;
    }
    memcpy(addr, s, (size_t) (slash - s));
    addr[slash - s] = '\0';
    p = strtol(slash + 1, &end, 10);
    if (*end || !isdigit((unsigned char) slash[1]) || p < 0 || p > 32
        || (slash[1] == '0' && slash[2]) || !ipv4_parse(addr, &a)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.64s' is not an IPv4 CIDR such as "
                           "10.0.0.0/24", field, s);
        return -1;
    }
    if (a & ~ipv4_prefix_mask((int) p)) {
        char fixed[16];

        ipv4_format(a & ipv4_prefix_mask((int) p), fixed);
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%s' has host bits set; did you mean "
                           "'%s/%ld'?", field, s, fixed, p);
        return -1;
    }
    *net = a;
    *prefix = (int) p;
    return 0;
}

int
validate_ip_range(const char *start, const char *end, const char *netmask,
                  const char *gateway, uint32_t *start_out, uint32_t *end_out,
                  int *prefix_out)
{
    uint32_t s;
    uint32_t e;
    uint32_t g;
    uint32_t mask;
    uint32_t net;
    uint32_t bcast;
    int prefix;

    if (validate_ipv4("startIp", start, &s) < 0
        || validate_ipv4("endIp", end, &e) < 0
        || validate_netmask("netmask", netmask, &prefix) < 0
        || validate_ipv4("gateway", gateway, &g) < 0) {
        return -1;
    }
    if (s > e) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "startIp",
                           "field 'startIp': '%s' is after endIp '%s'",
                           start, end);
        return -1;
    }
    mask = ipv4_prefix_mask(prefix);
    net = s & mask;
    bcast = net | ~mask;
    if ((e & mask) != net) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "endIp",
                           "field 'endIp': '%s' is not in the subnet of "
                           "startIp '%s' with netmask '%s'", end, start,
                           netmask);
        return -1;
    }
    if (s == net || s == bcast) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "startIp",
                           "field 'startIp': '%s' is the %s address of its "
                           "subnet", start, s == net ? "network" : "broadcast");
        return -1;
    }
    if (e == net || e == bcast) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "endIp",
                           "field 'endIp': '%s' is the %s address of its "
                           "subnet", end, e == net ? "network" : "broadcast");
        return -1;
    }
    if ((g & mask) != net || g == net || g == bcast) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "gateway",
                           "field 'gateway': '%s' is not a host address in "
                           "the subnet of the range %s-%s/%d", gateway,
                           start, end, prefix);
        return -1;
    }
    if (g >= s && g <= e) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "gateway",
                           "field 'gateway': '%s' lies inside the range "
                           "%s-%s; the gateway must be outside it", gateway,
                           start, end);
        return -1;
    }
    *start_out = s;
    *end_out = e;
    *prefix_out = prefix;
    return 0;
}

int
validate_port(const char *field, int64_t port)
{
    if (port < 1 || port > 65535) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': port %lld is outside 1..65535",
                           field, (long long) port);
        return -1;
    }
    return 0;
}

int
validate_pf_ports(int64_t *vs, int64_t *ve, int64_t *ps, int64_t *pe)
{
    if (*vs < 0) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "vipPortStart",
                           "field 'vipPortStart' is required");
        return -1;
    }
    if (*ve < 0) {
        *ve = *vs;
    }
    if (*ps < 0) {
        *ps = *vs;
        if (*pe < 0) {
            *pe = *ve;
        }
    } else if (*pe < 0) {
        *pe = *ps + (*ve - *vs);
    }
    if (validate_port("vipPortStart", *vs) < 0
        || validate_port("vipPortEnd", *ve) < 0
        || validate_port("privatePortStart", *ps) < 0
        || validate_port("privatePortEnd", *pe) < 0) {
        return -1;
    }
    if (*vs > *ve) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "vipPortEnd",
                           "field 'vipPortEnd': %lld is below vipPortStart "
                           "%lld", (long long) *ve, (long long) *vs);
        return -1;
    }
    if (*ps > *pe) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "privatePortEnd",
                           "field 'privatePortEnd': %lld is below "
                           "privatePortStart %lld", (long long) *pe,
                           (long long) *ps);
        return -1;
    }
    if (*ve - *vs != *pe - *ps) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "privatePortEnd",
                           "the VIP port range %lld-%lld and the private "
                           "port range %lld-%lld must have the same length",
                           (long long) *vs, (long long) *ve, (long long) *ps,
                           (long long) *pe);
        return -1;
    }
    return 0;
}

bool
ranges_overlap(int64_t a1, int64_t a2, int64_t b1, int64_t b2)
{
    return a1 <= b2 && b1 <= a2;
}

int
validate_vlan(const char *field, int64_t vlan)
{
    if (vlan < 1 || vlan > 4094) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': VLAN id %lld is outside 1..4094",
                           field, (long long) vlan);
        return -1;
    }
    return 0;
}

int
validate_vni(const char *field, int64_t vni)
{
    if (vni < 1 || vni > 16777215) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': VXLAN VNI %lld is outside "
                           "1..16777215", field, (long long) vni);
        return -1;
    }
    return 0;
}

static bool
path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

int
validate_storage_path(const char *field, const char *path)
{
    static const char *const forbidden[] = { "/dev", "/proc", "/sys" };

    if (path[0] != '/') {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': path '%.256s' must be absolute",
                           field, path);
        return -1;
    }
    if (strlen(path) > 1024 || has_control_chars(path)
        || strpbrk(path, " \t\"'\\`$;&|<>*?")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': path '%.256s' contains characters "
                           "that are not allowed in a storage path", field,
                           path);
        return -1;
    }
    if (strstr(path, "/../") || strstr(path, "/./")
        || (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/.."))
        || (strlen(path) >= 2 && !strcmp(path + strlen(path) - 2, "/."))
        || strstr(path, "//")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': path '%.256s' must be normalized "
                           "(no '.', '..' or '//')", field, path);
        return -1;
    }
    if (!strcmp(path, "/")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': the root directory cannot be a "
                           "storage path", field);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(forbidden); i++) {
        if (path_under(path, forbidden[i])) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                               "field '%s': path '%.256s' points into %s",
                               field, path, forbidden[i]);
            return -1;
        }
    }
    return 0;
}

int
validate_nfs_url(const char *field, const char *url)
{
    const char *colon = strchr(url, ':');
    char *host;
    int rc;

    if (!colon || colon == url || colon[1] != '/') {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.256s' is not an NFS URL of the "
                           "form host:/path", field, url);
        return -1;
    }
    host = xstrndup(url, (size_t) (colon - url));
    rc = validate_host_address(field, host);
    free(host);
    if (rc < 0) {
        return -1;
    }
    return validate_storage_path(field, colon + 1);
}

int
validate_ifname(const char *field, const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 15) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': interface name '%.64s' must be 1 to "
                           "15 characters", field, s);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char) *p) && *p != '_' && *p != '-'
            && *p != '.') {
            error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                               "field '%s': interface name '%s' may hold "
                               "only letters, digits, '_', '-' and '.'",
                               field, s);
            return -1;
        }
    }
    if (!strcmp(s, ".") || !strcmp(s, "..")) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%s' is not an interface name",
                           field, s);
        return -1;
    }
    return 0;
}

static bool
dns_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char) s[i]) && s[i] != '-') {
            return false;
        }
    }
    return true;
}

static bool
dns_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 253) {
        return false;
    }
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t) (dot - s) : strlen(s);

        if (!dns_label_ok(s, len)) {
            return false;
        }
        s += len;
        if (*s == '.') {
            s++;
            if (!*s) {
                return false;
            }
        }
    }
    return true;
}

int
validate_hostname(const char *field, const char *s)
{
    if (!dns_name_ok(s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.64s' is not a valid host name "
                           "(letters, digits and '-', labels of 1 to 63)",
                           field, s);
        return -1;
    }
    return 0;
}

int
validate_domain(const char *field, const char *s)
{
    if (!dns_name_ok(s)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "field '%s': '%.256s' is not a valid DNS domain",
                           field, s);
        return -1;
    }
    return 0;
}

int
validate_host_address(const char *field, const char *s)
{
    uint32_t a;
    bool numeric = true;

    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char) *p) && *p != '.') {
            numeric = false;
        }
    }
    if (numeric ? ipv4_parse(s, &a) : dns_name_ok(s)) {
        return 0;
    }
    error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                       "field '%s': '%.256s' is neither an IPv4 address nor "
                       "a host name", field, s);
    return -1;
}
