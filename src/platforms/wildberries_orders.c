/*
 * wildberries_orders.c -- Wildberries FBS orders (Marketplace API v3) to
 * ef_order: statuses normalized, items, amounts and dates. See
 * wildberries_int.h.
 *
 * An order of /api/v3/orders is one assembly task: one item (nmId, article,
 * skus) with "price" (sale currency, x100) and "convertedPrice" (the
 * seller's currency, x100), "createdAt" (RFC 3339), "rid" (the srid a buyer
 * chat's goodCard names). Its status comes from /api/v3/orders/status:
 * supplierStatus (new, confirm, complete, cancel) and wbStatus (waiting,
 * sorted, sold, canceled, canceled_by_client, declined_by_client, defect,
 * ready_for_pickup, ...).
 */
#include "platforms/wildberries_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

typedef struct status_map {
    const char *raw;
    const char *status;
} status_map;

static const status_map supplier_map[] = {
    {"new", EF_ORDER_NEW},           {"confirm", EF_ORDER_ASSEMBLING},
    {"complete", EF_ORDER_SHIPPED},  {"cancel", EF_ORDER_CANCELLED},
    {"receive", EF_ORDER_DELIVERED}, {"reject", EF_ORDER_CANCELLED},
};

static const status_map wb_map[] = {
    {"waiting", NULL},
    {"sorted", EF_ORDER_SHIPPED},
    {"accepted_by_carrier", EF_ORDER_SHIPPED},
    {"sent_to_carrier", EF_ORDER_SHIPPED},
    {"ready_for_pickup", EF_ORDER_SHIPPED},
    {"postponed_delivery", EF_ORDER_SHIPPED},
    {"sold", EF_ORDER_DELIVERED},
    {"canceled", EF_ORDER_CANCELLED},
    {"canceled_by_client", EF_ORDER_CANCELLED},
    {"declined_by_client", EF_ORDER_CANCELLED},
    {"defect", EF_ORDER_CANCELLED},
    {"canceled_by_missed_call", EF_ORDER_CANCELLED},
};

static const char *lookup(const status_map *m, size_t n, const char *raw)
{
    for (size_t i = 0; raw && i < n; i++)
        if (strcmp(m[i].raw, raw) == 0)
            return m[i].status;
    return NULL;
}

const char *ef_wb__normalize(const char *supplier, const char *wb)
{
    const char *a = lookup(supplier_map, sizeof(supplier_map) / sizeof(supplier_map[0]), supplier);
    const char *b = lookup(wb_map, sizeof(wb_map) / sizeof(wb_map[0]), wb);
    if (!a || !b)
        return a ? a : b;
    return ef_order_rank(b) > ef_order_rank(a) ? b : a;
}

/* Wildberries' error bodies: {"title","detail",...} (gateway) or
 * {"code","message"} (the methods). */
const char *ef_wb__message(json_object *root)
{
    static const char *const keys[] = {"detail", "message", "title", "errorText"};
    for (size_t i = 0; root && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *s = ef_ad__jstr(root, keys[i], NULL);
        if (s && *s)
            return s;
    }
    return NULL;
}

static json_object *find_pending(json_object *pending, long long id)
{
    size_t n = pending ? json_object_array_length(pending) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(pending, i);
        if (json_object_get_int64(ef_ad__jget(o, "id")) == id)
            return o;
    }
    return NULL;
}

bool ef_wb__pending_has(json_object *pending, long long id)
{
    return find_pending(pending, id) != NULL;
}

static char *items_of(json_object *o, int64_t price)
{
    json_object *arr = json_object_new_array(), *it = json_object_new_object();
    ef_ad__copy_id(it, "sku", o, "nmId");
    ef_ad__copy_str(it, "article", o, "article");
    json_object *skus = ef_ad__jget(o, "skus");
    if (json_object_is_type(skus, json_type_array) && json_object_array_length(skus))
        ef_ad__put_raw(it, "barcode", json_object_array_get_idx(skus, 0));
    ef_ad__put_int(it, "quantity", 1);
    if (price >= 0)
        json_object_object_add(it, "price", json_object_new_double((double)price / 100.0));
    json_object_array_add(arr, it);
    char *s = ef_strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return s;
}

/* The listed order's fields into o. */
static void fill_listed(ef_order *o, json_object *src)
{
    const char *rid = ef_ad__jstr(src, "rid", NULL);
    o->order_ref = rid && *rid ? ef_strdup(rid) : NULL;
    int64_t v;
    const char *cur = "currencyCode";
    /* a negative price is none (-1 means unknown; less is no amount) */
    if (ef_ad__jint(src, "convertedPrice", &v) && v >= 0) {
        o->amount_minor = v;
        cur = "convertedCurrencyCode";
    } else if (ef_ad__jint(src, "price", &v) && v >= 0) {
        o->amount_minor = v;
    }
    int64_t code;
    if (ef_ad__jint(src, cur, &code))
        snprintf(o->currency, sizeof(o->currency), "%03lld", (long long)code);
    o->created_at = ef_mkt__time(ef_ad__jstr(src, "createdAt", NULL));
    o->items_json = items_of(src, o->amount_minor);
    o->raw_json = ef_strdup(json_object_to_json_string_ext(src, JSON_C_TO_STRING_PLAIN));
}

int ef_wb__order_status(json_object *item, json_object *pending, ef_order_list *out)
{
    int64_t id;
    if (!ef_ad__jint(item, "id", &id))
        return EF_EPROTO;
    const char *sup = ef_ad__jstr(item, "supplierStatus", NULL);
    const char *wbs = ef_ad__jstr(item, "wbStatus", NULL);
    const char *status = ef_wb__normalize(sup, wbs);
    if (!status)
        return EF_EPROTO;
    ef_order *o = ef_order_list_add(out);
    o->number = ef_asprintf("%lld", (long long)id);
    o->scheme = "fbs";
    o->status = status;
    o->status_raw = ef_asprintf("%s/%s", sup ? sup : "-", wbs ? wbs : "-");
    json_object *src = find_pending(pending, (long long)id);
    if (src)
        fill_listed(o, src);
    return 0;
}
