/* dispatch.c: routes agent-protocol frames to the modules' methods. */
#include "dispatch.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/proto.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.dispatch");

static const struct agent_module *const modules[] = {
    &facts_module, &storage_module, &net_module, &hv_module, &vr_module,
};

int
dispatch_init(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
        if (modules[i]->init && modules[i]->init() < 0) {
            LOG_ERR("module %s: %s", modules[i]->name, error_last_message());
            return -1;
        }
    }
    return 0;
}

json_t *
dispatch_capabilities(void)
{
    json_t *caps = json_array();

    for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
        for (const struct agent_method *m = modules[i]->methods;
             m && m->name; m++) {
            json_array_append_new(caps, json_string(m->name));
        }
    }
    return caps;
}

static int
reply_problem(json_t *id, const char *problem, const char *message)
{
    return agent_send(json_pack("{s:s, s:O, s:s, s:s}", "kind", "reply",
                                "id", id, "problem", problem, "message",
                                message));
}

static const struct agent_method *
find_method(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
        for (const struct agent_method *m = modules[i]->methods;
             m && m->name; m++) {
            if (!strcmp(m->name, name)) {
                return m;
            }
        }
    }
    return NULL;
}

/* Calls run on threads of their own so that a long one (a graceful stop
 * waits for the guest) never holds up pings or other modules' calls; the
 * calls of one module run one at a time, in arrival order of their
 * turn on the module's mutex, since a module's state (the libnl socket,
 * the libvirt connection's users) need not be thread-safe. */
struct agent_call {
    const struct agent_method *method;
    char *name;
    json_t *id;
    json_t *params;
    pthread_mutex_t *lock;
};

#define UUID_STRIPES 32

static pthread_mutex_t module_locks[ARRAY_SIZE(modules)];
/* Per-object turns of by_uuid modules: a uuid hashes to a stripe (two
 * objects sharing a stripe merely take turns). */
static pthread_mutex_t uuid_locks[ARRAY_SIZE(modules)][UUID_STRIPES];
static pthread_once_t locks_once = PTHREAD_ONCE_INIT;

static void
locks_init(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
        pthread_mutex_init(&module_locks[i], NULL);
        for (size_t j = 0; j < UUID_STRIPES; j++) {
            pthread_mutex_init(&uuid_locks[i][j], NULL);
        }
    }
}

static pthread_mutex_t *
module_lock(const char *method, json_t *params)
{
    pthread_once(&locks_once, locks_init);
    for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
        for (const struct agent_method *m = modules[i]->methods;
             m && m->name; m++) {
            const char *uuid;
            unsigned h = 5381;

            if (strcmp(m->name, method)) {
                continue;
            }
            uuid = json_string_value(json_object_get(params, "uuid"));
            if (!modules[i]->by_uuid || !uuid) {
                return &module_locks[i];
            }
            for (const char *p = uuid; *p; p++) {
                h = h * 33 + (unsigned char) (*p | 0x20);
            }
            return &uuid_locks[i][h % UUID_STRIPES];
        }
    }
    return &module_locks[0];
}

static void *
call_main(void *arg)
{
    struct agent_call *call = arg;
    json_t *result;

    pthread_mutex_lock(call->lock);
    error_reset();
    result = call->method->fn(call->params);
    if (!result) {
        LOG_ERR("%s: %s", call->name, error_last_message());
        reply_problem(call->id, problem_name(error_last_problem()),
                      error_last_message());
    } else {
        agent_send(json_pack("{s:s, s:O, s:o}", "kind", "reply", "id",
                             call->id, "result", result));
    }
    error_reset();
    pthread_mutex_unlock(call->lock);
    json_decref(call->id);
    json_decref(call->params);
    free(call->name);
    free(call);
    return NULL;
}

int
dispatch_frame(json_t *msg)
{
    const char *kind = proto_kind(msg);
    json_t *id = json_object_get(msg, "id");
    json_t *params;
    const char *method;
    const struct agent_method *m;
    struct agent_call *call;
    pthread_t t;

    if (!strcmp(kind, "ping")) {
        agent_send(json_pack("{s:s, s:O*}", "kind", "pong", "id", id));
        return 0;
    }
    if (strcmp(kind, "call")) {
        LOG_WARN("ignoring frame of kind '%s'", kind);
        return 0;
    }
    method = json_string_value(json_object_get(msg, "method"));
    if (!id || !method) {
        reply_problem(id ? id : json_null(), "protocol-error",
                      "a call needs an id and a method");
        return 0;
    }
    if (!strcmp(method, "agent.exit")) {
        agent_send(json_pack("{s:s, s:O, s:{}}", "kind", "reply", "id", id,
                             "result"));
        return 1;
    }
    m = find_method(method);
    if (!m) {
        reply_problem(id, "not-supported", "unknown method");
        return 0;
    }
    params = json_object_get(msg, "params");
    call = xcalloc(1, sizeof *call);
    call->method = m;
    call->name = xstrdup(method);
    call->id = json_incref(id);
    call->params = json_is_object(params) ? json_incref(params)
                                          : json_object();
    call->lock = module_lock(method, call->params);
    if (pthread_create(&t, NULL, call_main, call)) {
        LOG_ERR("%s: cannot start a thread; running it inline", method);
        call_main(call);
    } else {
        pthread_detach(t);
    }
    return 0;
}

char *
agent_config(const char *key, const char *dflt)
{
    const char *path = getenv("KVMSTACK_AGENT_CONF");
    FILE *f = fopen(path ? path : "/etc/kvmstack/agent.conf", "r");
    char line[1024];
    char *value = NULL;
    size_t klen = strlen(key);

    if (f) {
        while (fgets(line, sizeof line, f)) {
            char *p = line;
            char *end;

            while (isspace((unsigned char) *p)) {
                p++;
            }
            if (*p == '#' || strncmp(p, key, klen)) {
                continue;
            }
            p += klen;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            if (*p != '=') {
                continue;
            }
            p++;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            end = p + strlen(p);
            while (end > p && isspace((unsigned char) end[-1])) {
                *--end = '\0';
            }
            free(value);
            value = xstrdup(p);
        }
        fclose(f);
    }
    return value ? value : (dflt ? xstrdup(dflt) : NULL);
}
