/* ct.c: conntrack flushing for kvmstack-vr, on libnetfilter_conntrack.
 *
 * A port-forwarding rule that is removed or re-targeted must stop carrying
 * the connections it NATed: conntrack keeps the NAT binding of a flow for
 * its whole life, so without a flush a UDP "connection" or a TCP session
 * would keep reaching the old target.  The kernel cannot delete by partial
 * tuple, so this dumps the destination-NATed IPv4 entries (filtered in the
 * kernel by status where it supports that, by the callback anyway),
 * collects the stale ones, and deletes them one by one.  The dump walks
 * the conntrack hash of the whole kernel, whatever the namespace holds:
 * 10-15 ms for the 262,144 buckets of a host with more than 4 GB (the
 * benchmark's namespaces), a 64th of that many in a 512 MB appliance;
 * so a namespace that tracks nothing is not dumped. */
#include "ct.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("vr.ct");

DEFINE_FREEP(ct_handle_freep, struct nfct_handle, nfct_close)
DEFINE_FREEP(ct_filter_freep, struct nfct_filter_dump,
             nfct_filter_dump_destroy)

/* What the dump callback collects. */
struct ct_collect {
    ct_stale_fn *stale;         /* The caller's predicate. */
    void *aux;                  /* Its argument. */
    struct nf_conntrack **cts;  /* Stale entries (clones, owned). */
    size_t n;
    size_t cap;
};

static int
ct_dump_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
           void *data)
{
    struct ct_collect *c = data;
    struct ct_entry e;

    (void) type;
    if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != AF_INET
        || !(nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT)) {
        return NFCT_CB_CONTINUE;
    }
    e.l4proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
    e.orig_dst = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST);
    e.orig_dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
    e.reply_src = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC);
    e.reply_sport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
    if (c->stale(&e, c->aux)) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 64;
            c->cts = xrealloc(c->cts, c->cap * sizeof *c->cts);
        }
        c->cts[c->n++] = nfct_clone(ct);
    }
    return NFCT_CB_CONTINUE;
}

/* Whether this network namespace tracks no connection at all, so that
 * there is nothing to flush: the dump walks the conntrack hash of the
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

int
ct_flush(ct_stale_fn *stale, void *aux, size_t *n_deleted)
{
    AUTO(ct_handle_freep) struct nfct_handle *h = NULL;
    AUTO(ct_filter_freep) struct nfct_filter_dump *filter = NULL;
    struct nfct_filter_dump_mark status = { IPS_DST_NAT, IPS_DST_NAT };
    struct ct_collect c = { stale, aux, NULL, 0, 0 };
    int rc = 0;

    *n_deleted = 0;
    if (ct_none()) {
        return 0;
    }
    h = nfct_open(CONNTRACK, 0);
    if (!h) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "conntrack: cannot open netlink: %s", strerror(errno));
        return -1;
    }
    filter = nfct_filter_dump_create();
    nfct_filter_dump_set_attr_u8(filter, NFCT_FILTER_DUMP_L3NUM, AF_INET);
    nfct_filter_dump_set_attr(filter, NFCT_FILTER_DUMP_STATUS, &status);
    nfct_callback_register(h, NFCT_T_ALL, ct_dump_cb, &c);
    if (nfct_query(h, NFCT_Q_DUMP_FILTER, filter) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "conntrack: dump failed: %s",
                     strerror(errno));
        rc = -1;
    }
    nfct_callback_unregister(h);
    for (size_t i = 0; i < c.n; i++) {
        if (rc == 0 && nfct_query(h, NFCT_Q_DESTROY, c.cts[i]) == 0) {
            (*n_deleted)++;
        } else if (rc == 0 && errno != ENOENT) {
            error_report(PROBLEM_INTERNAL_ERROR,
                         "conntrack: delete failed: %s", strerror(errno));
            rc = -1;
        }
        nfct_destroy(c.cts[i]);
    }
    free(c.cts);
    if (*n_deleted) {
        LOG_DBG("conntrack: %zu entries deleted", *n_deleted);
    }
    return rc;
}
