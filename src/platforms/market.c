/*
 * market.c -- what the marketplace adapters share: order lists, status
 * ranks, RFC 3339 dates, request cleanup and the common refusals. See
 * market.h.
 */
#include "platforms/market.h"

#include "base/time.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ranks[] = {EF_ORDER_NEW,       EF_ORDER_ASSEMBLING, EF_ORDER_SHIPPED,
                                    EF_ORDER_DELIVERED, EF_ORDER_CANCELLED,  EF_ORDER_RETURNED};

int ef_order_rank(const char *status)
{
    for (size_t i = 0; status && i < sizeof(ranks) / sizeof(ranks[0]); i++)
        if (strcmp(status, ranks[i]) == 0)
            return (int)i;
    return -1;
}

void ef_order_list_init(ef_order_list *l)
{
    memset(l, 0, sizeof(*l));
}

ef_order *ef_order_list_add(ef_order_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = ef_realloc(l->items, l->cap * sizeof(*l->items));
    }
    ef_order *o = &l->items[l->n++];
    memset(o, 0, sizeof(*o));
    o->amount_minor = -1;
    return o;
}

void ef_order_list_cleanup(ef_order_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        ef_order *o = &l->items[i];
        ef_free(o->number);
        ef_free(o->order_ref);
        ef_free(o->status_raw);
        ef_free(o->items_json);
        ef_free(o->raw_json);
    }
    ef_free(l->items);
    memset(l, 0, sizeof(*l));
}

void ef_mkt_req_cleanup(ef_mkt_req *r)
{
    ef_free(r->url);
    ef_free(r->body);
    for (size_t i = 0; i < EF_MKT_MAX_HEADERS; i++)
        ef_free(r->headers[i]);
    memset(r, 0, sizeof(*r));
}

void ef_sync_state_cleanup(ef_sync_state *st)
{
    json_object_put(st->pending);
    st->pending = NULL;
}

/* Two digits at s, or -1. */
static int two(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* The zone after the seconds (and their fraction): seconds east of UTC,
 * or false when it is not Z / +hh:mm / -hh:mm / nothing. */
static bool zone(const char *p, int64_t *off)
{
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    *off = 0;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return true;
    if ((*p != '+' && *p != '-') || two(p + 1) < 0 || p[3] != ':' || two(p + 4) < 0 || p[6])
        return false;
    *off = (two(p + 1) * 3600 + two(p + 4) * 60) * (*p == '-' ? -1 : 1);
    return true;
}

int64_t ef_mkt__time(const char *s)
{
    if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return 0;
    int y1 = two(s), y2 = two(s + 2), mo = two(s + 5), d = two(s + 8), h = two(s + 11),
        mi = two(s + 14), se = two(s + 17);
    int64_t off;
    if (y1 < 0 || y2 < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60 || !zone(s + 19, &off))
        return 0;
    int64_t days = ef_days_from_civil(y1 * 100 + y2, (unsigned)mo, (unsigned)d);
    return days * 86400 + h * 3600 + mi * 60 + se - off;
}

void ef_mkt__iso(int64_t t, char *buf, size_t len)
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400, y;
    unsigned m, d;
    ef_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
}

json_object *ef_mkt__parse(const char *body, size_t len)
{
    json_object *root = NULL;
    char why[128];
    if (!body || !len || ef_json_parse(body, len, 32, &root, why, sizeof(why)) != 0)
        return NULL;
    return root;
}

void ef_mkt__fault(const char *what, long status, const char *msg, ef_mkt_result *res)
{
    const char *m = msg && *msg ? msg : "";
    if (status == 401 || status == 403) {
        res->fault = EF_EAUTH;
        snprintf(res->reason, sizeof(res->reason), "%s: %ld %s%s", what, status,
                 m[0] ? m : "the credentials were refused",
                 status == 403 ? " (the token lacks this category or is read-only?)" : "");
    } else if (status == 429) {
        res->fault = EF_ELIMIT;
        snprintf(res->reason, sizeof(res->reason), "%s: 429 too many requests%s%.200s", what,
                 m[0] ? ": " : "", m);
    } else if (status == 0 || status >= 500) {
        res->fault = EF_EIO;
        snprintf(res->reason, sizeof(res->reason), "%s: %s%s%.200s", what,
                 status ? "server error" : "network error", m[0] ? ": " : "", m);
        if (status) {
            size_t n = strlen(res->reason);
            snprintf(res->reason + n, sizeof(res->reason) - n, " (HTTP %ld)", status);
        }
    } else {
        res->fault = EF_EPROTO;
        snprintf(res->reason, sizeof(res->reason), "%s: HTTP %ld %.200s", what, status,
                 m[0] ? m : "(not the API's answer)");
    }
}
