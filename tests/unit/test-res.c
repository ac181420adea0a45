/* test-res.c: tests of the generic layer that need no server: parameter
 * checks against the real resource descriptors (res_check_params), IP
 * address management on a real SQLite inventory in a temporary directory
 * (l3_alloc_ip, l3_release_ip), password hashing (auth.c) and the date
 * form of the API (time_format).
 *
 * The database cases each get a fresh inventory: db_setup() on a file in a
 * new mkdtemp() directory ($TMPDIR or /tmp), then db_thread(), with a zone,
 * an L2 and two L3 networks inserted; the directory is removed afterwards,
 * also when the case fails. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "db.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/util.h"
#include "res.h"
#include "resources.h"
#include "validate.h"

#define OK true
#define BAD false

/* ---- res_check_params ---- */

#define UUID "\"0123456789abcdef0123456789abcdef\""
#define L2_VLAN "\"name\":\"l2\",\"zoneUuid\":" UUID ", " \
                "\"physicalInterface\":\"eth0\""
#define PF "\"name\":\"pf\",\"vipUuid\":" UUID ", \"protocolType\":\"TCP\""

struct params_row {
    const char *id;                     /* Case name below res/params-. */
    const struct resource *res;
    unsigned mask;                      /* F_CREATE or F_UPDATE. */
    const char *json;                   /* The request's params. */
    bool expect_ok;
    const char *expect_field;
};

static const struct params_row params_rows[] = {
    { "zone-ok", &zone_resource, F_CREATE,
      "{\"name\":\"zone1\",\"description\":\"first\"}", OK, NULL },
    { "zone-tags-ok", &zone_resource, F_CREATE,
      "{\"name\":\"zone1\",\"systemTags\":[\"a::b\"],\"userTags\":null,"
      "\"resourceUuid\":" UUID "}", OK, NULL },
    { "zone-unknown-field", &zone_resource, F_CREATE,
      "{\"name\":\"zone1\",\"color\":\"red\"}", BAD, "color" },
    { "zone-missing-name", &zone_resource, F_CREATE,
      "{\"description\":\"x\"}", BAD, "name" },
    { "zone-null-name", &zone_resource, F_CREATE, "{\"name\":null}", BAD,
      "name" },
    { "zone-name-not-string", &zone_resource, F_CREATE, "{\"name\":7}",
      BAD, "name" },
    { "zone-name-empty", &zone_resource, F_CREATE, "{\"name\":\"\"}", BAD,
      "name" },
    { "zone-name-padded", &zone_resource, F_CREATE, "{\"name\":\" z\"}",
      BAD, "name" },
    { "zone-state-on-create", &zone_resource, F_CREATE,
      "{\"name\":\"z\",\"state\":\"Enabled\"}", BAD, "state" },
    { "zone-system-tags-string", &zone_resource, F_CREATE,
      "{\"name\":\"z\",\"systemTags\":\"a\"}", BAD, "systemTags" },
    { "zone-system-tags-number", &zone_resource, F_CREATE,
      "{\"name\":\"z\",\"systemTags\":[\"a\",1]}", BAD, "systemTags" },
    { "zone-resource-uuid-bad", &zone_resource, F_CREATE,
      "{\"name\":\"z\",\"resourceUuid\":\"zone-1\"}", BAD, "resourceUuid" },
    { "zone-update-ok", &zone_resource, F_UPDATE, "{\"name\":\"zone2\"}",
      OK, NULL },
    { "zone-update-empty", &zone_resource, F_UPDATE, "{}", OK, NULL },
    { "zone-update-state", &zone_resource, F_UPDATE,
      "{\"state\":\"Disabled\"}", BAD, "state" },
    { "zone-update-resource-uuid", &zone_resource, F_UPDATE,
      "{\"resourceUuid\":" UUID "}", BAD, "resourceUuid" },

    { "l2-vlan-ok", &l2_vlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vlan\":10}", OK, NULL },
    { "l2-vlan-1", &l2_vlan_resource, F_CREATE, "{" L2_VLAN ",\"vlan\":1}",
      OK, NULL },
    { "l2-vlan-4094", &l2_vlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vlan\":4094}", OK, NULL },
    { "l2-vlan-0", &l2_vlan_resource, F_CREATE, "{" L2_VLAN ",\"vlan\":0}",
      BAD, "vlan" },
    { "l2-vlan-4095", &l2_vlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vlan\":4095}", BAD, "vlan" },
    { "l2-vlan-string", &l2_vlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vlan\":\"10\"}", BAD, "vlan" },
    { "l2-vlan-real", &l2_vlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vlan\":10.5}", BAD, "vlan" },
    { "l2-vlan-missing", &l2_vlan_resource, F_CREATE, "{" L2_VLAN "}", BAD,
      "vlan" },
    { "l2-vlan-vni", &l2_vlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vlan\":10,\"vni\":5}", BAD, "vni" },
    { "l2-vlan-zone-not-uuid", &l2_vlan_resource, F_CREATE,
      "{\"name\":\"l2\",\"zoneUuid\":\"zone1\",\"physicalInterface\":"
      "\"eth0\",\"vlan\":10}", BAD, "zoneUuid" },
    { "l2-vlan-bad-interface", &l2_vlan_resource, F_CREATE,
      "{\"name\":\"l2\",\"zoneUuid\":" UUID ",\"physicalInterface\":"
      "\"eth 0\",\"vlan\":10}", BAD, "physicalInterface" },
    { "l2-vxlan-max", &l2_vxlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vni\":16777215}", OK, NULL },
    { "l2-vxlan-too-big", &l2_vxlan_resource, F_CREATE,
      "{" L2_VLAN ",\"vni\":16777216}", BAD, "vni" },

    { "l3-ok", &l3_resource, F_CREATE,
      "{\"name\":\"pub\",\"l2NetworkUuid\":" UUID ",\"category\":\"Public\","
      "\"system\":true,\"dnsDomain\":\"zstack.org\",\"ipVersion\":4}", OK,
      NULL },
    { "l3-ip-version-6", &l3_resource, F_CREATE,
      "{\"name\":\"pub\",\"l2NetworkUuid\":" UUID ",\"ipVersion\":6}", BAD,
      "ipVersion" },
    { "l3-bad-category", &l3_resource, F_CREATE,
      "{\"name\":\"pub\",\"l2NetworkUuid\":" UUID ",\"category\":\"Dmz\"}",
      BAD, "category" },
    { "l3-system-not-bool", &l3_resource, F_CREATE,
      "{\"name\":\"pub\",\"l2NetworkUuid\":" UUID ",\"system\":\"yes\"}",
      BAD, "system" },
    { "l3-bad-domain", &l3_resource, F_CREATE,
      "{\"name\":\"pub\",\"l2NetworkUuid\":" UUID ",\"dnsDomain\":\"a b\"}",
      BAD, "dnsDomain" },

    { "pf-ok", &pf_rule_resource, F_CREATE,
      "{" PF ",\"vipPortStart\":22,\"allowedCidr\":\"10.0.0.0/8\"}", OK,
      NULL },
    { "pf-protocol-icmp", &pf_rule_resource, F_CREATE,
      "{\"name\":\"pf\",\"vipUuid\":" UUID ",\"vipPortStart\":22,"
      "\"protocolType\":\"ICMP\"}", BAD, "protocolType" },
    { "pf-protocol-lower-case", &pf_rule_resource, F_CREATE,
      "{\"name\":\"pf\",\"vipUuid\":" UUID ",\"vipPortStart\":22,"
      "\"protocolType\":\"tcp\"}", BAD, "protocolType" },
    { "pf-port-string", &pf_rule_resource, F_CREATE,
      "{" PF ",\"vipPortStart\":\"22\"}", BAD, "vipPortStart" },
    { "pf-missing-port", &pf_rule_resource, F_CREATE, "{" PF "}", BAD,
      "vipPortStart" },
    { "pf-missing-vip", &pf_rule_resource, F_CREATE,
      "{\"name\":\"pf\",\"vipPortStart\":22,\"protocolType\":\"UDP\"}", BAD,
      "vipUuid" },
    { "pf-cidr-host-bits", &pf_rule_resource, F_CREATE,
      "{" PF ",\"vipPortStart\":22,\"allowedCidr\":\"10.0.0.1/8\"}", BAD,
      "allowedCidr" },
    { "pf-nic-not-uuid", &pf_rule_resource, F_CREATE,
      "{" PF ",\"vipPortStart\":22,\"vmNicUuid\":\"nic0\"}", BAD,
      "vmNicUuid" },
    { "pf-guest-ip-read-only", &pf_rule_resource, F_CREATE,
      "{" PF ",\"vipPortStart\":22,\"guestIp\":\"10.0.0.5\"}", BAD,
      "guestIp" },

    { "offering-cpu-0", &instance_offering_resource, F_CREATE,
      "{\"name\":\"small\",\"cpuNum\":0,\"memorySize\":1073741824}", BAD,
      "cpuNum" },
    { "offering-memory-too-small", &instance_offering_resource, F_CREATE,
      "{\"name\":\"small\",\"cpuNum\":1,\"memorySize\":1024}", BAD,
      "memorySize" },
};

static void
test_params_row(const void *aux)
{
    const struct params_row *row = aux;
    json_error_t jerr;
    json_t *params = json_loads(row->json, 0, &jerr);
    int rc;

    CHECK_MSG(params, "bad JSON in the row: %s", jerr.text);
    rc = res_check_params(row->res, params, row->mask);
    json_decref(params);
    if (row->expect_ok) {
        CHECK_MSG(rc == 0, "refused: %s", error_last_message());
    } else {
        CHECK_MSG(rc == -1, "accepted bad params");
        CHECK_INT(error_last_problem(), PROBLEM_INVALID_ARGUMENT);
        CHECK_STR(error_last_field(), row->expect_field);
    }
}

/* ---- IP address management on a temporary inventory ---- */

struct fixture {
    char dir[256];                      /* mkdtemp() directory. */
    char path[300];                     /* The database file in 'dir'. */
    struct db *db;
    char l3[UUID_LEN + 1];              /* An L3 network without ranges. */
    char l3b[UUID_LEN + 1];             /* A second one, same L2. */
};

/* Adds range 'start'-'end' of 'l3' (in 10.0.0.0/24, gateway 10.0.0.1). */
static int
add_range(struct fixture *f, const char *l3, const char *start,
          const char *end)
{
    char uuid[UUID_LEN + 1];
    uint32_t s;
    uint32_t e;

    if (!ipv4_parse(start, &s) || !ipv4_parse(end, &e)) {
        return -1;
    }
    uuid_generate_hex(uuid);
    return db_exec(f->db, "INSERT INTO ipRange (uuid, name, createDate, "
                   "lastOpDate, l3NetworkUuid, startIp, endIp, netmask, "
                   "gateway, networkCidr, ipVersion, prefixLen, startInt, "
                   "endInt) VALUES (?1, 'r', 0, 0, ?2, ?3, ?4, "
                   "'255.255.255.0', '10.0.0.1', '10.0.0.0/24', 4, 24, ?5, "
                   "?6)", "ssssii", uuid, l3, start, end, (int64_t) s,
                   (int64_t) e) < 0 ? -1 : 0;
}

static int
fixture_setup(struct fixture *f)
{
    const char *tmp = getenv("TMPDIR");
    char zone[UUID_LEN + 1];
    char l2[UUID_LEN + 1];

    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/kvmstack-unit-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        f->dir[0] = '\0';
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/inventory.db", f->dir);
    db_thread_close();
    if (db_setup(f->path) < 0) {
        return -1;
    }
    f->db = db_thread();
    uuid_generate_hex(zone);
    uuid_generate_hex(l2);
    uuid_generate_hex(f->l3);
    uuid_generate_hex(f->l3b);
    if (db_exec(f->db, "INSERT INTO zone (uuid, name, createDate, "
                "lastOpDate, state, type) VALUES (?1, 'z', 0, 0, "
                "'Enabled', 'zstack')", "s", zone) < 0
        || db_exec(f->db, "INSERT INTO l2Network (uuid, name, createDate, "
                   "lastOpDate, zoneUuid, physicalInterface, type) VALUES "
                   "(?1, 'l2', 0, 0, ?2, 'eth0', 'L2NoVlanNetwork')", "ss",
                   l2, zone) < 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (db_exec(f->db, "INSERT INTO l3Network (uuid, name, createDate, "
                    "lastOpDate, l2NetworkUuid, zoneUuid, type, category, "
                    "system, state, ipVersion) VALUES (?1, 'l3', 0, 0, ?2, "
                    "?3, 'L3BasicNetwork', 'Public', 1, 'Enabled', 4)",
                    "sss", i ? f->l3b : f->l3, l2, zone) < 0) {
            return -1;
        }
    }
    return 0;
}

static void
fixture_teardown(struct fixture *f)
{
    static const char *const suffixes[] = { "", "-wal", "-shm",
                                            "-journal" };

    db_thread_close();
    if (!f->dir[0]) {
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        char *p = xasprintf("%s%s", f->path, suffixes[i]);

        unlink(p);
        free(p);
    }
    rmdir(f->dir);
}

/* The result of one allocation. */
struct alloc {
    int rc;
    char ip[16];
    char netmask[16];
    char gateway[16];
    char used[UUID_LEN + 1];
};

/* Allocates an address of 'l3' (exactly 'required' if not NULL) in its
 * own transaction, as the API does. */
static struct alloc
alloc(struct fixture *f, const char *l3, const char *required)
{
    struct alloc a;

    memset(&a, 0, sizeof a);
    error_reset();
    a.rc = db_begin(f->db);
    if (!a.rc) {
        a.rc = l3_alloc_ip(f->db, l3, required, "Vip", NULL, a.ip,
                           a.netmask, a.gateway, a.used);
    }
    if (!a.rc) {
        a.rc = db_commit(f->db);
    }
    if (a.rc) {
        db_rollback(f->db);
    }
    return a;
}

static int
release(struct fixture *f, const char *used)
{
    if (db_begin(f->db) < 0 || l3_release_ip(f->db, used) < 0
        || db_commit(f->db) < 0) {
        db_rollback(f->db);
        return -1;
    }
    return 0;
}

/* Checks that allocation 'A' (evaluated once) succeeded with address
 * 'IP'. */
#define CHECK_ALLOC(A, IP)                                            \
    do {                                                              \
        struct alloc ca_ = (A);                                       \
                                                                      \
        CHECK_MSG(ca_.rc == 0, "allocation failed: %s",               \
                  error_last_message());                              \
        CHECK_STR(ca_.ip, (IP));                                      \
    } while (0)

/* Checks that allocation 'A' (evaluated once) failed with 'PROBLEM' on
 * 'FIELD'. */
#define CHECK_ALLOC_FAILED(A, PROBLEM, FIELD)                         \
    do {                                                              \
        struct alloc ca_ = (A);                                       \
                                                                      \
        CHECK_MSG(ca_.rc == -1, "allocated %s", ca_.ip);              \
        CHECK_INT(error_last_problem(), (PROBLEM));                   \
        CHECK_STR(error_last_field(), (FIELD));                       \
    } while (0)

/* 300 allocations from a /24 range of 253 addresses: the addresses come
 * in order, none twice, then every further one is a conflict. */
static void
alloc_sequential(struct fixture *f)
{
    bool seen[256] = { false };
    int64_t n_used;

    CHECK_INT(add_range(f, f->l3, "10.0.0.2", "10.0.0.254"), 0);
    for (int i = 0; i < 300; i++) {
        struct alloc a = alloc(f, f->l3, NULL);
        char want[16];
        uint32_t addr;

        if (i >= 253) {
            CHECK_ALLOC_FAILED(a, PROBLEM_CONFLICT, NULL);
            continue;
        }
        snprintf(want, sizeof want, "10.0.0.%d", i + 2);
        CHECK_ALLOC(a, want);
        CHECK_STR(a.netmask, "255.255.255.0");
        CHECK_STR(a.gateway, "10.0.0.1");
        CHECK(uuid_is_valid(a.used));
        CHECK(ipv4_parse(a.ip, &addr));
        CHECK_MSG(!seen[addr & 0xff], "%s allocated twice", a.ip);
        seen[addr & 0xff] = true;
    }
    CHECK_INT(db_int(f->db, &n_used, -1, "SELECT count(*) FROM usedIp", ""),
              0);
    CHECK_INT(n_used, 253);
}

/* Ranges are used lowest first, whatever order they were added in. */
static void
alloc_two_ranges(struct fixture *f)
{
    static const char *const want[] = { "10.0.0.10", "10.0.0.11",
                                        "10.0.0.20", "10.0.0.21" };

    CHECK_INT(add_range(f, f->l3, "10.0.0.20", "10.0.0.21"), 0);
    CHECK_INT(add_range(f, f->l3, "10.0.0.10", "10.0.0.11"), 0);
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        struct alloc a = alloc(f, f->l3, NULL);

        CHECK_ALLOC(a, want[i]);
    }
    CHECK_ALLOC_FAILED(alloc(f, f->l3, NULL), PROBLEM_CONFLICT, NULL);
}

/* requiredIp: taken once, then a conflict; outside every range or not an
 * address, invalid; the lowest-free search skips it. */
static void
alloc_required(struct fixture *f)
{
    CHECK_INT(add_range(f, f->l3, "10.0.0.2", "10.0.0.4"), 0);
    CHECK_ALLOC(alloc(f, f->l3, "10.0.0.3"), "10.0.0.3");
    CHECK_ALLOC_FAILED(alloc(f, f->l3, "10.0.0.3"), PROBLEM_CONFLICT,
                       "requiredIp");
    CHECK_ALLOC_FAILED(alloc(f, f->l3, "10.0.0.5"),
                       PROBLEM_INVALID_ARGUMENT, "requiredIp");
    CHECK_ALLOC_FAILED(alloc(f, f->l3, "10.0.0.1"),
                       PROBLEM_INVALID_ARGUMENT, "requiredIp");
    CHECK_ALLOC_FAILED(alloc(f, f->l3, "10.0.1.3"),
                       PROBLEM_INVALID_ARGUMENT, "requiredIp");
    CHECK_ALLOC_FAILED(alloc(f, f->l3, "10.0.0.03"),
                       PROBLEM_INVALID_ARGUMENT, "requiredIp");
    CHECK_ALLOC(alloc(f, f->l3, NULL), "10.0.0.2");
    CHECK_ALLOC(alloc(f, f->l3, NULL), "10.0.0.4");
    CHECK_ALLOC_FAILED(alloc(f, f->l3, NULL), PROBLEM_CONFLICT, NULL);
}

/* A released address is free again, and is the next one handed out. */
static void
alloc_release(struct fixture *f)
{
    struct alloc a[3];

    CHECK_INT(add_range(f, f->l3, "10.0.0.2", "10.0.0.4"), 0);
    for (int i = 0; i < 3; i++) {
        a[i] = alloc(f, f->l3, NULL);
        CHECK_INT(a[i].rc, 0);
    }
    CHECK_ALLOC_FAILED(alloc(f, f->l3, NULL), PROBLEM_CONFLICT, NULL);
    CHECK_INT(release(f, a[1].used), 0);
    CHECK_ALLOC(alloc(f, f->l3, NULL), "10.0.0.3");
    CHECK_INT(release(f, a[2].used), 0);
    CHECK_ALLOC(alloc(f, f->l3, "10.0.0.4"), "10.0.0.4");
    CHECK_INT(release(f, NULL), 0);
    CHECK_INT(release(f, a[0].used), 0);
    CHECK_ALLOC(alloc(f, f->l3, NULL), "10.0.0.2");
}

/* An L3 network without ranges has nothing to give. */
static void
alloc_no_range(struct fixture *f)
{
    CHECK_ALLOC_FAILED(alloc(f, f->l3, NULL), PROBLEM_CONFLICT, NULL);
    CHECK_ALLOC_FAILED(alloc(f, f->l3, "10.0.0.2"), PROBLEM_CONFLICT, NULL);
}

/* Addresses are unique per L3 network, not globally. */
static void
alloc_per_l3(struct fixture *f)
{
    CHECK_INT(add_range(f, f->l3, "10.0.0.2", "10.0.0.3"), 0);
    CHECK_INT(add_range(f, f->l3b, "10.0.0.2", "10.0.0.3"), 0);
    CHECK_ALLOC(alloc(f, f->l3, NULL), "10.0.0.2");
    CHECK_ALLOC(alloc(f, f->l3b, NULL), "10.0.0.2");
    CHECK_ALLOC(alloc(f, f->l3b, "10.0.0.3"), "10.0.0.3");
    CHECK_ALLOC(alloc(f, f->l3, NULL), "10.0.0.3");
}

struct db_case {
    const char *id;
    void (*body)(struct fixture *f);
};

static const struct db_case db_cases[] = {
    { "alloc-ip-sequential", alloc_sequential },
    { "alloc-ip-two-ranges", alloc_two_ranges },
    { "alloc-ip-required", alloc_required },
    { "alloc-ip-release", alloc_release },
    { "alloc-ip-no-range", alloc_no_range },
    { "alloc-ip-per-l3", alloc_per_l3 },
};

static void
test_db_case(const void *aux)
{
    const struct db_case *c = aux;
    struct fixture f;

    if (fixture_setup(&f) < 0) {
        unit_fail(__FILE__, __LINE__, "fixture: %s", error_last_message());
    } else {
        c->body(&f);
    }
    fixture_teardown(&f);
}

/* ---- Passwords ---- */

static void
test_auth_hash(const void *aux)
{
    AUTOFREE char *h1 = auth_hash_password("password");
    AUTOFREE char *h2 = auth_hash_password("password");

    (void) aux;
    /* yescrypt, salted: one password, two different hashes. */
    CHECK_MSG(!strncmp(h1, "$y$", 3), "not yescrypt: '%s'", h1);
    CHECK(strcmp(h1, h2));
    CHECK(auth_verify_password("password", h1));
    CHECK(auth_verify_password("password", h2));
}

static void
test_auth_verify(const void *aux)
{
    AUTOFREE char *h = auth_hash_password("s3cret pass");
    char digest[129];
    char upper[129];
    char other[129];

    (void) aux;
    sha512_hex("s3cret pass", strlen("s3cret pass"), digest);
    for (int i = 0; i < 129; i++) {
        upper[i] = (char) (digest[i] >= 'a' && digest[i] <= 'f'
                           ? digest[i] - 'a' + 'A' : digest[i]);
    }
    sha512_hex("s3cret pasS", strlen("s3cret pasS"), other);
    CHECK(auth_verify_password("s3cret pass", h));
    CHECK(auth_verify_password(digest, h));
    CHECK(auth_verify_password(upper, h));
    CHECK(!auth_verify_password("s3cret pasS", h));
    CHECK(!auth_verify_password("s3cret pass ", h));
    CHECK(!auth_verify_password("", h));
    CHECK(!auth_verify_password(other, h));
    CHECK(!auth_verify_password(h, h));
    CHECK(!auth_verify_password("s3cret pass", ""));
    CHECK(!auth_verify_password("s3cret pass", "not a hash"));
}

/* ---- time_format ---- */

struct time_row {
    const char *id;
    int64_t msec;
    const char *text;
};

static const struct time_row time_rows[] = {
    { "time-epoch", 0, "Jan 1, 1970 12:00:00 AM" },
    { "time-one-am", 3600000, "Jan 1, 1970 1:00:00 AM" },
    { "time-noon", 43200000, "Jan 1, 1970 12:00:00 PM" },
    { "time-evening", 1700000000000, "Nov 14, 2023 10:13:20 PM" },
    { "time-msec-dropped", 1785000000999, "Jul 25, 2026 5:20:00 PM" },
    { "time-leap-day", 951782400000, "Feb 29, 2000 12:00:00 AM" },
    { "time-last-second", 4102444799000, "Dec 31, 2099 11:59:59 PM" },
};

static void
test_time_row(const void *aux)
{
    const struct time_row *row = aux;
    char buf[64];
    char small[8];

    CHECK(time_format(row->msec, buf, sizeof buf) == buf);
    CHECK_STR(buf, row->text);
    /* A short buffer gets a truncated, terminated prefix. */
    time_format(row->msec, small, sizeof small);
    CHECK_INT(strlen(small), sizeof small - 1);
    CHECK(!strncmp(small, row->text, sizeof small - 1));
}

void
test_res_register(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(params_rows); i++) {
        unit_add(test_params_row, &params_rows[i], "res/params-%s",
                 params_rows[i].id);
    }
    for (size_t i = 0; i < ARRAY_SIZE(db_cases); i++) {
        unit_add(test_db_case, &db_cases[i], "res/%s", db_cases[i].id);
    }
    unit_add(test_auth_hash, NULL, "res/auth-hash");
    unit_add(test_auth_verify, NULL, "res/auth-verify");
    for (size_t i = 0; i < ARRAY_SIZE(time_rows); i++) {
        unit_add(test_time_row, &time_rows[i], "res/%s", time_rows[i].id);
    }
}
