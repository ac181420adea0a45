/* main.c: the kvmstack binary: "kvmstack serve" runs the management node;
 * every other subcommand is the CLI client of its API (cli.c). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "auth.h"
#include "cli.h"
#include "db.h"
#include "job.h"
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
            "\n"
            "Runs the management node: the ZStack-style REST API under\n"
            "/zstack/v1 on ADDR:PORT (default 0.0.0.0:5000) with the SQLite\n"
            "inventory at PATH (default " DEFAULT_DB ").\n"
            "The first start creates the account 'admin' with the password\n"
            "in $KVMSTACK_ADMIN_PASSWORD or a random one printed once.\n");
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
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = "0.0.0.0:5000";
    const char *db = DEFAULT_DB;
    int threads = 4;
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
    if (auth_bootstrap_admin() < 0 || job_engine_start(4) < 0) {
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
