/*
 * ozon_int.h -- what the Ozon adapter's files share. Private to
 * src/platforms and its tests.
 */
#ifndef EF_PLATFORMS_OZON_INT_H
#define EF_PLATFORMS_OZON_INT_H

#include "platforms/adapter.h"
#include "platforms/market.h"

/* One shop. Immutable once opened. */
typedef struct oz_cfg {
    char *base;       /* Seller API base */
    char *client_id;  /* not secret */
    char *api_key;    /* the credential, never logged */
    int page;         /* postings per page */
    int chat_idle_ms; /* between chat polls when nothing is unread */
    int chat_busy_ms; /* between chat polls while messages arrive */
} oz_cfg;

/* The Client-Id and Api-Key headers into rq->headers[0..1]. */
void ef_oz__headers(const oz_cfg *c, ef_mkt_req *rq);
/* The "message" of an Ozon error body, or NULL. Borrowed. */
const char *ef_oz__message(struct json_object *root);
/* The normalized status of an Ozon posting status; NULL when unknown. */
const char *ef_oz__normalize(const char *status);
/* A decimal price ("1390.000000", or a number) to minor units; -1 when it
 * is not one. */
int64_t ef_oz__minor(struct json_object *price);
/* One posting (FBS v4 or FBO v3) appended to out as an order of scheme
 * ("fbs" | "fbo"). 0, or EF_EPROTO (no posting_number or unknown status). */
int ef_oz__posting(struct json_object *p, const char *scheme, ef_order_list *out);
/* Buyer chats (ozon_chat.c): the ef_platform_ops slots parse (one
 * /v3/chat/history message with its "chat_id" added), poll_request,
 * poll_response, build_send and parse_send. */
int ef_oz__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info);
int ef_oz__poll_request(const void *cfg, const char *cursor, int timeout_s, ef_out_req *rq);
void ef_oz__poll_response(const void *cfg, const char *cursor, long status, const char *body,
                          size_t len, int max_depth, ef_msg_list *out, ef_poll_result *res);
int ef_oz__build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                      size_t errlen);
void ef_oz__parse_send(const void *cfg, const ef_out_msg *m, long status, const char *body,
                       size_t len, ef_send_result *res);

#endif /* EF_PLATFORMS_OZON_INT_H */
