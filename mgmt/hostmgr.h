/* hostmgr.h: bootstrap of KVM hosts over SSH and the live agent channel
 * mgmt keeps to each of them. */
#ifndef MGMT_HOSTMGR_H
#define MGMT_HOSTMGR_H 1

#include <jansson.h>
#include <stdbool.h>

struct job;

/* Tunables (kvmstack serve flags). */
extern int hostmgr_ping_interval_ms;    /* host.ping.interval */
extern int hostmgr_ping_max_failure;    /* host.ping.maxFailure */
extern int hostmgr_reconnect_max_ms;    /* Longest reconnect backoff. */

/* Sets where the playbooks and the agent binary are found and starts a
 * connection for every host that finished its add; hosts whose add was
 * interrupted by a restart are removed.  Returns -1 on error. */
int hostmgr_start(const char *playbook_dir, const char *agent_path);
void hostmgr_stop(void);

/* The AddKVMHost job after the record exists: pre-flight, key install,
 * playbook, agent.  Uses 'password' once; the caller wipes it.  On failure
 * the host record is removed and -1 returned with the error reported. */
int hostmgr_bootstrap(struct job *job, const char *host_uuid,
                      const char *password, const char *expected_fp);

/* The AddSftpBackupStorage job: key install and its playbook; records the
 * capacity.  On failure the record is removed. */
int hostmgr_bootstrap_bs(struct job *job, const char *bs_uuid,
                         const char *password, const char *expected_fp);

/* Reconnects a host now (ReconnectHost); with 'retrust' the host key is
 * trusted again (first use) or set to 'fingerprint' when given.  Waits up
 * to 'wait_ms' for the outcome.  Returns -1 with the error reported when
 * the host did not come back Connected. */
int hostmgr_reconnect(const char *host_uuid, bool retrust,
                      const char *fingerprint, int wait_ms);

/* Calls 'method' with 'params' (taken) on the agent of a Connected host
 * and waits up to 'timeout_ms' for the reply.  Returns the result (caller
 * owns) or NULL with an error reported: host-unreachable when the host is
 * not Connected or the channel closes first, timeout, or the agent's own
 * problem and message. */
json_t *hostmgr_call(const char *host_uuid, const char *method,
                     json_t *params, int timeout_ms);

bool hostmgr_is_connected(const char *host_uuid);

/* Agent events ("vm.state" ...), called on the host's connection thread:
 * the handler may write the database but must not call hostmgr_call(). */
typedef void hostmgr_event_fn(const char *host_uuid, const char *event,
                              json_t *data);
extern hostmgr_event_fn *hostmgr_event_handler;

/* Called on a thread of its own each time a host (re)connects, to push
 * the host's desired state (mounts, bridges, VMs); may call the agent. */
typedef void hostmgr_connect_fn(const char *host_uuid);
extern hostmgr_connect_fn *hostmgr_connect_handler;

/* UpdateKVMHost with a password: logs in with it once (the host key must
 * still match), installs mgmt's key again, then reconnects.  The caller
 * wipes 'password'.  -1 with an error reported. */
int hostmgr_rekey(struct job *job, const char *host_uuid,
                  const char *password);

/* Stops the host's connection (DeleteHost). */
void hostmgr_forget(const char *host_uuid);

#endif
