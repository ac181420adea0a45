/* hv.c: placeholder module; its methods are being written (see proto.h). */
#include "dispatch.h"

static const struct agent_method hv_methods[] = {
    { 0 },
};

const struct agent_module hv_module = {
    .name = "hv",
    .methods = hv_methods,
};
