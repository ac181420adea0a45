/* cli.h: the kvmstack command-line client of the API. */
#ifndef MGMT_CLI_H
#define MGMT_CLI_H 1

/* Runs "kvmstack <command> ..."; returns the exit status. */
int cli_main(int argc, char **argv);

#endif
