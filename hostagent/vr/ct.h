/* ct.h: flushing conntrack entries of port-forwarding rules
 * (libnetfilter_conntrack), from an index kept by conntrack events. */
#ifndef KVMSTACK_VR_CT_H
#define KVMSTACK_VR_CT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ct;

/* One destination-NATed IPv4 connection, as conntrack saw it. */
struct ct_entry {
    uint8_t l4proto;            /* IPPROTO_TCP, IPPROTO_UDP, ... */
    uint32_t orig_dst;          /* Address the client connected to (VIP),
                                 * network byte order. */
    uint16_t orig_dport;        /* Port it connected to, host order. */
    uint32_t reply_src;         /* Where it was sent (the DNAT target). */
    uint16_t reply_sport;       /* Target port, host order. */
};

/* A VIP port whose connections may be stale. */
struct ct_key {
    uint8_t l4proto;            /* IPPROTO_TCP or IPPROTO_UDP. */
    uint32_t dst;               /* VIP, network byte order. */
    uint16_t dport;             /* VIP port, host order. */
};

/* What one ct_flush() did. */
struct ct_result {
    size_t deleted;             /* Entries deleted. */
    bool dumped;                /* The conntrack table was dumped (the
                                 * index was unreliable), not looked up. */
};

/* Decides whether 'e' is stale (true: delete it). */
typedef bool ct_stale_fn(const struct ct_entry *e, void *aux);

/* A new conntrack tracker for this network namespace: subscribes to the
 * conntrack events (new and destroyed entries) and seeds its index of the
 * destination-NATed IPv4 TCP/UDP entries with one dump.  Never fails: a
 * tracker without events (logged) dumps on every flush.  Environment
 * (debugging, tests): KVMSTACK_VR_CT_RCVBUF (bytes of the event socket's
 * receive buffer, default 8 MiB), KVMSTACK_VR_CT_MAX (entries indexed
 * before the index is dropped; default nf_conntrack_max, at least
 * 65,536).  Caller frees with ct_free(). */
struct ct *ct_new(void);

/* Frees 'ct' (NULL is fine). */
void ct_free(struct ct *ct);

/* Reads the pending events into the index without blocking (main.c calls
 * it every 100 ms rather than polling the socket; every flush calls it
 * first); a lost event (the socket overflowed) makes the index unreliable
 * until the next flush dumps the table. */
void ct_process(struct ct *ct);

/* Deletes every destination-NATed IPv4 conntrack entry of the VIP ports
 * 'keys' ('n_keys' of them; NULL: any port) for which 'stale'(entry,
 * 'aux') is true, so that the next packet of such a flow is NATed by the
 * current ruleset.  With a reliable index this looks up those ports'
 * entries and deletes them by tuple; else it dumps the whole table (and
 * re-seeds the index from the dump).  'ct' NULL: a dump, no index.
 * Fills '*res'.  Returns 0, or -1 with internal-error reported (netlink
 * failure; entries deleted before it stay deleted). */
int ct_flush(struct ct *ct, const struct ct_key *keys, size_t n_keys,
             ct_stale_fn *stale, void *aux, struct ct_result *res);

#endif
