/*
 * market.h -- the order side of the marketplace adapters (Wildberries,
 * Ozon): a shop's orders, read page by page from the seller API into
 * normalized ef_order rows, and the one cheap call that checks a shop's
 * credentials.
 *
 * Like platform.h, this is pure translation: an adapter builds each request
 * (ef_mkt_req) and reads each answer; the gateway (gateway/sync.c) does the
 * HTTP, waits out 429s, stores the orders and writes the sync_logs row. A
 * sync run is a sequence of requests driven by an ef_sync_state the adapter
 * owns the meaning of (stage, cursor, offset, orders waiting for their
 * status).
 *
 * Thread model: the ops are immutable and their functions pure; one
 * ef_sync_state belongs to one thread.
 */
#ifndef EF_PLATFORMS_MARKET_H
#define EF_PLATFORMS_MARKET_H

#include "platforms/platform.h"

/* Normalized order statuses, in the only order a status may move. */
#define EF_ORDER_NEW "new"
#define EF_ORDER_ASSEMBLING "assembling"
#define EF_ORDER_SHIPPED "shipped"
#define EF_ORDER_DELIVERED "delivered"
#define EF_ORDER_CANCELLED "cancelled"
#define EF_ORDER_RETURNED "returned"

/* The rank of a normalized status (new 0 .. returned 5); -1 when unknown. */
int ef_order_rank(const char *status);

/* One order as the marketplace reports it. Every string owned. */
typedef struct ef_order {
    char *number;         /* WB: the assembly task id; Ozon: posting_number */
    char *order_ref;      /* WB: rid (srid); Ozon: order_number -- what a buyer chat names */
    const char *scheme;   /* static: "fbs" | "fbo" */
    char *status_raw;     /* the marketplace's words ("confirm/sorted", "delivering") */
    const char *status;   /* static: one of EF_ORDER_* */
    char *items_json;     /* [{"sku","article","name","quantity","price"}] */
    int64_t amount_minor; /* total in minor units (kopecks); -1 when unknown */
    char currency[8];     /* ISO 4217 letters or digits; "" when unknown */
    int64_t created_at;   /* Unix seconds; 0 when unknown */
    int64_t status_at;    /* Unix seconds of the last status change known; 0 */
    char *raw_json;       /* the order object as received */
} ef_order;

typedef struct ef_order_list {
    ef_order *items;
    size_t n, cap;
} ef_order_list;

void ef_order_list_init(ef_order_list *l);
/* A new zeroed order at the end of l (amount_minor -1). */
ef_order *ef_order_list_add(ef_order_list *l);
void ef_order_list_cleanup(ef_order_list *l);

/* One request of a marketplace adapter: GET unless body is set (POST). */
#define EF_MKT_MAX_HEADERS 3
typedef struct ef_mkt_req {
    char *url;                         /* full URL, owned */
    char *body;                        /* JSON, owned; NULL: GET */
    char *headers[EF_MKT_MAX_HEADERS]; /* "Name: value", owned; NULL-terminated */
    const char *what;                  /* static: "orders", "orders/status", ... for logs */
} ef_mkt_req;

void ef_mkt_req_cleanup(ef_mkt_req *r);

/* A sync run's state. The gateway fills since/until and check before the
 * first request; the adapter owns the rest. */
typedef struct ef_sync_state {
    int64_t since; /* Unix seconds: the window's start (last success minus an overlap) */
    int64_t until; /* Unix seconds: its end (now) */
    /* Stored orders not yet final whose status to ask about again even when
     * they are older than the window (Wildberries' list has no status and
     * lists by creation date). Borrowed. */
    const char *const *check;
    size_t n_check;
    /* ---- the adapter's ---- */
    int stage;
    char cursor[256];
    int64_t offset;
    size_t check_pos;
    struct json_object *pending; /* orders waiting for their status (owned) */
    size_t requested;            /* orders the marketplace listed */
} ef_sync_state;

void ef_sync_state_cleanup(ef_sync_state *st);

/* What one answer meant. */
typedef struct ef_mkt_result {
    int fault;              /* 0; EF_EAUTH credentials refused; EF_ELIMIT rate limited
                               (wait retry_after_ms, then the same request again);
                               EF_EIO transient; EF_EPROTO not the API's answer */
    int64_t retry_after_ms; /* from the body when the API says so (0: the headers' or 1 s) */
    size_t skipped;         /* orders that could not be read (counted as failed) */
    char reason[256];       /* the marketplace's own message, never a credential */
} ef_mkt_result;

typedef struct ef_market_ops {
    const ef_platform_ops *platform;
    ef_rate orders_rate; /* the published limit of the order methods */
    /* The cheap call that checks a channel's credentials. */
    void (*check_request)(const void *cfg, ef_mkt_req *rq);
    void (*check_response)(long status, const char *body, size_t len, ef_mkt_result *res);
    /* The run's next request (true), or false when the run is complete. */
    bool (*sync_request)(const void *cfg, ef_sync_state *st, ef_mkt_req *rq);
    /* Reads the answer to the last request: orders into out, the state
     * advanced. On a fault nothing is appended and the state is unchanged,
     * so the same request may be made again. */
    void (*sync_response)(const void *cfg, ef_sync_state *st, long status, const char *body,
                          size_t len, ef_order_list *out, ef_mkt_result *res);
} ef_market_ops;

extern const ef_market_ops ef_market_wildberries;
extern const ef_market_ops ef_market_ozon;
extern const ef_platform_ops ef_platform_wildberries;
extern const ef_platform_ops ef_platform_ozon;

/* The order side of a platform adapter, or NULL when it has none (registry.c). */
const ef_market_ops *ef_market_of(const ef_platform_ops *p);

/* ---- helpers shared by the marketplace adapters (market.c) ---- */

/* RFC 3339 ("2026-12-03T10:00:00Z", fractions and offsets allowed) to Unix
 * seconds; 0 when s is NULL or not a date. */
int64_t ef_mkt__time(const char *s);
/* Unix seconds as "2026-12-03T10:00:00Z" into buf (at least 21 bytes). */
void ef_mkt__iso(int64_t t, char *buf, size_t len);
/* Parses body as a JSON object or array (max_depth 32); NULL when it is not JSON. */
struct json_object *ef_mkt__parse(const char *body, size_t len);
/* The common refusals: 401/403 (EF_EAUTH), 429 (EF_ELIMIT), 5xx and
 * network errors (EF_EIO), anything else (EF_EPROTO), reason from msg
 * (the API's own message, may be NULL). */
void ef_mkt__fault(const char *what, long status, const char *msg, ef_mkt_result *res);

#endif /* EF_PLATFORMS_MARKET_H */
