/* main.c: the kvmstack binary: "kvmstack serve" runs the management node;
 * every other subcommand is the CLI client of its API (cli.c). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "cli.h"
#include "db.h"
#include "hostmgr.h"
#include "hostsync.h"
#include "vmops.h"
#include "sshconn.h"
#include "job.h"
#include "kvmstack/cleanup.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("mgmt.main");

#define DEFAULT_DB "/var/lib/kvmstack/kvmstack.db"

static void
serve_usage(FILE *out)
{
    fprintf(out,
            "usage: kvmstack serve [--listen ADDR:PORT] [--db PATH]\n"
            "                      [--threads N] [--session-timeout SECONDS]\n"
            "                      [--log-level err|warn|info|dbg]\n"
            "                      [--playbooks DIR] [--agent PATH]\n"
            "                      [--ssh-dir DIR] [--host-ping-interval MS]\n"
            "                      [--host-ping-max-failure N]\n"
            "                      [--vm-domain-type auto|kvm|qemu]\n"
            "                      [--vm-stop-timeout MS]\n"
            "\n"
            "Runs the management node: the ZStack-style REST API under\n"
            "/zstack/v1 on ADDR:PORT (default 0.0.0.0:5000) with the SQLite\n"
            "inventory at PATH (default " DEFAULT_DB ").\n"
            "The first start creates the account 'admin' with the password\n"
            "in $KVMSTACK_ADMIN_PASSWORD or a random one printed once.\n");
}

/* The directory of this executable; caller frees. */
static char *
self_dir(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    char *slash;

    if (n <= 0) {
        return xstrdup(".");
    }
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash) {
        *slash = '\0';
    }
    return xstrdup(buf);
}

static int
make_parent_dir(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');

    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
            if (*p == '/') {
                *p = '\0';
                mkdir(dir, 0755);
                *p = '/';
            }
        }
        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
            fprintf(stderr, "kvmstack: cannot create '%s': %s\n", dir,
                    strerror(errno));
            free(dir);
            return -1;
        }
    }
    free(dir);
    return 0;
}

static int
serve_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "db", required_argument, NULL, 'd' },
        { "threads", required_argument, NULL, 't' },
        { "session-timeout", required_argument, NULL, 's' },
        { "log-level", required_argument, NULL, 'v' },
        { "playbooks", required_argument, NULL, 'p' },
        { "agent", required_argument, NULL, 'a' },
        { "ssh-dir", required_argument, NULL, 'k' },
        { "host-ping-interval", required_argument, NULL, 'i' },
        { "host-ping-max-failure", required_argument, NULL, 'm' },
        { "vm-domain-type", required_argument, NULL, 'T' },
        { "vm-stop-timeout", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = "0.0.0.0:5000";
    const char *db = DEFAULT_DB;
    int threads = 4;
    AUTOFREE char *exe_dir = self_dir();
    AUTOFREE char *playbooks = NULL;
    AUTOFREE char *agent = NULL;
    AUTOFREE char *ssh_dir = NULL;
    sigset_t set;
    int sig;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            if (threads < 1 || threads > 64) {
                fprintf(stderr, "kvmstack serve: --threads must be 1..64\n");
                return 2;
            }
            break;
        case 's':
            auth_session_timeout_sec = atoll(optarg);
            if (auth_session_timeout_sec < 1) {
                fprintf(stderr, "kvmstack serve: --session-timeout must be "
                        "a positive number of seconds\n");
                return 2;
            }
            break;
        case 'v':
            if (log_level_from_name(optarg) < 0) {
                fprintf(stderr, "kvmstack serve: unknown log level '%s'\n",
                        optarg);
                return 2;
            }
            log_set_level((enum log_level) log_level_from_name(optarg));
            break;
        case 'p':
            free(playbooks);
            playbooks = xstrdup(optarg);
            break;
        case 'a':
            free(agent);
            agent = xstrdup(optarg);
            break;
        case 'k':
            free(ssh_dir);
            ssh_dir = xstrdup(optarg);
            break;
        case 'i':
            hostmgr_ping_interval_ms = atoi(optarg);
            if (hostmgr_ping_interval_ms < 10) {
                fprintf(stderr, "kvmstack serve: --host-ping-interval is in "
                        "milliseconds, at least 10\n");
                return 2;
            }
            break;
        case 'm':
            hostmgr_ping_max_failure = atoi(optarg);
            if (hostmgr_ping_max_failure < 1) {
                fprintf(stderr, "kvmstack serve: --host-ping-max-failure "
                        "must be at least 1\n");
                return 2;
            }
            break;
        case 'T':
            if (strcmp(optarg, "auto") && strcmp(optarg, "kvm")
                && strcmp(optarg, "qemu")) {
                fprintf(stderr, "kvmstack serve: --vm-domain-type is auto, "
                        "kvm or qemu\n");
                return 2;
            }
            vmops_domain_type = optarg;
            break;
        case 'S':
            vmops_stop_timeout_ms = atoi(optarg);
            if (vmops_stop_timeout_ms < 0) {
                fprintf(stderr, "kvmstack serve: --vm-stop-timeout is in "
                        "milliseconds\n");
                return 2;
            }
            break;
        case 'h':
            serve_usage(stdout);
            return 0;
        default:
            serve_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        serve_usage(stderr);
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (make_parent_dir(db) < 0) {
        return 1;
    }
    if (db_setup(db) < 0) {
        fprintf(stderr, "kvmstack serve: %s\n", error_last_message());
        return 1;
    }
    if (!playbooks) {
        playbooks = xasprintf("%s/../playbooks", exe_dir);
    }
    if (!agent) {
        agent = xasprintf("%s/kvmstack-agent", exe_dir);
    }
    if (!ssh_dir) {
        AUTOFREE char *copy = xstrdup(db);
        char *slash = strrchr(copy, '/');

        ssh_dir = xasprintf("%s/ssh", slash ? (*slash = '\0', copy) : ".");
    }
    hostsync_init();
    if (auth_bootstrap_admin() < 0 || sshconn_setup(ssh_dir) < 0
        || job_engine_start(16) < 0 || hostmgr_start(playbooks, agent) < 0) {
        fprintf(stderr, "kvmstack serve: %s\n", error_last_message());
        return 1;
    }
    if (api_server_start(listen, threads) < 0) {
        fprintf(stderr, "kvmstack serve: %s\n", error_last_message());
        job_engine_stop();
        return 1;
    }
    LOG_INFO("listening on http://%s/ with database '%s'", listen, db);
    printf("kvmstack serve: listening on http://%s/ (database %s)\n", listen,
           db);
    fflush(stdout);
    while (sigwait(&set, &sig) != 0) {
        continue;
    }
    LOG_INFO("signal %d: shutting down", sig);
    api_server_stop();
    job_engine_stop();
    hostmgr_stop();
    db_thread_close();
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "serve")) {
        return serve_main(argc - 1, argv + 1);
    }
    return cli_main(argc, argv);
}
