/* Logging to stderr (or the journal through it).  Each .c declares
 * LOG_MODULE("mgmt.api"); the level is checked before formatting.  Never
 * log keys, passwords or session secrets. */
#ifndef KVMSTACK_LOG_H
#define KVMSTACK_LOG_H 1

#include <stdbool.h>

enum log_level {
    LOG_LEVEL_ERR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DBG,
};

extern enum log_level log_max_level;

void log_set_level(enum log_level level);
int log_level_from_name(const char *name);   /* -1 if unknown. */
void log_emit(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Rate-limited: at most one message per 'key' site every 5 seconds. */
bool log_rl_allow(int *last_sec);

#define LOG_MODULE(name) static const char *log_module_ __attribute__((unused)) = name

#define LOG_AT_(level, ...)                                  \
    do {                                                     \
        if ((level) <= log_max_level) {                      \
            log_emit(level, log_module_, __VA_ARGS__);       \
        }                                                    \
    } while (0)

#define LOG_ERR(...) LOG_AT_(LOG_LEVEL_ERR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT_(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT_(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DBG(...) LOG_AT_(LOG_LEVEL_DBG, __VA_ARGS__)

#define LOG_WARN_RL(...)                                     \
    do {                                                     \
        static int rl_last_;                                 \
        if (log_rl_allow(&rl_last_)) {                       \
            LOG_WARN(__VA_ARGS__);                           \
        }                                                    \
    } while (0)

#endif
