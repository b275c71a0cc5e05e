/*
 * base/log.h -- one line per event on stderr, levels per component.
 */
#ifndef EF_BASE_LOG_H
#define EF_BASE_LOG_H

#include <stdlib.h>

/* ---- logging ---------------------------------------------------------- */

typedef enum ef_log_level {
    EF_LOG_ERROR = 0,
    EF_LOG_WARN = 1,
    EF_LOG_INFO = 2,
    EF_LOG_DEBUG = 3,
    EF_LOG_TRACE = 4
} ef_log_level;

/* Components can be raised to DEBUG/TRACE one by one (log.debug = tg,pg). */
typedef enum ef_log_comp {
    EF_C_MAIN = 0,
    EF_C_HTTP,
    EF_C_TG,
    EF_C_WA,
    EF_C_NLP,
    EF_C_FSM,
    EF_C_PG,
    EF_C_REDIS,
    EF_C_CURL,
    EF_C_PIPE,
    EF_C_POLL,
    EF_C_CFG,
    EF_C__COUNT
} ef_log_comp;

extern int ef_log_levels[EF_C__COUNT];

void ef_log_set_level(ef_log_level lvl);
/* "tg,pg" -> those components at DEBUG. Returns EF_EINVAL naming nothing. */
int ef_log_set_debug(const char *csv);
int ef_log_parse_level(const char *s, ef_log_level *out);
void ef_log_write(ef_log_level lvl, ef_log_comp comp, const char *file, int line, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

/* One line per event on stderr: time, level, component, key=value, message.
 * The level is checked before any formatting work is done. */
#define EF_LOG(lvl, comp, ...)                                                                     \
    do {                                                                                           \
        if ((int)(lvl) <= ef_log_levels[(comp)])                                                   \
            ef_log_write((lvl), (comp), __FILE__, __LINE__, __VA_ARGS__);                          \
    } while (0)

#define EF_PANIC(...)                                                                              \
    do {                                                                                           \
        ef_log_write(EF_LOG_ERROR, EF_C_MAIN, __FILE__, __LINE__, __VA_ARGS__);                    \
        abort();                                                                                   \
    } while (0)

/* Returns url with any "bot<token>" path part and any user:password masked.
 * Owned by the caller. */
char *ef_redact_url(const char *url);

#endif /* EF_BASE_LOG_H */
