/* test-validate.c: table-driven tests of every function of mgmt/validate.h.
 *
 * Each row is one case, named "validate/<row id>": the input, whether it
 * must be accepted and, when it must not, the request field that
 * error_last_field() must name, so that an API client is told which field
 * to fix.  Long inputs are written as a pattern and a length: the pattern
 * repeats until the input is 'len' characters long. */
#include "unit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/util.h"
#include "validate.h"

/* Checks the error a refused value left: invalid-argument naming 'field',
 * with a message. */
#define CHECK_REFUSED(FIELD)                                          \
    do {                                                              \
        CHECK_INT(error_last_problem(), PROBLEM_INVALID_ARGUMENT);    \
        CHECK_STR(error_last_field(), (FIELD));                       \
        CHECK(error_last_message()[0] != '\0');                       \
    } while (0)

/* ---- Validators of one string: fn(field, value) ---- */

struct str_row {
    const char *id;                     /* Case name below validate/. */
    int (*fn)(const char *field, const char *s);
    const char *input;                  /* Value, or pattern if 'len'. */
    size_t len;                         /* 0, or the length to repeat to. */
    bool expect_ok;
    const char *expect_field;           /* Also the field passed in. */
};

#define OK true
#define BAD false

static const struct str_row str_rows[] = {
    /* validate_name */
    { "name-ok", validate_name, "zone 1", 0, OK, NULL },
    { "name-utf8", validate_name, "z\xc3\xa9ro", 0, OK, NULL },
    { "name-empty", validate_name, "", 0, BAD, "name" },
    { "name-leading-space", validate_name, " zone", 0, BAD, "name" },
    { "name-trailing-space", validate_name, "zone ", 0, BAD, "name" },
    { "name-leading-tab", validate_name, "\tzone", 0, BAD, "name" },
    { "name-trailing-newline", validate_name, "zone\n", 0, BAD, "name" },
    { "name-255", validate_name, "n", 255, OK, NULL },
    { "name-256", validate_name, "n", 256, BAD, "name" },
    { "name-control-char", validate_name, "zo\x01ne", 0, BAD, "name" },
    { "name-inner-tab", validate_name, "zo\tne", 0, BAD, "name" },
    { "name-del", validate_name, "zo\x7fne", 0, BAD, "name" },

    /* validate_description */
    { "description-empty", validate_description, "", 0, OK, NULL },
    { "description-2048", validate_description, "d", 2048, OK, NULL },
    { "description-2049", validate_description, "d", 2049, BAD,
      "description" },

    /* validate_uuid */
    { "uuid-ok", validate_uuid, "0123456789abcdef0123456789abcdef", 0, OK,
      NULL },
    { "uuid-upper", validate_uuid, "0123456789ABCDEF0123456789ABCDEF", 0,
      OK, NULL },
    { "uuid-31", validate_uuid, "a", 31, BAD, "uuid" },
    { "uuid-33", validate_uuid, "a", 33, BAD, "uuid" },
    { "uuid-dashes", validate_uuid, "01234567-89ab-cdef-0123-456789abcdef",
      0, BAD, "uuid" },
    { "uuid-non-hex", validate_uuid, "g", 32, BAD, "uuid" },
    { "uuid-empty", validate_uuid, "", 0, BAD, "uuid" },

    /* validate_nfs_url */
    { "nfs-url-ok", validate_nfs_url, "nfs.example.com:/export", 0, OK,
      NULL },
    { "nfs-url-tutorial", validate_nfs_url,
      "192.168.0.212:/usr/local/zstack/nfs_root", 0, OK, NULL },
    { "nfs-url-devices", validate_nfs_url, "h:/devices/x", 0, OK, NULL },
    { "nfs-url-no-colon", validate_nfs_url, "host/export", 0, BAD, "url" },
    { "nfs-url-no-host", validate_nfs_url, ":/export", 0, BAD, "url" },
    { "nfs-url-relative", validate_nfs_url, "host:export", 0, BAD, "url" },
    { "nfs-url-proc", validate_nfs_url, "host:/proc/x", 0, BAD, "url" },
    { "nfs-url-dev", validate_nfs_url, "host:/dev", 0, BAD, "url" },
    { "nfs-url-sys", validate_nfs_url, "host:/sys/kernel", 0, BAD, "url" },
    { "nfs-url-root", validate_nfs_url, "host:/", 0, BAD, "url" },
    { "nfs-url-dotdot", validate_nfs_url, "host:/a/../etc", 0, BAD, "url" },
    { "nfs-url-dotdot-end", validate_nfs_url, "host:/a/..", 0, BAD, "url" },
    { "nfs-url-double-slash", validate_nfs_url, "host://a", 0, BAD, "url" },
    { "nfs-url-semicolon", validate_nfs_url, "host:/a;reboot", 0, BAD,
      "url" },
    { "nfs-url-subshell", validate_nfs_url, "host:/a$(id)", 0, BAD, "url" },
    { "nfs-url-backtick", validate_nfs_url, "host:/a`id`", 0, BAD, "url" },
    { "nfs-url-pipe", validate_nfs_url, "host:/a|sh", 0, BAD, "url" },
    { "nfs-url-ampersand", validate_nfs_url, "host:/a&", 0, BAD, "url" },
    { "nfs-url-space", validate_nfs_url, "host:/a b", 0, BAD, "url" },
    { "nfs-url-quote", validate_nfs_url, "host:/a'b", 0, BAD, "url" },
    { "nfs-url-bad-host", validate_nfs_url, "bad_host:/x", 0, BAD, "url" },
    { "nfs-url-bad-ip", validate_nfs_url, "192.168.0.256:/x", 0, BAD,
      "url" },

    /* validate_storage_path */
    { "storage-path-ok", validate_storage_path, "/var/lib/kvmstack", 0, OK,
      NULL },
    { "storage-path-trailing-slash", validate_storage_path, "/srv/ps/", 0,
      OK, NULL },
    { "storage-path-process", validate_storage_path, "/process", 0, OK,
      NULL },
    { "storage-path-1024", validate_storage_path, "/abcdefg", 1024, OK,
      NULL },
    { "storage-path-1025", validate_storage_path, "/abcdefg", 1025, BAD,
      "path" },
    { "storage-path-relative", validate_storage_path, "var/lib", 0, BAD,
      "path" },
    { "storage-path-empty", validate_storage_path, "", 0, BAD, "path" },
    { "storage-path-root", validate_storage_path, "/", 0, BAD, "path" },
    { "storage-path-root-dot", validate_storage_path, "/.", 0, BAD, "path" },
    { "storage-path-dot-end", validate_storage_path, "/srv/.", 0, BAD,
      "path" },
    { "storage-path-dot", validate_storage_path, "/srv/./ps", 0, BAD,
      "path" },
    { "storage-path-dotdot", validate_storage_path, "/srv/../etc", 0, BAD,
      "path" },
    { "storage-path-dotdot-end", validate_storage_path, "/srv/..", 0, BAD,
      "path" },
    { "storage-path-double-slash", validate_storage_path, "/srv//ps", 0,
      BAD, "path" },
    { "storage-path-dev", validate_storage_path, "/dev/sda", 0, BAD,
      "path" },
    { "storage-path-proc", validate_storage_path, "/proc", 0, BAD, "path" },
    { "storage-path-sys-slash", validate_storage_path, "/sys/", 0, BAD,
      "path" },
    { "storage-path-newline", validate_storage_path, "/srv/a\nb", 0, BAD,
      "path" },
    { "storage-path-dollar", validate_storage_path, "/srv/$HOME", 0, BAD,
      "path" },
    { "storage-path-glob", validate_storage_path, "/srv/*", 0, BAD,
      "path" },

    /* validate_ifname */
    { "ifname-ok", validate_ifname, "eth0", 0, OK, NULL },
    { "ifname-vlan", validate_ifname, "eth0.100", 0, OK, NULL },
    { "ifname-symbols", validate_ifname, "br_eth0-1", 0, OK, NULL },
    { "ifname-15", validate_ifname, "i", 15, OK, NULL },
    { "ifname-16", validate_ifname, "i", 16, BAD, "physicalInterface" },
    { "ifname-empty", validate_ifname, "", 0, BAD, "physicalInterface" },
    { "ifname-space", validate_ifname, "eth 0", 0, BAD,
      "physicalInterface" },
    { "ifname-slash", validate_ifname, "eth0/1", 0, BAD,
      "physicalInterface" },
    { "ifname-colon", validate_ifname, "eth0:1", 0, BAD,
      "physicalInterface" },
    { "ifname-dot", validate_ifname, ".", 0, BAD, "physicalInterface" },
    { "ifname-dotdot", validate_ifname, "..", 0, BAD, "physicalInterface" },

    /* validate_hostname */
    { "hostname-ok", validate_hostname, "kvm-host1", 0, OK, NULL },
    { "hostname-dotted", validate_hostname, "a.b.example", 0, OK, NULL },
    { "hostname-label-63", validate_hostname, "h", 63, OK, NULL },
    { "hostname-label-64", validate_hostname, "h", 64, BAD, "hostname" },
    { "hostname-253", validate_hostname, "abcdefghi.", 253, OK, NULL },
    { "hostname-254", validate_hostname, "abcdefghi.", 254, BAD,
      "hostname" },
    { "hostname-empty", validate_hostname, "", 0, BAD, "hostname" },
    { "hostname-leading-dash", validate_hostname, "-host", 0, BAD,
      "hostname" },
    { "hostname-trailing-dash", validate_hostname, "host-", 0, BAD,
      "hostname" },
    { "hostname-underscore", validate_hostname, "kvm_host", 0, BAD,
      "hostname" },
    { "hostname-empty-label", validate_hostname, "a..b", 0, BAD,
      "hostname" },
    { "hostname-trailing-dot", validate_hostname, "host.", 0, BAD,
      "hostname" },
    { "hostname-leading-dot", validate_hostname, ".host", 0, BAD,
      "hostname" },

    /* validate_domain */
    { "domain-ok", validate_domain, "tutorials.zstack.org", 0, OK, NULL },
    { "domain-single-label", validate_domain, "local", 0, OK, NULL },
    { "domain-space", validate_domain, "zstack org", 0, BAD, "dnsDomain" },
    { "domain-empty", validate_domain, "", 0, BAD, "dnsDomain" },
    { "domain-empty-label", validate_domain, "zstack..org", 0, BAD,
      "dnsDomain" },

    /* validate_host_address */
    { "host-address-ip", validate_host_address, "192.168.0.1", 0, OK,
      NULL },
    { "host-address-name", validate_host_address, "bs.example.com", 0, OK,
      NULL },
    { "host-address-bad-ip", validate_host_address, "192.168.0.256", 0, BAD,
      "hostname" },
    { "host-address-short-ip", validate_host_address, "192.168.0", 0, BAD,
      "hostname" },
    { "host-address-leading-zero", validate_host_address, "10.0.0.01", 0,
      BAD, "hostname" },
    { "host-address-five-octets", validate_host_address, "1.2.3.4.5", 0,
      BAD, "hostname" },
    { "host-address-bad-name", validate_host_address, "-host", 0, BAD,
      "hostname" },
    { "host-address-empty", validate_host_address, "", 0, BAD,
      "hostname" },
};

static void
test_str_row(const void *aux)
{
    const struct str_row *row = aux;
    const char *field = row->expect_field ? row->expect_field : "field";
    char *input;
    int rc;

    if (row->len) {
        size_t plen = strlen(row->input);

        input = xmalloc(row->len + 1);
        for (size_t i = 0; i < row->len; i++) {
            input[i] = row->input[i % plen];
        }
        input[row->len] = '\0';
    } else {
        input = xstrdup(row->input);
    }
    rc = row->fn(field, input);
    free(input);
    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
    } else {
        CHECK_MSG(rc == -1, "accepted a bad value");
        CHECK_REFUSED(field);
    }
}

/* ---- IPv4 ---- */

struct ipv4_row {
    const char *id;
    const char *input;
    bool expect_ok;
    uint32_t addr;                      /* Expected when accepted. */
};

static const struct ipv4_row ipv4_rows[] = {
    { "ipv4-ok", "10.0.0.1", OK, 0x0a000001 },
    { "ipv4-zero", "0.0.0.0", OK, 0 },
    { "ipv4-max", "255.255.255.255", OK, 0xffffffff },
    { "ipv4-leading-zero", "10.0.0.01", BAD, 0 },
    { "ipv4-leading-zero-first", "010.0.0.1", BAD, 0 },
    { "ipv4-octet-256", "10.0.0.256", BAD, 0 },
    { "ipv4-four-digits", "10.0.0.1000", BAD, 0 },
    { "ipv4-missing-octet", "10.0.1", BAD, 0 },
    { "ipv4-empty-octet", "10..0.1", BAD, 0 },
    { "ipv4-trailing-dot", "10.0.0.1.", BAD, 0 },
    { "ipv4-trailing-junk", "10.0.0.1x", BAD, 0 },
    { "ipv4-trailing-space", "10.0.0.1 ", BAD, 0 },
    { "ipv4-leading-space", " 10.0.0.1", BAD, 0 },
    { "ipv4-negative", "10.0.0.-1", BAD, 0 },
    { "ipv4-empty", "", BAD, 0 },
};

/* Runs both ipv4_parse() and validate_ipv4() on the row. */
static void
test_ipv4_row(const void *aux)
{
    const struct ipv4_row *row = aux;
    uint32_t a = 0xdeadbeef;
    uint32_t b = 0xdeadbeef;
    bool ok = ipv4_parse(row->input, &a);
    int rc = validate_ipv4("ip", row->input, &b);

    CHECK_INT(ok, row->expect_ok);
    if (row->expect_ok) {
        CHECK_INT(a, row->addr);
        CHECK_INT(rc, 0);
        CHECK_INT(b, row->addr);
    } else {
        CHECK_INT(a, 0xdeadbeef);
        CHECK_INT(rc, -1);
        CHECK_REFUSED("ip");
    }
}

struct format_row {
    const char *id;
    uint32_t addr;
    const char *text;
};

static const struct format_row format_rows[] = {
    { "ipv4-format-zero", 0, "0.0.0.0" },
    { "ipv4-format-private", 0xc0a800d4, "192.168.0.212" },
    { "ipv4-format-max", 0xffffffff, "255.255.255.255" },
};

/* ipv4_format() and its round trip through ipv4_parse(). */
static void
test_format_row(const void *aux)
{
    const struct format_row *row = aux;
    char out[16];
    uint32_t back;

    ipv4_format(row->addr, out);
    CHECK_STR(out, row->text);
    CHECK(ipv4_parse(out, &back));
    CHECK_INT(back, row->addr);
}

static void
test_prefix_mask(const void *aux)
{
    (void) aux;
    CHECK_INT(ipv4_prefix_mask(0), 0);
    CHECK_INT(ipv4_prefix_mask(1), 0x80000000u);
    CHECK_INT(ipv4_prefix_mask(16), 0xffff0000u);
    CHECK_INT(ipv4_prefix_mask(24), 0xffffff00u);
    CHECK_INT(ipv4_prefix_mask(31), 0xfffffffeu);
    CHECK_INT(ipv4_prefix_mask(32), 0xffffffffu);
}

struct netmask_row {
    const char *id;
    const char *input;
    bool expect_ok;
    int prefix;                         /* Expected when accepted. */
};

static const struct netmask_row netmask_rows[] = {
    { "netmask-24", "255.255.255.0", OK, 24 },
    { "netmask-16", "255.255.0.0", OK, 16 },
    { "netmask-1", "128.0.0.0", OK, 1 },
    { "netmask-30", "255.255.255.252", OK, 30 },
    { "netmask-31", "255.255.255.254", BAD, 0 },
    { "netmask-32", "255.255.255.255", BAD, 0 },
    { "netmask-zero", "0.0.0.0", BAD, 0 },
    { "netmask-non-contiguous", "255.0.255.0", BAD, 0 },
    { "netmask-hole", "255.255.253.0", BAD, 0 },
    { "netmask-not-ip", "255.255.255", BAD, 0 },
    { "netmask-prefix-form", "24", BAD, 0 },
};

static void
test_netmask_row(const void *aux)
{
    const struct netmask_row *row = aux;
    int prefix = -1;
    int rc = validate_netmask("netmask", row->input, &prefix);

    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
        CHECK_INT(prefix, row->prefix);
    } else {
        CHECK_INT(rc, -1);
        CHECK_INT(prefix, -1);
        CHECK_REFUSED("netmask");
    }
}

struct cidr_row {
    const char *id;
    const char *input;
    bool expect_ok;
    uint32_t net;                       /* Expected when accepted. */
    int prefix;
};

static const struct cidr_row cidr_rows[] = {
    { "cidr-24", "10.0.0.0/24", OK, 0x0a000000, 24 },
    { "cidr-16", "172.20.0.0/16", OK, 0xac140000, 16 },
    { "cidr-32", "10.0.0.1/32", OK, 0x0a000001, 32 },
    { "cidr-0", "0.0.0.0/0", OK, 0, 0 },
    { "cidr-host-bits", "10.0.0.1/24", BAD, 0, 0 },
    { "cidr-host-bits-16", "172.20.1.0/16", BAD, 0, 0 },
    { "cidr-33", "10.0.0.0/33", BAD, 0, 0 },
    { "cidr-negative", "10.0.0.0/-1", BAD, 0, 0 },
    { "cidr-missing-prefix", "10.0.0.0", BAD, 0, 0 },
    { "cidr-empty-prefix", "10.0.0.0/", BAD, 0, 0 },
    { "cidr-leading-zero-prefix", "10.0.0.0/08", BAD, 0, 0 },
    { "cidr-prefix-junk", "10.0.0.0/24x", BAD, 0, 0 },
    { "cidr-bad-address", "10.0.0/24", BAD, 0, 0 },
    { "cidr-long-address", "1234567890123456/8", BAD, 0, 0 },
};

static void
test_cidr_row(const void *aux)
{
    const struct cidr_row *row = aux;
    uint32_t net = 0xdeadbeef;
    int prefix = -1;
    int rc = validate_cidr("networkCidr", row->input, &net, &prefix);

    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
        CHECK_INT(net, row->net);
        CHECK_INT(prefix, row->prefix);
    } else {
        CHECK_INT(rc, -1);
        CHECK_REFUSED("networkCidr");
    }
}

/* ---- IP ranges ---- */

struct range_row {
    const char *id;
    const char *start;
    const char *end;
    const char *netmask;
    const char *gateway;
    bool expect_ok;
    const char *expect_field;
    int prefix;                         /* Expected when accepted. */
};

static const struct range_row range_rows[] = {
    { "ip-range-ok", "10.0.0.10", "10.0.0.100", "255.255.255.0",
      "10.0.0.1", OK, NULL, 24 },
    { "ip-range-one-address", "10.0.0.5", "10.0.0.5", "255.255.255.0",
      "10.0.0.1", OK, NULL, 24 },
    { "ip-range-gateway-last", "10.0.0.1", "10.0.0.253", "255.255.255.0",
      "10.0.0.254", OK, NULL, 24 },
    { "ip-range-slash-16", "172.20.0.2", "172.20.255.254", "255.255.0.0",
      "172.20.0.1", OK, NULL, 16 },
    { "ip-range-slash-30", "10.0.0.1", "10.0.0.1", "255.255.255.252",
      "10.0.0.2", OK, NULL, 30 },
    { "ip-range-start-after-end", "10.0.0.100", "10.0.0.10",
      "255.255.255.0", "10.0.0.1", BAD, "startIp", 0 },
    { "ip-range-gateway-inside", "10.0.0.10", "10.0.0.100",
      "255.255.255.0", "10.0.0.50", BAD, "gateway", 0 },
    { "ip-range-gateway-is-start", "10.0.0.10", "10.0.0.100",
      "255.255.255.0", "10.0.0.10", BAD, "gateway", 0 },
    { "ip-range-gateway-outside-subnet", "10.0.0.10", "10.0.0.100",
      "255.255.255.0", "10.0.1.1", BAD, "gateway", 0 },
    { "ip-range-gateway-network", "10.0.0.10", "10.0.0.100",
      "255.255.255.0", "10.0.0.0", BAD, "gateway", 0 },
    { "ip-range-gateway-broadcast", "10.0.0.10", "10.0.0.100",
      "255.255.255.0", "10.0.0.255", BAD, "gateway", 0 },
    { "ip-range-start-network", "10.0.0.0", "10.0.0.100", "255.255.255.0",
      "10.0.0.254", BAD, "startIp", 0 },
    { "ip-range-start-broadcast", "10.0.0.255", "10.0.0.255",
      "255.255.255.0", "10.0.0.1", BAD, "startIp", 0 },
    { "ip-range-end-broadcast", "10.0.0.10", "10.0.0.255", "255.255.255.0",
      "10.0.0.1", BAD, "endIp", 0 },
    { "ip-range-end-other-subnet", "10.0.0.10", "10.0.1.10",
      "255.255.255.0", "10.0.0.1", BAD, "endIp", 0 },
    { "ip-range-bad-start", "10.0.0", "10.0.0.100", "255.255.255.0",
      "10.0.0.1", BAD, "startIp", 0 },
    { "ip-range-bad-end", "10.0.0.10", "10.0.0.1000", "255.255.255.0",
      "10.0.0.1", BAD, "endIp", 0 },
    { "ip-range-bad-netmask", "10.0.0.10", "10.0.0.100", "255.0.255.0",
      "10.0.0.1", BAD, "netmask", 0 },
    { "ip-range-netmask-31", "10.0.0.10", "10.0.0.11", "255.255.255.254",
      "10.0.0.1", BAD, "netmask", 0 },
    { "ip-range-bad-gateway", "10.0.0.10", "10.0.0.100", "255.255.255.0",
      "gw", BAD, "gateway", 0 },
};

static void
test_range_row(const void *aux)
{
    const struct range_row *row = aux;
    uint32_t s = 0;
    uint32_t e = 0;
    uint32_t want_s;
    uint32_t want_e;
    int prefix = -1;
    int rc = validate_ip_range(row->start, row->end, row->netmask,
                               row->gateway, &s, &e, &prefix);

    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
        CHECK(ipv4_parse(row->start, &want_s));
        CHECK(ipv4_parse(row->end, &want_e));
        CHECK_INT(s, want_s);
        CHECK_INT(e, want_e);
        CHECK_INT(prefix, row->prefix);
    } else {
        CHECK_INT(rc, -1);
        CHECK_REFUSED(row->expect_field);
    }
}

/* ---- Ports ---- */

/* -1 is "not given", as in validate_pf_ports(). */
struct pf_row {
    const char *id;
    int64_t in[4];                      /* vip start, end, private s, e. */
    bool expect_ok;
    const char *expect_field;
    int64_t out[4];                     /* The completed ports when ok. */
};

static const struct pf_row pf_rows[] = {
    { "pf-ports-one", { 22, -1, -1, -1 }, OK, NULL, { 22, 22, 22, 22 } },
    { "pf-ports-private-is-vip", { 100, 200, -1, -1 }, OK, NULL,
      { 100, 200, 100, 200 } },
    { "pf-ports-private-end-follows", { 100, 200, 1000, -1 }, OK, NULL,
      { 100, 200, 1000, 1100 } },
    { "pf-ports-one-to-other", { 2222, -1, 22, -1 }, OK, NULL,
      { 2222, 2222, 22, 22 } },
    { "pf-ports-all-given", { 1, 65535, 1, 65535 }, OK, NULL,
      { 1, 65535, 1, 65535 } },
    { "pf-ports-missing-start", { -1, 80, -1, -1 }, BAD, "vipPortStart",
      { 0 } },
    { "pf-ports-vip-start-0", { 0, -1, -1, -1 }, BAD, "vipPortStart",
      { 0 } },
    { "pf-ports-vip-start-65536", { 65536, -1, -1, -1 }, BAD,
      "vipPortStart", { 0 } },
    { "pf-ports-vip-end-65536", { 1, 65536, -1, -1 }, BAD, "vipPortEnd",
      { 0 } },
    { "pf-ports-private-start-0", { 80, -1, 0, -1 }, BAD,
      "privatePortStart", { 0 } },
    { "pf-ports-private-end-65536", { 80, -1, 80, 65536 }, BAD,
      "privatePortEnd", { 0 } },
    { "pf-ports-derived-end-too-high", { 65000, 65535, 65500, -1 }, BAD,
      "privatePortEnd", { 0 } },
    { "pf-ports-unequal-lengths", { 100, 200, 1000, 1050 }, BAD,
      "privatePortEnd", { 0 } },
    { "pf-ports-vip-end-below-start", { 200, 100, -1, -1 }, BAD,
      "vipPortEnd", { 0 } },
    { "pf-ports-private-end-below-start", { 10, 10, 20, 15 }, BAD,
      "privatePortEnd", { 0 } },
};

static void
test_pf_row(const void *aux)
{
    const struct pf_row *row = aux;
    int64_t p[4];
    int rc;

    memcpy(p, row->in, sizeof p);
    rc = validate_pf_ports(&p[0], &p[1], &p[2], &p[3]);
    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
        for (int i = 0; i < 4; i++) {
            CHECK_MSG(p[i] == row->out[i], "port %d is %lld, not %lld", i,
                      (long long) p[i], (long long) row->out[i]);
        }
    } else {
        CHECK_INT(rc, -1);
        CHECK_REFUSED(row->expect_field);
    }
}

struct overlap_row {
    const char *id;
    int64_t a1;                         /* First range. */
    int64_t a2;
    int64_t b1;                         /* Second range. */
    int64_t b2;
    bool expect;
};

static const struct overlap_row overlap_rows[] = {
    { "overlap-touching", 1, 5, 5, 10, true },
    { "overlap-adjacent", 1, 5, 6, 10, false },
    { "overlap-adjacent-reversed", 6, 10, 1, 5, false },
    { "overlap-contains", 1, 10, 3, 4, true },
    { "overlap-inside", 3, 4, 1, 10, true },
    { "overlap-same-port", 7, 7, 7, 7, true },
    { "overlap-apart", 1, 2, 100, 200, false },
};

static void
test_overlap_row(const void *aux)
{
    const struct overlap_row *row = aux;

    CHECK_INT(ranges_overlap(row->a1, row->a2, row->b1, row->b2),
              row->expect);
}

/* Validators of one integer: fn(field, value). */
struct int_row {
    const char *id;
    int (*fn)(const char *field, int64_t value);
    int64_t value;
    bool expect_ok;
    const char *expect_field;
};

static const struct int_row int_rows[] = {
    { "port-0", validate_port, 0, BAD, "port" },
    { "port-1", validate_port, 1, OK, NULL },
    { "port-65535", validate_port, 65535, OK, NULL },
    { "port-65536", validate_port, 65536, BAD, "port" },
    { "vlan-0", validate_vlan, 0, BAD, "vlan" },
    { "vlan-1", validate_vlan, 1, OK, NULL },
    { "vlan-4094", validate_vlan, 4094, OK, NULL },
    { "vlan-4095", validate_vlan, 4095, BAD, "vlan" },
    { "vlan-negative", validate_vlan, -1, BAD, "vlan" },
    { "vni-0", validate_vni, 0, BAD, "vni" },
    { "vni-1", validate_vni, 1, OK, NULL },
    { "vni-16777215", validate_vni, 16777215, OK, NULL },
    { "vni-16777216", validate_vni, 16777216, BAD, "vni" },
};

static void
test_int_row(const void *aux)
{
    const struct int_row *row = aux;
    const char *field = row->expect_field ? row->expect_field : "field";
    int rc = row->fn(field, row->value);

    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
    } else {
        CHECK_INT(rc, -1);
        CHECK_REFUSED(field);
    }
}

/* Adds one case per row of TABLE, run by FN. */
#define ADD_ROWS(TABLE, FN)                                           \
    for (size_t i_ = 0; i_ < ARRAY_SIZE(TABLE); i_++) {               \
        unit_add(FN, &(TABLE)[i_], "validate/%s", (TABLE)[i_].id);    \
    }

void
test_validate_register(void)
{
    ADD_ROWS(str_rows, test_str_row);
    ADD_ROWS(ipv4_rows, test_ipv4_row);
    ADD_ROWS(format_rows, test_format_row);
    unit_add(test_prefix_mask, NULL, "validate/ipv4-prefix-mask");
    ADD_ROWS(netmask_rows, test_netmask_row);
    ADD_ROWS(cidr_rows, test_cidr_row);
    ADD_ROWS(range_rows, test_range_row);
    ADD_ROWS(pf_rows, test_pf_row);
    ADD_ROWS(overlap_rows, test_overlap_row);
    ADD_ROWS(int_rows, test_int_row);
}
