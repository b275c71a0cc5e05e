/*
 * api_metrics.c -- GET /api/v1/metrics?from=&to=&platform=: the hourly
 * rollups (platform_metrics, written by metrics_rollup.c) for the console's
 * dashboard.
 *
 * from and to are RFC 3339 times (2026-12-07T10:00:00Z, an offset
 * +03:00, or a date 2026-12-07 meaning its midnight UTC) or Unix seconds;
 * to defaults to now, from to 24 hours before to. The answer holds the
 * hours that overlap [from, to): from is taken down to its hour. At most
 * 31 days; a bad date, from not before to, a longer range or an unknown
 * platform is 400 with the reason.
 */
#include "gateway/api_int.h"

#include "base/time.h"
#include "platforms/platform.h"
#include "store/platform_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_S 3600
#define DEFAULT_RANGE_S (24 * HOUR_S)
#define MAX_RANGE_S (31LL * 24 * HOUR_S)
#define FORMAT_HINT                                                                                \
    "use 2026-12-07, 2026-12-07T10:00:00Z, 2026-12-07T13:00:00+03:00 or Unix seconds"

/* n decimal digits at s: the value, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "Z", "+HH:MM", "-HH:MM" (a '+' that arrived as a space too) at s, to the
 * end: the offset in seconds east of UTC, or false. */
static bool parse_zone(const char *s, int64_t *off)
{
    if (strcmp(s, "Z") == 0 || strcmp(s, "z") == 0 || !*s) {
        *off = 0;
        return true;
    }
    if ((s[0] != '+' && s[0] != '-' && s[0] != ' ') || strlen(s) != 6 || s[3] != ':')
        return false;
    int h = digits(s + 1, 2), m = digits(s + 4, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return false;
    *off = (int64_t)(h * HOUR_S + m * 60) * (s[0] == '-' ? -1 : 1);
    return true;
}

/* HH:MM[:SS[.fraction]] then the zone, at s: seconds into the day minus
 * the offset, or false. */
static bool parse_clock(const char *s, int64_t *secs)
{
    int h = digits(s, 2), mi = s[0] && s[1] && s[2] == ':' ? digits(s + 3, 2) : -1, sec = 0;
    if (h < 0 || h > 23 || mi < 0 || mi > 59)
        return false;
    const char *p = s + 5;
    if (*p == ':') {
        sec = digits(p + 1, 2);
        if (sec < 0 || sec > 59)
            return false;
        p += 3;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return false;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    }
    int64_t off;
    if (!parse_zone(p, &off))
        return false;
    *secs = (int64_t)h * HOUR_S + mi * 60 + sec - off;
    return true;
}

/* s as Unix seconds; false when it is no time we read. */
static bool parse_time(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40)
        return false;
    if (all_digits(s)) {
        if (n > 11)
            return false;
        *out = strtoll(s, NULL, 10);
        return true;
    }
    if (n < 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return false;
    int64_t secs = 0;
    if (n > 10 && ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !parse_clock(s + 11, &secs)))
        return false;
    *out = ef_days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + secs;
    return true;
}

/* The argument name as Unix seconds (def when absent): 0, or answered 400. */
static int time_arg(ef_api_call *c, const char *name, int64_t def, int64_t *out)
{
    const char *v = ef_api__arg(c, name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    if (parse_time(v, out))
        return 0;
    char why[200];
    snprintf(why, sizeof(why), "%s: \"%.40s\" is not a date or time (%s)", name, v, FORMAT_HINT);
    ef_api__error(c, 400, why);
    return 400;
}

void ef_api__metrics(ef_api_call *c, ef_work_conn *conn)
{
    int64_t to, from;
    if (time_arg(c, "to", ef_wall_ms() / 1000, &to) != 0 ||
        time_arg(c, "from", to - DEFAULT_RANGE_S, &from) != 0)
        return;
    from -= ((from % HOUR_S) + HOUR_S) % HOUR_S;
    if (from >= to) {
        ef_api__error(c, 400, "from must be before to");
        return;
    }
    if (to - from > MAX_RANGE_S) {
        ef_api__error(c, 400, "the range from..to is at most 31 days");
        return;
    }
    const char *platform = ef_api__arg(c, "platform");
    if (platform && !*platform)
        platform = NULL;
    if (platform && !ef_platform_find(platform)) {
        char why[160];
        snprintf(why, sizeof(why), "platform: no platform \"%.40s\"", platform);
        ef_api__error(c, 400, why);
        return;
    }
    char *json = NULL;
    int rc = ef_store_metrics_range(conn->st, from, to, platform, &json);
    if (rc != 0) {
        ef_api__store_error(c, rc, "metrics", ef_store_errmsg(conn->st));
        return;
    }
    ef_api__reply_text(c, 200, json);
}
