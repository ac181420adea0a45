/* dispatch.c: routes agent-protocol frames to the modules' methods. */
#include "dispatch.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "kvmstack/error.h"
#include "kvmstack/log.h"
#include "kvmstack/proto.h"
#include "kvmstack/util.h"

LOG_MODULE("hostagent.dispatch");

static const struct agent_module *const modules[] = {
    &facts_module, &storage_module, &net_module, &hv_module,
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

int
dispatch_frame(json_t *msg)
{
    const char *kind = proto_kind(msg);
    json_t *id = json_object_get(msg, "id");
    json_t *params;
    const char *method;
    const struct agent_method *m;
    json_t *result;

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
    if (!json_is_object(params)) {
        params = NULL;
    }
    error_reset();
    result = m->fn(params ? params : json_object());
    if (!result) {
        LOG_ERR("%s: %s", method, error_last_message());
        reply_problem(id, problem_name(error_last_problem()),
                      error_last_message());
        return 0;
    }
    agent_send(json_pack("{s:s, s:O, s:o}", "kind", "reply", "id", id,
                         "result", result));
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
