/* error.c: the thread-local last error.  Reported once where detected
 * (error_report), propagated as -1/NULL, read by the layer that answers the
 * caller (HTTP reply, protocol problem reply, CLI message) [lv]. */
#include "kvmstack/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstack/log.h"
#include "kvmstack/util.h"

LOG_MODULE("lib.error");

static const char *const problem_names[] = {
#define PROBLEM(ENUM, NAME) NAME,
    PROBLEMS
#undef PROBLEM
};

static __thread enum problem last_problem;
static __thread char *last_message;
static __thread char *last_field;

const char *
problem_name(enum problem p)
{
    return p < PROBLEM_N ? problem_names[p] : "internal-error";
}

enum problem
problem_from_name(const char *name)
{
    for (int i = 0; i < PROBLEM_N; i++) {
        if (!strcmp(problem_names[i], name)) {
            return (enum problem) i;
        }
    }
    return PROBLEM_INTERNAL_ERROR;
}

static void
error_set(enum problem p, const char *field, const char *fmt, va_list ap)
{
    free(last_message);
    free(last_field);
    last_problem = p;
    last_message = xvasprintf(fmt, ap);
    last_field = field ? xstrdup(field) : NULL;
    LOG_DBG("%s: %s", problem_name(p), last_message);
}

void
error_report(enum problem p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_set(p, NULL, fmt, ap);
    va_end(ap);
}

void
error_report_field(enum problem p, const char *field, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_set(p, field, fmt, ap);
    va_end(ap);
}

void
error_prefix(const char *fmt, ...)
{
    va_list ap;
    char *prefix;
    char *msg;

    va_start(ap, fmt);
    prefix = xvasprintf(fmt, ap);
    va_end(ap);
    msg = xasprintf("%s%s", prefix, last_message ? last_message : "");
    free(prefix);
    free(last_message);
    last_message = msg;
}

enum problem
error_last_problem(void)
{
    return last_message ? last_problem : PROBLEM_INTERNAL_ERROR;
}

const char *
error_last_message(void)
{
    return last_message ? last_message : "";
}

const char *
error_last_field(void)
{
    return last_field;
}

void
error_reset(void)
{
    free(last_message);
    free(last_field);
    last_message = NULL;
    last_field = NULL;
    last_problem = PROBLEM_NONE;
}

void
error_save(struct error_saved *saved)
{
    saved->problem = error_last_problem();
    saved->field = last_field ? xstrdup(last_field) : NULL;
    saved->message = xstrdup(error_last_message());
}

void
error_restore(struct error_saved *saved)
{
    if (saved->field) {
        error_report_field(saved->problem, saved->field, "%s",
                           saved->message);
    } else {
        error_report(saved->problem, "%s", saved->message);
    }
    free(saved->field);
    free(saved->message);
    saved->field = saved->message = NULL;
}
