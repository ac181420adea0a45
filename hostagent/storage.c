/* storage.c: placeholder module; its methods are being written (see proto.h). */
#include "dispatch.h"

static const struct agent_method storage_methods[] = {
    { 0 },
};

const struct agent_module storage_module = {
    .name = "storage",
    .methods = storage_methods,
};
