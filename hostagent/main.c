/* main.c: kvmstack-agent, the per-host agent.  `kvmstack-agent --stdio`
 * speaks the agent protocol (include/kvmstack/proto.h) on stdin/stdout;
 * logs go to stderr only.  mgmt starts it over SSH and keeps the channel
 * open; when the channel closes the agent exits. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/proto.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.main");

static int
write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        s += w;
        n -= (size_t) w;
    }
    return 0;
}

static pthread_mutex_t send_mutex = PTHREAD_MUTEX_INITIALIZER;

int
agent_send(json_t *msg)
{
    char *frame = proto_encode(msg);
    int rc;

    pthread_mutex_lock(&send_mutex);
    rc = write_all(STDOUT_FILENO, frame, strlen(frame));
    pthread_mutex_unlock(&send_mutex);
    LOG_DBG("-> %s", frame);
    free(frame);
    json_decref(msg);
    return rc;
}

void
agent_emit_event(const char *event, json_t *data)
{
    agent_send(json_pack("{s:s, s:s, s:o}", "kind", "event", "event", event,
                         "data", data ? data : json_object()));
}

static int
run_stdio(void)
{
    struct sbuf in;
    bool got_init = false;
    char buf[65536];
    int rc = 0;

    sbuf_init(&in);
    if (dispatch_init() < 0) {
        return 1;
    }
    agent_send(json_pack("{s:s, s:i, s:o, s:s}", "kind", "init", "version",
                         PROTO_VERSION, "capabilities",
                         dispatch_capabilities(), "agentVersion",
                         KVMSTACK_VERSION));
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        json_t *msg;
        int r;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            LOG_INFO("channel closed; exiting");
            break;
        }
        sbuf_add(&in, buf, (size_t) n);
        if (!memchr(buf, '\n', (size_t) n)) {
            /* No frame ended in this chunk: do not rescan the buffer (a
             * router's full configuration may be megabytes). */
            if (in.len > PROTO_MAX_FRAME) {
                LOG_ERR("protocol error: frame longer than %d bytes",
                        PROTO_MAX_FRAME);
                rc = 1;
                break;
            }
            continue;
        }
        while ((r = proto_next(&in, &msg)) == 1) {
            const char *kind = proto_kind(msg);

            LOG_DBG("<- %s", kind);
            if (!got_init) {
                if (strcmp(kind, "init")) {
                    LOG_ERR("protocol error: first frame is '%s', not init",
                            kind);
                    json_decref(msg);
                    rc = 1;
                    goto out;
                }
                if (json_integer_value(json_object_get(msg, "version"))
                    != PROTO_VERSION) {
                    LOG_ERR("protocol error: mgmt speaks version %lld, this "
                            "agent %d", (long long) json_integer_value(
                                json_object_get(msg, "version")),
                            PROTO_VERSION);
                    json_decref(msg);
                    rc = 1;
                    goto out;
                }
                got_init = true;
            } else if (dispatch_frame(msg) > 0) {
                json_decref(msg);
                goto out;
            }
            json_decref(msg);
        }
        if (r < 0) {
            LOG_ERR("%s", error_last_message());
            rc = 1;
            break;
        }
    }

out:
    sbuf_destroy(&in);
    return rc;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("kvmstack-agent %s (protocol %d)\n", KVMSTACK_VERSION,
               PROTO_VERSION);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--stdio")) {
        const char *lvl = getenv("KVMSTACK_AGENT_LOG");

        if (lvl && log_level_from_name(lvl) >= 0) {
            log_set_level((enum log_level) log_level_from_name(lvl));
        }
        return run_stdio();
    }
    fprintf(stderr, "usage: kvmstack-agent --stdio | --version\n");
    return 2;
}
