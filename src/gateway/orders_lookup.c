/*
 * orders_lookup.c -- the shop's real orders in the bot's context. See
 * orders_lookup.h.
 */
#include "gateway/orders_lookup.h"

#include "base/json.h"
#include "base/time.h"
#include "store/orders.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define MSK_OFFSET_S (3 * 3600) /* dates as the shop's customers read them (Moscow) */

static const char *const keys[] = {"order_reply",       "order_found_number", "order_status",
                                   "order_status_text", "order_date",         "order_items",
                                   "order_found"};

typedef struct status_words {
    const char *status;
    const char *ru; /* "<ru> <date>" */
    const char *en; /* "<en> <date>" */
} status_words;

static const status_words words[] = {
    {"new", "принят", "placed on"},
    {"assembling", "собирается, принят", "being packed, placed on"},
    {"shipped", "передан в доставку", "shipped on"},
    {"delivered", "доставлен", "delivered on"},
    {"cancelled", "отменён", "cancelled on"},
    {"returned", "возвращён", "returned on"},
};

static const char *const months_ru[] = {"января",   "февраля", "марта",  "апреля",
                                        "мая",      "июня",    "июля",   "августа",
                                        "сентября", "октября", "ноября", "декабря"};
static const char *const months_en[] = {"January",   "February", "March",    "April",
                                        "May",       "June",     "July",     "August",
                                        "September", "October",  "November", "December"};

/* The number the message gives (its first order_number entity), else the
 * order its chat is linked to (meta order_ref); NULL: none. Owned. */
static char *named_order(const ef_msg *m, const ef_nlu_result *nlu)
{
    for (size_t i = 0; nlu && i < nlu->n_entities; i++)
        if (strcmp(nlu->entities[i].type, "order_number") == 0 && nlu->entities[i].value[0])
            return ef_strdup(nlu->entities[i].value);
    json_object *meta = NULL, *v;
    char why[64];
    char *ref = NULL;
    if (m->meta_json &&
        ef_json_parse(m->meta_json, strlen(m->meta_json), 16, &meta, why, sizeof(why)) == 0 &&
        json_object_object_get_ex(meta, "order_ref", &v) &&
        json_object_is_type(v, json_type_string))
        ref = ef_strdup(json_object_get_string(v));
    json_object_put(meta);
    return ref;
}

static void date_text(int64_t t, bool ru, char *buf, size_t len)
{
    int64_t y;
    unsigned mo, d;
    int64_t local = t + MSK_OFFSET_S;
    ef_civil_from_days(local >= 0 ? local / 86400 : (local - 86399) / 86400, &y, &mo, &d);
    if (ru)
        snprintf(buf, len, "%u %s", d, months_ru[mo - 1]);
    else
        snprintf(buf, len, "%s %u", months_en[mo - 1], d);
}

/* "Футболка × 2, Джинсы" from the order's items (names, else articles). */
static void items_text(json_object *items, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t n = json_object_is_type(items, json_type_array) ? json_object_array_length(items) : 0;
    size_t at = 0;
    for (size_t i = 0; i < n && at + 1 < len; i++) {
        json_object *it = json_object_array_get_idx(items, i), *v;
        const char *name = NULL;
        if (json_object_object_get_ex(it, "name", &v) ||
            json_object_object_get_ex(it, "article", &v))
            name = json_object_get_string(v);
        if (!name || !*name)
            continue;
        int64_t qty = json_object_object_get_ex(it, "quantity", &v) ? json_object_get_int64(v) : 1;
        int w = qty > 1 ? snprintf(buf + at, len - at, "%s%s × %lld", at ? ", " : "", name,
                                   (long long)qty)
                        : snprintf(buf + at, len - at, "%s%s", at ? ", " : "", name);
        at = w > 0 && (size_t)w < len - at ? at + (size_t)w : len - 1;
    }
}

static void put(json_object *ctx, const char *key, const char *value)
{
    json_object_object_add(ctx, key, json_object_new_string(value));
}

static void found(json_object *ctx, json_object *o, bool ru)
{
    json_object *v;
    const char *number =
        json_object_object_get_ex(o, "number", &v) ? json_object_get_string(v) : "?";
    const char *status =
        json_object_object_get_ex(o, "status", &v) ? json_object_get_string(v) : "new";
    const status_words *w = &words[0];
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(words[i].status, status) == 0)
            w = &words[i];
    bool early = strcmp(status, "new") == 0 || strcmp(status, "assembling") == 0;
    int64_t when = 0;
    if (!early && json_object_object_get_ex(o, "status_changed_at", &v))
        when = json_object_get_int64(v);
    /* A later status whose date is unknown (first seen at it) gets none:
     * the order's own date would read as the status's. */
    if (early && json_object_object_get_ex(o, "ordered_at", &v))
        when = json_object_get_int64(v);
    char date[64] = "", items[300];
    if (when)
        date_text(when, ru, date, sizeof(date));
    items_text(json_object_object_get_ex(o, "items", &v) ? v : NULL, items, sizeof(items));
    char reply[600];
    snprintf(reply, sizeof(reply), "%s %s: %s%s%s%s%s%s.", ru ? "Заказ" : "Order", number,
             ru ? w->ru : w->en, date[0] ? " " : "", date, items[0] ? " (" : "", items,
             items[0] ? ")" : "");
    put(ctx, "order_reply", reply);
    put(ctx, "order_found_number", number);
    put(ctx, "order_status", status);
    put(ctx, "order_status_text", ru ? w->ru : w->en);
    put(ctx, "order_date", date);
    put(ctx, "order_items", items);
    put(ctx, "order_found", "yes");
}

static void not_found(json_object *ctx, const char *number, bool ru)
{
    char reply[400];
    snprintf(reply, sizeof(reply),
             ru ? "Заказ %s не найден среди заказов магазина. Проверьте номер, пожалуйста."
                : "Order %s is not among the shop's orders. Please check the number.",
             number);
    put(ctx, "order_reply", reply);
    put(ctx, "order_found_number", number);
    put(ctx, "order_found", "no");
}

void ef_orders_lookup_context(ef_store *st, const ef_msg *m, const ef_nlu_result *nlu,
                              const char *lang, json_object **context)
{
    if (!*context)
        *context = json_object_new_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_object_object_del(*context, keys[i]);
    char *number = m->integration_id ? named_order(m, nlu) : NULL;
    if (!number)
        return;
    bool ru = !lang || strncmp(lang, "en", 2) != 0;
    char *json = NULL;
    int rc = ef_store_order_lookup(st, m->integration_id, number, &json);
    json_object *o = NULL;
    char why[64];
    if (rc == 0 && ef_json_parse(json, strlen(json), 16, &o, why, sizeof(why)) == 0)
        found(*context, o, ru);
    else if (rc == EF_ENOTFOUND)
        not_found(*context, number, ru);
    else
        EF_LOG(EF_LOG_WARN, EF_C_PG, "integration=%s order lookup failed: %s", m->integration_id,
               ef_store_errmsg(st));
    json_object_put(o);
    ef_free(json);
    ef_free(number);
}
