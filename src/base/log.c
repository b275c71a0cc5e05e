/*
 * log.c -- one line per event on stderr.
 *
 *   2026-11-22T16:53:12.123Z WARN tg chat=42 update=7 msg="retry" (telegram.c:120)
 *
 * Levels are per component so one area can be raised to DEBUG without
 * drowning the rest. Lines are written with a single fwrite under a lock so
 * threads never interleave inside a line. Secrets never reach this file:
 * callers redact URLs with ef_redact_url() and log message text at TRACE only.
 */
#include "base/log.h"

#include "base/ef.h"

#include <stdarg.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_LINE_MAX 4096

int ef_log_levels[EF_C__COUNT] = {EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO,
                                  EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO,
                                  EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO};

static const char *const comp_names[EF_C__COUNT] = {"main", "http",  "tg",   "wa",   "nlp",  "fsm",
                                                    "pg",   "redis", "curl", "pipe", "poll", "cfg"};
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void ef_log_set_level(ef_log_level lvl)
{
    for (int i = 0; i < EF_C__COUNT; i++)
        ef_log_levels[i] = (int)lvl;
}

int ef_log_parse_level(const char *s, ef_log_level *out)
{
    for (int i = 0; i <= EF_LOG_TRACE; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (ef_log_level)i;
            return 0;
        }
    }
    return EF_EINVAL;
}

int ef_log_set_debug(const char *csv)
{
    const char *p = csv;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < EF_C__COUNT; i++) {
            if (strlen(comp_names[i]) == n && strncmp(comp_names[i], p, n) == 0) {
                ef_log_levels[i] = EF_LOG_DEBUG;
                found = 1;
            }
        }
        if (!found && n > 0)
            return EF_EINVAL;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

void ef_log_write(ef_log_level lvl, ef_log_comp comp, const char *file, int line, const char *fmt,
                  ...)
{
    char buf[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, level_names[lvl], comp_names[comp]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len >= sizeof(buf) - 64)
        len = sizeof(buf) - 64; /* truncated: still one line */
    /* A log line is one line: fold any newline the message carried. */
    for (size_t i = (size_t)n; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    if (lvl == EF_LOG_ERROR || lvl >= EF_LOG_DEBUG) {
        const char *base = strrchr(file, '/');
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, " (%s:%d)", base ? base + 1 : file,
                                line);
    }
    buf[len++] = '\n';
    pthread_mutex_lock(&log_lock);
    fwrite(buf, 1, len, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

/* Masks "bot<token>" path segments (Telegram puts the token in the URL),
 * "user:password@" in authorities and password=... query parameters. */
char *ef_redact_url(const char *url)
{
    if (!url)
        return ef_strdup("");
    ef_buf b;
    ef_buf_init(&b, strlen(url) + 64);
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        const char *auth = scheme + 3;
        const char *slash = strchr(auth, '/');
        const char *at = strchr(auth, '@');
        if (at && (!slash || at < slash)) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon) {
                ef_buf_append(&b, url, (size_t)(colon - url) + 1);
                ef_buf_append(&b, "***", 3);
                p = at;
            }
        }
    }
    while (*p) {
        if (strncmp(p, "/bot", 4) == 0 && p[4] && p[4] != '/') {
            ef_buf_append(&b, "/bot***", 7);
            p += 4;
            while (*p && *p != '/' && *p != '?')
                p++;
            continue;
        }
        if (strncasecmp(p, "password=", 9) == 0) {
            ef_buf_append(&b, "password=***", 12);
            p += 9;
            while (*p && *p != '&' && *p != ' ')
                p++;
            continue;
        }
        ef_buf_append(&b, p, 1);
        p++;
    }
    return ef_buf_steal(&b, NULL);
}
