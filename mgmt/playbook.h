/* playbook.h: mgmt's own runner for an Ansible-compatible subset of YAML
 * playbooks (the YAML files in playbooks/), run over one SSH session to
 * bootstrap KVM and backup-storage hosts.
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
 * "changed", "skipped", "failed" or "ignored" (failed under
 * ignore_errors).  'index' counts from 0: 0 is "Gathering Facts", then the
 * tasks of every play in order, then the play's notified handlers;
 * 'total' counts facts, tasks and all handlers, so a run whose handlers
 * were not all notified, or that stopped, ends below it. */
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
    int ignored;                /* Failed under ignore_errors (also ok). */
    json_t *registered;         /* Results by `register:` name, each
                                 * {rc, stdout, stderr, stdout_lines,
                                 * changed, failed, skipped}; owned. */
};

/* Runs the playbook file 'path' against 'target' with extra variables
 * 'vars' (an object; may be NULL; values strings, numbers or booleans;
 * they override the playbook's vars) and 'facts' gathered first by the
 * runner itself (os_family, distribution, distribution_version,
 * distribution_major_version, pkg_mgr, architecture, has_systemd, has_kvm;
 * also as ansible_X and ansible_facts.X) available to `when:` and
 * templates.  Fills 'recap' (zeroed first; the caller destroys it, also
 * after a failure).  Like Ansible's, the recap's ok counts every task that
 * succeeded, changed ones included, and "Gathering Facts".  Returns 0 when
 * every task succeeded, -1 otherwise (a parse error, a failed task, or a
 * transport failure; error reported: "task 'NAME' failed: ..." with
 * internal-error for a failed task). */
int playbook_run(const char *path, const struct playbook_target *target,
                 json_t *vars, struct playbook_recap *recap);

/* Loads and checks the playbook file 'path' without running anything:
 * YAML, keys, modules and their arguments, `when:`-style expressions,
 * `{{ }}` templates and handler names.  Returns 0 or -1 (error reported,
 * naming the task and the key at fault). */
int playbook_check(const char *path);

void playbook_recap_destroy(struct playbook_recap *recap);

/* The stdout registered as 'name' by the last run, NULL if none;
 * borrowed from 'recap'. */
const char *playbook_recap_get_stdout(const struct playbook_recap *recap,
                                      const char *name);

/* "ok=N changed=N failed=N skipped=N" into 'buf', followed by
 * " ignored=N" when some failures were ignored. */
const char *playbook_recap_line(const struct playbook_recap *recap,
                                char *buf, size_t size);

/* A persistent shell: one long-lived `sh` on the target, reading commands
 * from a stream (e.g. an SSH exec channel running "exec /bin/sh"), so a
 * task costs a round trip instead of a new session.  The stream is given
 * as two functions on 'aux': write all of 'data' (-1 when the stream is
 * gone, error reported), and read what arrives within 'timeout_ms',
 * appending to 'buf' (bytes read, 0 on timeout, -1 when closed, error
 * reported).  The shell's stdout is read; its stderr is not needed. */
typedef int playbook_stream_write_fn(void *aux, const void *data, size_t n);
typedef int playbook_stream_read_fn(void *aux, struct sbuf *buf,
                                    int timeout_ms);

struct playbook_shell;

/* Creates the adapter over a stream whose shell is already started.
 * 'timeout_ms' bounds each command (0: none). */
struct playbook_shell *playbook_shell_new(playbook_stream_write_fn *write_fn,
                                          playbook_stream_read_fn *read_fn,
                                          void *aux, int timeout_ms);

/* Asks the shell to clean up and exit; the caller then closes the stream.
 * Accepts NULL. */
void playbook_shell_free(struct playbook_shell *sh);

/* playbook_exec_fn over a struct playbook_shell ('aux'): pass it as
 * playbook_target.exec with the shell as exec_aux.  After a stream
 * failure or a timeout every later call fails. */
int playbook_shell_exec(void *aux, const char *cmd, const void *in,
                        size_t in_len, struct sbuf *out, struct sbuf *err,
                        int *status);

/* Quotes 's' for a POSIX shell: the result is one single-quoted word.
 * Caller frees. */
char *shell_quote(const char *s);

#endif
