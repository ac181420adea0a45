/* hostmgr.c: KVM host bootstrap over SSH and the agent channel mgmt keeps
 * to every host.
 *
 * DESIGN: AddKVMHost runs in a job thread: it checks the host key (trust
 * on first use or the operator's expected fingerprint), logs in once with
 * the root password, checks the OS, installs mgmt's public key and proves a
 * key login works, then runs playbooks/kvm-host.yaml over that key session.
 * From then on the host belongs to one connection thread (struct
 * hostconn), the only user of its libssh session: it connects with mgmt's
 * key, re-runs the playbook only when its inputs changed (a hash of the
 * playbook, its variables and the agent binary), starts `kvmstack-agent
 * --stdio` on an exec channel, shakes hands, records the host's facts and
 * pings it every hostmgr_ping_interval_ms.  A closed channel is noticed at
 * once, hostmgr_ping_max_failure missed pongs make the host Disconnected;
 * either way the thread reconnects with exponential backoff.  A changed
 * host key makes it HostKeyMismatch and the thread waits for an explicit
 * re-trust.  The password lives only in the job's memory and is wiped as
 * soon as key login is proven. */
#include "hostmgr.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "db.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/proto.h"
#include "kvmstack/util.h"
#include "playbook.h"
#include "res.h"
#include "sshconn.h"
#include "vmops.h"

LOG_MODULE("mgmt.hostmgr");

#define AGENT_DEST "/usr/local/bin/kvmstack-agent"
#define HANDSHAKE_TIMEOUT_MS 20000

int hostmgr_ping_interval_ms = 60000;
int hostmgr_ping_max_failure = 3;
int hostmgr_reconnect_max_ms = 30000;

enum hc_outcome {
    HC_STOPPED,                 /* Asked to stop or to reconnect. */
    HC_FAILED,                  /* Unreachable, auth, agent or ping. */
    HC_MISMATCH,                /* Host key changed. */
};

/* A call to a host's agent, made by any thread, sent by the host's
 * connection thread. */
struct hc_call {
    struct hc_call *next;
    json_int_t id;              /* Frame id once sent. */
    char *method;
    json_t *params;             /* Owned. */
    json_t *result;             /* Owned; set on success. */
    enum problem problem;       /* On failure. */
    char *message;              /* On failure; owned. */
    bool done;
    bool abandoned;             /* The caller timed out: whoever finishes
                                 * the call frees it. */
};

struct hostconn {
    struct hostconn *next;
    char uuid[UUID_LEN + 1];
    pthread_t thread;
    bool stop;                  /* Leave for good. */
    bool kick;                  /* Drop the session and reconnect now. */
    bool connected;             /* The session is up. */
    unsigned generation;        /* Bumped at every outcome. */
    char *last_error;           /* Of the last failed attempt; owned. */
    struct hc_call *queue;      /* Calls not sent yet. */
    struct hc_call *sent;       /* Calls waiting for their reply. */
    int wake_fd;                /* eventfd: a call was queued. */
};

hostmgr_event_fn *hostmgr_event_handler;
hostmgr_connect_fn *hostmgr_connect_handler;

static pthread_mutex_t hc_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hc_cond = PTHREAD_COND_INITIALIZER;
static struct hostconn *hc_list;
static char *kvm_playbook;
static char *bs_playbook;
static char *agent_src;
static char playbook_hash[65];

static void *hostconn_main(void *arg);

/* Wakes the connection thread of 'hc' (a call, a stop or a kick). */
static void
hc_wake(struct hostconn *hc)
{
    uint64_t one = 1;

    if (write(hc->wake_fd, &one, sizeof one) < 0) {
        /* The counter is full: the thread is awake anyway. */
    }
}

/* ---- Small helpers ---- */

static const char *
jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct sbuf b;
    char buf[65536];
    size_t n;

    if (!f) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot read '%s': %s", path,
                     strerror(errno));
        return NULL;
    }
    sbuf_init(&b);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        sbuf_add(&b, buf, n);
    }
    fclose(f);
    if (len) {
        *len = b.len;
    }
    return sbuf_take(&b);
}

static json_t *
kvm_playbook_vars(void)
{
    return json_pack("{s:s, s:s}", "agent_src", agent_src, "agent_dest",
                     AGENT_DEST);
}

/* The hash of everything the KVM playbook depends on. */
static int
compute_playbook_hash(void)
{
    size_t n1;
    size_t n2;
    AUTOFREE char *book = read_file(kvm_playbook, &n1);
    AUTOFREE char *agent = read_file(agent_src, &n2);
    char h1[65];
    char h2[65];
    AUTOFREE char *all = NULL;
    json_t *vars;
    AUTOFREE char *vtext = NULL;

    if (!book || !agent) {
        return -1;
    }
    sha256_hex(book, n1, h1);
    sha256_hex(agent, n2, h2);
    vars = kvm_playbook_vars();
    vtext = json_dumps(vars, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(vars);
    all = xasprintf("%s %s %s", h1, h2, vtext);
    sha256_hex(all, strlen(all), playbook_hash);
    return 0;
}

static void
host_set(const char *uuid, const char *status, const char *error)
{
    struct db *db = db_thread();

    bool lost = strcmp(status, "Connected") && strcmp(status, "Connecting");

    if (db_begin(db) < 0
        || db_exec(db, "UPDATE host SET status = ?1, lastError = ?2, "
                   "lastOpDate = ?3 WHERE uuid = ?4", "ssis", status, error,
                   time_wall_msec(), uuid) < 0
        /* Without its host nobody knows what a VM does: Unknown, never
         * Stopped, until the reconnect reconciles it. */
        || (lost && vmops_host_lost(db, uuid) < 0)
        || db_commit(db) < 0) {
        db_rollback(db);
        LOG_WARN("host %s: cannot record status %s: %s", uuid, status,
                 error_last_message());
    }
}

/* ---- Playbook progress into a job ---- */

struct progress_ctx {
    struct job *job;            /* May be NULL (reconnects). */
    const char *host;
};

static void
playbook_progress(void *aux, int index, int total, const char *task,
                  const char *result)
{
    struct progress_ctx *p = aux;

    if (!result) {
        if (p->job) {
            job_progress(p->job, "TASK [%s] (%d/%d) ...", task, index + 1,
                         total);
        }
        return;
    }
    if (p->job) {
        job_progress(p->job, "TASK [%s] (%d/%d) %s", task, index + 1, total,
                     result);
    } else {
        LOG_INFO("host %s: TASK [%s] %s", p->host, task, result);
    }
}

static int
shell_write(void *aux, const void *data, size_t n)
{
    return sshconn_chan_write(aux, data, n);
}

static int
shell_read(void *aux, struct sbuf *buf, int timeout_ms)
{
    return sshconn_chan_read(aux, buf, timeout_ms);
}

/* Runs a playbook over one persistent /bin/sh on an exec channel of 'c':
 * a task costs a round trip on an open channel, not a new SSH session
 * (sshd's per-session setup is ~100 ms here). */
static int
run_playbook(struct sshconn *c, const char *path, json_t *vars,
             struct job *job, const char *what)
{
    struct progress_ctx p = { job, what };
    struct sshconn_chan *ch = sshconn_chan_open(c, "exec /bin/sh");
    struct playbook_shell *sh;
    struct playbook_target t;
    struct playbook_recap recap = { 0 };
    char line[128];
    int rc;

    if (!ch) {
        return -1;
    }
    sh = playbook_shell_new(shell_write, shell_read, ch, 30 * 60 * 1000);
    t = (struct playbook_target) { playbook_shell_exec, sh,
                                   playbook_progress, &p };
    rc = playbook_run(path, &t, vars, &recap);
    playbook_shell_free(sh);
    sshconn_chan_close(ch);

    playbook_recap_line(&recap, line, sizeof line);
    if (job) {
        job_progress(job, "PLAY RECAP %s : %s", what, line);
    }
    LOG_INFO("%s: playbook %s: %s", what, path, line);
    if (rc < 0 && recap.failed_detail && job) {
        job_progress(job, "failed: %s", recap.failed_detail);
    }
    playbook_recap_destroy(&recap);
    return rc;
}

/* ---- Pre-flight and key install (password session) ---- */

static int
preflight(struct sshconn *c, struct job *job)
{
    struct sbuf out;
    int status;
    int rc = -1;
    char *id_like;

    sbuf_init(&out);
    if (sshconn_exec(c, ". /etc/os-release 2>/dev/null; "
                     "echo \"os=$ID $ID_LIKE\"; "
                     "for m in apt-get dnf yum; do command -v $m "
                     ">/dev/null && echo pkg=$m; done; "
                     "[ -c /dev/kvm ] && echo kvm=yes || echo kvm=no",
                     NULL, 0, &out, NULL, &status, 30000) < 0) {
        goto out;
    }
    id_like = strstr(out.s, "os=");
    if (!id_like || !(strstr(id_like, "debian") || strstr(id_like, "ubuntu")
                      || strstr(id_like, "rhel") || strstr(id_like, "fedora")
                      || strstr(id_like, "centos"))) {
        error_report(PROBLEM_NOT_SUPPORTED,
                     "pre-flight: unsupported operating system (%.*s); "
                     "kvmstack supports Debian and Red Hat families",
                     id_like ? (int) strcspn(id_like, "\n") : 7,
                     id_like ? id_like : "unknown");
        goto out;
    }
    if (!strstr(out.s, "pkg=")) {
        error_report(PROBLEM_NOT_SUPPORTED,
                     "pre-flight: no supported package manager (apt-get, "
                     "dnf or yum) on the host");
        goto out;
    }
    if (strstr(out.s, "kvm=no")) {
        job_progress(job, "warning: /dev/kvm is missing on the host: guests "
                     "will run under TCG emulation (slow)");
    } else {
        job_progress(job, "virtualization: /dev/kvm present");
    }
    rc = 0;

out:
    sbuf_destroy(&out);
    return rc;
}

static int
install_key(struct sshconn *c)
{
    AUTOFREE char *q = shell_quote(sshconn_public_key());
    AUTOFREE char *cmd = xasprintf(
        "umask 077; mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && "
        "{ grep -qxF %s ~/.ssh/authorized_keys || printf '%%s\\n' %s >> "
        "~/.ssh/authorized_keys; }", q, q);
    struct sbuf err;
    int status;
    int rc;

    sbuf_init(&err);
    rc = sshconn_exec(c, cmd, NULL, 0, NULL, &err, &status, 30000);
    if (rc == 0 && status != 0) {
        error_report(PROBLEM_INTERNAL_ERROR,
                     "cannot install mgmt's key in root's authorized_keys "
                     "(exit %d): %.500s", status, err.s);
        rc = -1;
    }
    sbuf_destroy(&err);
    return rc;
}

/* Opens a key-authenticated session to 'ip':'port' whose host key must be
 * 'fp'. */
static struct sshconn *
key_session(const char *ip, int port, const char *fp, bool *mismatch)
{
    char got[SSHCONN_FP_MAX];
    enum sshconn_key_check check;
    struct sshconn *c = sshconn_open(ip, port, "root", fp, got, &check);

    *mismatch = !c && check == SSHCONN_KEY_MISMATCH;
    if (c && sshconn_auth_key(c) < 0) {
        sshconn_close(c);
        return NULL;
    }
    return c;
}

/* Logs in with the password, installs mgmt's key and proves it.  Wipes
 * 'password' once the key works.  Returns the key session. */
static struct sshconn *
password_to_key(struct job *job, const char *ip, int port, char *password,
                const char *expected_fp, char fp[SSHCONN_FP_MAX])
{
    enum sshconn_key_check check;
    struct sshconn *c;
    struct sshconn *k;
    bool mismatch;

    job_progress(job, "pre-flight: connecting to %s port %d", ip, port);
    c = sshconn_open(ip, port, "root", expected_fp, fp, &check);
    if (!c) {
        error_prefix("pre-flight: ");
        return NULL;
    }
    job_progress(job, "pre-flight: host key %s %s", fp,
                 check == SSHCONN_KEY_TRUSTED ? "matches the expected "
                 "fingerprint" : "trusted on first use");
    if (sshconn_auth_password(c, password) < 0) {
        error_prefix("pre-flight: ");
        sshconn_close(c);
        return NULL;
    }
    job_progress(job, "pre-flight: root password accepted");
    if (preflight(c, job) < 0 || install_key(c) < 0) {
        sshconn_close(c);
        return NULL;
    }
    sshconn_remember_host(c);
    sshconn_close(c);
    k = key_session(ip, port, fp, &mismatch);
    if (!k) {
        error_prefix("key login after installing mgmt's key: ");
        return NULL;
    }
    secure_wipe(password, strlen(password));
    job_progress(job, "mgmt's SSH key installed and proven; the password "
                 "is forgotten");
    return k;
}

/* ---- The connection thread ---- */

static struct hostconn *
hc_find(const char *uuid)
{
    for (struct hostconn *hc = hc_list; hc; hc = hc->next) {
        if (!strcmp(hc->uuid, uuid)) {
            return hc;
        }
    }
    return NULL;
}

static void
hc_outcome(struct hostconn *hc, bool connected, const char *error)
{
    pthread_mutex_lock(&hc_mutex);
    hc->connected = connected;
    free(hc->last_error);
    hc->last_error = error ? xstrdup(error) : NULL;
    hc->generation++;
    pthread_cond_broadcast(&hc_cond);
    pthread_mutex_unlock(&hc_mutex);
}

static bool
hc_should_leave(struct hostconn *hc)
{
    bool leave;

    pthread_mutex_lock(&hc_mutex);
    leave = hc->stop || hc->kick;
    pthread_mutex_unlock(&hc_mutex);
    return leave;
}

/* Sleeps up to 'ms' unless stopped or kicked; clears the kick. */
static void
hc_sleep(struct hostconn *hc, int ms, bool forever)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long) (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&hc_mutex);
    while (!hc->stop && !hc->kick) {
        if (forever) {
            pthread_cond_wait(&hc_cond, &hc_mutex);
        } else if (pthread_cond_timedwait(&hc_cond, &hc_mutex, &ts)
                   == ETIMEDOUT) {
            break;
        }
    }
    hc->kick = false;
    pthread_mutex_unlock(&hc_mutex);
}

static int
send_frame(struct sshconn_chan *ch, json_t *msg)
{
    AUTOFREE char *frame = proto_encode(msg);

    json_decref(msg);
    return sshconn_chan_write(ch, frame, strlen(frame));
}

/* Waits for a frame of 'kind' (and 'id' when >= 0).  Returns it or NULL
 * with an error after 'timeout_ms'. */
static json_t *
wait_frame(struct sshconn_chan *ch, struct sbuf *buf, const char *kind,
           json_int_t id, int timeout_ms)
{
    int64_t deadline = time_msec() + timeout_ms;

    for (;;) {
        json_t *msg;
        int r;

        while ((r = proto_next(buf, &msg)) == 1) {
            if (!strcmp(proto_kind(msg), kind)
                && (id < 0 || json_integer_value(json_object_get(msg, "id"))
                    == id)) {
                return msg;
            }
            json_decref(msg);
        }
        if (r < 0) {
            return NULL;
        }
        if (time_msec() > deadline) {
            error_report(PROBLEM_TIMEOUT, "the agent did not answer within "
                         "%d ms", timeout_ms);
            return NULL;
        }
        if (sshconn_chan_read(ch, buf, 100) < 0) {
            return NULL;
        }
    }
}

static int
record_facts(const char *uuid, json_t *facts, const char *agent_version)
{
    struct db *db = db_thread();
    json_int_t cpus = json_integer_value(json_object_get(facts, "cpus"));
    json_int_t mem = json_integer_value(json_object_get(facts,
                                                        "memoryBytes"));

    if (db_write(db, "UPDATE host SET status = 'Connected', lastError = "
                 "NULL, cpuNum = ?1, totalCpuCapacity = ?1 * ?12, "
                 "availableCpuCapacity = ?1 * ?12 - (SELECT "
                 "coalesce(sum(cpuNum), 0) FROM vmInstance WHERE hostUuid "
                 "= ?11 AND reserved = 1), totalMemoryCapacity = ?2, "
                 "availableMemoryCapacity = ?2 - (SELECT "
                 "coalesce(sum(memorySize), 0) FROM vmInstance WHERE "
                 "hostUuid = ?11 AND reserved = 1), architecture = ?3,"
                 " osRelease = ?4, kernelVersion = ?5, libvirtVersion = "
                 "?6, qemuVersion = ?7, kvmAvailable = ?8, agentVersion = "
                 "?9, lastConnectDate = ?10, lastOpDate = ?10 WHERE "
                 "uuid = ?11", "iisssssbsisi", (int64_t) cpus,
                 (int64_t) mem, jstr(facts, "architecture"),
                 jstr(facts, "osRelease"), jstr(facts, "kernel"),
                 jstr(facts, "libvirtVersion"), jstr(facts, "qemuVersion"),
                 json_is_true(json_object_get(facts, "kvm")),
                 agent_version, time_wall_msec(), uuid,
                 (int64_t) VMOPS_CPU_OVERCOMMIT) < 0) {
        return -1;
    }
    return 0;
}

static void
call_free(struct hc_call *call)
{
    if (call) {
        free(call->method);
        json_decref(call->params);
        json_decref(call->result);
        free(call->message);
        free(call);
    }
}

/* Completes 'call' (hc_mutex held): frees it if its caller left. */
static void
call_finish(struct hc_call *call, json_t *result, enum problem p,
            const char *message)
{
    call->result = result;
    call->problem = p;
    call->message = message ? xstrdup(message) : NULL;
    call->done = true;
    if (call->abandoned) {
        call_free(call);
    }
}

/* Fails every queued and sent call of 'hc' (hc_mutex held). */
static void
calls_fail_all(struct hostconn *hc, const char *why)
{
    struct hc_call *lists[2] = { hc->queue, hc->sent };

    hc->queue = hc->sent = NULL;
    for (int i = 0; i < 2; i++) {
        while (lists[i]) {
            struct hc_call *call = lists[i];

            lists[i] = call->next;
            call_finish(call, NULL, PROBLEM_HOST_UNREACHABLE, why);
        }
    }
    pthread_cond_broadcast(&hc_cond);
}

/* Sends the queued calls of 'hc'.  Returns -1 when the channel failed. */
static int
calls_send(struct hostconn *hc, struct sshconn_chan *ch, json_int_t *next_id)
{
    for (;;) {
        struct hc_call *call;
        json_t *frame;

        pthread_mutex_lock(&hc_mutex);
        call = hc->queue;
        if (call) {
            hc->queue = call->next;
            call->id = (*next_id)++;
            call->next = hc->sent;
            hc->sent = call;
            frame = json_pack("{s:s, s:I, s:s, s:O}", "kind", "call", "id",
                              call->id, "method", call->method, "params",
                              call->params);
        }
        pthread_mutex_unlock(&hc_mutex);
        if (!call) {
            return 0;
        }
        if (send_frame(ch, frame) < 0) {
            return -1;
        }
    }
}

/* Matches a reply frame to its call. */
static void
calls_reply(struct hostconn *hc, json_t *frame)
{
    json_int_t id = json_integer_value(json_object_get(frame, "id"));
    struct hc_call **p;

    pthread_mutex_lock(&hc_mutex);
    for (p = &hc->sent; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct hc_call *call = *p;
            json_t *result = json_object_get(frame, "result");

            *p = call->next;
            if (result) {
                call_finish(call, json_incref(result), PROBLEM_NONE, NULL);
            } else {
                call_finish(call, NULL,
                            problem_from_name(jstr(frame, "problem")
                                              ? jstr(frame, "problem")
                                              : "internal-error"),
                            jstr(frame, "message") ? jstr(frame, "message")
                                                   : "the agent failed");
            }
            pthread_cond_broadcast(&hc_cond);
            break;
        }
    }
    pthread_mutex_unlock(&hc_mutex);
}

/* Agent events are handled on one thread of their own, in order: a
 * handler writes the database, and a connection thread waiting for the
 * writer turn could not read the reply that the turn's holder may be
 * waiting for. */
struct event_item {
    struct event_item *next;
    char host[UUID_LEN + 1];
    json_t *frame;              /* Owned. */
};

static pthread_mutex_t event_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t event_cond = PTHREAD_COND_INITIALIZER;
static struct event_item *event_head;
static struct event_item *event_tail;
static bool event_thread_running;
static pthread_t event_thread;
static bool event_stopping;

static void *
event_main(void *arg)
{
    (void) arg;
    for (;;) {
        struct event_item *e;

        pthread_mutex_lock(&event_mutex);
        while (!event_head && !event_stopping) {
            pthread_cond_wait(&event_cond, &event_mutex);
        }
        e = event_head;
        if (e) {
            event_head = e->next;
            if (!event_head) {
                event_tail = NULL;
            }
        }
        pthread_mutex_unlock(&event_mutex);
        if (!e) {
            break;
        }
        if (hostmgr_event_handler) {
            error_reset();
            hostmgr_event_handler(e->host, jstr(e->frame, "event"),
                                  json_object_get(e->frame, "data"));
            db_settle(db_thread());
        }
        json_decref(e->frame);
        free(e);
    }
    db_thread_close();
    return NULL;
}

static void
event_post(const char *host, json_t *frame)
{
    struct event_item *e = xcalloc(1, sizeof *e);

    snprintf(e->host, sizeof e->host, "%s", host);
    e->frame = json_incref(frame);
    pthread_mutex_lock(&event_mutex);
    if (!event_thread_running) {
        event_thread_running = true;
        pthread_create(&event_thread, NULL, event_main, NULL);
    }
    if (event_tail) {
        event_tail->next = e;
    } else {
        event_head = e;
    }
    event_tail = e;
    pthread_cond_signal(&event_cond);
    pthread_mutex_unlock(&event_mutex);
}

static void *
connect_handler_main(void *arg)
{
    char *uuid = arg;

    if (hostmgr_connect_handler) {
        hostmgr_connect_handler(uuid);
    }
    free(uuid);
    db_thread_close();
    return NULL;
}

/* One session: connect, converge, start the agent, ping until it fails. */
static enum hc_outcome
hostconn_session(struct hostconn *hc)
{
    struct db *db = db_thread();
    json_t *row = res_load_table(db, "host", hc->uuid);
    struct sshconn *c = NULL;
    struct sshconn_chan *ch = NULL;
    enum hc_outcome outcome = HC_FAILED;
    struct sbuf buf;
    struct sbuf err;
    bool mismatch = false;
    json_t *msg = NULL;
    json_int_t next_id = 1;
    json_int_t ping_id = -1;
    int misses = 0;
    int64_t next_ping;
    char fp[SSHCONN_FP_MAX];
    enum sshconn_key_check check;
    const char *stored_fp;

    sbuf_init(&buf);
    sbuf_init(&err);
    if (!row) {
        hc->stop = true;
        outcome = HC_STOPPED;
        goto out;
    }
    stored_fp = jstr(row, "sshHostKeyFingerprint");
    c = sshconn_open(jstr(row, "managementIp"),
                     (int) json_integer_value(json_object_get(row,
                                                              "sshPort")),
                     "root", stored_fp, fp, &check);
    if (!c) {
        mismatch = check == SSHCONN_KEY_MISMATCH;
        outcome = mismatch ? HC_MISMATCH : HC_FAILED;
        goto out;
    }
    if (!stored_fp || !*stored_fp) {
        struct db *d = db_thread();

        /* Re-trusted: the key seen now becomes the expected one. */
        if (db_begin(d) < 0
            || db_exec(d, "UPDATE host SET sshHostKeyFingerprint = ?1 "
                       "WHERE uuid = ?2", "ss", fp, hc->uuid) < 0
            || db_commit(d) < 0) {
            db_rollback(d);
            goto out;
        }
        sshconn_remember_host(c);
        LOG_INFO("host %s: host key %s trusted", hc->uuid, fp);
    }
    if (sshconn_auth_key(c) < 0) {
        goto out;
    }
    if (!jstr(row, "playbookHash")
        || strcmp(jstr(row, "playbookHash"), playbook_hash)) {
        json_t *vars = kvm_playbook_vars();
        int rc = run_playbook(c, kvm_playbook, vars, NULL, hc->uuid);

        json_decref(vars);
        if (rc < 0) {
            goto out;
        }
        if (db_write(db, "UPDATE host SET playbookHash = ?1 WHERE uuid = "
                     "?2", "ss", playbook_hash, hc->uuid) < 0) {
            goto out;
        }
    }
    ch = sshconn_chan_open(c, "exec " AGENT_DEST " --stdio");
    if (!ch) {
        goto out;
    }
    msg = wait_frame(ch, &buf, "init", -1, HANDSHAKE_TIMEOUT_MS);
    if (!msg) {
        error_prefix("agent handshake: ");
        goto out;
    }
    if (json_integer_value(json_object_get(msg, "version"))
        != PROTO_VERSION) {
        error_report(PROBLEM_PROTOCOL_ERROR, "the agent speaks protocol "
                     "version %lld, mgmt %d",
                     (long long) json_integer_value(json_object_get(msg,
                                                                    "version")),
                     PROTO_VERSION);
        goto out;
    }
    {
        AUTOFREE char *agent_version = xstrdup(jstr(msg, "agentVersion")
                                               ? jstr(msg, "agentVersion")
                                               : "unknown");
        json_t *reply;

        json_decref(msg);
        msg = NULL;
        if (send_frame(ch, json_pack("{s:s, s:i, s:[]}", "kind", "init",
                                     "version", PROTO_VERSION,
                                     "capabilities")) < 0
            || send_frame(ch, json_pack("{s:s, s:I, s:s, s:{}}", "kind",
                                        "call", "id", next_id, "method",
                                        "host.facts", "params")) < 0) {
            goto out;
        }
        reply = wait_frame(ch, &buf, "reply", next_id++,
                           HANDSHAKE_TIMEOUT_MS);
        if (!reply) {
            error_prefix("agent host.facts: ");
            goto out;
        }
        if (record_facts(hc->uuid, json_object_get(reply, "result"),
                         agent_version) < 0) {
            json_decref(reply);
            goto out;
        }
        json_decref(reply);
    }
    LOG_INFO("host %s: Connected (agent channel up)", hc->uuid);
    hc_outcome(hc, true, NULL);
    if (hostmgr_connect_handler) {
        pthread_t t;

        /* Pushing the host's desired state makes agent calls, which this
         * thread sends: run it beside. */
        if (!pthread_create(&t, NULL, connect_handler_main,
                            xstrdup(hc->uuid))) {
            pthread_detach(t);
        }
    }
    next_ping = time_msec() + hostmgr_ping_interval_ms;
    for (;;) {
        json_t *frame;
        int r;

        if (hc_should_leave(hc)) {
            outcome = HC_STOPPED;
            goto out;
        }
        if (calls_send(hc, ch, &next_id) < 0) {
            goto out;
        }
        /* Sleep until the agent writes, a call is queued, or the next
         * ping or stop check is due. */
        sshconn_chan_wait(ch, hc->wake_fd, 100);
        {
            uint64_t drained;

            if (read(hc->wake_fd, &drained, sizeof drained) < 0) {
                /* Nothing queued (EAGAIN). */
            }
        }
        if (calls_send(hc, ch, &next_id) < 0
            || sshconn_chan_read(ch, &buf, 0) < 0) {
            goto out;
        }
        while ((r = proto_next(&buf, &frame)) == 1) {
            const char *kind = proto_kind(frame);

            if (!strcmp(kind, "pong")
                && json_integer_value(json_object_get(frame, "id"))
                   == ping_id) {
                ping_id = -1;
                misses = 0;
            } else if (!strcmp(kind, "reply")) {
                calls_reply(hc, frame);
            } else if (!strcmp(kind, "event")) {
                LOG_INFO("host %s: event %s", hc->uuid,
                         jstr(frame, "event"));
                event_post(hc->uuid, frame);
            }
            json_decref(frame);
        }
        if (r < 0) {
            goto out;
        }
        if (time_msec() >= next_ping) {
            if (ping_id >= 0 && ++misses >= hostmgr_ping_max_failure) {
                error_report(PROBLEM_TIMEOUT, "the agent missed %d pings in "
                             "a row", misses);
                goto out;
            }
            ping_id = next_id++;
            if (send_frame(ch, json_pack("{s:s, s:I}", "kind", "ping", "id",
                                         ping_id)) < 0) {
                goto out;
            }
            next_ping = time_msec() + hostmgr_ping_interval_ms;
        }
    }

out:
    pthread_mutex_lock(&hc_mutex);
    calls_fail_all(hc, "the host's agent channel closed before the reply");
    pthread_mutex_unlock(&hc_mutex);
    if (outcome == HC_FAILED && ch) {
        sshconn_chan_drain_stderr(ch, &err);
        if (err.len) {
            error_prefix("agent stderr: %.300s; ", err.s);
        }
    }
    json_decref(msg);
    json_decref(row);
    sshconn_chan_close(ch);
    sshconn_close(c);
    sbuf_destroy(&buf);
    sbuf_destroy(&err);
    return outcome;
}

static void *
hostconn_main(void *arg)
{
    struct hostconn *hc = arg;
    int backoff = 1000;

    for (;;) {
        enum hc_outcome o;
        bool was_connected;

        pthread_mutex_lock(&hc_mutex);
        if (hc->stop) {
            pthread_mutex_unlock(&hc_mutex);
            break;
        }
        hc->kick = false;
        pthread_mutex_unlock(&hc_mutex);
        host_set(hc->uuid, "Connecting", NULL);
        error_reset();
        o = hostconn_session(hc);
        pthread_mutex_lock(&hc_mutex);
        was_connected = hc->connected;
        pthread_mutex_unlock(&hc_mutex);
        if (o == HC_STOPPED) {
            /* Not an outcome: a reconnect or a stop was asked for, and
             * waiters wait for the attempt that follows. */
            pthread_mutex_lock(&hc_mutex);
            hc->connected = false;
            pthread_mutex_unlock(&hc_mutex);
            if (!hc->stop) {
                host_set(hc->uuid, "Disconnected", "reconnect requested");
            }
            continue;
        }
        if (o == HC_MISMATCH) {
            LOG_ERR("host %s: %s", hc->uuid, error_last_message());
            host_set(hc->uuid, "HostKeyMismatch", error_last_message());
            hc_outcome(hc, false, error_last_message());
            hc_sleep(hc, 0, true);
            backoff = 1000;
            continue;
        }
        LOG_WARN("host %s: Disconnected: %s", hc->uuid,
                 error_last_message());
        host_set(hc->uuid, "Disconnected", error_last_message());
        hc_outcome(hc, false, error_last_message());
        if (was_connected) {
            backoff = 1000;
        }
        hc_sleep(hc, backoff, false);
        backoff = backoff * 2 > hostmgr_reconnect_max_ms
                  ? hostmgr_reconnect_max_ms : backoff * 2;
    }
    db_thread_close();
    return NULL;
}

static void
hostmgr_watch(const char *uuid)
{
    struct hostconn *hc;

    pthread_mutex_lock(&hc_mutex);
    if (hc_find(uuid)) {
        pthread_mutex_unlock(&hc_mutex);
        return;
    }
    hc = xcalloc(1, sizeof *hc);
    hc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hc->wake_fd < 0) {
        abort();
    }
    snprintf(hc->uuid, sizeof hc->uuid, "%s", uuid);
    hc->next = hc_list;
    hc_list = hc;
    pthread_create(&hc->thread, NULL, hostconn_main, hc);
    pthread_mutex_unlock(&hc_mutex);
}

/* Waits until the host's connection reports an outcome after 'gen'. */
static int
wait_outcome(const char *uuid, unsigned gen, int wait_ms)
{
    int64_t deadline = time_msec() + wait_ms;
    struct hostconn *hc;
    int rc = -1;

    pthread_mutex_lock(&hc_mutex);
    for (;;) {
        struct timespec ts;

        hc = hc_find(uuid);
        if (!hc) {
            error_report(PROBLEM_NOT_FOUND, "host %s is not managed", uuid);
            break;
        }
        if (hc->generation != gen) {
            if (hc->connected) {
                rc = 0;
            } else {
                error_report(PROBLEM_HOST_UNREACHABLE, "%s",
                             hc->last_error ? hc->last_error
                                            : "the host did not connect");
            }
            break;
        }
        if (time_msec() > deadline) {
            error_report(PROBLEM_TIMEOUT, "host %s did not connect within "
                         "%d ms", uuid, wait_ms);
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&hc_cond, &hc_mutex, &ts);
    }
    pthread_mutex_unlock(&hc_mutex);
    return rc;
}

static unsigned
current_generation(const char *uuid)
{
    struct hostconn *hc;
    unsigned gen = 0;

    pthread_mutex_lock(&hc_mutex);
    hc = hc_find(uuid);
    if (hc) {
        gen = hc->generation;
    }
    pthread_mutex_unlock(&hc_mutex);
    return gen;
}

void
hostmgr_forget(const char *uuid)
{
    struct hostconn **p;
    struct hostconn *hc = NULL;

    pthread_mutex_lock(&hc_mutex);
    for (p = &hc_list; *p; p = &(*p)->next) {
        if (!strcmp((*p)->uuid, uuid)) {
            hc = *p;
            *p = hc->next;
            break;
        }
    }
    if (hc) {
        hc->stop = true;
        hc_wake(hc);
        pthread_cond_broadcast(&hc_cond);
    }
    pthread_mutex_unlock(&hc_mutex);
    if (hc) {
        pthread_join(hc->thread, NULL);
        close(hc->wake_fd);
        free(hc->last_error);
        free(hc);
    }
}

static void
delete_record(const char *table, const char *uuid)
{
    struct db *db = db_thread();
    char *sql = xasprintf("DELETE FROM %s WHERE uuid = ?1", table);

    if (db_begin(db) < 0 || db_exec(db, sql, "s", uuid) < 0
        || db_commit(db) < 0) {
        db_rollback(db);
        LOG_ERR("cannot remove %s %s after a failed add: %s", table, uuid,
                error_last_message());
    }
    free(sql);
}

int
hostmgr_bootstrap(struct job *job, const char *uuid, const char *password,
                  const char *expected_fp)
{
    struct db *db = db_thread();
    json_t *row = res_load_table(db, "host", uuid);
    struct sshconn *c = NULL;
    char fp[SSHCONN_FP_MAX];
    AUTOFREE char *pw = xstrdup(password ? password : "");
    int rc = -1;
    json_t *vars = NULL;
    unsigned gen;

    if (!row) {
        goto out;
    }
    c = password_to_key(job, jstr(row, "managementIp"),
                        (int) json_integer_value(json_object_get(row,
                                                                 "sshPort")),
                        pw, expected_fp, fp);
    secure_wipe(pw, strlen(pw));
    if (!c) {
        goto out;
    }
    if (db_write(db, "UPDATE host SET sshHostKeyFingerprint = ?1 WHERE "
                 "uuid = ?2", "ss", fp, uuid) < 0) {
        goto out;
    }
    job_progress(job, "PLAY [kvm-host] running %s", kvm_playbook);
    vars = kvm_playbook_vars();
    if (run_playbook(c, kvm_playbook, vars, job, jstr(row, "name")) < 0) {
        goto out;
    }
    sshconn_close(c);
    c = NULL;
    if (db_write(db, "UPDATE host SET playbookHash = ?1, added = 1 WHERE "
                 "uuid = ?2", "ss", playbook_hash, uuid) < 0) {
        goto out;
    }
    job_progress(job, "starting the agent channel");
    gen = current_generation(uuid);
    hostmgr_watch(uuid);
    if (wait_outcome(uuid, gen, 120000) < 0) {
        error_prefix("agent: ");
        goto out;
    }
    job_progress(job, "host is Connected");
    rc = 0;

out:
    json_decref(vars);
    json_decref(row);
    sshconn_close(c);
    if (rc < 0) {
        struct error_saved e;

        error_save(&e);
        hostmgr_forget(uuid);
        delete_record("host", uuid);
        error_restore(&e);
    }
    return rc;
}

int
hostmgr_bootstrap_bs(struct job *job, const char *uuid,
                     const char *password, const char *expected_fp)
{
    struct db *db = db_thread();
    json_t *row = res_load_table(db, "backupStorage", uuid);
    struct sshconn *c = NULL;
    char fp[SSHCONN_FP_MAX];
    AUTOFREE char *pw = xstrdup(password ? password : "");
    AUTOFREE char *cmd = NULL;
    AUTOFREE char *qurl = NULL;
    struct sbuf out;
    long long total = 0;
    long long avail = 0;
    int status;
    int rc = -1;
    json_t *vars = NULL;

    sbuf_init(&out);
    if (!row) {
        goto out;
    }
    c = password_to_key(job, jstr(row, "hostname"),
                        (int) json_integer_value(json_object_get(row,
                                                                 "sshPort")),
                        pw, expected_fp, fp);
    secure_wipe(pw, strlen(pw));
    if (!c) {
        goto out;
    }
    vars = json_pack("{s:s}", "url", jstr(row, "url"));
    job_progress(job, "PLAY [sftp-backup-storage] running %s", bs_playbook);
    if (run_playbook(c, bs_playbook, vars, job, jstr(row, "name")) < 0) {
        goto out;
    }
    qurl = shell_quote(jstr(row, "url"));
    cmd = xasprintf("df -P -B1 %s | tail -n 1", qurl);
    if (sshconn_exec(c, cmd, NULL, 0, &out, NULL, &status, 30000) < 0) {
        goto out;
    }
    if (status != 0
        || sscanf(out.s, "%*s %lld %*d %lld", &total, &avail) != 2) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot read the capacity of "
                     "'%s' on the backup storage host", jstr(row, "url"));
        goto out;
    }
    if (db_write(db, "UPDATE backupStorage SET sshHostKeyFingerprint = ?1,"
                 " status = 'Connected', totalCapacity = ?2, "
                 "availableCapacity = ?3, added = 1, lastError = NULL, "
                 "lastOpDate = ?4 WHERE uuid = ?5", "siiis", fp,
                 (int64_t) total, (int64_t) avail, time_wall_msec(),
                 uuid) < 0) {
        goto out;
    }
    job_progress(job, "backup storage is Connected (%lld of %lld bytes "
                 "free)", avail, total);
    rc = 0;

out:
    json_decref(vars);
    json_decref(row);
    sshconn_close(c);
    sbuf_destroy(&out);
    if (rc < 0) {
        struct error_saved e;

        error_save(&e);
        delete_record("backupStorage", uuid);
        error_restore(&e);
    }
    return rc;
}

int
hostmgr_rekey(struct job *job, const char *uuid, const char *password)
{
    struct db *db = db_thread();
    json_t *row = res_load_table(db, "host", uuid);
    AUTOFREE char *pw = xstrdup(password ? password : "");
    char fp[SSHCONN_FP_MAX];
    struct sshconn *c = NULL;

    if (row) {
        c = password_to_key(job, jstr(row, "managementIp"),
                            (int) json_integer_value(json_object_get(
                                                         row, "sshPort")),
                            pw, jstr(row, "sshHostKeyFingerprint"), fp);
    }
    secure_wipe(pw, strlen(pw));
    json_decref(row);
    if (!c) {
        return -1;
    }
    sshconn_close(c);
    job_progress(job, "reconnecting with mgmt's key");
    return hostmgr_reconnect(uuid, false, NULL, 120000);
}

int
hostmgr_reconnect(const char *uuid, bool retrust, const char *fingerprint,
                  int wait_ms)
{
    struct hostconn *hc;
    unsigned gen;

    if (retrust) {
        struct db *db = db_thread();

        if (db_write(db, "UPDATE host SET sshHostKeyFingerprint = ?1 "
                     "WHERE uuid = ?2", "ss", fingerprint, uuid) < 0) {
            return -1;
        }
    }
    hostmgr_watch(uuid);
    pthread_mutex_lock(&hc_mutex);
    hc = hc_find(uuid);
    gen = hc->generation;
    hc->kick = true;
    hc_wake(hc);
    pthread_cond_broadcast(&hc_cond);
    pthread_mutex_unlock(&hc_mutex);
    /* The kick itself ends a live session (one outcome); wait for the
     * attempt after it. */
    if (wait_outcome(uuid, gen, wait_ms) < 0) {
        return -1;
    }
    return 0;
}

/* Backup storage has no agent: a monitor thread logs in to each one every
 * ping interval with mgmt's key, reads its folder's capacity, and keeps
 * its status Connected or Disconnected (with the reason). */
static pthread_t bs_thread;
static bool bs_thread_running;
static bool bs_stopping;
static pthread_mutex_t bs_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bs_cond = PTHREAD_COND_INITIALIZER;

static void
bs_check(json_t *bs)
{
    struct db *db = db_thread();
    const char *uuid = jstr(bs, "uuid");
    struct sshconn *c;
    AUTOFREE char *q = shell_quote(jstr(bs, "url"));
    AUTOFREE char *cmd = xasprintf("df -P -B1 %s | tail -n 1", q);
    struct sbuf out;
    long long total = 0;
    long long avail = 0;
    int status = -1;
    bool ok = false;

    sbuf_init(&out);
    error_reset();
    c = sshconn_open_key(jstr(bs, "hostname"),
                         (int) json_integer_value(json_object_get(bs,
                                                                  "sshPort")),
                         jstr(bs, "sshHostKeyFingerprint"));
    if (c && sshconn_exec(c, cmd, NULL, 0, &out, NULL, &status, 30000) == 0
        && status == 0
        && sscanf(out.s, "%*s %lld %*d %lld", &total, &avail) == 2) {
        ok = true;
    } else if (c) {
        error_report(PROBLEM_INTERNAL_ERROR, "cannot read the capacity of "
                     "'%s'", jstr(bs, "url"));
    }
    sshconn_close(c);
    sbuf_destroy(&out);
    if (db_begin(db) < 0) {
        return;
    }
    if (ok) {
        db_exec(db, "UPDATE backupStorage SET status = 'Connected', "
                "totalCapacity = ?1, availableCapacity = ?2, lastError = "
                "NULL WHERE uuid = ?3", "iis", (int64_t) total,
                (int64_t) avail, uuid);
    } else {
        db_exec(db, "UPDATE backupStorage SET status = 'Disconnected', "
                "lastError = ?1 WHERE uuid = ?2", "ss", error_last_message(),
                uuid);
    }
    if (db_commit(db) < 0) {
        db_rollback(db);
    }
    if (!ok && strcmp(jstr(bs, "status"), "Disconnected")) {
        LOG_WARN("backup storage %s: Disconnected: %s", uuid,
                 error_last_message());
    } else if (ok && strcmp(jstr(bs, "status"), "Connected")) {
        LOG_INFO("backup storage %s: Connected", uuid);
    }
}

static void *
bs_monitor_main(void *arg)
{
    (void) arg;
    for (;;) {
        json_t *rows = res_select(db_thread(), "SELECT * FROM backupStorage "
                                  "WHERE added = 1", "");
        size_t i;
        json_t *bs;
        struct timespec ts;
        bool stop;

        json_array_foreach(rows, i, bs) {
            bs_check(bs);
        }
        json_decref(rows);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += hostmgr_ping_interval_ms / 1000;
        ts.tv_nsec += (long) (hostmgr_ping_interval_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&bs_mutex);
        if (!bs_stopping) {
            pthread_cond_timedwait(&bs_cond, &bs_mutex, &ts);
        }
        stop = bs_stopping;
        pthread_mutex_unlock(&bs_mutex);
        if (stop) {
            break;
        }
    }
    db_thread_close();
    return NULL;
}

int
hostmgr_start(const char *playbook_dir, const char *agent_path)
{
    struct db *db = db_thread();
    json_t *rows;
    size_t i;
    json_t *r;
    int n;

    free(kvm_playbook);
    free(bs_playbook);
    free(agent_src);
    kvm_playbook = xasprintf("%s/kvm-host.yaml", playbook_dir);
    bs_playbook = xasprintf("%s/sftp-backup-storage.yaml", playbook_dir);
    agent_src = xstrdup(agent_path);
    if (compute_playbook_hash() < 0) {
        LOG_ERR("host bootstrap unavailable: %s", error_last_message());
        memset(playbook_hash, 0, sizeof playbook_hash);
    }
    if (db_begin(db) < 0) {
        return -1;
    }
    /* Until each agent reports them, no router channel is known to be
     * up. */
    if (db_exec(db, "UPDATE vmInstance SET vrStatus = 'Disconnected' WHERE "
                "type = 'ApplianceVm' AND vrStatus IS NOT NULL", "") < 0) {
        db_rollback(db);
        return -1;
    }
    n = db_exec(db, "DELETE FROM host WHERE added = 0", "");
    if (n < 0 || db_exec(db, "DELETE FROM backupStorage WHERE added = 0",
                         "") < 0 || db_commit(db) < 0) {
        db_rollback(db);
        return -1;
    }
    if (n > 0) {
        LOG_WARN("removed %d host(s) whose add was interrupted by the last "
                 "shutdown; add them again", n);
    }
    rows = res_select(db, "SELECT uuid FROM host", "");
    json_array_foreach(rows, i, r) {
        hostmgr_watch(jstr(r, "uuid"));
    }
    json_decref(rows);
    bs_stopping = false;
    bs_thread_running = pthread_create(&bs_thread, NULL, bs_monitor_main,
                                       NULL) == 0;
    return 0;
}

void
hostmgr_stop(void)
{
    pthread_mutex_lock(&bs_mutex);
    bs_stopping = true;
    pthread_cond_broadcast(&bs_cond);
    pthread_mutex_unlock(&bs_mutex);
    if (bs_thread_running) {
        pthread_join(bs_thread, NULL);
        bs_thread_running = false;
    }
    pthread_mutex_lock(&event_mutex);
    event_stopping = true;
    pthread_cond_broadcast(&event_cond);
    pthread_mutex_unlock(&event_mutex);
    if (event_thread_running) {
        pthread_join(event_thread, NULL);
        event_thread_running = false;
    }
    for (;;) {
        char uuid[UUID_LEN + 1];

        pthread_mutex_lock(&hc_mutex);
        if (!hc_list) {
            pthread_mutex_unlock(&hc_mutex);
            break;
        }
        snprintf(uuid, sizeof uuid, "%s", hc_list->uuid);
        pthread_mutex_unlock(&hc_mutex);
        hostmgr_forget(uuid);
    }
}

json_t *
hostmgr_call(const char *uuid, const char *method, json_t *params,
             int timeout_ms)
{
    struct hc_call *call = xcalloc(1, sizeof *call);
    struct hostconn *hc;
    struct hc_call **tail;
    int64_t deadline = time_msec() + timeout_ms;
    json_t *result = NULL;

    call->method = xstrdup(method);
    call->params = params ? params : json_object();
    pthread_mutex_lock(&hc_mutex);
    hc = hc_find(uuid);
    if (!hc || !hc->connected) {
        pthread_mutex_unlock(&hc_mutex);
        error_report(PROBLEM_HOST_UNREACHABLE, "host %s is not Connected",
                     uuid);
        call_free(call);
        return NULL;
    }
    for (tail = &hc->queue; *tail; tail = &(*tail)->next) {
        continue;
    }
    *tail = call;
    hc_wake(hc);
    while (!call->done) {
        struct timespec ts;

        if (time_msec() > deadline) {
            struct hc_call **p;
            bool queued = false;

            /* Still queued: unlink and free; sent: leave it to the
             * connection thread. */
            for (p = &hc->queue; *p; p = &(*p)->next) {
                if (*p == call) {
                    *p = call->next;
                    queued = true;
                    break;
                }
            }
            call->abandoned = !queued;
            pthread_mutex_unlock(&hc_mutex);
            if (queued) {
                call_free(call);
            }
            error_report(PROBLEM_TIMEOUT, "host %s: %s got no reply within "
                         "%d ms", uuid, method, timeout_ms);
            return NULL;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&hc_cond, &hc_mutex, &ts);
    }
    pthread_mutex_unlock(&hc_mutex);
    if (call->result) {
        result = call->result;
        call->result = NULL;
    } else {
        error_report(call->problem, "host %s: %s: %s", uuid, method,
                     call->message ? call->message : "failed");
    }
    call_free(call);
    return result;
}

bool
hostmgr_is_connected(const char *uuid)
{
    struct hostconn *hc;
    bool up;

    pthread_mutex_lock(&hc_mutex);
    hc = hc_find(uuid);
    up = hc && hc->connected;
    pthread_mutex_unlock(&hc_mutex);
    return up;
}
