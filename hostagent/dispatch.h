/* dispatch.h: the agent's modules and their method tables.
 *
 * Each module (facts.c, storage.c, net.c, hv.c) exports one struct
 * agent_module listing its methods (named as in proto.h) and an optional
 * init run once at start.  A method returns its result object (caller
 * owns) or NULL with an error reported (error_report(): the problem code
 * and message go back to mgmt in the reply). */
#ifndef HOSTAGENT_DISPATCH_H
#define HOSTAGENT_DISPATCH_H 1

#include <jansson.h>
#include <stdbool.h>

typedef json_t *agent_method_fn(json_t *params);

struct agent_method {
    const char *name;           /* "vm.start". */
    agent_method_fn *fn;
};

struct agent_module {
    const char *name;           /* "hv". */
    int (*init)(void);          /* May be NULL; -1 stops the agent. */
    const struct agent_method *methods;  /* Ends with a zeroed entry. */
    /* Calls whose "uuid" params differ may run at once (the module is
     * thread-safe across objects); calls on one object still take turns.
     * Otherwise the module's calls run one at a time. */
    bool by_uuid;
};

extern const struct agent_module facts_module;
extern const struct agent_module storage_module;
extern const struct agent_module net_module;
extern const struct agent_module hv_module;
extern const struct agent_module vr_module;

/* Sends one frame on stdout (thread-safe); takes ownership of 'msg'. */
int agent_send(json_t *msg);

/* Sends {"kind":"event","event":'event',"data":'data'}; takes 'data'. */
void agent_emit_event(const char *event, json_t *data);

/* Runs every module's init.  -1 on failure. */
int dispatch_init(void);

/* The capability list sent in init (every method name); caller owns. */
json_t *dispatch_capabilities(void);

/* Handles one frame after init.  Returns 1 when the agent should exit, 0
 * otherwise. */
int dispatch_frame(json_t *msg);

/* Reads the agent configuration value 'key' from /etc/kvmstack/agent.conf
 * (lines "key = value"; '#' comments), or 'dflt'.  Caller frees. */
char *agent_config(const char *key, const char *dflt);

#endif
