/* dhcp.h: DHCP static leases and DNS for the private side, served by a
 * dnsmasq child process that kvmstack-vr configures and supervises. */
#ifndef KVMSTACK_VR_DHCP_H
#define KVMSTACK_VR_DHCP_H 1

#include <stdbool.h>

#include "config.h"

struct dhcp;

/* A new supervisor whose files live in 'run_dir' (created if missing,
 * e.g. /run/kvmstack-vr) and which runs 'dnsmasq' (a path or a name in
 * PATH).  Caller frees with dhcp_free(), which stops dnsmasq. */
struct dhcp *dhcp_new(const char *run_dir, const char *dnsmasq);

void dhcp_free(struct dhcp *d);

/* Converges dnsmasq to 'cfg' (resolved interfaces): no DHCP section stops
 * it; a change of static hosts only rewrites the hosts files and sends
 * SIGHUP; any other change rewrites dnsmasq.conf and restarts it.  Sets
 * '*changed'.  Returns 0, or -1 with an error reported (dnsmasq's own
 * message when it refuses to start). */
int dhcp_apply(struct dhcp *d, const struct vr_config *cfg, bool *changed);

/* Reaps dnsmasq if it died and restarts it (at most once a second);
 * called from the main loop at least every second. */
void dhcp_tick(struct dhcp *d);

#endif
