/* fw.c: kvmstack-vr's nftables table, on libnftables.
 *
 * DESIGN: one table, "table ip kvmstack_vr", whose chains never change
 * after it is built; everything that varies lives in sets and maps:
 *
 *   pf_tcp, pf_udp      VIP . port -> guest . port, one element per port,
 *                       so a shifted range (VIP 1000-1010 -> 2000-2010) is
 *                       11 exact elements and a lookup is one hash probe
 *                       whatever the number of rules
 *   pf_restrict_*       VIP . port of the rules that have an allowedCidr
 *   pf_allow_*          VIP . port . source-CIDR (interval set) they admit
 *   public_ifs,         interface names by role (SNAT out of the public
 *   private_ifs         side; forwarding from the private side)
 *   private_nets        the private networks (hairpin masquerade)
 *   snat                private CIDR -> public address (interval map)
 *
 * and the chains are:
 *   pf_filter   prerouting, before DNAT: on a restricted VIP port, sources
 *               outside the rule's CIDR get a TCP reset / ICMP
 *               port-unreachable (other ports are unaffected)
 *   pf_dnat     prerouting DNAT through the maps, for traffic from either
 *               side (so hairpin works)
 *   postrouting masquerade of DNATed private -> private traffic (hairpin:
 *               the reply must come back through the router), then SNAT
 *               through the snat map out of the public interfaces
 *   forward     policy drop: established/related, DNATed, and anything
 *               entering from a private interface
 *
 * The state committed last (every element of every set) is kept in
 * memory; a call diffs the desired state against it and sends one batch
 * with only the changed elements (deletes first, then adds: nft refuses to
 * "add" a key that exists with another value), as ONE transaction through
 * nft_run_cmd_from_buffer().  The kernel table is never listed.  The
 * first call, or a retry after the kernel refused a delta (the table was
 * changed behind our back), sends "add table; delete table; table {...};
 * add element..." which atomically replaces whatever was there.  Port
 * forwarding elements are kept in an open-addressing hash keyed by
 * (protocol, VIP, port), so diffing 30,000 rules is a few milliseconds; the
 * few other elements are kept as sorted strings.  A change of some rules
 * (fw_apply_rules(), for vr.apply's delta form) looks at those rules'
 * elements only: the same diff between their committed elements and their
 * new ones, then the committed hash is edited in place (backward-shift
 * deletion: no tombstones), so its cost does not grow with the table. */
#include "fw.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ct.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("vr.fw");

/* nft's error text in a reply is cut at this many bytes. */
#define FW_MAX_ERROR 4096

#define FW_NO_CIDR 0xff

/* One port of a port-forwarding rule: a pf_* map element, plus a
 * pf_restrict_* and a pf_allow_* element when the rule has an
 * allowedCidr. */
struct fw_pf {
    uint32_t vip;               /* Network byte order. */
    uint32_t gip;               /* Target address, network byte order. */
    uint32_t cidr;              /* Allowed sources (network), if any. */
    uint16_t vport;             /* VIP port. */
    uint16_t gport;             /* Target port. */
    uint8_t proto;              /* enum vr_proto; VR_PROTO_NONE: empty. */
    uint8_t cidr_len;           /* 0-32, or FW_NO_CIDR: unrestricted. */
};

/* Open-addressing (linear probing) hash of fw_pf by (proto, vip, vport);
 * insert and lookup only: each call builds a new one. */
struct fw_pf_table {
    struct fw_pf *slots;        /* 'cap' slots; proto 0 = empty. */
    size_t cap;                 /* Power of two, >= 2 * n. */
    size_t n;                   /* Entries. */
};

/* The small sets and maps, by X-macro: enum, nft name, nft type. */
#define FW_SETS                                                         \
    FW_SET(PUBLIC_IFS, "public_ifs", "set", "type ifname;")             \
    FW_SET(PRIVATE_IFS, "private_ifs", "set", "type ifname;")           \
    FW_SET(PRIVATE_NETS, "private_nets", "set",                         \
           "type ipv4_addr; flags interval;")                           \
    FW_SET(SNAT, "snat_map", "map",                                         \
           "type ipv4_addr : ipv4_addr; flags interval;")

enum fw_set {
#define FW_SET(ENUM, NAME, KIND, TYPE) FW_SET_##ENUM,
    FW_SETS
#undef FW_SET
    FW_SET_N
};

static const char *const fw_set_names[] = {
#define FW_SET(ENUM, NAME, KIND, TYPE) NAME,
    FW_SETS
#undef FW_SET
};

/* Elements of one small set or map, sorted by key. */
struct fw_strset {
    char **keys;                /* nft syntax: "\"eth0\"", "10.0.0.0/24". */
    char **vals;                /* Map values ("198.51.100.2"), or NULLs. */
    size_t n;
};

/* Everything in the table's sets and maps. */
struct fw_state {
    struct fw_pf_table pf;
    struct fw_strset sets[FW_SET_N];
};

struct fw {
    struct nft_ctx *nft;        /* One context for the daemon's life. */
    char *table;                /* Table name. */
    bool built;                 /* 'committed' is what the kernel has. */
    struct fw_state committed;  /* State of the last successful commit. */
    struct ct *ct;              /* Conntrack flushes (borrowed), or NULL. */
};

/* The table definition; %1$s is the table name.  Rules end their line
 * (nft 1.0.6 refuses a rule and '}' on one line). */
static const char fw_table_def[] =
    "table ip %1$s {\n"
    "    comment \"kvmstack-vr: port forwarding, SNAT; managed, do not "
    "edit\"\n"
    "    map pf_tcp { type ipv4_addr . inet_service : "
    "ipv4_addr . inet_service; }\n"
    "    map pf_udp { type ipv4_addr . inet_service : "
    "ipv4_addr . inet_service; }\n"
    "    set pf_restrict_tcp { type ipv4_addr . inet_service; }\n"
    "    set pf_restrict_udp { type ipv4_addr . inet_service; }\n"
    "    set pf_allow_tcp { type ipv4_addr . inet_service . ipv4_addr; "
    "flags interval; }\n"
    "    set pf_allow_udp { type ipv4_addr . inet_service . ipv4_addr; "
    "flags interval; }\n"
    "%2$s"
    "    chain pf_filter {\n"
    "        type filter hook prerouting priority mangle; policy accept;\n"
    "        ct direction original ip daddr . tcp dport @pf_restrict_tcp "
    "ip daddr . tcp dport . ip saddr != @pf_allow_tcp "
    "reject with tcp reset\n"
    "        ct direction original ip daddr . udp dport @pf_restrict_udp "
    "ip daddr . udp dport . ip saddr != @pf_allow_udp reject\n"
    "    }\n"
    "    chain pf_dnat {\n"
    "        type nat hook prerouting priority dstnat; policy accept;\n"
    "        dnat ip to ip daddr . tcp dport map @pf_tcp\n"
    "        dnat ip to ip daddr . udp dport map @pf_udp\n"
    "    }\n"
    "    chain postrouting {\n"
    "        type nat hook postrouting priority srcnat; policy accept;\n"
    "        ct status dnat ip saddr @private_nets ip daddr @private_nets "
    "masquerade\n"
    "        oifname @public_ifs snat ip to ip saddr map @snat_map\n"
    "    }\n"
    "    chain forward {\n"
    "        type filter hook forward priority filter; policy drop;\n"
    "        ct state established,related accept\n"
    "        ct status dnat accept\n"
    "        iifname @private_ifs accept\n"
    "    }\n"
    "}\n";

static int64_t
fw_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ */
/* Port-forwarding hash. */

static size_t
fw_pf_hash(uint8_t proto, uint32_t vip, uint16_t vport)
{
    uint64_t k = ((uint64_t) proto << 48) | ((uint64_t) vport << 32) | vip;

    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (size_t) k;
}

static void
fw_pf_table_init(struct fw_pf_table *t, size_t expect)
{
    t->cap = 16;
    while (t->cap < 2 * expect) {
        t->cap *= 2;
    }
    t->slots = xcalloc(t->cap, sizeof *t->slots);
    t->n = 0;
}

static void
fw_pf_table_destroy(struct fw_pf_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->n = 0;
}

/* The entry for (proto, vip, vport), or NULL. */
static const struct fw_pf *
fw_pf_find(const struct fw_pf_table *t, uint8_t proto, uint32_t vip,
           uint16_t vport)
{
    size_t i;

    if (!t->cap) {
        return NULL;
    }
    for (i = fw_pf_hash(proto, vip, vport) & (t->cap - 1);
         t->slots[i].proto; i = (i + 1) & (t->cap - 1)) {
        const struct fw_pf *p = &t->slots[i];

        if (p->proto == proto && p->vip == vip && p->vport == vport) {
            return p;
        }
    }
    return NULL;
}

/* Inserts 'e'; returns the existing entry with its key instead (and
 * inserts nothing) if there is one, else NULL. */
static const struct fw_pf *
fw_pf_insert(struct fw_pf_table *t, const struct fw_pf *e)
{
    size_t i;

    if (2 * (t->n + 1) > t->cap) {
        struct fw_pf_table bigger;

        fw_pf_table_init(&bigger, t->n + 1);
        for (size_t j = 0; j < t->cap; j++) {
            if (t->slots[j].proto) {
                fw_pf_insert(&bigger, &t->slots[j]);
            }
        }
        free(t->slots);
        *t = bigger;
    }
    for (i = fw_pf_hash(e->proto, e->vip, e->vport) & (t->cap - 1);
         t->slots[i].proto; i = (i + 1) & (t->cap - 1)) {
        const struct fw_pf *p = &t->slots[i];

        if (p->proto == e->proto && p->vip == e->vip
            && p->vport == e->vport) {
            return p;
        }
    }
    t->slots[i] = *e;
    t->n++;
    return NULL;
}

/* Removes the entry for (proto, vip, vport) if there: backward-shift
 * deletion, so that every other entry stays reachable from its home slot
 * without tombstones.  Returns whether it was there. */
static bool
fw_pf_remove(struct fw_pf_table *t, uint8_t proto, uint32_t vip,
             uint16_t vport)
{
    const struct fw_pf *p = fw_pf_find(t, proto, vip, vport);
    size_t mask = t->cap - 1;
    size_t hole;
    size_t j;

    if (!p) {
        return false;
    }
    hole = (size_t) (p - t->slots);
    memset(&t->slots[hole], 0, sizeof t->slots[hole]);
    t->n--;
    for (j = (hole + 1) & mask; t->slots[j].proto; j = (j + 1) & mask) {
        const struct fw_pf *e = &t->slots[j];
        size_t home = fw_pf_hash(e->proto, e->vip, e->vport) & mask;

        /* 'e' may move into the hole unless its home lies cyclically in
         * (hole, j]. */
        if (hole <= j ? (home <= hole || home > j)
                      : (home <= hole && home > j)) {
            t->slots[hole] = *e;
            memset(&t->slots[j], 0, sizeof t->slots[j]);
            hole = j;
        }
    }
    return true;
}

/* A deep copy of 't'. */
static void
fw_pf_table_copy(struct fw_pf_table *dst, const struct fw_pf_table *src)
{
    dst->cap = src->cap;
    dst->n = src->n;
    dst->slots = src->cap ? xmalloc(src->cap * sizeof *src->slots) : NULL;
    if (src->cap) {
        memcpy(dst->slots, src->slots, src->cap * sizeof *src->slots);
    }
}

/* ------------------------------------------------------------------ */
/* Small sorted string sets. */

static void
fw_strset_destroy(struct fw_strset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i]);
        free(s->vals[i]);
    }
    free(s->keys);
    free(s->vals);
    memset(s, 0, sizeof *s);
}

/* Adds 'key' (-> 'val', or NULL) unless present; takes both.  Returns -1
 * with conflict reported when 'key' is there with another value. */
static int
fw_strset_add(struct fw_strset *s, char *key, char *val)
{
    size_t i;

    for (i = 0; i < s->n && strcmp(s->keys[i], key) < 0; i++) {
        continue;
    }
    if (i < s->n && !strcmp(s->keys[i], key)) {
        bool same = (!val && !s->vals[i])
                    || (val && s->vals[i] && !strcmp(val, s->vals[i]));

        if (!same) {
            error_report(PROBLEM_CONFLICT,
                         "'%s' is mapped to both '%s' and '%s'", key,
                         s->vals[i], val);
        }
        free(key);
        free(val);
        return same ? 0 : -1;
    }
    s->keys = xrealloc(s->keys, (s->n + 1) * sizeof *s->keys);
    s->vals = xrealloc(s->vals, (s->n + 1) * sizeof *s->vals);
    memmove(&s->keys[i + 1], &s->keys[i], (s->n - i) * sizeof *s->keys);
    memmove(&s->vals[i + 1], &s->vals[i], (s->n - i) * sizeof *s->vals);
    s->keys[i] = key;
    s->vals[i] = val;
    s->n++;
    return 0;
}

/* The index of 'key' in 's', or -1. */
static long
fw_strset_find(const struct fw_strset *s, const char *key)
{
    size_t lo = 0;
    size_t hi = s->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->keys[mid], key);

        if (c == 0) {
            return (long) mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

static void
fw_state_destroy(struct fw_state *st)
{
    fw_pf_table_destroy(&st->pf);
    for (int i = 0; i < FW_SET_N; i++) {
        fw_strset_destroy(&st->sets[i]);
    }
}

/* A deep copy of 'src'. */
static void
fw_state_copy(struct fw_state *dst, const struct fw_state *src)
{
    memset(dst, 0, sizeof *dst);
    fw_pf_table_copy(&dst->pf, &src->pf);
    for (int s = 0; s < FW_SET_N; s++) {
        const struct fw_strset *ss = &src->sets[s];
        struct fw_strset *ds = &dst->sets[s];

        ds->n = ss->n;
        ds->keys = xcalloc(ss->n + 1, sizeof *ds->keys);
        ds->vals = xcalloc(ss->n + 1, sizeof *ds->vals);
        for (size_t i = 0; i < ss->n; i++) {
            ds->keys[i] = xstrdup(ss->keys[i]);
            ds->vals[i] = ss->vals[i] ? xstrdup(ss->vals[i]) : NULL;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Desired state from a configuration. */

static char *
fw_addr_str(struct in_addr a)
{
    char buf[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return xstrdup(buf);
}

static char *
fw_cidr_str(const struct vr_cidr *c)
{
    char buf[INET_ADDRSTRLEN + 4];

    return xstrdup(vr_cidr_format(c, buf));
}

/* The element of VIP port 'p' of rule 'r'. */
static struct fw_pf
fw_pf_of(const struct vr_pf_rule *r, unsigned p)
{
    struct fw_pf e = {
        .vip = r->vip.s_addr,
        .gip = r->guest_ip.s_addr,
        .cidr = r->has_cidr ? r->allowed.net.s_addr : 0,
        .vport = (uint16_t) p,
        .gport = (uint16_t) (r->guest_port[0] + (p - r->vip_port[0])),
        .proto = (uint8_t) r->proto,
        .cidr_len = r->has_cidr ? r->allowed.len : FW_NO_CIDR,
    };

    return e;
}

/* Reports that port 'p' of rule 'r' is claimed by another rule too. */
static void
fw_pf_conflict(const struct vr_pf_rule *r, unsigned p)
{
    char vip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &r->vip, vip, sizeof vip);
    error_report(PROBLEM_CONFLICT, "port %u/%s of VIP '%s' is forwarded by "
                 "two rules (one is '%s')", p, vr_proto_name(r->proto), vip,
                 r->uuid ? r->uuid : "?");
}

/* Fills 'st' from 'cfg'.  Returns 0, or -1 with conflict reported (two
 * rules claim one port, two SNAT entries one source). */
static int
fw_state_build(struct fw_state *st, const struct vr_config *cfg)
{
    size_t ports = 0;

    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        ports += (size_t) (cfg->rules[i].vip_port[1]
                           - cfg->rules[i].vip_port[0]) + 1;
    }
    fw_pf_table_init(&st->pf, ports);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct vr_pf_rule *r = &cfg->rules[i];

        for (unsigned p = r->vip_port[0]; p <= r->vip_port[1]; p++) {
            struct fw_pf e = fw_pf_of(r, p);

            if (fw_pf_insert(&st->pf, &e)) {
                fw_pf_conflict(r, p);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        const struct vr_iface *ifc = &cfg->ifaces[i];
        enum fw_set set = ifc->role == VR_ROLE_PUBLIC ? FW_SET_PUBLIC_IFS
                                                      : FW_SET_PRIVATE_IFS;

        if (!ALWAYS(ifc->ifname[0])) {
            continue;
        }
        fw_strset_add(&st->sets[set], xasprintf("\"%s\"", ifc->ifname),
                      NULL);
        if (ifc->role == VR_ROLE_PRIVATE) {
            struct vr_cidr net = { ifc->addr, ifc->prefix };

            net.net.s_addr &= ifc->prefix
                              ? htonl(~0u << (32 - ifc->prefix)) : 0;
            fw_strset_add(&st->sets[FW_SET_PRIVATE_NETS], fw_cidr_str(&net),
                          NULL);
        }
    }
    for (size_t i = 0; i < cfg->n_snat; i++) {
        if (fw_strset_add(&st->sets[FW_SET_SNAT],
                          fw_cidr_str(&cfg->snat[i].source),
                          fw_addr_str(cfg->snat[i].to)) < 0) {
            error_prefix("snat: ");
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Batch rendering. */

/* Element texts of one port, appended to the open lists. */
static void
fw_pf_add_key(struct sbuf *b, const struct fw_pf *e)
{
    char vip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &e->vip, vip, sizeof vip);
    sbuf_addf(b, "    %s . %u,\n", vip, e->vport);
}

static void
fw_pf_add_map(struct sbuf *b, const struct fw_pf *e)
{
    char vip[INET_ADDRSTRLEN];
    char gip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &e->vip, vip, sizeof vip);
    inet_ntop(AF_INET, &e->gip, gip, sizeof gip);
    sbuf_addf(b, "    %s . %u : %s . %u,\n", vip, e->vport, gip, e->gport);
}

static void
fw_pf_add_allow(struct sbuf *b, const struct fw_pf *e)
{
    char vip[INET_ADDRSTRLEN];
    char net[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &e->vip, vip, sizeof vip);
    inet_ntop(AF_INET, &e->cidr, net, sizeof net);
    sbuf_addf(b, "    %s . %u . %s/%u,\n", vip, e->vport, net, e->cidr_len);
}

/* The element lists of one batch: [proto][what] for the pf sets. */
enum fw_list {
    FW_LIST_MAP,
    FW_LIST_RESTRICT,
    FW_LIST_ALLOW,
    FW_LIST_N
};

static const char *const fw_list_prefix[FW_LIST_N] = {
    "pf_", "pf_restrict_", "pf_allow_",
};

struct fw_batch {
    struct sbuf del[VR_PROTO_N][FW_LIST_N];
    struct sbuf add[VR_PROTO_N][FW_LIST_N];
    struct sbuf set_del[FW_SET_N];
    struct sbuf set_add[FW_SET_N];
    size_t ops;
};

static void
fw_batch_init(struct fw_batch *b)
{
    memset(b, 0, sizeof *b);
    for (int p = 0; p < VR_PROTO_N; p++) {
        for (int l = 0; l < FW_LIST_N; l++) {
            sbuf_init(&b->del[p][l]);
            sbuf_init(&b->add[p][l]);
        }
    }
    for (int s = 0; s < FW_SET_N; s++) {
        sbuf_init(&b->set_del[s]);
        sbuf_init(&b->set_add[s]);
    }
}

static void
fw_batch_destroy(struct fw_batch *b)
{
    for (int p = 0; p < VR_PROTO_N; p++) {
        for (int l = 0; l < FW_LIST_N; l++) {
            sbuf_destroy(&b->del[p][l]);
            sbuf_destroy(&b->add[p][l]);
        }
    }
    for (int s = 0; s < FW_SET_N; s++) {
        sbuf_destroy(&b->set_del[s]);
        sbuf_destroy(&b->set_add[s]);
    }
}

/* Appends "VERB element ip TABLE NAME {\n<elements>}\n" to 'out' when
 * 'elems' is not empty. */
static void
fw_emit(struct sbuf *out, const char *verb, const char *table,
        const char *prefix, const char *name, const struct sbuf *elems)
{
    if (!elems->len) {
        return;
    }
    sbuf_addf(out, "%s element ip %s %s%s {\n", verb, table, prefix, name);
    sbuf_add(out, elems->s, elems->len);
    sbuf_addstr(out, "}\n");
}

/* Appends the batch's commands to 'out': all deletes, then all adds. */
static void
fw_batch_render(const struct fw_batch *b, const char *table,
                struct sbuf *out)
{
    for (int p = 1; p < VR_PROTO_N; p++) {
        for (int l = 0; l < FW_LIST_N; l++) {
            fw_emit(out, "delete", table, fw_list_prefix[l],
                    vr_proto_name((enum vr_proto) p), &b->del[p][l]);
        }
    }
    for (int s = 0; s < FW_SET_N; s++) {
        fw_emit(out, "delete", table, "", fw_set_names[s], &b->set_del[s]);
    }
    for (int s = 0; s < FW_SET_N; s++) {
        fw_emit(out, "add", table, "", fw_set_names[s], &b->set_add[s]);
    }
    for (int p = 1; p < VR_PROTO_N; p++) {
        for (int l = 0; l < FW_LIST_N; l++) {
            fw_emit(out, "add", table, fw_list_prefix[l],
                    vr_proto_name((enum vr_proto) p), &b->add[p][l]);
        }
    }
}

/* Adds every element of 'e' to the batch's add lists. */
static void
fw_batch_add_pf(struct fw_batch *b, const struct fw_pf *e)
{
    fw_pf_add_map(&b->add[e->proto][FW_LIST_MAP], e);
    b->ops++;
    if (e->cidr_len != FW_NO_CIDR) {
        fw_pf_add_key(&b->add[e->proto][FW_LIST_RESTRICT], e);
        fw_pf_add_allow(&b->add[e->proto][FW_LIST_ALLOW], e);
        b->ops += 2;
    }
}

static void
fw_batch_del_pf(struct fw_batch *b, const struct fw_pf *e)
{
    fw_pf_add_key(&b->del[e->proto][FW_LIST_MAP], e);
    b->ops++;
    if (e->cidr_len != FW_NO_CIDR) {
        fw_pf_add_key(&b->del[e->proto][FW_LIST_RESTRICT], e);
        fw_pf_add_allow(&b->del[e->proto][FW_LIST_ALLOW], e);
        b->ops += 2;
    }
}

static void
fw_set_elem(struct sbuf *b, const struct fw_strset *s, size_t i)
{
    if (s->vals[i]) {
        sbuf_addf(b, "    %s : %s,\n", s->keys[i], s->vals[i]);
    } else {
        sbuf_addf(b, "    %s,\n", s->keys[i]);
    }
}

/* Fills 'b' with every element of 'st' (a full build). */
static void
fw_batch_full(struct fw_batch *b, const struct fw_state *st)
{
    for (size_t i = 0; i < st->pf.cap; i++) {
        if (st->pf.slots[i].proto) {
            fw_batch_add_pf(b, &st->pf.slots[i]);
        }
    }
    for (int s = 0; s < FW_SET_N; s++) {
        for (size_t i = 0; i < st->sets[s].n; i++) {
            fw_set_elem(&b->set_add[s], &st->sets[s], i);
            b->ops++;
        }
    }
}

/* Fills 'b' with the difference from 'old' to 'new', and 'flush' with the
 * ports whose conntrack entries must go (removed or changed). */
static void
fw_batch_delta(struct fw_batch *b, const struct fw_state *old,
               const struct fw_state *new, struct fw_pf_table *flush)
{
    for (size_t i = 0; i < old->pf.cap; i++) {
        const struct fw_pf *o = &old->pf.slots[i];
        const struct fw_pf *n;

        if (!o->proto) {
            continue;
        }
        n = fw_pf_find(&new->pf, o->proto, o->vip, o->vport);
        if (!n) {
            fw_batch_del_pf(b, o);
            fw_pf_insert(flush, o);
            continue;
        }
        if (n->gip == o->gip && n->gport == o->gport
            && n->cidr_len == o->cidr_len && n->cidr == o->cidr) {
            continue;
        }
        fw_pf_insert(flush, o);
        if (n->gip != o->gip || n->gport != o->gport) {
            fw_pf_add_key(&b->del[o->proto][FW_LIST_MAP], o);
            fw_pf_add_map(&b->add[n->proto][FW_LIST_MAP], n);
            b->ops += 2;
        }
        if (n->cidr_len != o->cidr_len || n->cidr != o->cidr) {
            if (o->cidr_len != FW_NO_CIDR) {
                fw_pf_add_allow(&b->del[o->proto][FW_LIST_ALLOW], o);
                b->ops++;
            }
            if (n->cidr_len != FW_NO_CIDR) {
                fw_pf_add_allow(&b->add[n->proto][FW_LIST_ALLOW], n);
                b->ops++;
            }
            if (o->cidr_len == FW_NO_CIDR) {
                fw_pf_add_key(&b->add[n->proto][FW_LIST_RESTRICT], n);
                b->ops++;
            } else if (n->cidr_len == FW_NO_CIDR) {
                fw_pf_add_key(&b->del[o->proto][FW_LIST_RESTRICT], o);
                b->ops++;
            }
        }
    }
    for (size_t i = 0; i < new->pf.cap; i++) {
        const struct fw_pf *n = &new->pf.slots[i];

        if (n->proto && !fw_pf_find(&old->pf, n->proto, n->vip, n->vport)) {
            fw_batch_add_pf(b, n);
        }
    }
    for (int s = 0; s < FW_SET_N; s++) {
        const struct fw_strset *os = &old->sets[s];
        const struct fw_strset *ns = &new->sets[s];

        for (size_t i = 0; i < os->n; i++) {
            long j = fw_strset_find(ns, os->keys[i]);

            if (j < 0 || (os->vals[i]
                          && strcmp(os->vals[i], ns->vals[j]))) {
                sbuf_addf(&b->set_del[s], "    %s,\n", os->keys[i]);
                b->ops++;
            }
        }
        for (size_t i = 0; i < ns->n; i++) {
            long j = fw_strset_find(os, ns->keys[i]);

            if (j < 0 || (ns->vals[i]
                          && strcmp(ns->vals[i], os->vals[j]))) {
                fw_set_elem(&b->set_add[s], ns, i);
                b->ops++;
            }
        }
    }
}

/* The text of a full build of 'st': replaces the table atomically. */
static char *
fw_full_text(const char *table, const struct fw_state *st, size_t *ops)
{
    struct fw_batch b;
    struct sbuf out;
    struct sbuf sets;

    sbuf_init(&sets);
    for (int s = 0; s < FW_SET_N; s++) {
        static const char *const kinds[] = {
#define FW_SET(ENUM, NAME, KIND, TYPE) KIND,
            FW_SETS
#undef FW_SET
        };
        static const char *const types[] = {
#define FW_SET(ENUM, NAME, KIND, TYPE) TYPE,
            FW_SETS
#undef FW_SET
        };

        sbuf_addf(&sets, "    %s %s { %s }\n", kinds[s], fw_set_names[s],
                  types[s]);
    }
    sbuf_init(&out);
    sbuf_addf(&out, "add table ip %s\ndelete table ip %s\n", table, table);
    sbuf_addf(&out, fw_table_def, table, sets.s);
    sbuf_destroy(&sets);
    fw_batch_init(&b);
    fw_batch_full(&b, st);
    fw_batch_render(&b, table, &out);
    *ops = b.ops;
    fw_batch_destroy(&b);
    return sbuf_take(&out);
}

char *
fw_render_full(const char *table, const struct vr_config *cfg)
{
    struct fw_state st;
    size_t ops;
    char *text;

    if (fw_state_build(&st, cfg) < 0) {
        fw_state_destroy(&st);
        return NULL;
    }
    text = fw_full_text(table ? table : FW_TABLE, &st, &ops);
    fw_state_destroy(&st);
    return text;
}

/* ------------------------------------------------------------------ */
/* libnftables. */

struct fw *
fw_new(const char *table, struct ct *ct)
{
    struct fw *fw;
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);

    if (!nft) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "libnftables: cannot create a context");
        return NULL;
    }
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    fw = xcalloc(1, sizeof *fw);
    fw->nft = nft;
    fw->table = xstrdup(table ? table : FW_TABLE);
    fw->ct = ct;
    return fw;
}

void
fw_free(struct fw *fw)
{
    if (!fw) {
        return;
    }
    nft_ctx_free(fw->nft);
    fw_state_destroy(&fw->committed);
    free(fw->table);
    free(fw);
}

/* Runs 'batch' as one transaction.  Returns 0, or -1 with nft's error
 * text reported (internal-error; cut at FW_MAX_ERROR bytes). */
static int
fw_run(struct fw *fw, const char *batch, int64_t *usec)
{
    int64_t t0 = fw_usec();
    int rc = nft_run_cmd_from_buffer(fw->nft, batch);
    const char *err = nft_ctx_get_error_buffer(fw->nft);

    *usec += fw_usec() - t0;
    (void) nft_ctx_get_output_buffer(fw->nft);
    if (rc != 0) {
        size_t len = err ? strlen(err) : 0;

        while (len && (err[len - 1] == '\n' || err[len - 1] == ' ')) {
            len--;
        }
        if (len > FW_MAX_ERROR) {
            len = FW_MAX_ERROR;
        }
        error_report(PROBLEM_INTERNAL_ERROR, "nft: %.*s", (int) len,
                     len ? err : "transaction failed");
        return -1;
    }
    return 0;
}

/* The tables a full build's ct_flush() predicate looks at. */
struct fw_stale_full_aux {
    const struct fw_pf_table *old;      /* Committed before (may be empty). */
    const struct fw_pf_table *new;      /* Just committed. */
};

/* The ct_flush() predicate of a full build: entries of a port that now
 * leads elsewhere, or that was ours and is gone.  Flows of ports never
 * ours are left alone (after a restart, 'old' is empty: only re-targeted
 * ports are flushed). */
static bool
fw_stale_full(const struct ct_entry *e, void *aux_)
{
    const struct fw_stale_full_aux *aux = aux_;
    uint8_t proto = e->l4proto == IPPROTO_TCP ? VR_PROTO_TCP
                    : e->l4proto == IPPROTO_UDP ? VR_PROTO_UDP
                    : VR_PROTO_NONE;
    const struct fw_pf *p;

    if (proto == VR_PROTO_NONE) {
        return false;
    }
    p = fw_pf_find(aux->new, proto, e->orig_dst, e->orig_dport);
    if (!p) {
        return fw_pf_find(aux->old, proto, e->orig_dst, e->orig_dport)
               != NULL;
    }
    return p->gip != e->reply_src || p->gport != e->reply_sport;
}

/* The ct_flush() predicate of a delta: entries of the changed ports. */
static bool
fw_stale_delta(const struct ct_entry *e, void *aux)
{
    const struct fw_pf_table *t = aux;
    uint8_t proto = e->l4proto == IPPROTO_TCP ? VR_PROTO_TCP
                    : e->l4proto == IPPROTO_UDP ? VR_PROTO_UDP
                    : VR_PROTO_NONE;

    return proto != VR_PROTO_NONE
           && fw_pf_find(t, proto, e->orig_dst, e->orig_dport);
}

/* Flushes the conntrack entries that a commit made stale: a full build's
 * (every port of 'old' and 'new': fw_stale_full) or a delta's (the ports
 * in 'flush': fw_stale_delta, looked up by port).  Fills the ct_* stats;
 * a failure is logged, not returned (the ruleset is committed). */
static void
fw_flush_ct(struct fw *fw, bool full, const struct fw_pf_table *old,
            const struct fw_pf_table *new, const struct fw_pf_table *flush,
            struct fw_stats *stats)
{
    struct fw_stale_full_aux aux = { old, new };
    struct ct_key *keys = NULL;
    size_t n_keys = 0;
    struct ct_result res;
    int64_t t0 = fw_usec();
    int r;

    if (!full) {
        keys = xcalloc(flush->n + 1, sizeof *keys);
        for (size_t i = 0; i < flush->cap; i++) {
            const struct fw_pf *p = &flush->slots[i];

            if (p->proto) {
                keys[n_keys].l4proto = p->proto == VR_PROTO_TCP
                                       ? IPPROTO_TCP : IPPROTO_UDP;
                keys[n_keys].dst = p->vip;
                keys[n_keys].dport = p->vport;
                n_keys++;
            }
        }
    }
    r = ct_flush(fw->ct, keys, n_keys, full ? fw_stale_full : fw_stale_delta,
                 full ? (void *) &aux : (void *) flush, &res);
    stats->ct_usec = fw_usec() - t0;
    stats->ct_flushed = res.deleted;
    stats->ct_dump = res.dumped;
    if (r < 0) {
        LOG_WARN("table %s: %s", fw->table, error_last_message());
        error_reset();
    }
    free(keys);
}

/* Applies the change from 'from' to 'to' as one batch of element changes,
 * collecting in 'flush' the ports whose conntrack entries must go.
 * Returns true when the kernel has it (or nothing changed), false when nft
 * refused it (logged): the caller then rebuilds the whole table.  The
 * batch applied is left in '*batch' (caller frees), its size in '*ops'. */
static bool
fw_run_delta(struct fw *fw, const struct fw_state *from,
             const struct fw_state *to, struct fw_pf_table *flush,
             struct fw_stats *stats, char **batch, size_t *ops)
{
    struct fw_batch b;

    fw_pf_table_init(flush, 0);
    fw_batch_init(&b);
    fw_batch_delta(&b, from, to, flush);
    *ops = b.ops;
    if (*ops) {
        struct sbuf text;

        sbuf_init(&text);
        fw_batch_render(&b, fw->table, &text);
        *batch = sbuf_take(&text);
    }
    fw_batch_destroy(&b);
    if (*ops && fw_run(fw, *batch, &stats->nft_usec) < 0) {
        LOG_WARN("table %s: delta of %zu elements refused (%s); "
                 "rebuilding the whole table", fw->table, *ops,
                 error_last_message());
        free(*batch);
        *batch = NULL;
        return false;
    }
    return true;
}

/* Records in 'stats' what was committed and logs it. */
static void
fw_committed(struct fw *fw, struct fw_stats *stats, bool full, size_t ops,
             const char *batch, const char *what)
{
    stats->ops = ops;
    stats->full = full;
    stats->batch_bytes = batch ? strlen(batch) : 0;
    if (ops) {
        LOG_INFO("table %s: %s of %zu elements committed in %.3f ms",
                 fw->table, full ? "full build" : what, ops,
                 stats->nft_usec / 1000.0);
    }
}

int
fw_apply(struct fw *fw, const struct vr_config *cfg, struct fw_stats *stats)
{
    struct fw_state desired;
    struct fw_pf_table flush;
    char *batch = NULL;
    bool full = !fw->built;
    size_t ops = 0;
    int rc = 0;

    memset(stats, 0, sizeof *stats);
    memset(&flush, 0, sizeof flush);
    if (fw_state_build(&desired, cfg) < 0) {
        fw_state_destroy(&desired);
        return -1;
    }
    if (!full && !fw_run_delta(fw, &fw->committed, &desired, &flush, stats,
                               &batch, &ops)) {
        full = true;
    }
    if (full) {
        batch = fw_full_text(fw->table, &desired, &ops);
        LOG_DBG("nft batch (full, %zu elements):\n%.2000s", ops, batch);
        if (fw_run(fw, batch, &stats->nft_usec) < 0) {
            rc = -1;
            goto out;
        }
    }
    fw_committed(fw, stats, full, ops, batch, "delta");

    /* Committed: from now on the kernel has 'desired'. */
    if (full || flush.n) {
        fw_flush_ct(fw, full, &fw->committed.pf, &desired.pf, &flush,
                    stats);
    }
    fw_state_destroy(&fw->committed);
    fw->committed = desired;
    memset(&desired, 0, sizeof desired);
    fw->built = true;

out:
    free(batch);
    fw_pf_table_destroy(&flush);
    fw_state_destroy(&desired);
    return rc;
}

/* The i-th of some rules: 'ptrs[i]' (an array of pointers), or 'rules[i]'
 * when 'ptrs' is NULL. */
static const struct vr_pf_rule *
fw_nth_rule(const struct vr_pf_rule *const *ptrs,
            const struct vr_pf_rule *rules, size_t i)
{
    return ptrs ? ptrs[i] : &rules[i];
}

/* The number of VIP ports of 'n' rules (as fw_nth_rule()). */
static size_t
fw_count_ports(const struct vr_pf_rule *const *ptrs,
               const struct vr_pf_rule *rules, size_t n)
{
    size_t ports = 0;

    for (size_t i = 0; i < n; i++) {
        const struct vr_pf_rule *r = fw_nth_rule(ptrs, rules, i);

        ports += (size_t) (r->vip_port[1] - r->vip_port[0]) + 1;
    }
    return ports;
}

int
fw_apply_rules(struct fw *fw, const struct vr_pf_rule *const *old,
               size_t n_old, const struct vr_pf_rule *add, size_t n_add,
               struct fw_stats *stats)
{
    struct fw_state out;        /* Committed elements of 'old'. */
    struct fw_state in;         /* Elements of 'add'. */
    struct fw_state desired;    /* A full rebuild's state. */
    struct fw_pf_table flush;
    char *batch = NULL;
    bool full = !fw->built;
    size_t ops = 0;
    int rc = -1;

    memset(stats, 0, sizeof *stats);
    memset(&out, 0, sizeof out);
    memset(&in, 0, sizeof in);
    memset(&desired, 0, sizeof desired);
    memset(&flush, 0, sizeof flush);
    fw_pf_table_init(&out.pf, fw_count_ports(old, NULL, n_old));
    fw_pf_table_init(&in.pf, fw_count_ports(NULL, add, n_add));
    for (size_t i = 0; i < n_old; i++) {
        const struct vr_pf_rule *r = old[i];

        for (unsigned p = r->vip_port[0]; p <= r->vip_port[1]; p++) {
            const struct fw_pf *c = fw_pf_find(&fw->committed.pf,
                                               (uint8_t) r->proto,
                                               r->vip.s_addr, (uint16_t) p);

            if (c) {
                fw_pf_insert(&out.pf, c);
            }
        }
    }
    /* A port of 'add' must be free once 'old' is gone. */
    for (size_t i = 0; i < n_add; i++) {
        const struct vr_pf_rule *r = &add[i];

        for (unsigned p = r->vip_port[0]; p <= r->vip_port[1]; p++) {
            struct fw_pf e = fw_pf_of(r, p);

            if (fw_pf_insert(&in.pf, &e)
                || (!fw_pf_find(&out.pf, e.proto, e.vip, e.vport)
                    && fw_pf_find(&fw->committed.pf, e.proto, e.vip,
                                  e.vport))) {
                fw_pf_conflict(r, p);
                goto out;
            }
        }
    }

    if (!full && !fw_run_delta(fw, &out, &in, &flush, stats, &batch, &ops)) {
        full = true;
    }
    if (full) {
        /* What the table must hold: the committed state with 'old' taken
         * out and 'add' put in. */
        fw_state_copy(&desired, &fw->committed);
        for (size_t i = 0; i < out.pf.cap; i++) {
            const struct fw_pf *o = &out.pf.slots[i];

            if (o->proto) {
                fw_pf_remove(&desired.pf, o->proto, o->vip, o->vport);
            }
        }
        for (size_t i = 0; i < in.pf.cap; i++) {
            if (in.pf.slots[i].proto) {
                fw_pf_insert(&desired.pf, &in.pf.slots[i]);
            }
        }
        batch = fw_full_text(fw->table, &desired, &ops);
        if (fw_run(fw, batch, &stats->nft_usec) < 0) {
            goto out;
        }
    }
    fw_committed(fw, stats, full, ops, batch, "rule delta");

    /* Committed: from now on the kernel has the change. */
    if (full || flush.n) {
        fw_flush_ct(fw, full, &fw->committed.pf, &desired.pf, &flush,
                    stats);
    }
    if (full) {
        fw_state_destroy(&fw->committed);
        fw->committed = desired;
        memset(&desired, 0, sizeof desired);
        fw->built = true;
    } else {
        for (size_t i = 0; i < out.pf.cap; i++) {
            const struct fw_pf *o = &out.pf.slots[i];

            if (o->proto) {
                fw_pf_remove(&fw->committed.pf, o->proto, o->vip, o->vport);
            }
        }
        for (size_t i = 0; i < in.pf.cap; i++) {
            if (in.pf.slots[i].proto) {
                fw_pf_insert(&fw->committed.pf, &in.pf.slots[i]);
            }
        }
    }
    rc = 0;

out:
    free(batch);
    fw_pf_table_destroy(&flush);
    fw_state_destroy(&out);
    fw_state_destroy(&in);
    fw_state_destroy(&desired);
    return rc;
}
