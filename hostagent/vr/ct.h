/* ct.h: flushing conntrack entries of port-forwarding rules
 * (libnetfilter_conntrack). */
#ifndef KVMSTACK_VR_CT_H
#define KVMSTACK_VR_CT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One destination-NATed IPv4 connection, as conntrack saw it. */
struct ct_entry {
    uint8_t l4proto;            /* IPPROTO_TCP, IPPROTO_UDP, ... */
    uint32_t orig_dst;          /* Address the client connected to (VIP),
                                 * network byte order. */
    uint16_t orig_dport;        /* Port it connected to, host order. */
    uint32_t reply_src;         /* Where it was sent (the DNAT target). */
    uint16_t reply_sport;       /* Target port, host order. */
};

/* Decides whether 'e' is stale (true: delete it). */
typedef bool ct_stale_fn(const struct ct_entry *e, void *aux);

/* Deletes every destination-NATed IPv4 conntrack entry for which
 * 'stale'(entry, 'aux') is true, so that the next packet of such a flow
 * is NATed by the current ruleset.  Stores the number deleted in
 * '*n_deleted'.  Returns 0, or -1 with internal-error reported (netlink
 * failure; entries deleted before it stay deleted). */
int ct_flush(ct_stale_fn *stale, void *aux, size_t *n_deleted);

#endif
