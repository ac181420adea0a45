/* ct.c: conntrack flushing for kvmstack-vr, on libnetfilter_conntrack.
 *
 * A port-forwarding rule that is removed or re-targeted must stop carrying
 * the connections it NATed: conntrack keeps the NAT binding of a flow for
 * its whole life, so without a flush a UDP "connection" or a TCP session
 * would keep reaching the old target.  The kernel cannot delete by partial
 * tuple (a VIP port), and a dump walks the conntrack hash of the whole
 * kernel, whatever the namespace holds: 10-15 ms for the 262,144 buckets
 * of a host with more than 4 GB, a 64th of that many in a 512 MB
 * appliance.
 *
 * DESIGN: an index, as conntrackd keeps its cache.  The tracker subscribes
 * to the conntrack events of its network namespace (NEW and DESTROY, on a
 * non-blocking socket with a large receive buffer that main.c's loop reads
 * every 100 ms without polling it: a wake-up per new connection cost the
 * router's connects 20 us at p99) and keeps the destination-NATed IPv4 TCP/UDP entries in two
 * chained hashes over the same nodes: by original tuple (to apply a
 * DESTROY) and by VIP port (protocol, original destination address and
 * port) with each entry's DNAT target (the reply source) and conntrack
 * id.  It is seeded with one dump at start.  A flush reads the pending
 * events first, then looks up the affected VIP ports and deletes their
 * stale entries by tuple and id (NFCT_Q_DESTROY: one hash lookup in the
 * kernel; the id keeps a newer entry with the same tuple alive): its cost
 * is the entries of those ports, not the kernel's table.
 *
 * Correctness first: a flush never trusts an index that may miss an
 * entry.  A lost event (ENOBUFS: the socket overflowed), a failed dump, or
 * more entries than the bound (KVMSTACK_VR_CT_MAX) drop the index and mark
 * it unreliable; the next flush then dumps the whole table as before
 * (kernel-filtered on DNAT status), which re-seeds the index: the events
 * read before the dump are discarded (the dump reflects them), the ones
 * after it are applied.  Events follow the dump in the socket, so a NEW
 * or DESTROY that races the dump is applied after it.  A namespace that
 * tracks nothing (nf_conntrack_count 0) is neither dumped nor indexed. */
#include "ct.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnfnetlink/libnfnetlink.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("vr.ct");

/* Receive buffer of the event socket: about 30,000 events. */
#define CT_RCVBUF (8u << 20)

/* The least bound on indexed entries. */
#define CT_MIN_MAX 65536

#define CT_MIN_BUCKETS 256

/* Events are read after so many deletes: each makes a DESTROY event, and
 * a flush of many entries must not overflow the event socket. */
#define CT_DELETES_PER_READ 16

DEFINE_FREEP(ct_handle_freep, struct nfct_handle, nfct_close)
DEFINE_FREEP(ct_filter_freep, struct nfct_filter_dump,
             nfct_filter_dump_destroy)

/* One indexed entry: a node of both hashes. */
struct ct_flow {
    struct ct_flow *tnext;      /* Next in its tuple bucket. */
    struct ct_flow **tpprev;    /* The pointer to this one there. */
    struct ct_flow *knext;      /* Next in its VIP-port bucket. */
    struct ct_flow **kpprev;    /* The pointer to this one there. */
    uint32_t src;               /* Original source, network order. */
    uint32_t dst;               /* Original destination (VIP). */
    uint32_t reply_src;         /* The DNAT target. */
    uint32_t id;                /* Conntrack id (0: unknown). */
    uint16_t sport;             /* Ports, host order. */
    uint16_t dport;
    uint16_t reply_sport;
    uint8_t l4proto;            /* IPPROTO_TCP or IPPROTO_UDP. */
};

struct ct {
    struct nfct_handle *ev;     /* Events (non-blocking); NULL: none,
                                 * every flush dumps. */
    struct nfct_handle *q;      /* Dumps and deletes; NULL until used. */
    struct nf_conntrack *del;   /* Scratch object of deletes. */
    bool reliable;              /* The index holds every DNATed IPv4
                                 * TCP/UDP entry of the namespace. */
    struct ct_flow **tbuckets;  /* By tuple; 'n_buckets' of them. */
    struct ct_flow **kbuckets;  /* By VIP port; as many. */
    size_t n_buckets;           /* Power of two, >= n / 1 (0: none). */
    size_t n;                   /* Entries indexed. */
    size_t max;                 /* Bound on 'n'. */
    uint64_t seed;              /* Hash seed (random). */
};

/* What a dump callback does. */
struct ct_dump_ctx {
    struct ct *ct;              /* Tracker, or NULL. */
    bool seed;                  /* Index what is dumped. */
    ct_stale_fn *stale;         /* The caller's predicate, or NULL. */
    void *aux;                  /* Its argument. */
    struct nf_conntrack **cts;  /* Stale entries (clones, owned). */
    size_t n;
    size_t cap;
};

static uint64_t
ct_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t
ct_key_hash(const struct ct *ct, uint8_t l4proto, uint32_t dst,
            uint16_t dport)
{
    return ct_mix(ct->seed ^ ((uint64_t) dst << 24 | (uint64_t) dport << 8
                              | l4proto));
}

static uint64_t
ct_tuple_hash(const struct ct *ct, const struct ct_flow *f)
{
    return ct_mix(ct_key_hash(ct, f->l4proto, f->dst, f->dport)
                  ^ ((uint64_t) f->src << 16 | f->sport));
}

static void
ct_link(struct ct_flow *f, struct ct_flow **tb, struct ct_flow **kb)
{
    f->tnext = *tb;
    if (f->tnext) {
        f->tnext->tpprev = &f->tnext;
    }
    *tb = f;
    f->tpprev = tb;
    f->knext = *kb;
    if (f->knext) {
        f->knext->kpprev = &f->knext;
    }
    *kb = f;
    f->kpprev = kb;
}

static void
ct_unlink(struct ct *ct, struct ct_flow *f)
{
    *f->tpprev = f->tnext;
    if (f->tnext) {
        f->tnext->tpprev = f->tpprev;
    }
    *f->kpprev = f->knext;
    if (f->knext) {
        f->knext->kpprev = f->kpprev;
    }
    free(f);
    ct->n--;
}

/* Links 'f' into the buckets of the current size. */
static void
ct_place(struct ct *ct, struct ct_flow *f)
{
    size_t mask = ct->n_buckets - 1;

    ct_link(f, &ct->tbuckets[ct_tuple_hash(ct, f) & mask],
            &ct->kbuckets[ct_key_hash(ct, f->l4proto, f->dst, f->dport)
                          & mask]);
}

/* Doubles the buckets (or makes the first ones) and rehashes. */
static void
ct_grow(struct ct *ct)
{
    struct ct_flow **old = ct->tbuckets;
    size_t n_old = ct->n_buckets;

    ct->n_buckets = n_old ? 2 * n_old : CT_MIN_BUCKETS;
    ct->tbuckets = xcalloc(ct->n_buckets, sizeof *ct->tbuckets);
    free(ct->kbuckets);
    ct->kbuckets = xcalloc(ct->n_buckets, sizeof *ct->kbuckets);
    for (size_t i = 0; i < n_old; i++) {
        struct ct_flow *f = old[i];

        while (f) {
            struct ct_flow *next = f->tnext;

            ct_place(ct, f);
            f = next;
        }
    }
    free(old);
}

/* Empties the index (the buckets are freed too). */
static void
ct_clear(struct ct *ct)
{
    for (size_t i = 0; i < ct->n_buckets; i++) {
        struct ct_flow *f = ct->tbuckets[i];

        while (f) {
            struct ct_flow *next = f->tnext;

            free(f);
            f = next;
        }
    }
    free(ct->tbuckets);
    free(ct->kbuckets);
    ct->tbuckets = ct->kbuckets = NULL;
    ct->n_buckets = 0;
    ct->n = 0;
}

/* Drops the index: flushes dump until one re-seeds it. */
static void
ct_drop(struct ct *ct, const char *why)
{
    if (ct->reliable) {
        LOG_WARN("conntrack: %s; the index of %zu entries is dropped, the "
                 "next flush dumps the conntrack table", why, ct->n);
    }
    ct_clear(ct);
    ct->reliable = false;
}

static struct ct_flow *
ct_find(const struct ct *ct, const struct ct_flow *k)
{
    struct ct_flow *f;

    if (!ct->n_buckets) {
        return NULL;
    }
    f = ct->tbuckets[ct_tuple_hash(ct, k) & (ct->n_buckets - 1)];
    for (; f; f = f->tnext) {
        if (f->src == k->src && f->dst == k->dst && f->sport == k->sport
            && f->dport == k->dport && f->l4proto == k->l4proto) {
            return f;
        }
    }
    return NULL;
}

/* Reads the original tuple of 'obj' into 'k'; false when it is not IPv4
 * TCP/UDP (never indexed). */
static bool
ct_tuple_of(const struct nf_conntrack *obj, struct ct_flow *k)
{
    memset(k, 0, sizeof *k);
    if (nfct_get_attr_u8(obj, ATTR_ORIG_L3PROTO) != AF_INET) {
        return false;
    }
    k->l4proto = nfct_get_attr_u8(obj, ATTR_ORIG_L4PROTO);
    if (k->l4proto != IPPROTO_TCP && k->l4proto != IPPROTO_UDP) {
        return false;
    }
    k->src = nfct_get_attr_u32(obj, ATTR_ORIG_IPV4_SRC);
    k->dst = nfct_get_attr_u32(obj, ATTR_ORIG_IPV4_DST);
    k->sport = ntohs(nfct_get_attr_u16(obj, ATTR_ORIG_PORT_SRC));
    k->dport = ntohs(nfct_get_attr_u16(obj, ATTR_ORIG_PORT_DST));
    return true;
}

/* Indexes the DNATed entry 'obj' (or updates it); drops the index past
 * the bound. */
static void
ct_add(struct ct *ct, const struct nf_conntrack *obj)
{
    struct ct_flow k;
    struct ct_flow *f;

    if (!ct_tuple_of(obj, &k)) {
        return;
    }
    f = ct_find(ct, &k);
    if (!f) {
        if (ct->n >= ct->max) {
            char why[96];

            snprintf(why, sizeof why, "more than %zu DNATed entries",
                     ct->max);
            ct_drop(ct, why);
            return;
        }
        if (ct->n >= ct->n_buckets) {
            ct_grow(ct);
        }
        f = xmalloc(sizeof *f);
        *f = k;
        ct_place(ct, f);
        ct->n++;
    }
    f->reply_src = nfct_get_attr_u32(obj, ATTR_REPL_IPV4_SRC);
    f->reply_sport = ntohs(nfct_get_attr_u16(obj, ATTR_REPL_PORT_SRC));
    f->id = nfct_attr_is_set(obj, ATTR_ID) > 0
            ? nfct_get_attr_u32(obj, ATTR_ID) : 0;
}

static int
ct_event_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *obj,
            void *data)
{
    struct ct *ct = data;
    struct ct_flow k;
    struct ct_flow *f;

    if (!ct->reliable) {
        return NFCT_CB_CONTINUE;        /* Nothing is indexed. */
    }
    if (type == NFCT_T_DESTROY) {
        if (ct_tuple_of(obj, &k) && (f = ct_find(ct, &k))
            && (!nfct_attr_is_set(obj, ATTR_ID) || !f->id
                || nfct_get_attr_u32(obj, ATTR_ID) == f->id)) {
            ct_unlink(ct, f);
        }
    } else if (type == NFCT_T_NEW
               && (nfct_get_attr_u32(obj, ATTR_STATUS) & IPS_DST_NAT)) {
        ct_add(ct, obj);
    }
    return NFCT_CB_CONTINUE;
}

void
ct_process(struct ct *ct)
{
    if (!ct || !ct->ev) {
        return;
    }
    for (;;) {
        if (nfct_catch(ct->ev) >= 0) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        if (errno == EINTR || errno == ENOMSG) {
            continue;
        }
        if (errno == ENOBUFS) {
            ct_drop(ct, "events lost (the event socket "
                    "overflowed)");
            continue;                   /* Read what is still queued. */
        }
        ct_drop(ct, strerror(errno));
        return;
    }
}

/* Whether this network namespace tracks no connection at all, so that
 * there is nothing to flush: a dump walks the conntrack hash of the
 * whole kernel (shared by every namespace; 262,144 buckets on a big
 * host), the count is one read. */
static bool
ct_none(void)
{
    FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_count", "re");
    unsigned long n = 1;

    if (f) {
        if (fscanf(f, "%lu", &n) != 1) {
            n = 1;
        }
        fclose(f);
    }
    return n == 0;
}

static unsigned long
ct_env(const char *name, unsigned long dflt)
{
    const char *s = getenv(name);
    char *end;
    unsigned long v;

    if (!s || !*s) {
        return dflt;
    }
    v = strtoul(s, &end, 10);
    return *end ? dflt : v;
}

static int
ct_dump_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *obj,
           void *data)
{
    struct ct_dump_ctx *c = data;
    struct ct_entry e;

    (void) type;
    if (nfct_get_attr_u8(obj, ATTR_ORIG_L3PROTO) != AF_INET
        || !(nfct_get_attr_u32(obj, ATTR_STATUS) & IPS_DST_NAT)) {
        return NFCT_CB_CONTINUE;
    }
    if (c->seed) {
        ct_add(c->ct, obj);
        c->seed = c->ct->reliable;      /* False once over the bound. */
    }
    if (!c->stale) {
        return NFCT_CB_CONTINUE;
    }
    e.l4proto = nfct_get_attr_u8(obj, ATTR_ORIG_L4PROTO);
    e.orig_dst = nfct_get_attr_u32(obj, ATTR_ORIG_IPV4_DST);
    e.orig_dport = ntohs(nfct_get_attr_u16(obj, ATTR_ORIG_PORT_DST));
    e.reply_src = nfct_get_attr_u32(obj, ATTR_REPL_IPV4_SRC);
    e.reply_sport = ntohs(nfct_get_attr_u16(obj, ATTR_REPL_PORT_SRC));
    if (c->stale(&e, c->aux)) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 64;
            c->cts = xrealloc(c->cts, c->cap * sizeof *c->cts);
        }
        c->cts[c->n++] = nfct_clone(obj);
    }
    return NFCT_CB_CONTINUE;
}

/* The handle for dumps and deletes, opened on first use.  NULL with an
 * error reported. */
static struct nfct_handle *
ct_query_handle(struct ct *ct)
{
    if (!ct->q) {
        ct->q = nfct_open(CONNTRACK, 0);
        if (!ct->q) {
            error_report(PROBLEM_INTERNAL_ERROR,
                         "conntrack: cannot open netlink: %s",
                         strerror(errno));
        }
    }
    return ct->q;
}

/* Forgets the index and discards the pending events: what a dump started
 * after this reads reflects them. */
static void
ct_reset(struct ct *ct)
{
    ct_clear(ct);
    ct->reliable = false;
    ct_process(ct);
    ct->reliable = ct->ev != NULL;
}

/* Dumps the DNATed IPv4 entries: deletes those 'stale' (NULL: none)
 * finds, and (with events) re-seeds the index.  Returns 0, or -1 with an
 * error reported. */
static int
ct_dump(struct ct *ct, ct_stale_fn *stale, void *aux, struct ct_result *res)
{
    AUTO(ct_filter_freep) struct nfct_filter_dump *filter = NULL;
    struct nfct_filter_dump_mark status = { IPS_DST_NAT, IPS_DST_NAT };
    struct ct_dump_ctx c = { ct, false, stale, aux, NULL, 0, 0 };
    struct nfct_handle *h;
    int rc = 0;

    ct_reset(ct);
    if (ct_none()) {
        ct_process(ct);
        return 0;
    }
    h = ct_query_handle(ct);
    if (!h) {
        ct_drop(ct, "cannot open netlink");
        return -1;
    }
    res->dumped = true;
    c.seed = ct->reliable;
    filter = nfct_filter_dump_create();
    nfct_filter_dump_set_attr_u8(filter, NFCT_FILTER_DUMP_L3NUM, AF_INET);
    nfct_filter_dump_set_attr(filter, NFCT_FILTER_DUMP_STATUS, &status);
    nfct_callback_register(h, NFCT_T_ALL, ct_dump_cb, &c);
    if (nfct_query(h, NFCT_Q_DUMP_FILTER, filter) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "conntrack: dump failed: %s",
                     strerror(errno));
        ct_drop(ct, "the dump failed");
        rc = -1;
    }
    nfct_callback_unregister(h);
    for (size_t i = 0; i < c.n; i++) {
        if (rc == 0 && nfct_query(h, NFCT_Q_DESTROY, c.cts[i]) == 0) {
            res->deleted++;
        } else if (rc == 0 && errno != ENOENT) {
            error_report(PROBLEM_INTERNAL_ERROR,
                         "conntrack: delete failed: %s", strerror(errno));
            rc = -1;
        }
        nfct_destroy(c.cts[i]);
        if (i % CT_DELETES_PER_READ == CT_DELETES_PER_READ - 1) {
            ct_process(ct);
        }
    }
    free(c.cts);
    /* The entries deleted go by their DESTROY events. */
    ct_process(ct);
    if (ct->ev) {
        LOG_DBG("conntrack: dumped; %s, %zu entries indexed",
                ct->reliable ? "index re-seeded" : "no index", ct->n);
    }
    return rc;
}

/* Deletes the entry of tuple and id 'f' in the kernel.  Returns 1
 * (deleted), 0 (already gone) or -1 with an error reported. */
static int
ct_delete(struct ct *ct, struct nfct_handle *h, const struct ct_flow *f)
{
    struct nf_conntrack *d = ct->del;

    nfct_set_attr_u8(d, ATTR_ORIG_L3PROTO, AF_INET);
    nfct_set_attr_u32(d, ATTR_ORIG_IPV4_SRC, f->src);
    nfct_set_attr_u32(d, ATTR_ORIG_IPV4_DST, f->dst);
    nfct_set_attr_u8(d, ATTR_ORIG_L4PROTO, f->l4proto);
    nfct_set_attr_u16(d, ATTR_ORIG_PORT_SRC, htons(f->sport));
    nfct_set_attr_u16(d, ATTR_ORIG_PORT_DST, htons(f->dport));
    if (f->id) {
        nfct_set_attr_u32(d, ATTR_ID, f->id);
    } else {
        nfct_attr_unset(d, ATTR_ID);
    }
    if (nfct_query(h, NFCT_Q_DESTROY, d) == 0) {
        return 1;
    }
    if (errno == ENOENT) {
        return 0;
    }
    error_report(PROBLEM_INTERNAL_ERROR, "conntrack: delete failed: %s",
                 strerror(errno));
    return -1;
}

/* Stale entries taken out of the index, to delete. */
struct ct_doomed {
    struct ct_flow *flows;      /* Copies. */
    size_t n;
    size_t cap;
};

/* Takes the stale entries of the key bucket 'i' of key 'k' (NULL: any
 * key) out of the index into 'out'. */
static void
ct_take_stale(struct ct *ct, size_t i, const struct ct_key *k,
              ct_stale_fn *stale, void *aux, struct ct_doomed *out)
{
    struct ct_flow *f = ct->kbuckets[i];

    while (f) {
        struct ct_flow *next = f->knext;
        struct ct_entry e;

        if (!k || (f->l4proto == k->l4proto && f->dst == k->dst
                   && f->dport == k->dport)) {
            e.l4proto = f->l4proto;
            e.orig_dst = f->dst;
            e.orig_dport = f->dport;
            e.reply_src = f->reply_src;
            e.reply_sport = f->reply_sport;
            if (stale(&e, aux)) {
                if (out->n == out->cap) {
                    out->cap = out->cap ? 2 * out->cap : 16;
                    out->flows = xrealloc(out->flows,
                                          out->cap * sizeof *out->flows);
                }
                out->flows[out->n++] = *f;
                ct_unlink(ct, f);
            }
        }
        f = next;
    }
}

int
ct_flush(struct ct *ct, const struct ct_key *keys, size_t n_keys,
         ct_stale_fn *stale, void *aux, struct ct_result *res)
{
    struct ct_doomed doomed = { NULL, 0, 0 };
    struct nfct_handle *h;
    int rc = 0;

    memset(res, 0, sizeof *res);
    if (!ct) {
        struct ct tmp;

        memset(&tmp, 0, sizeof tmp);
        rc = ct_dump(&tmp, stale, aux, res);
        if (tmp.q) {
            nfct_close(tmp.q);
        }
        return rc;
    }
    ct_process(ct);
    if (!ct->reliable) {
        rc = ct_dump(ct, stale, aux, res);
        goto out;
    }
    if (!ct->n) {
        return 0;
    }
    if (!keys) {
        for (size_t i = 0; i < ct->n_buckets; i++) {
            ct_take_stale(ct, i, NULL, stale, aux, &doomed);
        }
    } else {
        for (size_t i = 0; i < n_keys && ct->n; i++) {
            const struct ct_key *k = &keys[i];

            ct_take_stale(ct, ct_key_hash(ct, k->l4proto, k->dst, k->dport)
                              & (ct->n_buckets - 1), k, stale, aux,
                          &doomed);
        }
    }
    if (!doomed.n) {
        return 0;
    }
    h = ct_query_handle(ct);
    for (size_t i = 0; rc == 0 && i < doomed.n; i++) {
        int r = h ? ct_delete(ct, h, &doomed.flows[i]) : -1;

        if (r < 0) {
            /* Out of the index, maybe still in the kernel. */
            ct_drop(ct, "a delete failed");
            rc = -1;
        } else {
            res->deleted += (size_t) r;
        }
        if (i % CT_DELETES_PER_READ == CT_DELETES_PER_READ - 1) {
            ct_process(ct);
        }
    }
    ct_process(ct);
    free(doomed.flows);

out:
    if (res->deleted) {
        LOG_DBG("conntrack: %zu entries deleted (%s)", res->deleted,
                res->dumped ? "dump" : "index");
    }
    return rc;
}

struct ct *
ct_new(void)
{
    struct ct *ct = xcalloc(1, sizeof *ct);
    unsigned long max = CT_MIN_MAX;
    FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_max", "re");
    struct ct_result res;
    unsigned int rcvbuf;
    int fd;

    if (f) {
        if (fscanf(f, "%lu", &max) != 1 || max < CT_MIN_MAX) {
            max = CT_MIN_MAX;
        }
        fclose(f);
    }
    ct->max = ct_env("KVMSTACK_VR_CT_MAX", max);
    random_bytes(&ct->seed, sizeof ct->seed);
    ct->del = nfct_new();
    ct->ev = nfct_open(CONNTRACK, NF_NETLINK_CONNTRACK_NEW
                                  | NF_NETLINK_CONNTRACK_DESTROY);
    if (!ct->ev) {
        LOG_WARN("conntrack: cannot subscribe to events (%s); every flush "
                 "dumps the conntrack table", strerror(errno));
        return ct;
    }
    fd = nfct_fd(ct->ev);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    rcvbuf = nfnl_rcvbufsiz(nfct_nfnlh(ct->ev),
                            (unsigned int) ct_env("KVMSTACK_VR_CT_RCVBUF",
                                                  CT_RCVBUF));
    nfct_callback_register(ct->ev, NFCT_T_NEW | NFCT_T_DESTROY, ct_event_cb,
                           ct);
    memset(&res, 0, sizeof res);
    if (ct_dump(ct, NULL, NULL, &res) < 0) {
        LOG_WARN("conntrack: %s; the next flush dumps again",
                 error_last_message());
        error_reset();
    }
    LOG_INFO("conntrack: events subscribed (receive buffer %u bytes), %s, "
             "%zu DNATed entries indexed (at most %zu)", rcvbuf,
             ct->reliable ? "index seeded" : "no index", ct->n, ct->max);
    return ct;
}

void
ct_free(struct ct *ct)
{
    if (!ct) {
        return;
    }
    ct_clear(ct);
    if (ct->ev) {
        nfct_close(ct->ev);
    }
    if (ct->q) {
        nfct_close(ct->q);
    }
    nfct_destroy(ct->del);
    free(ct);
}
