/*
 * tz.c -- the bot's timezone, read once from the system's zone files.
 *
 * Relative dates ("завтра", "в пятницу") depend on the customer's local date,
 * which is the date in the bot's timezone at the moment the message arrives.
 * The C library offers localtime_r() only for the process-wide TZ, and
 * changing TZ with setenv() + tzset() at match time is not thread-safe (other
 * threads, the logger included, read the same global state). A fixed offset
 * table would be wrong for zones with daylight saving time. So the zone file
 * (TZif, RFC 8536) of bot.timezone is parsed once at load into a sorted
 * array of transitions plus the POSIX TZ rule of its footer for instants
 * after the last transition; an offset is then a binary search: pure,
 * lock-free and fast. Europe/Moscow is UTC+3 without DST since 2014, but the
 * same code serves Europe/Berlin or America/New_York.
 */
#include "nlp/nlp_int.h"

#include "base/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_FILE_MAX (1 << 20)

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
    static const unsigned md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : md[m - 1];
}

/* ---- POSIX TZ strings --------------------------------------------------- */

static const char *parse_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e && e - s >= 2 ? e + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds; hours up to 167 (TZif v3). */
static const char *parse_hms(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (*s < '0' || *s > '9')
        return NULL;
    int32_t v[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return NULL;
        int32_t x = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            x = x * 10 + (*s - '0');
            s++;
            digits++;
        }
        v[k] = x;
    }
    if (v[0] > 167 || v[1] > 59 || v[2] > 59)
        return NULL;
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    return s;
}

static const char *parse_num(const char *s, int lo, int hi, int *out)
{
    if (*s < '0' || *s > '9')
        return NULL;
    int x = 0;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (*s - '0');
        if (x > hi)
            return NULL;
        s++;
    }
    if (x < lo)
        return NULL;
    *out = x;
    return s;
}

static const char *parse_date_rule(const char *s, char *kind, int *a, int *b, int *c, int32_t *time)
{
    if (*s == 'J') {
        *kind = 'J';
        s = parse_num(s + 1, 1, 365, a);
    } else if (*s == 'M') {
        *kind = 'M';
        s = parse_num(s + 1, 1, 12, a);
        if (!s || *s != '.')
            return NULL;
        s = parse_num(s + 1, 1, 5, b);
        if (!s || *s != '.')
            return NULL;
        s = parse_num(s + 1, 0, 6, c);
    } else {
        *kind = 'D';
        s = parse_num(s, 0, 365, a);
    }
    if (!s)
        return NULL;
    *time = 7200;
    if (*s == '/')
        s = parse_hms(s + 1, time);
    return s;
}

int ef_nlp__tzrule_parse(const char *s, ef_nlp__tzrule *out)
{
    ef_nlp__tzrule r;
    memset(&r, 0, sizeof(r));
    int32_t v;
    s = parse_name(s);
    if (!s)
        return EF_EINVAL;
    s = parse_hms(s, &v);
    if (!s)
        return EF_EINVAL;
    r.std_off = -v; /* POSIX counts west of UTC */
    if (*s == '\0') {
        *out = r;
        return 0;
    }
    s = parse_name(s);
    if (!s)
        return EF_EINVAL;
    r.has_dst = true;
    r.dst_off = r.std_off + 3600;
    if (*s && *s != ',') {
        s = parse_hms(s, &v);
        if (!s)
            return EF_EINVAL;
        r.dst_off = -v;
    }
    if (*s == '\0') {
        /* POSIX leaves the default rule to the implementation; glibc uses
         * the US rule, so do we. */
        r.start.kind = r.end.kind = 'M';
        r.start.a = 3, r.start.b = 2, r.start.c = 0, r.start.time = 7200;
        r.end.a = 11, r.end.b = 1, r.end.c = 0, r.end.time = 7200;
        *out = r;
        return 0;
    }
    if (*s != ',')
        return EF_EINVAL;
    s = parse_date_rule(s + 1, &r.start.kind, &r.start.a, &r.start.b, &r.start.c, &r.start.time);
    if (!s || *s != ',')
        return EF_EINVAL;
    s = parse_date_rule(s + 1, &r.end.kind, &r.end.a, &r.end.b, &r.end.c, &r.end.time);
    if (!s || *s != '\0')
        return EF_EINVAL;
    *out = r;
    return 0;
}

/* Days since the epoch of the rule's day in year y. */
static int64_t rule_day(char kind, int a, int b, int c, int64_t y)
{
    int64_t jan1 = ef_days_from_civil(y, 1, 1);
    if (kind == 'J')
        return jan1 + a - 1 + (leap(y) && a >= 60 ? 1 : 0);
    if (kind == 'D')
        return jan1 + a;
    int64_t first = ef_days_from_civil(y, (unsigned)a, 1);
    int wday = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = 1 + (c - wday + 7) % 7 + (int64_t)(b - 1) * 7;
    if (day > month_days(y, (unsigned)a))
        day -= 7;
    return first + day - 1;
}

static int32_t rule_offset(const ef_nlp__tzrule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    unsigned m, d;
    int64_t days = (t + r->std_off) / 86400 - ((t + r->std_off) % 86400 < 0 ? 1 : 0);
    ef_civil_from_days(days, &y, &m, &d);
    int64_t start = rule_day(r->start.kind, r->start.a, r->start.b, r->start.c, y) * 86400 +
                    r->start.time - r->std_off;
    int64_t end =
        rule_day(r->end.kind, r->end.a, r->end.b, r->end.c, y) * 86400 + r->end.time - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* ---- TZif files --------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)(((uint64_t)be32(p) << 32) | be32(p + 4));
}

typedef struct hdr {
    uint32_t isut, isstd, leap, time, type, chr;
} hdr;

static bool read_hdr(const unsigned char *p, size_t n, hdr *h, int *version)
{
    if (n < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    *version = p[4] == 0 ? 1 : p[4] - '0';
    h->isut = be32(p + 20);
    h->isstd = be32(p + 24);
    h->leap = be32(p + 28);
    h->time = be32(p + 32);
    h->type = be32(p + 36);
    h->chr = be32(p + 40);
    return h->type >= 1 && h->type <= 256 && h->time <= 100000 && h->chr <= 100000 &&
           h->leap <= 100000 && h->isut <= h->type && h->isstd <= h->type;
}

static size_t block_len(const hdr *h, size_t tsize)
{
    return h->time * tsize + h->time + h->type * 6 + h->chr + h->leap * (tsize + 4) + h->isstd +
           h->isut;
}

static int parse_tzif(ef_nlp__tz *tz, const unsigned char *p, size_t n, char *why, size_t whylen)
{
    hdr h;
    int version;
    if (!read_hdr(p, n, &h, &version)) {
        snprintf(why, whylen, "not a TZif file");
        return EF_EINVAL;
    }
    size_t tsize = 4;
    const unsigned char *d = p + 44;
    size_t len = block_len(&h, 4);
    if (44 + len > n) {
        snprintf(why, whylen, "truncated TZif file");
        return EF_EINVAL;
    }
    const unsigned char *footer = NULL, *end = p + n;
    if (version >= 2) {
        const unsigned char *h2 = d + len;
        if (!read_hdr(h2, (size_t)(end - h2), &h, &version)) {
            snprintf(why, whylen, "bad second TZif header");
            return EF_EINVAL;
        }
        tsize = 8;
        d = h2 + 44;
        len = block_len(&h, 8);
        if ((size_t)(end - d) < len) {
            snprintf(why, whylen, "truncated TZif file");
            return EF_EINVAL;
        }
        footer = d + len;
    }
    const unsigned char *times = d, *idx = d + h.time * tsize, *types = idx + h.time;
    int32_t *type_off = ef_malloc(h.type * sizeof(int32_t));
    for (uint32_t i = 0; i < h.type; i++)
        type_off[i] = (int32_t)be32(types + i * 6);
    tz->n = h.time;
    tz->at = ef_malloc((h.time ? h.time : 1) * sizeof(int64_t));
    tz->off = ef_malloc((h.time ? h.time : 1) * sizeof(int32_t));
    tz->before = type_off[0];
    int rc = 0;
    for (uint32_t i = 0; i < h.time; i++) {
        tz->at[i] = tsize == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
        if (idx[i] >= h.type || (i > 0 && tz->at[i] <= tz->at[i - 1])) {
            snprintf(why, whylen, "bad TZif transition %u", (unsigned)i);
            rc = EF_EINVAL;
            break;
        }
        tz->off[i] = type_off[idx[i]];
    }
    ef_free(type_off);
    if (rc)
        return rc;
    if (footer && footer < end && *footer == '\n') {
        const unsigned char *e = memchr(footer + 1, '\n', (size_t)(end - footer - 1));
        if (e && e > footer + 1) {
            char rule[128];
            size_t rl = (size_t)(e - footer - 1);
            if (rl >= sizeof(rule)) {
                snprintf(why, whylen, "TZ rule in the zone file too long");
                return EF_EINVAL;
            }
            memcpy(rule, footer + 1, rl);
            rule[rl] = '\0';
            if (ef_nlp__tzrule_parse(rule, &tz->rule) != 0) {
                snprintf(why, whylen, "TZ rule '%s' in the zone file not understood", rule);
                return EF_EINVAL;
            }
            tz->has_rule = true;
        }
    }
    return 0;
}

static bool name_ok(const char *name)
{
    if (!name[0] || name[0] == '/' || strstr(name, "..") || strlen(name) > 200)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

int ef_nlp__tz_load(ef_nlp__tz *tz, const char *name, char *why, size_t whylen)
{
    memset(tz, 0, sizeof(*tz));
    if (!name_ok(name)) {
        snprintf(why, whylen, "not a timezone name");
        return EF_ENOTFOUND;
    }
    const char *dir = getenv("TZDIR");
    if (!dir || !dir[0])
        dir = "/usr/share/zoneinfo";
    char *path = ef_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "no zone file %s (%s)", path, strerror(errno));
        ef_free(path);
        return EF_ENOTFOUND;
    }
    ef_free(path);
    unsigned char *buf = ef_malloc(TZ_FILE_MAX);
    size_t n = fread(buf, 1, TZ_FILE_MAX, f);
    fclose(f);
    int rc = parse_tzif(tz, buf, n, why, whylen);
    ef_free(buf);
    if (rc)
        ef_nlp__tz_cleanup(tz);
    return rc;
}

void ef_nlp__tz_cleanup(ef_nlp__tz *tz)
{
    ef_free(tz->at);
    ef_free(tz->off);
    memset(tz, 0, sizeof(*tz));
}

int32_t ef_nlp__tz_offset(const ef_nlp__tz *tz, int64_t t)
{
    if (tz->n == 0 || t < tz->at[0]) {
        if (tz->n == 0 && tz->has_rule)
            return rule_offset(&tz->rule, t);
        return tz->before;
    }
    if (t >= tz->at[tz->n - 1] && tz->has_rule)
        return rule_offset(&tz->rule, t);
    size_t lo = 0, hi = tz->n; /* at[lo] <= t < at[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}
