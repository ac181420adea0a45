/* playbook_bench.c: runs a playbook N times against one SSH host the way
 * mgmt does, and times it (the kvmstack side of `make bench`'s playbook
 * benchmark; tests/bench/playbook-bench.sh drives it).
 *
 * Linked with mgmt's objects: it connects with sshconn.c (libssh), checks
 * the host key against --fingerprint, logs in as root with the key in
 * --ssh-dir (sshconn_setup(); created there on first use) or with a
 * password taken from the environment variable named by --password-env
 * (never from argv; the variable is wiped and unset at start), and then
 * runs the playbook exactly as hostmgr.c's run_playbook() does: one
 * `exec /bin/sh` exec channel per run on the open session, with
 * playbook_shell_new() and playbook_shell_exec() as the transport.  A
 * run's wall time covers the channel open, the whole playbook (facts
 * included) and the channel close; with --reconnect it also covers a new
 * SSH connection and login, as after an mgmt restart.
 *
 * Prints one line per run (wall time, the part of it before the first
 * task: connection, channel, loading the playbook; time per task; the
 * recap), the median time of each task over the runs, and a last line
 * for scripts:
 *
 *   RESULT runs=N tasks=T median_run_ms=X median_task_ms=Y min_run_ms=A
 *   max_run_ms=B changed=C failed=F recap="ok=.. changed=.."
 *
 * where T counts the playbook's tasks that ran (not "Gathering Facts")
 * and median_task_ms is median_run_ms / T.  Exit status: 0, 1 when a run
 * failed (or changed something under --expect-unchanged), 2 on bad
 * usage. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"
#include "playbook.h"
#include "sshconn.h"

#define MAX_RUNS 1000
#define MAX_TASKS 256

/* Timings of one run, filled by the progress callback. */
struct bench_run {
    double start_us[MAX_TASKS]; /* When each task (by index) began. */
    double ms[MAX_TASKS];       /* How long it took; -1 if it did not. */
    char *names[MAX_TASKS];     /* Task names; owned. */
    int n_tasks;                /* Highest index seen + 1. */
    int ran;                    /* Tasks that ended, "Gathering Facts"
                                 * excluded. */
    bool verbose;               /* Print each task as it ends. */
};

/* What the command line asked for. */
struct bench_opts {
    const char *host;
    int port;
    const char *user;
    const char *fingerprint;    /* Expected host key; NULL: trust. */
    const char *ssh_dir;
    char *password;             /* From the environment; owned. */
    int runs;
    bool reconnect;             /* A new SSH session for every run. */
    bool expect_unchanged;      /* changed > 0 fails the bench. */
    bool verbose;
    json_t *vars;               /* Extra vars, owned. */
    const char *playbook;
};

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a;
    double y = *(const double *) b;

    return x < y ? -1 : x > y;
}

/* Median of the 'n' values of 'v' (reordered); 0 when 'n' is 0. */
static double
median(double *v, int n)
{
    if (n <= 0) {
        return 0;
    }
    qsort(v, (size_t) n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
bench_run_destroy(struct bench_run *r)
{
    for (int i = 0; i < MAX_TASKS; i++) {
        free(r->names[i]);
    }
}

static void
bench_progress(void *aux, int index, int total, const char *task,
               const char *result)
{
    struct bench_run *r = aux;

    (void) total;
    if (index < 0 || index >= MAX_TASKS) {
        return;
    }
    if (!result) {
        r->start_us[index] = now_us();
        free(r->names[index]);
        r->names[index] = xstrdup(task);
        r->n_tasks = index + 1 > r->n_tasks ? index + 1 : r->n_tasks;
        return;
    }
    r->ms[index] = (now_us() - r->start_us[index]) / 1e3;
    if (index > 0) {
        r->ran++;
    }
    if (r->verbose) {
        printf("    %7.2f ms  %-8s %s\n", r->ms[index], result, task);
    }
}

static int
stream_write(void *aux, const void *data, size_t n)
{
    return sshconn_chan_write(aux, data, n);
}

static int
stream_read(void *aux, struct sbuf *buf, int timeout_ms)
{
    return sshconn_chan_read(aux, buf, timeout_ms);
}

/* Opens and authenticates a session as 'o' says.  NULL with an error
 * reported on failure. */
static struct sshconn *
bench_connect(const struct bench_opts *o)
{
    char got[SSHCONN_FP_MAX];
    enum sshconn_key_check check;
    struct sshconn *c = sshconn_open(o->host, o->port, o->user,
                                     o->fingerprint, got, &check);

    if (!c) {
        return NULL;
    }
    if (o->password ? sshconn_auth_password(c, o->password) < 0
                    : sshconn_auth_key(c) < 0) {
        sshconn_close(c);
        return NULL;
    }
    return c;
}

/* One run of the playbook over session 'c', as hostmgr.c's
 * run_playbook(): a fresh `exec /bin/sh` channel, the persistent shell
 * over it, then both closed.  Returns playbook_run()'s result, -1 also
 * when the channel cannot be opened. */
static int
bench_run_once(struct sshconn *c, const struct bench_opts *o,
               struct bench_run *r, struct playbook_recap *recap)
{
    struct sshconn_chan *ch = sshconn_chan_open(c, "exec /bin/sh");
    struct playbook_shell *sh;
    struct playbook_target t;
    int rc;

    memset(recap, 0, sizeof *recap);
    if (!ch) {
        return -1;
    }
    sh = playbook_shell_new(stream_write, stream_read, ch, 30 * 60 * 1000);
    t = (struct playbook_target) { playbook_shell_exec, sh, bench_progress,
                                   r };
    rc = playbook_run(o->playbook, &t, o->vars, recap);
    playbook_shell_free(sh);
    sshconn_chan_close(ch);
    return rc;
}

static void
usage(FILE *f)
{
    fprintf(f,
"usage: playbook-bench --host ADDR --ssh-dir DIR [options] PLAYBOOK\n"
"Runs PLAYBOOK on ADDR over one persistent shell per run, as kvmstack's\n"
"mgmt does, and prints the time of each run and task.\n"
"  --host ADDR           the SSH host\n"
"  --port N              its port (22)\n"
"  --user NAME           login name (root)\n"
"  --fingerprint FP      the host key's SHA256:... fingerprint to require\n"
"                        (without it the key is trusted)\n"
"  --ssh-dir DIR         holds the client key id_ed25519 (created if\n"
"                        missing); key login unless --password-env\n"
"  --password-env VAR    log in with the password in environment\n"
"                        variable VAR (wiped and unset at start)\n"
"  --runs N              runs, one after the other (1)\n"
"  --reconnect           a new SSH connection and login for every run\n"
"                        (inside its time)\n"
"  --var NAME=VALUE      extra variable (string), repeatable\n"
"  --expect-unchanged    fail if a run reports changed > 0\n"
"  --verbose             print every task of every run\n"
"  --log-level LEVEL     err, warn (default), info or dbg, to stderr\n");
}

/* Parses the command line into 'o'.  Returns 0, or 2 after printing
 * usage. */
static int
parse_opts(int argc, char **argv, struct bench_opts *o)
{
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "user", required_argument, NULL, 'u' },
        { "fingerprint", required_argument, NULL, 'f' },
        { "ssh-dir", required_argument, NULL, 'd' },
        { "password-env", required_argument, NULL, 'P' },
        { "runs", required_argument, NULL, 'n' },
        { "reconnect", no_argument, NULL, 'r' },
        { "var", required_argument, NULL, 'e' },
        { "expect-unchanged", no_argument, NULL, 'x' },
        { "verbose", no_argument, NULL, 'v' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *pw;
    char *eq;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            o->port = atoi(optarg);
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'f':
            o->fingerprint = optarg;
            break;
        case 'd':
            o->ssh_dir = optarg;
            break;
        case 'P':
            pw = getenv(optarg);
            if (!pw) {
                fprintf(stderr, "playbook-bench: environment variable "
                        "'%s' is not set\n", optarg);
                return 2;
            }
            secret_free(o->password);
            o->password = xstrdup(pw);
            secure_wipe(pw, strlen(pw));
            unsetenv(optarg);
            break;
        case 'n':
            o->runs = atoi(optarg);
            break;
        case 'r':
            o->reconnect = true;
            break;
        case 'e':
            eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "playbook-bench: --var takes NAME=VALUE, "
                        "not '%s'\n", optarg);
                return 2;
            }
            *eq = '\0';
            json_object_set_new(o->vars, optarg, json_string(eq + 1));
            *eq = '=';
            break;
        case 'x':
            o->expect_unchanged = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'l':
            if (log_level_from_name(optarg) < 0) {
                fprintf(stderr, "playbook-bench: unknown log level '%s'\n",
                        optarg);
                return 2;
            }
            log_set_level((enum log_level) log_level_from_name(optarg));
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || !o->host || !o->ssh_dir || o->port <= 0
        || o->port > 65535 || o->runs < 1 || o->runs > MAX_RUNS) {
        usage(stderr);
        return 2;
    }
    o->playbook = argv[optind];
    return 0;
}

/* Prints the median time of every task over the 'n' runs of 'runs'. */
static void
print_task_medians(struct bench_run *runs, int n)
{
    double v[MAX_RUNS];

    printf("per task, median of %d run%s:\n", n, n == 1 ? "" : "s");
    for (int i = 0; i < runs[0].n_tasks; i++) {
        int k = 0;

        for (int j = 0; j < n; j++) {
            if (i < runs[j].n_tasks && runs[j].ms[i] >= 0) {
                v[k++] = runs[j].ms[i];
            }
        }
        printf("  %7.2f ms  %s\n", median(v, k),
               runs[0].names[i] ? runs[0].names[i] : "?");
    }
}

int
main(int argc, char **argv)
{
    struct bench_opts o = {
        .port = 22, .user = "root", .runs = 1, .vars = json_object(),
    };
    struct bench_run *runs;
    struct sshconn *c = NULL;
    double wall[MAX_RUNS];
    double sorted[MAX_RUNS];
    char line[160] = "";
    double med;
    int n_done = 0;
    int changed = 0;
    int failed = 0;
    int tasks = 0;
    int rc;

    log_set_level(LOG_LEVEL_WARN);
    rc = parse_opts(argc, argv, &o);
    if (rc) {
        secret_free(o.password);
        json_decref(o.vars);
        return rc;
    }
    if (playbook_check(o.playbook) < 0 || sshconn_setup(o.ssh_dir) < 0) {
        fprintf(stderr, "playbook-bench: %s\n", error_last_message());
        secret_free(o.password);
        json_decref(o.vars);
        return 1;
    }
    runs = xcalloc((size_t) o.runs, sizeof *runs);
    printf("playbook-bench: %s on %s@%s:%d, %d run%s, %s login%s\n",
           o.playbook, o.user, o.host, o.port, o.runs, o.runs == 1 ? "" : "s",
           o.password ? "password" : "key",
           o.reconnect ? ", new SSH session per run" : "");
    fflush(stdout);
    for (int i = 0; i < o.runs && !failed; i++) {
        struct bench_run *r = &runs[i];
        struct playbook_recap recap = { 0 };
        double t0;

        for (int j = 0; j < MAX_TASKS; j++) {
            r->ms[j] = -1;
        }
        r->verbose = o.verbose;
        t0 = now_us();
        if (!c) {
            c = bench_connect(&o);
        }
        rc = c ? bench_run_once(c, &o, r, &recap) : -1;
        if (o.reconnect || rc < 0) {
            sshconn_close(c);
            c = NULL;
        }
        wall[i] = (now_us() - t0) / 1e3;
        playbook_recap_line(&recap, line, sizeof line);
        tasks = r->ran;
        n_done = i + 1;
        printf("run %d/%d: %.2f ms wall (%.2f ms to the first task), "
               "%d tasks, %.2f ms/task, %s\n", i + 1, o.runs, wall[i],
               r->n_tasks ? (r->start_us[0] - t0) / 1e3 : 0.0, r->ran,
               r->ran ? wall[i] / r->ran : 0.0, line);
        fflush(stdout);
        if (rc < 0) {
            fprintf(stderr, "playbook-bench: run %d failed: %s\n", i + 1,
                    error_last_message());
            if (recap.failed_detail) {
                fprintf(stderr, "playbook-bench: %s\n",
                        recap.failed_detail);
            }
            failed = 1;
        }
        changed += recap.changed;
        playbook_recap_destroy(&recap);
    }
    sshconn_close(c);

    print_task_medians(runs, n_done);
    memcpy(sorted, wall, sizeof *wall * (size_t) n_done);
    med = median(sorted, n_done);
    printf("RESULT runs=%d tasks=%d median_run_ms=%.2f median_task_ms=%.2f "
           "min_run_ms=%.2f max_run_ms=%.2f changed=%d failed=%d "
           "recap=\"%s\"\n", n_done, tasks, med, tasks ? med / tasks : 0.0,
           sorted[0], sorted[n_done - 1], changed, failed, line);
    for (int i = 0; i < o.runs; i++) {
        bench_run_destroy(&runs[i]);
    }
    free(runs);
    secret_free(o.password);
    json_decref(o.vars);
    if (failed || (o.expect_unchanged && changed > 0)) {
        if (!failed) {
            fprintf(stderr, "playbook-bench: expected no change, but the "
                    "runs changed %d task(s)\n", changed);
        }
        return 1;
    }
    return 0;
}
