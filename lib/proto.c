/* proto.c: framing of the agent protocol (see proto.h). */
#include "kvmstack/proto.h"

#include <string.h>

#include "kvmstack/error.h"

char *
proto_encode(json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    char *frame;

    if (!text) {
        abort();
    }
    frame = xasprintf("%s\n", text);
    free(text);
    return frame;
}

int
proto_next(struct sbuf *buf, json_t **msg)
{
    char *nl = memchr(buf->s, '\n', buf->len);
    json_error_t jerr;
    size_t len;

    *msg = NULL;
    if (!nl) {
        if (buf->len > PROTO_MAX_FRAME) {
            error_report(PROBLEM_PROTOCOL_ERROR,
                         "frame longer than %d bytes", PROTO_MAX_FRAME);
            return -1;
        }
        return 0;
    }
    len = (size_t) (nl - buf->s);
    *msg = json_loadb(buf->s, len, JSON_REJECT_DUPLICATES, &jerr);
    memmove(buf->s, nl + 1, buf->len - len - 1);
    buf->len -= len + 1;
    buf->s[buf->len] = '\0';
    if (!*msg || !json_is_object(*msg)) {
        json_decref(*msg);
        *msg = NULL;
        error_report(PROBLEM_PROTOCOL_ERROR, "frame is not a JSON object: "
                     "%s", jerr.text);
        return -1;
    }
    return 1;
}

const char *
proto_kind(json_t *msg)
{
    const char *k = json_string_value(json_object_get(msg, "kind"));

    return k ? k : "";
}
