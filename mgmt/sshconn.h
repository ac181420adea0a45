/* sshconn.h: SSH connections from mgmt to hosts (libssh).  The only module
 * that calls libssh.  Host keys are verified against the fingerprint kept
 * in the inventory (trust on first use when none is kept yet) and recorded
 * in a known_hosts file private to mgmt. */
#ifndef MGMT_SSHCONN_H
#define MGMT_SSHCONN_H 1

#include <stdbool.h>
#include <stddef.h>

struct sbuf;
struct sshconn;

#define SSHCONN_FP_MAX 128

/* How a host's key compared with what mgmt expected. */
enum sshconn_key_check {
    SSHCONN_KEY_TRUSTED,        /* Matched the expected fingerprint. */
    SSHCONN_KEY_NEW,            /* Nothing expected: trusted on first use. */
    SSHCONN_KEY_MISMATCH,       /* Differs: the connection was refused. */
};

/* Sets mgmt's private SSH directory (holds id_ed25519 and known_hosts) and
 * creates mgmt's ed25519 key there on first use.  Returns -1 on error. */
int sshconn_setup(const char *dir);

/* mgmt's public key as an authorized_keys line; borrowed. */
const char *sshconn_public_key(void);

/* Connects to 'host':'port' as 'user' and checks the server's host key.
 * 'expected' is the SHA256 fingerprint to require, or NULL to trust on
 * first use.  Stores the key's fingerprint in 'fingerprint' and the
 * verdict in 'check'.  Returns NULL with an error reported when the host is
 * unreachable (host-unreachable) or its key does not match (access-denied,
 * '*check' = SSHCONN_KEY_MISMATCH). */
struct sshconn *sshconn_open(const char *host, int port, const char *user,
                             const char *expected,
                             char fingerprint[SSHCONN_FP_MAX],
                             enum sshconn_key_check *check);

/* Authenticates with a password (used once; the caller wipes it) or with
 * mgmt's own key.  -1 with access-denied on refusal. */
int sshconn_auth_password(struct sshconn *c, const char *password);
int sshconn_auth_key(struct sshconn *c);

/* Records 'host' with its key in mgmt's known_hosts file. */
int sshconn_remember_host(struct sshconn *c);

/* Runs 'cmd' (with 'in' on stdin, may be NULL), collecting stdout, stderr
 * and the exit status; 'timeout_ms' bounds the whole run (0: none).
 * Returns -1 (host-unreachable/timeout) only when the transport failed. */
int sshconn_exec(struct sshconn *c, const char *cmd, const void *in,
                 size_t in_len, struct sbuf *out, struct sbuf *err,
                 int *status, int timeout_ms);

/* Adapter for playbook_exec_fn ('aux' is the struct sshconn). */
int sshconn_playbook_exec(void *aux, const char *cmd, const void *in,
                          size_t in_len, struct sbuf *out, struct sbuf *err,
                          int *status);

/* A long-lived exec channel (the agent channel). */
struct sshconn_chan;

struct sshconn_chan *sshconn_chan_open(struct sshconn *c, const char *cmd);
/* Writes all of 'data'.  -1 when the channel is gone. */
int sshconn_chan_write(struct sshconn_chan *ch, const void *data, size_t n);
/* Reads what is available within 'timeout_ms' into 'buf' (appending).
 * Returns bytes read, 0 on timeout, -1 when the channel closed (EOF or
 * error; error reported). */
int sshconn_chan_read(struct sshconn_chan *ch, struct sbuf *buf,
                      int timeout_ms);
/* Waits up to 'timeout_ms' until the channel has something to read or
 * 'wake_fd' (an eventfd; -1 for none) becomes readable.  Never reads. */
void sshconn_chan_wait(struct sshconn_chan *ch, int wake_fd, int timeout_ms);

/* Collects what the remote command wrote to stderr (for diagnostics). */
void sshconn_chan_drain_stderr(struct sshconn_chan *ch, struct sbuf *err);
/* Sends EOF on the channel's stdin. */
void sshconn_chan_send_eof(struct sshconn_chan *ch);
/* Waits up to 'timeout_ms' for the remote command to end; its exit status
 * or -1. */
int sshconn_chan_exit_status(struct sshconn_chan *ch, int timeout_ms);
void sshconn_chan_close(struct sshconn_chan *ch);

/* Like sshconn_exec() but calls 'line' for each line of stdout as it
 * arrives (without the newline). */
int sshconn_exec_lines(struct sshconn *c, const char *cmd,
                       void (*line)(void *aux, const char *text), void *aux,
                       struct sbuf *err, int *status, int timeout_ms);

/* Opens a key-authenticated session to 'host':'port' whose host key must
 * be 'fingerprint'. */
struct sshconn *sshconn_open_key(const char *host, int port,
                                 const char *fingerprint);

void sshconn_close(struct sshconn *c);

#endif
