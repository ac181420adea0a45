/* sshconn.c: libssh sessions from mgmt to KVM and backup-storage hosts.
 *
 * DESIGN: a session is owned by one thread at a time (libssh sessions are
 * not thread-safe).  The host key is checked right after the handshake,
 * before any credential is sent: its SHA256 fingerprint must equal the one
 * the inventory holds; when the inventory holds none the key is trusted on
 * first use and the caller stores it.  mgmt authenticates with its own
 * ed25519 key once a host is added; the root password is used only for the
 * first login and never kept.  Commands run on fresh exec channels of the
 * one session, so a task costs one channel round trip, not a new TCP and
 * SSH handshake. */
#include "sshconn.h"

#include <errno.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("mgmt.sshconn");

#define CONNECT_TIMEOUT_SEC 10

struct sshconn {
    ssh_session session;
    char *host;
    int port;
    char fingerprint[SSHCONN_FP_MAX];
};

struct sshconn_chan {
    struct sshconn *conn;
    ssh_channel channel;
};

static char *ssh_dir;
static char *key_path;
static char *known_hosts_path;
static char *public_key_line;

int
sshconn_setup(const char *dir)
{
    ssh_key key = NULL;
    char *b64 = NULL;

    free(ssh_dir);
    free(key_path);
    free(known_hosts_path);
    free(public_key_line);
    ssh_dir = xstrdup(dir);
    key_path = xasprintf("%s/id_ed25519", dir);
    known_hosts_path = xasprintf("%s/known_hosts", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot create '%s': %s", dir,
                     strerror(errno));
        return -1;
    }
    chmod(dir, 0700);
    if (access(key_path, R_OK) == 0) {
        if (ssh_pki_import_privkey_file(key_path, NULL, NULL, NULL, &key)
            != SSH_OK) {
            error_report(PROBLEM_INTERNAL_ERROR,
                         "cannot read mgmt's SSH key '%s'", key_path);
            return -1;
        }
    } else {
        if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK
            || ssh_pki_export_privkey_file(key, NULL, NULL, NULL, key_path)
               != SSH_OK) {
            ssh_key_free(key);
            error_report(PROBLEM_INTERNAL_ERROR,
                         "cannot create mgmt's SSH key '%s'", key_path);
            return -1;
        }
        chmod(key_path, 0600);
        LOG_INFO("created mgmt's SSH key '%s'", key_path);
    }
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
        ssh_key_free(key);
        error_report(PROBLEM_INTERNAL_ERROR, "cannot export mgmt's SSH key");
        return -1;
    }
    public_key_line = xasprintf("ssh-ed25519 %s kvmstack-mgmt", b64);
    ssh_string_free_char(b64);
    ssh_key_free(key);
    return 0;
}

const char *
sshconn_public_key(void)
{
    return public_key_line;
}

static int
server_fingerprint(ssh_session s, char out[SSHCONN_FP_MAX])
{
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char *fp;

    if (ssh_get_server_publickey(s, &key) != SSH_OK) {
        error_report(PROBLEM_PROTOCOL_ERROR, "no host key from the server: "
                     "%s", ssh_get_error(s));
        return -1;
    }
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen)
        != 0) {
        ssh_key_free(key);
        error_report(PROBLEM_PROTOCOL_ERROR, "cannot hash the host key");
        return -1;
    }
    fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    snprintf(out, SSHCONN_FP_MAX, "%s", fp ? fp : "");
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(key);
    return 0;
}

struct sshconn *
sshconn_open(const char *host, int port, const char *user,
             const char *expected, char fingerprint[SSHCONN_FP_MAX],
             enum sshconn_key_check *check)
{
    struct sshconn *c;
    long timeout = CONNECT_TIMEOUT_SEC;
    int strict = 1;

    *check = SSHCONN_KEY_NEW;
    fingerprint[0] = '\0';
    c = xcalloc(1, sizeof *c);
    c->session = ssh_new();
    c->host = xstrdup(host);
    c->port = port;
    ssh_options_set(c->session, SSH_OPTIONS_HOST, host);
    ssh_options_set(c->session, SSH_OPTIONS_PORT, &port);
    ssh_options_set(c->session, SSH_OPTIONS_USER, user);
    ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &timeout);
    ssh_options_set(c->session, SSH_OPTIONS_KNOWNHOSTS, known_hosts_path);
    ssh_options_set(c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    ssh_options_set(c->session, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict);
    ssh_options_set(c->session, SSH_OPTIONS_PROCESS_CONFIG, &(int){ 0 });
    if (ssh_connect(c->session) != SSH_OK) {
        error_report(PROBLEM_HOST_UNREACHABLE,
                     "cannot reach SSH at %s port %d: %s", host, port,
                     ssh_get_error(c->session));
        sshconn_close(c);
        return NULL;
    }
    if (server_fingerprint(c->session, c->fingerprint) < 0) {
        sshconn_close(c);
        return NULL;
    }
    snprintf(fingerprint, SSHCONN_FP_MAX, "%s", c->fingerprint);
    if (expected && *expected) {
        if (!str_equal_ct(expected, c->fingerprint)) {
            *check = SSHCONN_KEY_MISMATCH;
            error_report(PROBLEM_ACCESS_DENIED,
                         "the SSH host key of %s port %d changed: expected "
                         "%s, got %s; refusing to connect (if the change is "
                         "legitimate, re-trust the host)", host, port,
                         expected, c->fingerprint);
            sshconn_close(c);
            return NULL;
        }
        *check = SSHCONN_KEY_TRUSTED;
    }
    return c;
}

int
sshconn_remember_host(struct sshconn *c)
{
    if (ssh_session_update_known_hosts(c->session) != SSH_OK) {
        LOG_WARN("cannot record %s in '%s': %s", c->host, known_hosts_path,
                 ssh_get_error(c->session));
    }
    return 0;
}

int
sshconn_auth_password(struct sshconn *c, const char *password)
{
    int rc = ssh_userauth_password(c->session, NULL, password);

    if (rc != SSH_AUTH_SUCCESS) {
        error_report_field(PROBLEM_INVALID_ARGUMENT, "password",
                           "SSH password authentication as root on %s "
                           "failed: %s", c->host,
                           rc == SSH_AUTH_DENIED
                           ? "wrong password (access denied)"
                           : ssh_get_error(c->session));
        return -1;
    }
    return 0;
}

int
sshconn_auth_key(struct sshconn *c)
{
    ssh_key key = NULL;
    int rc;

    if (ssh_pki_import_privkey_file(key_path, NULL, NULL, NULL, &key)
        != SSH_OK) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot read mgmt's SSH key "
                     "'%s'", key_path);
        return -1;
    }
    rc = ssh_userauth_publickey(c->session, NULL, key);
    ssh_key_free(key);
    if (rc != SSH_AUTH_SUCCESS) {
        error_report(PROBLEM_ACCESS_DENIED,
                     "SSH key authentication as root on %s failed: %s",
                     c->host, rc == SSH_AUTH_DENIED ? "mgmt's key is not "
                     "authorized" : ssh_get_error(c->session));
        return -1;
    }
    return 0;
}

static int
chan_fail(struct sshconn *c, const char *what)
{
    error_report(PROBLEM_HOST_UNREACHABLE, "SSH to %s: %s: %s", c->host,
                 what, ssh_get_error(c->session));
    return -1;
}

int
sshconn_exec(struct sshconn *c, const char *cmd, const void *in,
             size_t in_len, struct sbuf *out, struct sbuf *err, int *status,
             int timeout_ms)
{
    ssh_channel ch = ssh_channel_new(c->session);
    int64_t deadline = timeout_ms > 0 ? time_msec() + timeout_ms : 0;
    const char *p = in;
    char buf[16384];
    int rc = -1;

    *status = -1;
    if (!ch) {
        return chan_fail(c, "cannot open a channel");
    }
    if (ssh_channel_open_session(ch) != SSH_OK) {
        chan_fail(c, "cannot open a session channel");
        goto out;
    }
    if (ssh_channel_request_exec(ch, cmd) != SSH_OK) {
        chan_fail(c, "cannot start a command");
        goto out;
    }
    while (in && in_len > 0) {
        int n = ssh_channel_write(ch, p, in_len > 32768 ? 32768
                                                        : (uint32_t) in_len);

        if (n < 0) {
            chan_fail(c, "cannot send input");
            goto out;
        }
        p += n;
        in_len -= (size_t) n;
    }
    ssh_channel_send_eof(ch);
    for (;;) {
        int n_out = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 50);
        int n_err;

        if (n_out == SSH_ERROR) {
            chan_fail(c, "connection lost while a command ran");
            goto out;
        }
        if (n_out > 0 && out) {
            sbuf_add(out, buf, (size_t) n_out);
        }
        while ((n_err = ssh_channel_read_nonblocking(ch, buf, sizeof buf,
                                                     1)) > 0) {
            if (err) {
                sbuf_add(err, buf, (size_t) n_err);
            }
        }
        if (n_err == SSH_ERROR) {
            chan_fail(c, "connection lost while a command ran");
            goto out;
        }
        if (ssh_channel_is_eof(ch) && n_out == 0 && n_err <= 0) {
            break;
        }
        if (deadline && time_msec() > deadline) {
            error_report(PROBLEM_TIMEOUT, "SSH to %s: command did not "
                         "finish within %d ms", c->host, timeout_ms);
            goto out;
        }
    }
    *status = ssh_channel_get_exit_status(ch);
    rc = 0;

out:
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return rc;
}

int
sshconn_playbook_exec(void *aux, const char *cmd, const void *in,
                      size_t in_len, struct sbuf *out, struct sbuf *err,
                      int *status)
{
    return sshconn_exec(aux, cmd, in, in_len, out, err, status,
                        30 * 60 * 1000);
}

struct sshconn_chan *
sshconn_chan_open(struct sshconn *c, const char *cmd)
{
    struct sshconn_chan *ch = xcalloc(1, sizeof *ch);

    ch->conn = c;
    ch->channel = ssh_channel_new(c->session);
    if (!ch->channel || ssh_channel_open_session(ch->channel) != SSH_OK
        || ssh_channel_request_exec(ch->channel, cmd) != SSH_OK) {
        chan_fail(c, "cannot start the agent");
        sshconn_chan_close(ch);
        return NULL;
    }
    return ch;
}

int
sshconn_chan_write(struct sshconn_chan *ch, const void *data, size_t n)
{
    const char *p = data;

    while (n > 0) {
        int w = ssh_channel_write(ch->channel, p, (uint32_t) n);

        if (w < 0) {
            return chan_fail(ch->conn, "agent channel write failed");
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

int
sshconn_chan_read(struct sshconn_chan *ch, struct sbuf *buf, int timeout_ms)
{
    char tmp[16384];
    int n = ssh_channel_read_timeout(ch->channel, tmp, sizeof tmp, 0,
                                     timeout_ms);

    if (n == SSH_ERROR) {
        return chan_fail(ch->conn, "agent channel lost");
    }
    if (n > 0) {
        sbuf_add(buf, tmp, (size_t) n);
        return n;
    }
    if (ssh_channel_is_eof(ch->channel) || !ssh_channel_is_open(ch->channel)) {
        error_report(PROBLEM_HOST_UNREACHABLE,
                     "the agent on %s closed its channel", ch->conn->host);
        return -1;
    }
    return 0;
}

void
sshconn_chan_wait(struct sshconn_chan *ch, int wake_fd, int timeout_ms)
{
    struct pollfd p[2];
    int n = 1;

    /* libssh may hold data it already read off the socket. */
    if (ssh_channel_poll(ch->channel, 0) != 0
        || ssh_channel_poll(ch->channel, 1) > 0) {
        return;
    }
    p[0].fd = ssh_get_fd(ch->conn->session);
    p[0].events = POLLIN;
    if (wake_fd >= 0) {
        p[1].fd = wake_fd;
        p[1].events = POLLIN;
        n = 2;
    }
    poll(p, (nfds_t) n, timeout_ms);
}

void
sshconn_chan_drain_stderr(struct sshconn_chan *ch, struct sbuf *err)
{
    char tmp[4096];
    int n;

    while ((n = ssh_channel_read_nonblocking(ch->channel, tmp, sizeof tmp,
                                             1)) > 0) {
        sbuf_add(err, tmp, (size_t) n);
    }
}

void
sshconn_chan_send_eof(struct sshconn_chan *ch)
{
    ssh_channel_send_eof(ch->channel);
}

int
sshconn_chan_exit_status(struct sshconn_chan *ch, int timeout_ms)
{
    int64_t deadline = time_msec() + timeout_ms;
    char tmp[4096];

    while (!ssh_channel_is_eof(ch->channel) && time_msec() < deadline) {
        if (ssh_channel_read_timeout(ch->channel, tmp, sizeof tmp, 0, 50)
            == SSH_ERROR) {
            return -1;
        }
    }
    /* The exit status may follow the EOF by a moment. */
    while (time_msec() < deadline) {
        int st = ssh_channel_get_exit_status(ch->channel);

        if (st >= 0) {
            return st;
        }
        ssh_channel_read_timeout(ch->channel, tmp, sizeof tmp, 0, 20);
    }
    return -1;
}

int
sshconn_exec_lines(struct sshconn *c, const char *cmd,
                   void (*line)(void *aux, const char *text), void *aux,
                   struct sbuf *err, int *status, int timeout_ms)
{
    struct sshconn_chan *ch = sshconn_chan_open(c, cmd);
    int64_t deadline = timeout_ms > 0 ? time_msec() + timeout_ms : 0;
    struct sbuf buf;
    int rc = -1;

    *status = -1;
    if (!ch) {
        return -1;
    }
    sbuf_init(&buf);
    sshconn_chan_send_eof(ch);
    for (;;) {
        char tmp[8192];
        int n = ssh_channel_read_timeout(ch->channel, tmp, sizeof tmp, 0,
                                         100);
        char *nl;

        if (n == SSH_ERROR) {
            chan_fail(c, "connection lost while a command ran");
            goto out;
        }
        if (n > 0) {
            sbuf_add(&buf, tmp, (size_t) n);
        }
        while ((nl = memchr(buf.s, '\n', buf.len))) {
            *nl = '\0';
            line(aux, buf.s);
            memmove(buf.s, nl + 1, buf.len - (size_t) (nl - buf.s) - 1);
            buf.len -= (size_t) (nl - buf.s) + 1;
            buf.s[buf.len] = '\0';
        }
        if (err) {
            sshconn_chan_drain_stderr(ch, err);
        }
        if (n == 0 && ssh_channel_is_eof(ch->channel)) {
            break;
        }
        if (deadline && time_msec() > deadline) {
            error_report(PROBLEM_TIMEOUT, "SSH to %s: command did not "
                         "finish within %d ms", c->host, timeout_ms);
            goto out;
        }
    }
    if (buf.len) {
        line(aux, buf.s);
    }
    *status = sshconn_chan_exit_status(ch, 10000);
    rc = 0;

out:
    sbuf_destroy(&buf);
    sshconn_chan_close(ch);
    return rc;
}

struct sshconn *
sshconn_open_key(const char *host, int port, const char *fingerprint)
{
    char fp[SSHCONN_FP_MAX];
    enum sshconn_key_check check;
    struct sshconn *c = sshconn_open(host, port, "root", fingerprint, fp,
                                     &check);

    if (c && sshconn_auth_key(c) < 0) {
        sshconn_close(c);
        return NULL;
    }
    return c;
}

void
sshconn_chan_close(struct sshconn_chan *ch)
{
    if (!ch) {
        return;
    }
    if (ch->channel) {
        ssh_channel_close(ch->channel);
        ssh_channel_free(ch->channel);
    }
    free(ch);
}

void
sshconn_close(struct sshconn *c)
{
    if (!c) {
        return;
    }
    if (c->session) {
        ssh_disconnect(c->session);
        ssh_free(c->session);
    }
    free(c->host);
    free(c);
}
