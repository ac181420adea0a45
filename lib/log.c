/* log.c: leveled logging to stderr with a module name and timestamp.
 * stdout is never used: in hostagent it carries the protocol. */
#include "kvmstack/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_max_level = LOG_LEVEL_INFO;

static const char *const level_names[] = { "ERR", "WARN", "INFO", "DBG" };
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

void
log_set_level(enum log_level level)
{
    log_max_level = level;
}

int
log_level_from_name(const char *name)
{
    static const char *const lower[] = { "err", "warn", "info", "dbg" };

    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(name, lower[i]) || !strcasecmp(name, level_names[i])) {
            return i;
        }
    }
    if (!strcasecmp(name, "debug")) {
        return LOG_LEVEL_DBG;
    }
    return -1;
}

void
log_emit(enum log_level level, const char *module, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_mutex);
    fprintf(stderr, "%s.%03ldZ|%s|%s|", stamp, ts.tv_nsec / 1000000,
            level_names[level], module);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_mutex);
}

bool
log_rl_allow(int *last_sec)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (*last_sec == 0 || ts.tv_sec - *last_sec >= 5) {
        *last_sec = (int) ts.tv_sec;
        return true;
    }
    return false;
}
