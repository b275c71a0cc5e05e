/*
 * wildberries_int.h -- what the Wildberries adapter's files share. Private
 * to src/platforms and its tests.
 */
#ifndef EF_PLATFORMS_WILDBERRIES_INT_H
#define EF_PLATFORMS_WILDBERRIES_INT_H

#include "platforms/adapter.h"
#include "platforms/market.h"

/* One shop. Immutable once opened. */
typedef struct wb_cfg {
    char *mkt;        /* Marketplace API base (orders) */
    char *chat;       /* buyer-chat API base */
    char *auth;       /* "Authorization: Bearer <token>": holds the credential, never logged */
    int page;         /* orders per page */
    int chat_idle_ms; /* between event polls when nothing happened */
    int chat_busy_ms; /* between event polls while events arrive */
} wb_cfg;

/* The message of a Wildberries error body ("detail", "message", "title"),
 * or NULL. Borrowed from root. */
const char *ef_wb__message(struct json_object *root);
/* True when pending (an array of order objects) holds the order id. */
bool ef_wb__pending_has(struct json_object *pending, long long id);
/* The normalized status of a supplierStatus / wbStatus pair (either may be
 * NULL); NULL when neither is known. */
const char *ef_wb__normalize(const char *supplier, const char *wb);
/* One item of /api/v3/orders/status ({"id","supplierStatus","wbStatus"})
 * joined with its listed order from pending (when there) into out: a full
 * order, or a status-only one (items_json NULL) for a stored order. 0, or
 * EF_EPROTO when the item is not readable. */
int ef_wb__order_status(struct json_object *item, struct json_object *pending, ef_order_list *out);
/* Buyer chats (wildberries_chat.c): the ef_platform_ops slots parse (one
 * event of /api/v1/seller/events), poll_request, poll_response, build_send
 * and parse_send. */
int ef_wb__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info);
int ef_wb__poll_request(const void *cfg, const char *cursor, int timeout_s, ef_out_req *rq);
void ef_wb__poll_response(const void *cfg, const char *cursor, long status, const char *body,
                          size_t len, int max_depth, ef_msg_list *out, ef_poll_result *res);
int ef_wb__build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                      size_t errlen);
void ef_wb__parse_send(const void *cfg, const ef_out_msg *m, long status, const char *body,
                       size_t len, ef_send_result *res);

#endif /* EF_PLATFORMS_WILDBERRIES_INT_H */
