/* addr.h: the router's interfaces, addresses, default route and IP
 * forwarding, over netlink (libnl-route-3; never runs ip). */
#ifndef KVMSTACK_VR_ADDR_H
#define KVMSTACK_VR_ADDR_H 1

#include <stdbool.h>

#include "config.h"

struct addr;

/* A new state with a NETLINK_ROUTE socket; caller frees with addr_free().
 * NULL with an error reported when netlink cannot be opened. */
struct addr *addr_new(void);

void addr_free(struct addr *a);

/* Fills the ifname and ifindex of every interface of 'cfg' by its MAC.
 * Returns 0, or -1 with not-found reported naming the MAC. */
int addr_resolve(struct addr *a, struct vr_config *cfg);

/* Converges the kernel to 'cfg' (resolved): each NIC up with its address
 * (and only that IPv4 address, plus the VIPs as /32s on the public NIC),
 * the default route via the public NIC's gateway, IPv4 forwarding on.
 * Does nothing when the addressing equals what the last successful call
 * set.  Sets '*changed'.  Returns 0, or -1 with libnl's error reported. */
int addr_apply(struct addr *a, const struct vr_config *cfg, bool *changed);

#endif
