/* net.c: the agent's network methods (proto.h, "Networks"): the Linux
 * bridge of an L2 network, over a physical interface (NoVlan), an 802.1q
 * sub-interface (Vlan) or a VXLAN device with head-end replication (Vxlan).
 * Netlink only, through libnl-route-3; never runs ip or bridge.
 *
 * DESIGN: the kernel is the only state.  A bridge the agent made (or
 * adopted) carries its description in the interface alias (IFLA_IFALIAS,
 * "kvmstack type=L2NoVlanNetwork uplink=eth1"), so that remove knows which
 * interface gets the addresses back even after an agent restart, and so
 * that ensure refuses to turn one network's bridge into another's.
 * net.bridge.ensure converges: it creates what is missing, reuses what is
 * right, and fails with conflict on what belongs to something else.  For
 * NoVlan, IF joins the bridge first and only then do its IPv4 addresses
 * (and its gateway routes: default route and others) move to the bridge:
 * while IF is a port, frames for IF's MAC are delivered to the bridge
 * device and IP accepts them for any local address, so established
 * connections survive the move; the bridge takes IF's MAC so neighbours'
 * ARP caches stay right.  A VXLAN device's peers are its all-zero-MAC FDB
 * entries (NTF_SELF, one per remote): ensure adds and deletes entries until
 * they match the list.  libnl's neighbour requests omit NDA_DST for
 * AF_BRIDGE, so those FDB requests are built here with libnl's message
 * API. */
#include "dispatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_bridge.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.net");

#define NET_VXLAN_PORT 4789
#define NET_VXLAN_OVERHEAD 50   /* Outer Ethernet + IPv4 + UDP + VXLAN. */
#define NET_VNI_MAX 16777215
#define NET_MAX_PEERS 4096
#define NET_ALIAS_TAG "kvmstack"

/* The three L2 network types, as mgmt names them. */
#define NET_TYPES                                       \
    NET_TYPE(NOVLAN, "L2NoVlanNetwork")                 \
    NET_TYPE(VLAN, "L2VlanNetwork")                     \
    NET_TYPE(VXLAN, "VxlanNetwork")

enum net_type {
#define NET_TYPE(ENUM, NAME) NET_TYPE_##ENUM,
    NET_TYPES
#undef NET_TYPE
    NET_TYPE_N
};

static const char *const net_type_names[] = {
#define NET_TYPE(ENUM, NAME) NAME,
    NET_TYPES
#undef NET_TYPE
};

DEFINE_FREEP(net_sock_freep, struct nl_sock, nl_socket_free)
DEFINE_FREEP(net_link_freep, struct rtnl_link, rtnl_link_put)
DEFINE_FREEP(net_cache_freep, struct nl_cache, nl_cache_free)
DEFINE_FREEP(net_addr_freep, struct nl_addr, nl_addr_put)
DEFINE_FREEP(net_rtaddr_freep, struct rtnl_addr, rtnl_addr_put)
DEFINE_FREEP(net_route_freep, struct rtnl_route, rtnl_route_put)
DEFINE_FREEP(net_msg_freep, struct nl_msg, nlmsg_free)

/* What ensure was asked for, parsed and checked. */
struct net_request {
    enum net_type type;
    const char *bridge;         /* Bridge name; borrowed from params. */
    const char *phys;           /* Physical interface or NULL (Vxlan). */
    unsigned int vlan;          /* 1..4094 (Vlan). */
    unsigned int vni;           /* 1..NET_VNI_MAX (Vxlan). */
    struct in_addr local;       /* VTEP address (Vxlan). */
    struct in_addr *peers;      /* Remote VTEPs, deduplicated (Vxlan). */
    size_t n_peers;
};

/* ------------------------------------------------------------------ */
/* libnl helpers. */

/* The problem code for libnl error 'err'. */
static enum problem
net_problem(int err)
{
    switch (err < 0 ? -err : err) {
    case NLE_EXIST:
    case NLE_BUSY:
        return PROBLEM_CONFLICT;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
        return PROBLEM_NOT_FOUND;
    case NLE_PERM:
    case NLE_NOACCESS:
        return PROBLEM_ACCESS_DENIED;
    case NLE_OPNOTSUPP:
        return PROBLEM_NOT_SUPPORTED;
    case NLE_INVAL:
    case NLE_RANGE:
        return PROBLEM_INVALID_ARGUMENT;
    default:
        return PROBLEM_INTERNAL_ERROR;
    }
}

/* Reports libnl error 'err' after the formatted context, in libnl's words:
 * "cannot create bridge 'br0': Object exists". */
static void __attribute__((format(printf, 2, 3)))
net_report(int err, const char *fmt, ...)
{
    va_list ap;
    char *what;

    va_start(ap, fmt);
    what = xvasprintf(fmt, ap);
    va_end(ap);
    error_report(net_problem(err), "%s: %s", what, nl_geterror(err));
    free(what);
}

/* A connected NETLINK_ROUTE socket (caller frees with nl_socket_free()),
 * or NULL with an error reported. */
static struct nl_sock *
net_sock_new(void)
{
    struct nl_sock *sock = nl_socket_alloc();
    int err;

    if (!sock) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot allocate a netlink "
                     "socket");
        return NULL;
    }
    err = nl_connect(sock, NETLINK_ROUTE);
    if (err < 0) {
        net_report(err, "cannot open a route netlink socket");
        nl_socket_free(sock);
        return NULL;
    }
    return sock;
}

/* Looks up link 'name'.  Returns 1 with '*link' set (caller puts it), 0
 * when there is no such link, -1 with an error reported. */
static int
net_link_get(struct nl_sock *sock, const char *name, struct rtnl_link **link)
{
    int err = rtnl_link_get_kernel(sock, 0, name, link);

    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) {
        *link = NULL;
        return 0;
    }
    if (err < 0) {
        net_report(err, "cannot look up interface '%s'", name);
        return -1;
    }
    return 1;
}

/* Like net_link_get(), for a link that must exist (just created): returns
 * 0 with '*link' set, or -1 with an error reported. */
static int
net_link_get_required(struct nl_sock *sock, const char *name,
                      struct rtnl_link **link)
{
    int r = net_link_get(sock, name, link);

    if (r == 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "interface '%s' vanished "
                     "right after its creation", name);
    }
    return r == 1 ? 0 : -1;
}

/* The link kind ("bridge", "vxlan", "tun"...), "" for none. */
static const char *
net_link_kind(struct rtnl_link *link)
{
    const char *kind = rtnl_link_get_type(link);

    return kind ? kind : "";
}

/* Sets IFF_UP on 'link' unless it is up.  Returns 0 or -1 (reported). */
static int
net_link_up(struct nl_sock *sock, struct rtnl_link *link)
{
    AUTO(net_link_freep) struct rtnl_link *change = NULL;
    int err;

    if (rtnl_link_get_flags(link) & IFF_UP) {
        return 0;
    }
    change = rtnl_link_alloc();
    rtnl_link_set_flags(change, IFF_UP);
    err = rtnl_link_change(sock, link, change, 0);
    if (err < 0) {
        net_report(err, "cannot set interface '%s' up",
                   rtnl_link_get_name(link));
        return -1;
    }
    return 0;
}

/* Deletes link 'name' if it exists.  Returns 0 or -1 (reported). */
static int
net_link_delete(struct nl_sock *sock, const char *name)
{
    AUTO(net_link_freep) struct rtnl_link *link = rtnl_link_alloc();
    int err;

    rtnl_link_set_name(link, name);
    err = rtnl_link_delete(sock, link);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV) {
        net_report(err, "cannot delete interface '%s'", name);
        return -1;
    }
    LOG_INFO("interface '%s' deleted", name);
    return 0;
}

/* Makes 'slave' a port of bridge 'master'.  Returns 0 or -1 (reported). */
static int
net_link_enslave(struct nl_sock *sock, struct rtnl_link *master,
                 struct rtnl_link *slave)
{
    int err;

    if (rtnl_link_get_master(slave) == rtnl_link_get_ifindex(master)) {
        return 0;
    }
    err = rtnl_link_enslave_ifindex(sock, rtnl_link_get_ifindex(master),
                                    rtnl_link_get_ifindex(slave));
    if (err < 0) {
        net_report(err, "cannot add interface '%s' to bridge '%s'",
                   rtnl_link_get_name(slave), rtnl_link_get_name(master));
        return -1;
    }
    LOG_INFO("interface '%s' added to bridge '%s'",
             rtnl_link_get_name(slave), rtnl_link_get_name(master));
    return 0;
}

/* An IPv4 address as an nl_addr (caller puts it). */
static struct nl_addr *
net_nl_addr4(struct in_addr a)
{
    return nl_addr_build(AF_INET, &a, sizeof a);
}

/* ------------------------------------------------------------------ */
/* Parameters. */

/* True if 'name' is a valid interface name for us: 1..15 characters of
 * [A-Za-z0-9_.-], not "." or "..". */
static bool
net_name_is_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n >= IFNAMSIZ || !strcmp(name, ".")
        || !strcmp(name, "..")) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-", name[i])) {
            return false;
        }
    }
    return true;
}

/* The interface name parameter 'field', or NULL with invalid-argument
 * reported. */
static const char *
net_param_name(json_t *params, const char *field)
{
    const char *name = json_string_value(json_object_get(params, field));

    if (!net_name_is_valid(name)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be an interface name of 1 to 15 "
                           "characters [A-Za-z0-9_.-], not '%s'", field,
                           name ? name : "(missing)");
        return NULL;
    }
    return name;
}

/* Parses the integer parameter 'field' in 'min'..'max' into '*out'.
 * Returns 0, or -1 with invalid-argument reported. */
static int
net_param_uint(json_t *params, const char *field, unsigned int min,
               unsigned int max, unsigned int *out)
{
    json_t *v = json_object_get(params, field);
    json_int_t i = json_integer_value(v);

    if (!json_is_integer(v) || i < min || i > max) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be an integer from %u to %u", field,
                           min, max);
        return -1;
    }
    *out = (unsigned int) i;
    return 0;
}

/* Parses dotted-quad 's' into '*a'.  Returns 0, or -1 with
 * invalid-argument reported against 'field'. */
static int
net_parse_ipv4(const char *field, const char *s, struct in_addr *a)
{
    if (!s || inet_pton(AF_INET, s, a) != 1) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, field,
                           "'%s' must be an IPv4 address, not '%s'", field,
                           s ? s : "(missing)");
        return -1;
    }
    return 0;
}

/* Frees what 'req' owns (not 'req'); an AUTO cleanup. */
static void
net_request_destroy(struct net_request *req)
{
    free(req->peers);
}

/* Parses ensure's 'params' into 'req'.  Returns 0, or -1 with
 * invalid-argument reported. */
static int
net_request_parse(json_t *params, struct net_request *req)
{
    const char *type = json_string_value(json_object_get(params, "type"));
    json_t *phys;
    json_t *peers;
    size_t i;
    json_t *p;

    memset(req, 0, sizeof *req);
    req->type = NET_TYPE_N;
    for (int t = 0; type && t < NET_TYPE_N; t++) {
        if (!strcmp(type, net_type_names[t])) {
            req->type = (enum net_type) t;
        }
    }
    if (req->type == NET_TYPE_N) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "type",
                           "'type' must be L2NoVlanNetwork, L2VlanNetwork "
                           "or VxlanNetwork, not '%s'",
                           type ? type : "(missing)");
        return -1;
    }
    req->bridge = net_param_name(params, "bridge");
    if (!req->bridge) {
        return -1;
    }
    phys = json_object_get(params, "physicalInterface");
    if (req->type != NET_TYPE_VXLAN || (phys && !json_is_null(phys))) {
        req->phys = net_param_name(params, "physicalInterface");
        if (!req->phys) {
            return -1;
        }
    }
    if (req->phys && !strcmp(req->phys, req->bridge)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "bridge",
                           "the bridge cannot be named like its interface "
                           "'%s'", req->phys);
        return -1;
    }
    if (req->type == NET_TYPE_VLAN) {
        return net_param_uint(params, "vlan", 1, 4094, &req->vlan);
    }
    if (req->type != NET_TYPE_VXLAN) {
        return 0;
    }
    if (net_param_uint(params, "vni", 1, NET_VNI_MAX, &req->vni) < 0
        || net_parse_ipv4("localIp", json_string_value(json_object_get(
                              params, "localIp")), &req->local) < 0) {
        return -1;
    }
    peers = json_object_get(params, "peers");
    if (peers && !json_is_null(peers)
        && (!json_is_array(peers) || json_array_size(peers) > NET_MAX_PEERS)) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "peers",
                           "'peers' must be an array of at most %d IPv4 "
                           "addresses", NET_MAX_PEERS);
        return -1;
    }
    req->peers = xcalloc(json_array_size(peers) + 1, sizeof *req->peers);
    json_array_foreach(peers, i, p) {
        struct in_addr a;
        bool dup;

        if (net_parse_ipv4("peers", json_string_value(p), &a) < 0) {
            return -1;
        }
        /* Our own address may be in the list (mgmt sends every host of
         * the network); replicating to ourselves would loop. */
        dup = a.s_addr == req->local.s_addr;
        for (size_t k = 0; !dup && k < req->n_peers; k++) {
            dup = req->peers[k].s_addr == a.s_addr;
        }
        if (!dup) {
            req->peers[req->n_peers++] = a;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Bridge descriptions (the interface alias). */

/* A bridge's description as kept in its alias. */
struct net_alias {
    bool ours;                  /* The alias is a kvmstack description. */
    enum net_type type;         /* Valid when 'ours'. */
    char uplink[IFNAMSIZ];      /* IF, VLAN or VXLAN device; may be "". */
};

/* Parses the alias of bridge 'br'. */
static void
net_alias_parse(struct rtnl_link *br, struct net_alias *a)
{
    const char *s = rtnl_link_get_ifalias(br);
    char type[32] = "";

    memset(a, 0, sizeof *a);
    if (!s || sscanf(s, NET_ALIAS_TAG " type=%31s uplink=%15s", type,
                     a->uplink) < 1) {
        return;
    }
    for (int t = 0; t < NET_TYPE_N; t++) {
        if (!strcmp(type, net_type_names[t])) {
            a->ours = true;
            a->type = (enum net_type) t;
        }
    }
}

/* Writes the description of 'req' (uplink 'uplink') into bridge 'br'
 * unless it is there.  Returns 0 or -1 (reported). */
static int
net_alias_set(struct nl_sock *sock, struct rtnl_link *br,
              const struct net_request *req, const char *uplink)
{
    AUTO(net_link_freep) struct rtnl_link *change = NULL;
    AUTOFREE char *alias = xasprintf(NET_ALIAS_TAG " type=%s uplink=%s",
                                     net_type_names[req->type], uplink);
    const char *cur = rtnl_link_get_ifalias(br);
    int err;

    if (cur && !strcmp(cur, alias)) {
        return 0;
    }
    change = rtnl_link_alloc();
    rtnl_link_set_ifalias(change, alias);
    err = rtnl_link_change(sock, br, change, 0);
    if (err < 0) {
        net_report(err, "cannot describe bridge '%s'", req->bridge);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Bridges. */

/* Looks up bridge 'req->bridge' and checks that ensure may converge it:
 * it is a bridge, and its description (if any) names the same network
 * type and 'uplink'.  Returns 1 with '*br' set, 0 when it does not exist,
 * -1 with conflict reported. */
static int
net_bridge_lookup(struct nl_sock *sock, const struct net_request *req,
                  const char *uplink, struct rtnl_link **br)
{
    struct net_alias a;
    int r = net_link_get(sock, req->bridge, br);

    if (r <= 0) {
        return r;
    }
    if (strcmp(net_link_kind(*br), "bridge")) {
        error_report(PROBLEM_CONFLICT, "interface '%s' exists and is not a "
                     "bridge", req->bridge);
        return -1;
    }
    net_alias_parse(*br, &a);
    if (a.ours && (a.type != req->type || strcmp(a.uplink, uplink))) {
        error_report(PROBLEM_CONFLICT, "bridge '%s' serves %s over '%s', "
                     "not %s over '%s'", req->bridge,
                     net_type_names[a.type], a.uplink,
                     net_type_names[req->type], uplink);
        return -1;
    }
    return 1;
}

/* Creates bridge 'req->bridge' (MAC 'mac' unless NULL, described with
 * 'uplink') and looks it up into '*br'.  Returns 0 or -1 (reported). */
static int
net_bridge_create(struct nl_sock *sock, const struct net_request *req,
                  const char *uplink, struct nl_addr *mac,
                  struct rtnl_link **br)
{
    AUTO(net_link_freep) struct rtnl_link *link = rtnl_link_bridge_alloc();
    AUTOFREE char *alias = xasprintf(NET_ALIAS_TAG " type=%s uplink=%s",
                                     net_type_names[req->type], uplink);
    int err;

    rtnl_link_set_name(link, req->bridge);
    rtnl_link_set_ifalias(link, alias);
    if (mac) {
        rtnl_link_set_addr(link, mac);
    }
    err = rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL);
    if (err < 0) {
        net_report(err, "cannot create bridge '%s'", req->bridge);
        return -1;
    }
    LOG_INFO("bridge '%s' created for %s over '%s'", req->bridge,
             net_type_names[req->type], uplink);
    return net_link_get_required(sock, req->bridge, br);
}

/* Every link of the host, in a link cache (caller frees); NULL with an
 * error reported. */
static struct nl_cache *
net_links(struct nl_sock *sock)
{
    struct nl_cache *cache = NULL;
    int err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &cache);

    if (err < 0) {
        net_report(err, "cannot list interfaces");
        return NULL;
    }
    return cache;
}

/* ------------------------------------------------------------------ */
/* Moving IPv4 addresses and gateway routes between interfaces. */

/* Adds a copy of IPv4 address 'old' to interface 'to'.  An address that
 * is there already counts as added.  Returns 0 or -1 (reported). */
static int
net_addr_copy(struct nl_sock *sock, struct rtnl_addr *old, int to,
              const char *to_name)
{
    AUTO(net_rtaddr_freep) struct rtnl_addr *a = rtnl_addr_alloc();
    AUTO(net_addr_freep) struct nl_addr *local =
        nl_addr_clone(rtnl_addr_get_local(old));
    struct nl_addr *peer = rtnl_addr_get_peer(old);
    struct nl_addr *bcast = rtnl_addr_get_broadcast(old);
    char buf[INET6_ADDRSTRLEN + 8];
    int err;

    rtnl_addr_set_ifindex(a, to);
    rtnl_addr_set_family(a, AF_INET);
    nl_addr_set_prefixlen(local, peer ? 32 : rtnl_addr_get_prefixlen(old));
    rtnl_addr_set_local(a, local);
    if (peer) {
        rtnl_addr_set_peer(a, peer);
    }
    rtnl_addr_set_prefixlen(a, rtnl_addr_get_prefixlen(old));
    if (bcast) {
        rtnl_addr_set_broadcast(a, bcast);
    }
    rtnl_addr_set_scope(a, rtnl_addr_get_scope(old));
    rtnl_addr_set_flags(a, rtnl_addr_get_flags(old) & IFA_F_NOPREFIXROUTE);
    if (rtnl_addr_get_valid_lifetime(old) != 0xffffffffU) {
        rtnl_addr_set_valid_lifetime(a, rtnl_addr_get_valid_lifetime(old));
        rtnl_addr_set_preferred_lifetime(
            a, rtnl_addr_get_preferred_lifetime(old));
    }
    nl_addr2str(local, buf, sizeof buf);
    err = rtnl_addr_add(sock, a, 0);
    if (err < 0 && err != -NLE_EXIST) {
        net_report(err, "cannot add address %s to '%s'", buf, to_name);
        return -1;
    }
    LOG_INFO("address %s added to '%s'", buf, to_name);
    return 0;
}

/* Adds a copy of gateway route 'old' through interface 'to'.  Returns 0
 * or -1 (reported). */
static int
net_route_copy(struct nl_sock *sock, struct rtnl_route *old, int to,
               const char *to_name)
{
    AUTO(net_route_freep) struct rtnl_route *r = rtnl_route_alloc();
    struct rtnl_nexthop *onh = rtnl_route_nexthop_n(old, 0);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    char buf[INET6_ADDRSTRLEN + 8];
    int err;

    rtnl_route_set_family(r, AF_INET);
    rtnl_route_set_table(r, rtnl_route_get_table(old));
    rtnl_route_set_dst(r, rtnl_route_get_dst(old));
    rtnl_route_set_priority(r, rtnl_route_get_priority(old));
    rtnl_route_set_protocol(r, rtnl_route_get_protocol(old));
    rtnl_route_set_scope(r, rtnl_route_get_scope(old));
    rtnl_route_set_type(r, RTN_UNICAST);
    if (rtnl_route_get_pref_src(old)) {
        rtnl_route_set_pref_src(r, rtnl_route_get_pref_src(old));
    }
    rtnl_route_nh_set_ifindex(nh, to);
    rtnl_route_nh_set_gateway(nh, rtnl_route_nh_get_gateway(onh));
    rtnl_route_nh_set_flags(nh, rtnl_route_nh_get_flags(onh)
                                & RTNH_F_ONLINK);
    rtnl_route_add_nexthop(r, nh);
    if (nl_addr_get_prefixlen(rtnl_route_get_dst(old)) == 0) {
        snprintf(buf, sizeof buf, "default");
    } else {
        nl_addr2str(rtnl_route_get_dst(old), buf, sizeof buf);
    }
    err = rtnl_route_add(sock, r, 0);
    if (err < 0 && err != -NLE_EXIST) {
        net_report(err, "cannot add route %s through '%s'", buf, to_name);
        return -1;
    }
    LOG_INFO("route %s moved to '%s'", buf, to_name);
    return 0;
}

/* Moves the IPv4 addresses of interface 'from' to 'to', with the gateway
 * routes (default route included) of the main table that leave through
 * 'from': copies first, then deletes the originals (secondary addresses
 * before primaries, so that deleting a primary does not take secondaries
 * with it).  Returns 0 or -1 (reported). */
static int
net_move_ipv4(struct nl_sock *sock, struct rtnl_link *from,
              struct rtnl_link *to)
{
    AUTO(net_cache_freep) struct nl_cache *addrs = NULL;
    AUTO(net_cache_freep) struct nl_cache *routes = NULL;
    int ifrom = rtnl_link_get_ifindex(from);
    int ito = rtnl_link_get_ifindex(to);
    const char *to_name = rtnl_link_get_name(to);
    const char *from_name = rtnl_link_get_name(from);
    struct nl_object *o;
    int moved = 0;
    int err;

    err = rtnl_addr_alloc_cache(sock, &addrs);
    if (err < 0) {
        net_report(err, "cannot list addresses");
        return -1;
    }
    err = rtnl_route_alloc_cache(sock, AF_INET, 0, &routes);
    if (err < 0) {
        net_report(err, "cannot list routes");
        return -1;
    }
    for (o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *) o;

        if (rtnl_addr_get_family(a) == AF_INET
            && rtnl_addr_get_ifindex(a) == ifrom) {
            if (net_addr_copy(sock, a, ito, to_name) < 0) {
                return -1;
            }
            moved++;
        }
    }
    if (!moved) {
        return 0;
    }
    for (o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *r = (struct rtnl_route *) o;
        struct rtnl_nexthop *nh;

        if (rtnl_route_get_family(r) != AF_INET
            || rtnl_route_get_table(r) != RT_TABLE_MAIN
            || rtnl_route_get_type(r) != RTN_UNICAST
            || rtnl_route_get_nnexthops(r) != 1) {
            continue;
        }
        nh = rtnl_route_nexthop_n(r, 0);
        if (rtnl_route_nh_get_ifindex(nh) != ifrom
            || !rtnl_route_nh_get_gateway(nh)) {
            continue;
        }
        if (net_route_copy(sock, r, ito, to_name) < 0) {
            return -1;
        }
        err = rtnl_route_delete(sock, r, 0);
        if (err < 0 && err != -NLE_OBJ_NOTFOUND) {
            net_report(err, "cannot delete a route through '%s'",
                       from_name);
            return -1;
        }
    }
    for (int secondary = 1; secondary >= 0; secondary--) {
        for (o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
            struct rtnl_addr *a = (struct rtnl_addr *) o;
            bool sec = rtnl_addr_get_flags(a) & IFA_F_SECONDARY;
            char buf[INET6_ADDRSTRLEN + 8];

            if (rtnl_addr_get_family(a) != AF_INET
                || rtnl_addr_get_ifindex(a) != ifrom
                || sec != (secondary == 1)) {
                continue;
            }
            nl_addr2str(rtnl_addr_get_local(a), buf, sizeof buf);
            err = rtnl_addr_delete(sock, a, 0);
            if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR) {
                net_report(err, "cannot delete address %s from '%s'", buf,
                           from_name);
                return -1;
            }
            LOG_INFO("address %s deleted from '%s'", buf, from_name);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* VXLAN FDB (peers). */

/* Collects the remote IPv4 addresses of the all-zero-MAC FDB entries of
 * one VXLAN device. */
struct net_fdb_dump {
    int ifindex;                /* The VXLAN device. */
    struct in_addr *dsts;       /* Remotes found. */
    size_t n;
    size_t cap;
};

/* nl_recvmsgs() callback: records the remote of one all-zero-MAC FDB
 * entry of the VXLAN device 'arg->ifindex'; ignores everything else. */
static int
net_fdb_dump_cb(struct nl_msg *msg, void *arg)
{
    static const unsigned char zero[ETH_ALEN];
    struct net_fdb_dump *d = arg;
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct ndmsg *ndm = nlmsg_data(nlh);
    struct nlattr *tb[NDA_MAX + 1];
    struct in_addr a;

    if (nlh->nlmsg_type != RTM_NEWNEIGH
        || nlmsg_parse(nlh, sizeof *ndm, tb, NDA_MAX, NULL) < 0
        || ndm->ndm_family != AF_BRIDGE || ndm->ndm_ifindex != d->ifindex
        || !tb[NDA_LLADDR] || nla_len(tb[NDA_LLADDR]) != ETH_ALEN
        || memcmp(nla_data(tb[NDA_LLADDR]), zero, ETH_ALEN)
        || !tb[NDA_DST] || nla_len(tb[NDA_DST]) != sizeof a) {
        return NL_OK;
    }
    memcpy(&a, nla_data(tb[NDA_DST]), sizeof a);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->dsts = xrealloc(d->dsts, d->cap * sizeof *d->dsts);
    }
    d->dsts[d->n++] = a;
    return NL_OK;
}

/* Fills 'd' with the remotes of VXLAN device 'd->ifindex'.  Returns 0 or
 * -1 (reported). */
static int
net_fdb_list(struct nl_sock *sock, struct net_fdb_dump *d)
{
    AUTO(net_msg_freep) struct nl_msg *msg =
        nlmsg_alloc_simple(RTM_GETNEIGH, NLM_F_DUMP);
    struct ndmsg ndm = { .ndm_family = AF_BRIDGE,
                         .ndm_ifindex = d->ifindex };
    struct nl_cb *cb;
    int err;

    if (!msg || nlmsg_append(msg, &ndm, sizeof ndm, NLMSG_ALIGNTO) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot build an FDB dump "
                     "request");
        return -1;
    }
    err = nl_send_auto(sock, msg);
    if (err >= 0) {
        /* nl_socket_get_cb() takes a reference. */
        struct nl_cb *sock_cb = nl_socket_get_cb(sock);

        cb = nl_cb_clone(sock_cb);
        nl_cb_put(sock_cb);
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, net_fdb_dump_cb, d);
        err = nl_recvmsgs(sock, cb);
        nl_cb_put(cb);
    }
    if (err < 0) {
        net_report(err, "cannot list the FDB");
        return -1;
    }
    return 0;
}

/* Adds ('add') or deletes the all-zero-MAC FDB entry towards 'dst' on
 * VXLAN device 'ifindex'.  Returns 0 or -1 (reported). */
static int
net_fdb_change(struct nl_sock *sock, int ifindex, const char *vx,
               struct in_addr dst, bool add)
{
    static const unsigned char zero[ETH_ALEN];
    AUTO(net_msg_freep) struct nl_msg *msg = nlmsg_alloc_simple(
        add ? RTM_NEWNEIGH : RTM_DELNEIGH,
        add ? NLM_F_CREATE | NLM_F_APPEND : 0);
    struct ndmsg ndm = {
        .ndm_family = AF_BRIDGE,
        .ndm_ifindex = ifindex,
        .ndm_state = NUD_NOARP | NUD_PERMANENT,
        .ndm_flags = NTF_SELF,
    };
    char buf[INET_ADDRSTRLEN];
    int err;

    inet_ntop(AF_INET, &dst, buf, sizeof buf);
    if (!msg || nlmsg_append(msg, &ndm, sizeof ndm, NLMSG_ALIGNTO) < 0
        || nla_put(msg, NDA_LLADDR, ETH_ALEN, zero) < 0
        || nla_put(msg, NDA_DST, sizeof dst, &dst) < 0) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot build an FDB request");
        return -1;
    }
    err = nl_send_auto(sock, msg);
    if (err >= 0) {
        err = nl_wait_for_ack(sock);
    }
    if (err < 0 && !(add && err == -NLE_EXIST)
        && !(!add && err == -NLE_OBJ_NOTFOUND)) {
        net_report(err, "cannot %s VXLAN peer %s %s '%s'",
                   add ? "add" : "delete", buf, add ? "to" : "from", vx);
        return -1;
    }
    LOG_INFO("VXLAN peer %s %s '%s'", buf, add ? "added to" : "deleted from",
             vx);
    return 0;
}

/* Makes the all-zero-MAC FDB entries of VXLAN device 'vx' exactly
 * 'req->peers'.  Returns 0 or -1 (reported). */
static int
net_fdb_sync(struct nl_sock *sock, struct rtnl_link *vx,
             const struct net_request *req)
{
    struct net_fdb_dump d = { .ifindex = rtnl_link_get_ifindex(vx) };
    const char *name = rtnl_link_get_name(vx);
    int rc = -1;

    if (net_fdb_list(sock, &d) < 0) {
        goto out;
    }
    for (size_t i = 0; i < d.n; i++) {
        bool wanted = false;

        for (size_t k = 0; k < req->n_peers && !wanted; k++) {
            wanted = req->peers[k].s_addr == d.dsts[i].s_addr;
        }
        if (!wanted
            && net_fdb_change(sock, d.ifindex, name, d.dsts[i], false) < 0) {
            goto out;
        }
    }
    for (size_t k = 0; k < req->n_peers; k++) {
        bool present = false;

        for (size_t i = 0; i < d.n && !present; i++) {
            present = req->peers[k].s_addr == d.dsts[i].s_addr;
        }
        if (!present && net_fdb_change(sock, d.ifindex, name,
                                       req->peers[k], true) < 0) {
            goto out;
        }
    }
    rc = 0;

out:
    free(d.dsts);
    return rc;
}

/* ------------------------------------------------------------------ */
/* net.bridge.ensure */

/* True if IPv4 address 'a' is configured on some interface. */
static int
net_is_local_ipv4(struct nl_sock *sock, struct in_addr a)
{
    AUTO(net_cache_freep) struct nl_cache *addrs = NULL;
    int err = rtnl_addr_alloc_cache(sock, &addrs);

    if (err < 0) {
        net_report(err, "cannot list addresses");
        return -1;
    }
    for (struct nl_object *o = nl_cache_get_first(addrs); o;
         o = nl_cache_get_next(o)) {
        struct nl_addr *l = rtnl_addr_get_local((struct rtnl_addr *) o);

        if (l && nl_addr_get_family(l) == AF_INET
            && nl_addr_get_len(l) == sizeof a
            && !memcmp(nl_addr_get_binary_addr(l), &a, sizeof a)) {
            return 1;
        }
    }
    return 0;
}

/* NoVlan: bridge over 'phys'; phys's IPv4 addresses and gateway routes
 * move to the bridge. */
static int
net_ensure_novlan(struct nl_sock *sock, const struct net_request *req,
                  struct rtnl_link *phys)
{
    AUTO(net_link_freep) struct rtnl_link *br = NULL;
    bool created = false;
    int master = rtnl_link_get_master(phys);
    int r = net_bridge_lookup(sock, req, req->phys, &br);

    if (r < 0) {
        return -1;
    }
    if (master && (!br || master != rtnl_link_get_ifindex(br))) {
        char name[IFNAMSIZ] = "?";

        if_indextoname((unsigned int) master, name);
        error_report(PROBLEM_CONFLICT, "interface '%s' is already a port of "
                     "'%s'", req->phys, name);
        return -1;
    }
    if (!strcmp(net_link_kind(phys), "bridge")) {
        error_report(PROBLEM_INVALID_ARGUMENT, "physical interface '%s' is "
                     "itself a bridge", req->phys);
        return -1;
    }
    if (!br) {
        if (net_bridge_create(sock, req, req->phys, rtnl_link_get_addr(phys),
                              &br) < 0) {
            return -1;
        }
        created = true;
    }
    if (net_alias_set(sock, br, req, req->phys) < 0
        || net_link_up(sock, br) < 0
        || net_link_enslave(sock, br, phys) < 0) {
        if (created) {
            net_link_delete(sock, req->bridge);
        }
        return -1;
    }
    if (net_link_up(sock, phys) < 0 || net_move_ipv4(sock, phys, br) < 0) {
        return -1;
    }
    return 0;
}

/* Vlan: 802.1q sub-interface PHYS.N enslaved to the bridge.  Nothing is
 * created when the kernel lacks 802.1q. */
static int
net_ensure_vlan(struct nl_sock *sock, const struct net_request *req,
                struct rtnl_link *phys)
{
    AUTO(net_link_freep) struct rtnl_link *br = NULL;
    AUTO(net_link_freep) struct rtnl_link *vl = NULL;
    AUTOFREE char *vname = xasprintf("%s.%u", req->phys, req->vlan);
    bool created_vl = false;
    bool created_br = false;
    int r;
    int err;

    if (strlen(vname) >= IFNAMSIZ) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "physicalInterface",
                           "the VLAN interface name '%s' would be longer "
                           "than %d characters", vname, IFNAMSIZ - 1);
        return -1;
    }
    if (net_bridge_lookup(sock, req, vname, &br) < 0) {
        return -1;
    }
    r = net_link_get(sock, vname, &vl);
    if (r < 0) {
        return -1;
    }
    if (r && (strcmp(net_link_kind(vl), "vlan")
              || rtnl_link_vlan_get_id(vl) != (int) req->vlan
              || rtnl_link_get_link(vl) != rtnl_link_get_ifindex(phys))) {
        error_report(PROBLEM_CONFLICT, "interface '%s' exists and is not "
                     "VLAN %u over '%s'", vname, req->vlan, req->phys);
        return -1;
    }
    if (!r) {
        AUTO(net_link_freep) struct rtnl_link *n = rtnl_link_vlan_alloc();

        rtnl_link_set_name(n, vname);
        rtnl_link_set_link(n, rtnl_link_get_ifindex(phys));
        rtnl_link_vlan_set_id(n, (uint16_t) req->vlan);
        err = rtnl_link_add(sock, n, NLM_F_CREATE | NLM_F_EXCL);
        if (err == -NLE_OPNOTSUPP) {
            error_report(PROBLEM_NOT_SUPPORTED, "cannot create VLAN %u on "
                         "'%s': this kernel lacks 802.1q VLAN support (no "
                         "8021q module; the kernel answered '%s' for link "
                         "type 'vlan'); use a VxlanNetwork instead",
                         req->vlan, req->phys, nl_geterror(err));
            return -1;
        }
        if (err < 0) {
            net_report(err, "cannot create VLAN interface '%s'", vname);
            return -1;
        }
        created_vl = true;
        LOG_INFO("VLAN interface '%s' created", vname);
        if (net_link_get_required(sock, vname, &vl) < 0) {
            goto fail;
        }
    }
    if (!br) {
        if (net_bridge_create(sock, req, vname, rtnl_link_get_addr(vl),
                              &br) < 0) {
            goto fail;
        }
        created_br = true;
    }
    if (net_alias_set(sock, br, req, vname) < 0
        || net_link_enslave(sock, br, vl) < 0
        || net_link_up(sock, phys) < 0 || net_link_up(sock, vl) < 0
        || net_link_up(sock, br) < 0) {
        goto fail;
    }
    return 0;

fail:
    if (created_br) {
        net_link_delete(sock, req->bridge);
    }
    if (created_vl) {
        net_link_delete(sock, vname);
    }
    return -1;
}

/* True if existing VXLAN device 'vx' has the VNI, local address, port and
 * underlying interface that 'req' asks for. */
static bool
net_vxlan_matches(struct rtnl_link *vx, const struct net_request *req,
                  struct rtnl_link *phys)
{
    AUTO(net_addr_freep) struct nl_addr *local = NULL;
    uint32_t id = 0;
    uint32_t port = 0;
    uint32_t link = 0;

    if (strcmp(net_link_kind(vx), "vxlan")
        || rtnl_link_vxlan_get_id(vx, &id) < 0 || id != req->vni
        || rtnl_link_vxlan_get_local(vx, &local) < 0 || !local
        || nl_addr_get_len(local) != sizeof req->local
        || memcmp(nl_addr_get_binary_addr(local), &req->local,
                  sizeof req->local)
        || rtnl_link_vxlan_get_port(vx, &port) < 0
        || port != NET_VXLAN_PORT) {
        return false;
    }
    if (rtnl_link_vxlan_get_link(vx, &link) < 0) {
        link = 0;
    }
    return link == (uint32_t) (phys ? rtnl_link_get_ifindex(phys) : 0);
}

/* Vxlan: device vx<VNI> (UDP 4789, local address, learning) enslaved to
 * the bridge, with one all-zero-MAC FDB entry per peer. */
static int
net_ensure_vxlan(struct nl_sock *sock, const struct net_request *req,
                 struct rtnl_link *phys)
{
    AUTO(net_link_freep) struct rtnl_link *br = NULL;
    AUTO(net_link_freep) struct rtnl_link *vx = NULL;
    AUTOFREE char *vname = xasprintf("vx%u", req->vni);
    char local_str[INET_ADDRSTRLEN];
    bool created_vx = false;
    bool created_br = false;
    int r;
    int err;

    inet_ntop(AF_INET, &req->local, local_str, sizeof local_str);
    r = net_is_local_ipv4(sock, req->local);
    if (r <= 0) {
        if (r == 0) {
            error_report_field(PROBLEM_INVALID_ARGUMENT, "localIp",
                               "'localIp' %s is not an address of this "
                               "host", local_str);
        }
        return -1;
    }
    if (net_bridge_lookup(sock, req, vname, &br) < 0) {
        return -1;
    }
    r = net_link_get(sock, vname, &vx);
    if (r < 0) {
        return -1;
    }
    if (r && strcmp(net_link_kind(vx), "vxlan")) {
        error_report(PROBLEM_CONFLICT, "interface '%s' exists and is not a "
                     "VXLAN device", vname);
        return -1;
    }
    if (r && rtnl_link_get_master(vx)
        && (!br || rtnl_link_get_master(vx) != rtnl_link_get_ifindex(br))) {
        error_report(PROBLEM_CONFLICT, "VXLAN device '%s' (VNI %u) is a "
                     "port of another bridge", vname, req->vni);
        return -1;
    }
    if (r && !net_vxlan_matches(vx, req, phys)) {
        LOG_INFO("VXLAN device '%s' has other settings; recreating it",
                 vname);
        if (net_link_delete(sock, vname) < 0) {
            return -1;
        }
        rtnl_link_put(vx);
        vx = NULL;
        r = 0;
    }
    if (!r) {
        AUTO(net_link_freep) struct rtnl_link *n = rtnl_link_vxlan_alloc();
        AUTO(net_addr_freep) struct nl_addr *local = net_nl_addr4(req->local);
        unsigned int mtu = phys ? rtnl_link_get_mtu(phys) : 1500;

        rtnl_link_set_name(n, vname);
        rtnl_link_vxlan_set_id(n, req->vni);
        rtnl_link_vxlan_set_local(n, local);
        rtnl_link_vxlan_set_port(n, NET_VXLAN_PORT);
        rtnl_link_vxlan_set_learning(n, 1);
        if (phys) {
            rtnl_link_vxlan_set_link(n, (uint32_t) rtnl_link_get_ifindex(
                                         phys));
        }
        if (mtu > NET_VXLAN_OVERHEAD + 68) {
            rtnl_link_set_mtu(n, mtu - NET_VXLAN_OVERHEAD);
        }
        err = rtnl_link_add(sock, n, NLM_F_CREATE | NLM_F_EXCL);
        if (err == -NLE_EXIST) {
            error_report(PROBLEM_CONFLICT, "cannot create VXLAN device '%s': "
                         "another device already uses VNI %u on UDP port %d",
                         vname, req->vni, NET_VXLAN_PORT);
            return -1;
        }
        if (err < 0) {
            net_report(err, "cannot create VXLAN device '%s'", vname);
            return -1;
        }
        created_vx = true;
        LOG_INFO("VXLAN device '%s' created (VNI %u, local %s)", vname,
                 req->vni, local_str);
        if (net_link_get_required(sock, vname, &vx) < 0) {
            goto fail;
        }
    }
    if (!br) {
        if (net_bridge_create(sock, req, vname, NULL, &br) < 0) {
            goto fail;
        }
        created_br = true;
    }
    if (net_alias_set(sock, br, req, vname) < 0
        || net_link_enslave(sock, br, vx) < 0
        || (phys && net_link_up(sock, phys) < 0)
        || net_link_up(sock, vx) < 0 || net_link_up(sock, br) < 0
        || net_fdb_sync(sock, vx, req) < 0) {
        goto fail;
    }
    return 0;

fail:
    if (created_br) {
        net_link_delete(sock, req->bridge);
    }
    if (created_vx) {
        net_link_delete(sock, vname);
    }
    return -1;
}

/* net.bridge.ensure: see proto.h. */
static json_t *
net_bridge_ensure(json_t *params)
{
    AUTO(net_sock_freep) struct nl_sock *sock = NULL;
    AUTO(net_link_freep) struct rtnl_link *phys = NULL;
    AUTO(net_request_destroy) struct net_request req = { .peers = NULL };
    int rc = -1;

    if (net_request_parse(params, &req) < 0) {
        return NULL;
    }
    sock = net_sock_new();
    if (!sock) {
        return NULL;
    }
    if (req.phys) {
        int r = net_link_get(sock, req.phys, &phys);

        if (r == 0) {
            error_report_field(PROBLEM_NOT_FOUND, "physicalInterface",
                               "interface '%s' does not exist", req.phys);
        }
        if (r <= 0) {
            return NULL;
        }
    }
    switch (req.type) {
    case NET_TYPE_NOVLAN:
        rc = net_ensure_novlan(sock, &req, phys);
        break;
    case NET_TYPE_VLAN:
        rc = net_ensure_vlan(sock, &req, phys);
        break;
    case NET_TYPE_VXLAN:
        rc = net_ensure_vxlan(sock, &req, phys);
        break;
    case NET_TYPE_N:
    default:
        error_report(PROBLEM_INTERNAL_ERROR, "bad network type");
        break;
    }
    if (rc < 0) {
        return NULL;
    }
    LOG_INFO("bridge '%s' ensured (%s)", req.bridge,
             net_type_names[req.type]);
    return json_pack("{s:s}", "bridge", req.bridge);
}

/* ------------------------------------------------------------------ */
/* net.bridge.remove */

/* True if port 'l' of a bridge described by 'a' may go with the bridge:
 * its VLAN or VXLAN device, or the uplink of a NoVlan bridge. */
static bool
net_port_is_ours(struct rtnl_link *l, const struct net_alias *a)
{
    const char *kind = net_link_kind(l);

    return !strcmp(kind, "vlan") || !strcmp(kind, "vxlan")
           || (a->ours && a->type == NET_TYPE_NOVLAN
               && !strcmp(rtnl_link_get_name(l), a->uplink));
}

/* Gives the IPv4 addresses of NoVlan bridge 'br' back to its uplink
 * 'a->uplink' and takes the uplink out of the bridge.  Returns 0 or -1
 * (reported). */
static int
net_release_uplink(struct nl_sock *sock, struct rtnl_link *br,
                   const struct net_alias *a)
{
    AUTO(net_link_freep) struct rtnl_link *up = NULL;
    int r = net_link_get(sock, a->uplink, &up);
    int err;

    if (r < 0) {
        return -1;
    }
    if (r == 0 || rtnl_link_get_master(up) != rtnl_link_get_ifindex(br)) {
        LOG_WARN("uplink '%s' of bridge '%s' is gone; no address moves "
                 "back", a->uplink, rtnl_link_get_name(br));
        return 0;
    }
    if (net_move_ipv4(sock, br, up) < 0) {
        return -1;
    }
    err = rtnl_link_release_ifindex(sock, rtnl_link_get_ifindex(up));
    if (err < 0) {
        net_report(err, "cannot take '%s' out of bridge '%s'", a->uplink,
                   rtnl_link_get_name(br));
        return -1;
    }
    LOG_INFO("interface '%s' left bridge '%s'", a->uplink,
             rtnl_link_get_name(br));
    return 0;
}

/* net.bridge.remove: see proto.h. */
static json_t *
net_bridge_remove(json_t *params)
{
    const char *name = net_param_name(params, "bridge");
    AUTO(net_sock_freep) struct nl_sock *sock = NULL;
    AUTO(net_link_freep) struct rtnl_link *br = NULL;
    AUTO(net_cache_freep) struct nl_cache *links = NULL;
    struct nl_object *o;
    struct net_alias a;
    int ifbr;
    int r;

    if (!name) {
        return NULL;
    }
    sock = net_sock_new();
    if (!sock) {
        return NULL;
    }
    r = net_link_get(sock, name, &br);
    if (r <= 0) {
        return r == 0 ? json_object() : NULL;
    }
    if (strcmp(net_link_kind(br), "bridge")) {
        error_report(PROBLEM_CONFLICT, "interface '%s' is not a bridge",
                     name);
        return NULL;
    }
    net_alias_parse(br, &a);
    ifbr = rtnl_link_get_ifindex(br);
    links = net_links(sock);
    if (!links) {
        return NULL;
    }
    /* First refuse, so that nothing changes while a VM still uses it. */
    for (o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *) o;

        if (rtnl_link_get_master(l) == ifbr && !net_port_is_ours(l, &a)) {
            error_report(PROBLEM_CONFLICT, "bridge '%s' is still in use by "
                         "port '%s' (a VM NIC?); refusing to remove it",
                         name, rtnl_link_get_name(l));
            return NULL;
        }
    }
    if (a.ours && a.type == NET_TYPE_NOVLAN && a.uplink[0]
        && net_release_uplink(sock, br, &a) < 0) {
        return NULL;
    }
    for (o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *) o;
        const char *kind = net_link_kind(l);

        if (rtnl_link_get_master(l) == ifbr
            && (!strcmp(kind, "vlan") || !strcmp(kind, "vxlan"))
            && net_link_delete(sock, rtnl_link_get_name(l)) < 0) {
            return NULL;
        }
    }
    if (net_link_delete(sock, name) < 0) {
        return NULL;
    }
    LOG_INFO("bridge '%s' removed", name);
    return json_object();
}

static const struct agent_method net_methods[] = {
    { "net.bridge.ensure", net_bridge_ensure },
    { "net.bridge.remove", net_bridge_remove },
    { 0 },
};

const struct agent_module net_module = {
    .name = "net",
    .methods = net_methods,
};
