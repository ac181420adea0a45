/* playbook.h: mgmt's own runner for an Ansible-compatible subset of YAML
 * playbooks (playbooks/*.yaml), run over one SSH session to bootstrap KVM
 * and backup-storage hosts.
 *
 * The runner does not know SSH: it runs each task through a transport that
 * executes one shell command on the target with optional standard input
 * (sshconn.c provides one over libssh; the unit tests one over a local
 * /bin/sh).  Every module is idempotent and reports ok, changed or failed;
 * a failed task stops the play. */
#ifndef MGMT_PLAYBOOK_H
#define MGMT_PLAYBOOK_H 1

#include <jansson.h>
#include <stddef.h>

struct sbuf;

/* Runs 'cmd' with /bin/sh on the target, feeding 'in' (may be NULL) on its
 * standard input; collects stdout and stderr and the exit status.  Returns
 * -1 (error reported, problem host-unreachable) only when the transport
 * itself failed; a command that ran and failed returns 0 with a non-zero
 * '*status'. */
typedef int playbook_exec_fn(void *aux, const char *cmd, const void *in,
                             size_t in_len, struct sbuf *out,
                             struct sbuf *err, int *status);

/* Called before and after each task: 'result' is NULL before, then "ok",
 * "changed", "skipped" or "failed". */
typedef void playbook_progress_fn(void *aux, int index, int total,
                                  const char *task, const char *result);

struct playbook_target {
    playbook_exec_fn *exec;
    void *exec_aux;
    playbook_progress_fn *progress;   /* May be NULL. */
    void *progress_aux;
};

struct playbook_recap {
    int ok;
    int changed;
    int failed;
    int skipped;
    char *failed_task;          /* Name of the failed task or NULL; owned. */
    char *failed_detail;        /* Command, exit code, stderr tail; owned. */
};

/* Runs the playbook file 'path' against 'target' with extra variables
 * 'vars' (an object; may be NULL; values strings, numbers or booleans) and
 * 'facts' gathered first by the runner itself (os_family, distribution,
 * pkg_mgr, architecture) available to `when:` and templates.  Fills
 * 'recap'.  Returns 0 when every task succeeded, -1 otherwise (a parse
 * error, a failed task, or a transport failure; error reported). */
int playbook_run(const char *path, const struct playbook_target *target,
                 json_t *vars, struct playbook_recap *recap);

void playbook_recap_destroy(struct playbook_recap *recap);

/* "ok=N changed=N failed=N skipped=N" into 'buf'. */
const char *playbook_recap_line(const struct playbook_recap *recap,
                                char *buf, size_t size);

/* Quotes 's' for a POSIX shell: the result is one single-quoted word.
 * Caller frees. */
char *shell_quote(const char *s);

#endif
