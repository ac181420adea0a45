/* auth.h: accounts, sessions and password hashing for the API. */
#ifndef MGMT_AUTH_H
#define MGMT_AUTH_H 1

#include <stdint.h>

struct api_req;
struct db;

/* Default session lifetime; kvmstack serve --session-timeout changes it. */
extern int64_t auth_session_timeout_sec;

/* Creates the 'admin' account on first start.  Its password is
 * $KVMSTACK_ADMIN_PASSWORD or, when unset, a random one printed once on
 * standard output.  Returns -1 on error. */
int auth_bootstrap_admin(void);

/* Checks "Authorization: OAuth <session>"; fills req->account_uuid.
 * Returns -1 with an access-denied error otherwise. */
int auth_check_request(struct api_req *req);

/* Hashes a password (plain text) for storage: yescrypt over its SHA-512
 * hex digest, the form ZStack's clients send.  Caller frees. */
char *auth_hash_password(const char *plain);

/* True if 'given' (plain text or SHA-512 hex digest) matches 'stored'. */
int auth_verify_password(const char *given, const char *stored);

/* Route handlers. */
int auth_login(struct api_req *req);
int auth_logout(struct api_req *req);
int auth_update_account(struct api_req *req);
int auth_query_accounts(struct api_req *req);

#endif
