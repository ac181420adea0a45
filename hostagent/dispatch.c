/* dispatch.c: routes agent-protocol frames to their handlers. */
#include "dispatch.h"

#include <string.h>

#include "kvmstack/log.h"
#include "kvmstack/proto.h"

LOG_MODULE("hostagent.dispatch");

json_t *
dispatch_capabilities(void)
{
    return json_pack("[s]", "host.facts");
}

static int
reply_problem(json_t *id, const char *problem, const char *message)
{
    return agent_send(json_pack("{s:s, s:O, s:s, s:s}", "kind", "reply",
                                "id", id, "problem", problem, "message",
                                message));
}

int
dispatch_frame(json_t *msg)
{
    const char *kind = proto_kind(msg);
    json_t *id = json_object_get(msg, "id");
    const char *method;

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
    if (!strcmp(method, "host.facts")) {
        agent_send(json_pack("{s:s, s:O, s:o}", "kind", "reply", "id", id,
                             "result", facts_collect()));
        return 0;
    }
    if (!strcmp(method, "agent.exit")) {
        agent_send(json_pack("{s:s, s:O, s:{}}", "kind", "reply", "id", id,
                             "result"));
        return 1;
    }
    reply_problem(id, "not-supported", "unknown method");
    return 0;
}
