/* proto.h: the agent protocol between mgmt and kvmstack-agent.
 *
 * Transport: the stdin/stdout of `kvmstack-agent --stdio`, started by mgmt
 * on an SSH exec channel.  Frame: one JSON object on one line, at most
 * PROTO_MAX_FRAME bytes including the newline; anything else closes the
 * channel with protocol-error.  Unknown fields are ignored.
 *
 * Kinds:
 *   {"kind":"init","version":1,"capabilities":[...],"agentVersion":".."}
 *       First frame each way; anything else first is a protocol error.
 *   {"kind":"call","id":N,"method":M,"params":{...}}
 *   {"kind":"reply","id":N,"result":{...}}
 *   {"kind":"reply","id":N,"problem":"not-supported","message":"..."}
 *   {"kind":"event","event":E,"data":{...}}            (no id)
 *   {"kind":"ping","id":N}  ->  {"kind":"pong","id":N}
 * Replies whose id is not outstanding are dropped.
 *
 * Methods (version 1):
 *   host.facts {} -> {"cpus":N,"memoryBytes":N,"architecture":"x86_64",
 *       "hostname":"..","kernel":"..","osRelease":"..",
 *       "libvirtVersion":"9.0.0"|null,"qemuVersion":"7.2.0"|null,
 *       "kvm":true|false}
 *       Facts about the host; versions are null when libvirtd cannot be
 *       reached (the reply says why in "warnings").
 *   agent.exit {} -> {}  The agent replies, then exits (tests, upgrades).
 */
#ifndef KVMSTACK_PROTO_H
#define KVMSTACK_PROTO_H 1

#include <jansson.h>
#include <stdbool.h>

#include "kvmstack/util.h"

#define PROTO_VERSION 1
#define PROTO_MAX_FRAME (4 * 1024 * 1024)

/* Serializes 'msg' as one frame (compact JSON + '\n'); caller frees. */
char *proto_encode(json_t *msg);

/* Takes the next complete line out of 'buf' and parses it.  Returns 1 with
 * '*msg' set (caller owns), 0 when no complete line is buffered, -1 with a
 * protocol-error reported when the line is not a JSON object or is too
 * long. */
int proto_next(struct sbuf *buf, json_t **msg);

/* The "kind" of a frame, or "" when absent. */
const char *proto_kind(json_t *msg);

#endif
