/* fw.h: kvmstack-vr's nftables table (libnftables): port forwarding,
 * allowedCidr, hairpin, SNAT and the forward policy. */
#ifndef KVMSTACK_VR_FW_H
#define KVMSTACK_VR_FW_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ct.h"

/* The name of kvmstack's own table (family ip); no other is touched. */
#define FW_TABLE "kvmstack_vr"

struct fw;

/* What one fw_apply() did. */
struct fw_stats {
    size_t ops;                 /* Element adds + deletes sent to nft (a
                                 * full build counts every element). */
    bool full;                  /* The batch (re)built the whole table. */
    int64_t nft_usec;           /* Time inside nft_run_cmd_from_buffer(),
                                 * all attempts; 0 when nothing changed. */
    size_t batch_bytes;         /* Size of the batch text that committed. */
    size_t ct_flushed;          /* Conntrack entries deleted. */
    int64_t ct_usec;            /* Time of the conntrack flush, 0 when none
                                 * was needed. */
    bool ct_dump;               /* The flush dumped the conntrack table
                                 * (its index was unreliable) instead of
                                 * looking the ports up (ct.c). */
};

/* A new, empty firewall state for table 'table' (NULL: FW_TABLE); nothing
 * is sent to the kernel before the first fw_apply().  Conntrack flushes go
 * through 'ct' (borrowed, must outlive the result; NULL: every flush dumps
 * the conntrack table).  Caller frees with fw_free().  Returns NULL with
 * internal-error reported when libnftables cannot make a context. */
struct fw *fw_new(const char *table, struct ct *ct);

/* Frees 'fw' (NULL is fine); the kernel table stays as committed. */
void fw_free(struct fw *fw);

/* Converges the table to 'cfg' (whose interfaces have their names
 * resolved) in ONE nftables transaction holding only the difference to
 * what the last successful call committed; the first call (and a retry
 * after a delta the kernel rejected, e.g. because someone changed the
 * table behind our back) replaces the whole table in one transaction.
 * Conntrack entries of removed and re-targeted ports are flushed after
 * the commit.  Returns 0 with '*stats' filled, or -1 with an error
 * reported: conflict for ports claimed by two rules, else nft's own error
 * text; then the kernel and the committed state are as before. */
int fw_apply(struct fw *fw, const struct vr_config *cfg,
             struct fw_stats *stats);

/* Applies a change of some rules without looking at the others: the
 * 'n_old' rules 'old' (as committed; they are taken out) and the 'n_add'
 * rules 'add' (put in), in ONE nftables transaction holding only their
 * elements (a rule in both, re-targeted, is a change of its elements; an
 * unchanged one is nothing).  Conntrack entries of removed and
 * re-targeted ports are flushed after the commit.  A delta the kernel
 * refuses is retried as a full rebuild of the committed state with the
 * change, as fw_apply() does.  Returns 0 with '*stats' filled, or -1 with
 * an error reported: conflict when a port of 'add' is forwarded by a rule
 * that stays (or by two rules of 'add'), else nft's own error text; then
 * the kernel and the committed state are as before. */
int fw_apply_rules(struct fw *fw, const struct vr_pf_rule *const *old,
                   size_t n_old, const struct vr_pf_rule *add, size_t n_add,
                   struct fw_stats *stats);

/* Renders the full batch for 'cfg' without running it (tests, debugging).
 * Caller frees.  NULL with an error reported on a conflict. */
char *fw_render_full(const char *table, const struct vr_config *cfg);

#endif
