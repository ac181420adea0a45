/* net.c: placeholder module; its methods are being written (see proto.h). */
#include "dispatch.h"

static const struct agent_method net_methods[] = {
    { 0 },
};

const struct agent_module net_module = {
    .name = "net",
    .methods = net_methods,
};
