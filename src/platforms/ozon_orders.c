/*
 * ozon_orders.c -- Ozon postings (FBS /v4/posting/fbs/list, FBO
 * /v3/posting/fbo/list) to ef_order. See ozon_int.h.
 *
 * A posting: "posting_number" (the key), "order_number" (what a buyer chat's
 * context names), "status" (awaiting_registration, acceptance_in_progress,
 * awaiting_approve, awaiting_packaging, awaiting_deliver, sent_by_seller,
 * driver_pickup, delivering, arbitration, client_arbitration, delivered,
 * cancelled, not_accepted, ...), "in_process_at"/"created_at",
 * "shipment_date", "delivering_date", "products" [{"sku", "offer_id",
 * "name", "quantity", "price" (a decimal string), "currency_code"}].
 */
#include "platforms/ozon_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

void ef_oz__headers(const oz_cfg *c, ef_mkt_req *rq)
{
    rq->headers[0] = ef_asprintf("Client-Id: %s", c->client_id);
    rq->headers[1] = ef_asprintf("Api-Key: %s", c->api_key);
}

/* Ozon's error body: {"code": 16, "message": "...", "details": []}. */
const char *ef_oz__message(json_object *root)
{
    const char *m = ef_ad__jstr(root, "message", NULL);
    return m && *m ? m : NULL;
}

typedef struct status_map {
    const char *raw;
    const char *status;
} status_map;

static const status_map ozon_map[] = {
    {"awaiting_registration", EF_ORDER_NEW},
    {"acceptance_in_progress", EF_ORDER_NEW},
    {"awaiting_approve", EF_ORDER_NEW},
    {"awaiting_verification", EF_ORDER_NEW},
    {"awaiting_packaging", EF_ORDER_ASSEMBLING},
    {"awaiting_deliver", EF_ORDER_ASSEMBLING},
    {"sent_by_seller", EF_ORDER_SHIPPED},
    {"driver_pickup", EF_ORDER_SHIPPED},
    {"delivering", EF_ORDER_SHIPPED},
    {"arbitration", EF_ORDER_SHIPPED},
    {"client_arbitration", EF_ORDER_SHIPPED},
    {"delivered", EF_ORDER_DELIVERED},
    {"cancelled", EF_ORDER_CANCELLED},
    {"cancelled_from_split_pending", EF_ORDER_CANCELLED},
    {"not_accepted", EF_ORDER_CANCELLED},
    {"returned", EF_ORDER_RETURNED},
};

const char *ef_oz__normalize(const char *status)
{
    for (size_t i = 0; status && i < sizeof(ozon_map) / sizeof(ozon_map[0]); i++)
        if (strcmp(ozon_map[i].raw, status) == 0)
            return ozon_map[i].status;
    return NULL;
}

/* "1390.5" -> 139050: digits, one point, at most 6 decimals (rounded down
 * to kopecks); anything else -1. */
static int64_t decimal_minor(const char *s)
{
    int64_t whole = 0, frac = 0;
    int fd = 0, digits = 0;
    bool point = false;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && !point) {
            point = true;
            continue;
        }
        if (*p < '0' || *p > '9' || (!point && whole >= 100000000000LL))
            return -1;
        digits++;
        if (!point)
            whole = whole * 10 + (*p - '0');
        else if (fd++ < 2)
            frac = frac * 10 + (*p - '0');
    }
    if (!digits)
        return -1;
    if (fd == 1)
        frac *= 10;
    return whole * 100 + frac;
}

int64_t ef_oz__minor(json_object *price)
{
    if (json_object_is_type(price, json_type_string))
        return decimal_minor(json_object_get_string(price));
    /* Numbers: not negative and small enough to count in kopecks
     * (anything else is not a price, and would overflow). */
    if (json_object_is_type(price, json_type_int)) {
        int64_t v = json_object_get_int64(price);
        return v >= 0 && v <= INT64_MAX / 100 ? v * 100 : -1;
    }
    if (json_object_is_type(price, json_type_double)) {
        double d = json_object_get_double(price);
        return d >= 0 && d < 1e16 ? (int64_t)(d * 100.0 + 0.5) : -1;
    }
    return -1;
}

/* A currency code as market.h keeps it: 1..7 ASCII letters or digits. */
static bool currency_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= sizeof(((ef_order *)0)->currency))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

/* products -> items JSON; the total into o (unknown when a price is). */
static void items_of(json_object *products, ef_order *o)
{
    json_object *arr = json_object_new_array();
    size_t n =
        json_object_is_type(products, json_type_array) ? json_object_array_length(products) : 0;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(products, i), *it = json_object_new_object();
        int64_t qty = 1, minor = ef_oz__minor(ef_ad__jget(p, "price"));
        ef_ad__jint(p, "quantity", &qty);
        ef_ad__copy_id(it, "sku", p, "sku");
        ef_ad__copy_str(it, "article", p, "offer_id");
        ef_ad__copy_str(it, "name", p, "name");
        ef_ad__put_int(it, "quantity", qty);
        if (minor >= 0)
            json_object_object_add(it, "price", json_object_new_double((double)minor / 100.0));
        /* unknown once a price or quantity is, or the sum would overflow */
        int64_t line = 0;
        if (minor < 0 || total < 0 || qty < 0 || __builtin_mul_overflow(minor, qty, &line) ||
            __builtin_add_overflow(total, line, &total))
            total = -1;
        const char *cur = ef_ad__jstr(p, "currency_code", NULL);
        if (currency_ok(cur) && !o->currency[0])
            snprintf(o->currency, sizeof(o->currency), "%s", cur);
        json_object_array_add(arr, it);
    }
    o->amount_minor = n ? total : -1;
    o->items_json = ef_strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
}

int ef_oz__posting(json_object *p, const char *scheme, ef_order_list *out)
{
    const char *number = ef_ad__jstr(p, "posting_number", NULL);
    const char *raw = ef_ad__jstr(p, "status", NULL);
    const char *status = ef_oz__normalize(raw);
    if (!number || !*number || !status)
        return EF_EPROTO;
    ef_order *o = ef_order_list_add(out);
    o->number = ef_strdup(number);
    const char *ref = ef_ad__jstr(p, "order_number", NULL);
    o->order_ref = ref && *ref ? ef_strdup(ref) : NULL;
    o->scheme = scheme;
    o->status = status;
    o->status_raw = ef_strdup(raw);
    o->created_at = ef_mkt__time(ef_ad__jstr(p, "in_process_at", NULL));
    if (!o->created_at)
        o->created_at = ef_mkt__time(ef_ad__jstr(p, "created_at", NULL));
    static const char *const when[] = {"delivering_date", "shipment_date"};
    for (size_t i = 0; i < 2 && !o->status_at; i++)
        o->status_at = ef_mkt__time(ef_ad__jstr(p, when[i], NULL));
    items_of(ef_ad__jget(p, "products"), o);
    o->raw_json = ef_strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
    return 0;
}
