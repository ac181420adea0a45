/* cli.c: placeholder replaced by the CLI. */
#include "cli.h"

#include <stdio.h>

int
cli_main(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    fprintf(stderr, "kvmstack: CLI not built yet\n");
    return 2;
}
