/*
 * log.c -- one line per event on stderr.
 *
 *   2026-11-22T16:53:12.123Z WARN tg chat=42 update=7 msg="retry" (telegram.c:120)
 *
 * Levels are per component so one area can be raised to DEBUG without
 * drowning the rest. A line is formatted on the caller's stack with no lock
 * held and written with one write(2) of the whole line: there is no global
 * mutex, so a thread that logs never waits for another one's formatting.
 * POSIX makes a write of at most PIPE_BUF bytes (4096 on Linux) to a pipe
 * atomic, and a line is at most LOG_LINE_MAX (= 4096) bytes, so lines from
 * several threads never interleave on a pipe (journald, docker); on a
 * regular file opened O_APPEND Linux also writes each call whole.
 *
 * A log line is always one line: control characters and bytes that are not
 * strict UTF-8 in the message are escaped (\n, \r, \t, \xNN), so a value
 * that carries a newline cannot forge a second line. Backslashes are kept
 * as they are. Secrets never reach this file: callers redact URLs with
 * ef_redact_url() and log message text at TRACE only.
 */
#include "base/log.h"

#include "base/ef.h"
#include "base/utf8.h"

#include <stdarg.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

int ef_log_levels[EF_C__COUNT] = {EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO,
                                  EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO,
                                  EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO, EF_LOG_INFO};

static const char *const comp_names[EF_C__COUNT] = {"main", "http",  "tg",   "wa",   "nlp",  "fsm",
                                                    "pg",   "redis", "curl", "pipe", "poll", "cfg"};
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

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

/* Appends raw[0..n) to out at *len (capacity cap) with control characters
 * and invalid UTF-8 escaped; stops before an escape or a character that
 * would not fit whole, so a truncated line never ends mid-character. */
static void append_escaped(char *out, size_t *len, size_t cap, const char *raw, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t at = *len;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)raw[i];
        size_t next = i;
        uint32_t cp;
        char esc[4];
        size_t elen = 0;
        if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            elen = 2;
            next = i + 1;
        } else if (c < 0x20 || c == 0x7f || ef_utf8_decode(raw, n, &next, &cp) != 0) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 0xf];
            elen = 4;
            next = i + 1;
        }
        size_t w = elen ? elen : next - i;
        if (w > cap - at)
            break;
        memcpy(out + at, elen ? esc : raw + i, w);
        at += w;
        i = next;
    }
    *len = at;
}

/* Writes the whole line with one write(2); retries only what an
 * interrupted or short write left (rare: stderr is a pipe or a file). */
static void write_line(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing stderr */
        buf += w;
        len -= (size_t)w;
    }
}

void ef_log_write(ef_log_level lvl, ef_log_comp comp, const char *file, int line, const char *fmt,
                  ...)
{
    char raw[LOG_LINE_MAX];
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
    int m = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    size_t rlen = m < 0 ? 0 : (size_t)m < sizeof(raw) ? (size_t)m : sizeof(raw) - 1;
    size_t len = (size_t)n;
    /* 64 bytes stay free for " (file:line)" and the newline */
    append_escaped(buf, &len, sizeof(buf) - 64, raw, rlen);
    if (lvl == EF_LOG_ERROR || lvl >= EF_LOG_DEBUG) {
        const char *base = strrchr(file, '/');
        int k =
            snprintf(buf + len, sizeof(buf) - 1 - len, " (%s:%d)", base ? base + 1 : file, line);
        if (k > 0)
            len += (size_t)k < sizeof(buf) - 1 - len ? (size_t)k : sizeof(buf) - 2 - len;
    }
    buf[len++] = '\n';
    write_line(buf, len);
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
