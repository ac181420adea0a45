/* Error reporting: report once, where detected; callers propagate -1.
 * error_report() stores a thread-local last error (problem code + message)
 * that the API layer turns into an HTTP reply and the agent protocol into a
 * problem reply. */
#ifndef KVMSTACK_ERROR_H
#define KVMSTACK_ERROR_H 1

#include <stdarg.h>

/* The closed set of problem codes, also used on the wire [ck]. */
#define PROBLEMS                                        \
    PROBLEM(NONE, "none")                               \
    PROBLEM(INVALID_ARGUMENT, "invalid-argument")       \
    PROBLEM(NOT_FOUND, "not-found")                     \
    PROBLEM(CONFLICT, "conflict")                       \
    PROBLEM(ACCESS_DENIED, "access-denied")             \
    PROBLEM(TIMEOUT, "timeout")                         \
    PROBLEM(HOST_UNREACHABLE, "host-unreachable")       \
    PROBLEM(NOT_SUPPORTED, "not-supported")             \
    PROBLEM(PROTOCOL_ERROR, "protocol-error")           \
    PROBLEM(TOO_LARGE, "too-large")                     \
    PROBLEM(RATE_LIMITED, "rate-limited")               \
    PROBLEM(INTERNAL_ERROR, "internal-error")

enum problem {
#define PROBLEM(ENUM, NAME) PROBLEM_##ENUM,
    PROBLEMS
#undef PROBLEM
    PROBLEM_N
};

const char *problem_name(enum problem p);
enum problem problem_from_name(const char *name);

/* Records the thread's last error, replacing any earlier one, and logs it
 * at DBG. */
void error_report(enum problem p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like error_report(), and names the request field at fault. */
void error_report_field(enum problem p, const char *field,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context to the last error's message. */
void error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum problem error_last_problem(void);
const char *error_last_message(void);   /* "" when none; borrowed. */
const char *error_last_field(void);     /* NULL when none; borrowed. */
void error_reset(void);

/* The last error, kept across cleanup that may report errors of its own:
 * error_save() takes it, error_restore() reports it again (problem, field
 * and message) and frees the copy. */
struct error_saved {
    enum problem problem;
    char *field;                /* Owned; NULL when none. */
    char *message;              /* Owned. */
};

void error_save(struct error_saved *saved);
void error_restore(struct error_saved *saved);

#endif
