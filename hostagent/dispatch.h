/* dispatch.h: the agent's method table. */
#ifndef HOSTAGENT_DISPATCH_H
#define HOSTAGENT_DISPATCH_H 1

#include <jansson.h>

/* Sends one frame on stdout; takes ownership of 'msg'. */
int agent_send(json_t *msg);

/* The capability list sent in init; caller owns. */
json_t *dispatch_capabilities(void);

/* Handles one frame after init.  Returns 1 when the agent should exit, 0
 * otherwise. */
int dispatch_frame(json_t *msg);

/* Host facts (facts.c). */
json_t *facts_collect(void);

#endif
