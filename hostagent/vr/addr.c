/* addr.c: kvmstack-vr's interfaces and addresses, on libnl-route-3.
 *
 * DESIGN: NICs are known by MAC (mgmt knows the MACs it gave the VR
 * domain, not the names the guest kernel chose).  The managed NICs carry
 * exactly the IPv4 addresses of the configuration: the NIC's own
 * address, and on the public NIC one /32 per VIP; any other IPv4 address
 * on them is removed, so a re-created or re-configured router converges.
 * The default route goes via the public NIC's gateway.  What was set last
 * is remembered as a signature string; a configuration with the same
 * addressing (every port-forwarding change) costs no netlink traffic. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("vr.addr");

DEFINE_FREEP(addr_cache_freep, struct nl_cache, nl_cache_free)
DEFINE_FREEP(addr_nladdr_freep, struct nl_addr, nl_addr_put)
DEFINE_FREEP(addr_rtaddr_freep, struct rtnl_addr, rtnl_addr_put)
DEFINE_FREEP(addr_route_freep, struct rtnl_route, rtnl_route_put)
DEFINE_FREEP(addr_link_freep, struct rtnl_link, rtnl_link_put)

struct addr {
    struct nl_sock *sock;       /* NETLINK_ROUTE. */
    char *committed;            /* Signature of the last converged state. */
    bool has_gw;                /* A default route was set by us... */
    struct in_addr gw;          /* ...via this gateway... */
    int gw_ifindex;             /* ...on this interface. */
};

/* Reports libnl error 'err' after the formatted context. */
static void __attribute__((format(printf, 2, 3)))
addr_report(int err, const char *fmt, ...)
{
    va_list ap;
    char *what;

    va_start(ap, fmt);
    what = xvasprintf(fmt, ap);
    va_end(ap);
    error_report(PROBLEM_INTERNAL_ERROR, "%s: %s", what, nl_geterror(err));
    free(what);
}

struct addr *
addr_new(void)
{
    struct nl_sock *sock = nl_socket_alloc();
    struct addr *a;
    int err;

    if (!sock) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot allocate a netlink socket");
        return NULL;
    }
    err = nl_connect(sock, NETLINK_ROUTE);
    if (err < 0) {
        addr_report(err, "cannot open a route netlink socket");
        nl_socket_free(sock);
        return NULL;
    }
    a = xcalloc(1, sizeof *a);
    a->sock = sock;
    return a;
}

void
addr_free(struct addr *a)
{
    if (!a) {
        return;
    }
    nl_socket_free(a->sock);
    free(a->committed);
    free(a);
}

int
addr_resolve(struct addr *a, struct vr_config *cfg)
{
    AUTO(addr_cache_freep) struct nl_cache *links = NULL;
    int err;

    if (!cfg->n_ifaces) {
        return 0;
    }
    err = rtnl_link_alloc_cache(a->sock, AF_UNSPEC, &links);
    if (err < 0) {
        addr_report(err, "cannot list interfaces");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        struct vr_iface *ifc = &cfg->ifaces[i];
        struct nl_object *o;

        ifc->ifindex = 0;
        for (o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
            struct rtnl_link *l = (struct rtnl_link *) o;
            struct nl_addr *mac = rtnl_link_get_addr(l);
            char buf[32];

            if (mac && nl_addr_get_len(mac) == 6
                && !strcmp(nl_addr2str(mac, buf, sizeof buf), ifc->mac)
                && !rtnl_link_get_master(l)) {
                ifc->ifindex = rtnl_link_get_ifindex(l);
                snprintf(ifc->ifname, sizeof ifc->ifname, "%s",
                         rtnl_link_get_name(l));
                break;
            }
        }
        if (!ifc->ifindex) {
            error_report_field(PROBLEM_NOT_FOUND, "interfaces",
                               "no interface has MAC '%s'", ifc->mac);
            return -1;
        }
    }
    return 0;
}

/* The desired IPv4 addresses: (ifindex, address, prefix). */
struct addr_want {
    int ifindex;
    struct in_addr addr;
    uint8_t prefix;
    bool present;               /* Found in the kernel. */
};

static size_t
addr_wanted(const struct vr_config *cfg, struct addr_want **out)
{
    const struct vr_iface *pub = vr_config_public(cfg);
    struct addr_want *w = xcalloc(cfg->n_ifaces + cfg->n_vips + 1,
                                  sizeof *w);
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        w[n].ifindex = cfg->ifaces[i].ifindex;
        w[n].addr = cfg->ifaces[i].addr;
        w[n].prefix = cfg->ifaces[i].prefix;
        n++;
    }
    for (size_t i = 0; pub && i < cfg->n_vips; i++) {
        bool dup = false;

        for (size_t j = 0; j < n; j++) {
            if (w[j].ifindex == pub->ifindex
                && w[j].addr.s_addr == cfg->vips[i].s_addr) {
                dup = true;
            }
        }
        if (!dup) {
            w[n].ifindex = pub->ifindex;
            w[n].addr = cfg->vips[i];
            w[n].prefix = 32;
            n++;
        }
    }
    *out = w;
    return n;
}

/* The signature of the addressing of 'cfg'. */
static char *
addr_signature(const struct vr_config *cfg)
{
    struct sbuf s;
    char a[INET_ADDRSTRLEN];
    char g[INET_ADDRSTRLEN];

    sbuf_init(&s);
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        const struct vr_iface *ifc = &cfg->ifaces[i];

        inet_ntop(AF_INET, &ifc->addr, a, sizeof a);
        inet_ntop(AF_INET, &ifc->gateway, g, sizeof g);
        sbuf_addf(&s, "%d %s/%u %s %s;", ifc->ifindex, a, ifc->prefix,
                  vr_role_name(ifc->role), ifc->has_gateway ? g : "-");
    }
    for (size_t i = 0; i < cfg->n_vips; i++) {
        inet_ntop(AF_INET, &cfg->vips[i], a, sizeof a);
        sbuf_addf(&s, "vip %s;", a);
    }
    return sbuf_take(&s);
}

static int
addr_link_up(struct addr *a, const struct vr_iface *ifc)
{
    AUTO(addr_link_freep) struct rtnl_link *link = NULL;
    AUTO(addr_link_freep) struct rtnl_link *change = NULL;
    int err = rtnl_link_get_kernel(a->sock, ifc->ifindex, NULL, &link);

    if (err < 0) {
        addr_report(err, "cannot look up interface '%s'", ifc->ifname);
        return -1;
    }
    if (rtnl_link_get_flags(link) & IFF_UP) {
        return 0;
    }
    change = rtnl_link_alloc();
    rtnl_link_set_flags(change, IFF_UP);
    err = rtnl_link_change(a->sock, link, change, 0);
    if (err < 0) {
        addr_report(err, "cannot bring interface '%s' up", ifc->ifname);
        return -1;
    }
    LOG_INFO("interface %s up", ifc->ifname);
    return 0;
}

static int
addr_add(struct addr *a, const struct addr_want *w)
{
    AUTO(addr_rtaddr_freep) struct rtnl_addr *ra = rtnl_addr_alloc();
    AUTO(addr_nladdr_freep) struct nl_addr *local = NULL;
    AUTO(addr_nladdr_freep) struct nl_addr *brd = NULL;
    char buf[INET_ADDRSTRLEN];
    int err;

    local = nl_addr_build(AF_INET, &w->addr, sizeof w->addr);
    nl_addr_set_prefixlen(local, w->prefix);
    rtnl_addr_set_ifindex(ra, w->ifindex);
    rtnl_addr_set_family(ra, AF_INET);
    rtnl_addr_set_local(ra, local);
    rtnl_addr_set_prefixlen(ra, w->prefix);
    if (w->prefix < 31) {
        struct in_addr b = w->addr;

        b.s_addr |= htonl(w->prefix ? ~(~0u << (32 - w->prefix)) : ~0u);
        brd = nl_addr_build(AF_INET, &b, sizeof b);
        rtnl_addr_set_broadcast(ra, brd);
    }
    inet_ntop(AF_INET, &w->addr, buf, sizeof buf);
    err = rtnl_addr_add(a->sock, ra, 0);
    if (err < 0 && err != -NLE_EXIST) {
        addr_report(err, "cannot add address %s/%u to interface %d", buf,
                    w->prefix, w->ifindex);
        return -1;
    }
    LOG_INFO("address %s/%u on interface %d", buf, w->prefix, w->ifindex);
    return 0;
}

/* Sets (or, with 'gw' NULL, removes) the default route. */
static int
addr_default_route(struct addr *a, const struct in_addr *gw, int ifindex,
                   bool remove)
{
    AUTO(addr_route_freep) struct rtnl_route *r = rtnl_route_alloc();
    AUTO(addr_nladdr_freep) struct nl_addr *dst = NULL;
    AUTO(addr_nladdr_freep) struct nl_addr *via = NULL;
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    struct in_addr any = { 0 };
    char buf[INET_ADDRSTRLEN];
    int err;

    dst = nl_addr_build(AF_INET, &any, sizeof any);
    nl_addr_set_prefixlen(dst, 0);
    via = nl_addr_build(AF_INET, gw, sizeof *gw);
    rtnl_route_set_family(r, AF_INET);
    rtnl_route_set_table(r, RT_TABLE_MAIN);
    rtnl_route_set_dst(r, dst);
    rtnl_route_set_protocol(r, RTPROT_STATIC);
    rtnl_route_set_scope(r, RT_SCOPE_UNIVERSE);
    rtnl_route_set_type(r, RTN_UNICAST);
    rtnl_route_nh_set_ifindex(nh, ifindex);
    rtnl_route_nh_set_gateway(nh, via);
    rtnl_route_add_nexthop(r, nh);
    inet_ntop(AF_INET, gw, buf, sizeof buf);
    if (remove) {
        err = rtnl_route_delete(a->sock, r, 0);
        if (err < 0 && err != -NLE_OBJ_NOTFOUND) {
            addr_report(err, "cannot remove the default route via %s", buf);
            return -1;
        }
        return 0;
    }
    err = rtnl_route_add(a->sock, r, NLM_F_REPLACE);
    if (err < 0) {
        addr_report(err, "cannot set the default route via %s", buf);
        return -1;
    }
    LOG_INFO("default route via %s", buf);
    return 0;
}

static int
addr_forwarding_on(void)
{
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);

    if (fd < 0 || write(fd, "1\n", 2) != 2) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot enable IPv4 forwarding: %s", strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}

/* Removes IPv4 addresses on the managed interfaces that 'w' lacks, and
 * marks those of 'w' that are present. */
static int
addr_prune(struct addr *a, const struct vr_config *cfg,
           struct addr_want *w, size_t n)
{
    AUTO(addr_cache_freep) struct nl_cache *addrs = NULL;
    struct nl_object *o;
    int err = rtnl_addr_alloc_cache(a->sock, &addrs);

    if (err < 0) {
        addr_report(err, "cannot list addresses");
        return -1;
    }
    for (o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *ra = (struct rtnl_addr *) o;
        struct nl_addr *local = rtnl_addr_get_local(ra);
        int idx = rtnl_addr_get_ifindex(ra);
        bool managed = false;
        bool wanted = false;
        struct in_addr in;
        char buf[INET_ADDRSTRLEN];

        if (rtnl_addr_get_family(ra) != AF_INET || !local
            || nl_addr_get_len(local) != sizeof in) {
            continue;
        }
        for (size_t i = 0; i < cfg->n_ifaces; i++) {
            managed |= cfg->ifaces[i].ifindex == idx;
        }
        if (!managed) {
            continue;
        }
        memcpy(&in, nl_addr_get_binary_addr(local), sizeof in);
        for (size_t i = 0; i < n; i++) {
            if (w[i].ifindex == idx && w[i].addr.s_addr == in.s_addr
                && w[i].prefix == rtnl_addr_get_prefixlen(ra)) {
                w[i].present = true;
                wanted = true;
            }
        }
        if (wanted) {
            continue;
        }
        inet_ntop(AF_INET, &in, buf, sizeof buf);
        err = rtnl_addr_delete(a->sock, ra, 0);
        if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR) {
            addr_report(err, "cannot remove address %s/%d", buf,
                        rtnl_addr_get_prefixlen(ra));
            return -1;
        }
        LOG_INFO("address %s/%d removed from interface %d", buf,
                 rtnl_addr_get_prefixlen(ra), idx);
    }
    return 0;
}

int
addr_apply(struct addr *a, const struct vr_config *cfg, bool *changed)
{
    AUTOFREE char *sig = addr_signature(cfg);
    AUTOFREE struct addr_want *w = NULL;
    const struct vr_iface *pub = vr_config_public(cfg);
    bool want_gw = pub && pub->has_gateway;
    size_t n;

    *changed = false;
    if (a->committed && !strcmp(a->committed, sig)) {
        return 0;
    }
    *changed = true;
    for (size_t i = 0; i < cfg->n_ifaces; i++) {
        if (addr_link_up(a, &cfg->ifaces[i]) < 0) {
            return -1;
        }
    }
    n = addr_wanted(cfg, &w);
    if (addr_prune(a, cfg, w, n) < 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!w[i].present && addr_add(a, &w[i]) < 0) {
            return -1;
        }
    }
    if (a->has_gw && (!want_gw || a->gw.s_addr != pub->gateway.s_addr
                      || a->gw_ifindex != pub->ifindex)) {
        if (addr_default_route(a, &a->gw, a->gw_ifindex, true) < 0) {
            return -1;
        }
        a->has_gw = false;
    }
    if (want_gw) {
        if (addr_default_route(a, &pub->gateway, pub->ifindex, false) < 0) {
            return -1;
        }
        a->has_gw = true;
        a->gw = pub->gateway;
        a->gw_ifindex = pub->ifindex;
    }
    if (addr_forwarding_on() < 0) {
        return -1;
    }
    free(a->committed);
    a->committed = STEAL(sig);
    return 0;
}
