/*
 * test_wildberries.c -- the Wildberries adapter's order side: credentials
 * (open), the Marketplace API v3 requests it builds (Authorization header,
 * limit/next/dateFrom/dateTo, the status batch), and answers as Wildberries
 * sends them (orders pages, statuses, the API gateway's 401 body, 429)
 * normalized into orders. Q() turns single quotes into double quotes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/market.h"

#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJlbnQiOjF9.signature-0123456789"
#define CREDS "{\"api_token\":\"" TOKEN "\"}"

static char *Q(const char *s)
{
    char *t = strdup(s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    return t;
}

static void *open_ok(const char *settings)
{
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[300] = "";
    if (ef_platform_wildberries.open(CREDS, settings, &cfg, &pol, err, sizeof(err)))
        fail_msg("open: %s", err);
    return cfg;
}

static void test_open(void **state)
{
    (void)state;
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[300] = "";
    assert_int_equal(ef_platform_wildberries.open("{}", "{}", &cfg, &pol, err, sizeof(err)),
                     EF_EINVAL);
    assert_non_null(strstr(err, "api_token"));
    assert_int_equal(ef_platform_wildberries.open("{\"api_token\":\"short\"}", "{}", &cfg, &pol,
                                                  err, sizeof(err)),
                     EF_EINVAL);
    assert_int_equal(ef_platform_wildberries.open(CREDS, "{\"sync_interval_minutes\":\"0\"}", &cfg,
                                                  &pol, err, sizeof(err)),
                     EF_EINVAL);
    assert_non_null(strstr(err, "sync_interval_minutes"));
    cfg = open_ok("{}");
    ef_mkt_req rq;
    ef_market_wildberries.check_request(cfg, &rq);
    assert_string_equal(rq.url, "https://marketplace-api.wildberries.ru/ping");
    assert_string_equal(rq.headers[0], "Authorization: Bearer " TOKEN);
    assert_null(rq.body);
    ef_mkt_req_cleanup(&rq);
    ef_platform_wildberries.close(cfg);
}

static const char *ORDERS_PAGE =
    "{'next':13833711,'orders':[{'address':null,'scanPrice':null,'deliveryType':'fbs',"
    "'supplyId':'WB-GI-1234567','orderUid':'165918930_629fbc924b984618a44354475ca58675',"
    "'article':'one-ring-7548','colorCode':'RAL 3017','rid':'f884001e44e511edb8780242ac120002',"
    "'createdAt':'2022-05-04T07:56:29Z','offices':['Калуга'],'skus':['6665956397512'],"
    "'id':13833711,'warehouseId':658434,'nmId':12345678,'chrtId':987654321,'price':1014,"
    "'convertedPrice':28322,'currencyCode':933,'convertedCurrencyCode':643,'cargoType':1,"
    "'isZeroOrder':false}]}";

/* One page (shorter than limit: the last), then the status batch. */
static void test_orders_then_statuses(void **state)
{
    (void)state;
    void *cfg = open_ok("{\"api_url\":\"http://127.0.0.1:9\",\"page_size\":\"2\"}");
    const char *open[] = {"777", "13833711"};
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    st.since = 1651600000;
    st.until = 1651700000;
    st.check = open;
    st.n_check = 2;
    ef_mkt_req rq;
    assert_true(ef_market_wildberries.sync_request(cfg, &st, &rq));
    assert_string_equal(rq.url, "http://127.0.0.1:9/api/v3/orders?limit=2&next=0&dateFrom="
                                "1651600000&dateTo=1651700000");
    ef_mkt_req_cleanup(&rq);
    ef_order_list out;
    ef_order_list_init(&out);
    ef_mkt_result res;
    char *page = Q(ORDERS_PAGE);
    ef_market_wildberries.sync_response(cfg, &st, 200, page, strlen(page), &out, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 0); /* no status yet */
    assert_int_equal(st.requested, 1);
    assert_true(ef_market_wildberries.sync_request(cfg, &st, &rq));
    assert_string_equal(rq.url, "http://127.0.0.1:9/api/v3/orders/status");
    /* The listed order, then the stored open one it did not bring. */
    assert_string_equal(rq.body, "{\"orders\":[13833711,777]}");
    ef_mkt_req_cleanup(&rq);
    char *statuses = Q("{'orders':[{'id':13833711,'supplierStatus':'complete','wbStatus':"
                       "'sorted'},{'id':777,'supplierStatus':'cancel','wbStatus':"
                       "'canceled_by_client'}]}");
    ef_market_wildberries.sync_response(cfg, &st, 200, statuses, strlen(statuses), &out, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.items[0].number, "13833711");
    assert_string_equal(out.items[0].order_ref, "f884001e44e511edb8780242ac120002");
    assert_string_equal(out.items[0].status, EF_ORDER_SHIPPED);
    assert_string_equal(out.items[0].status_raw, "complete/sorted");
    assert_int_equal(out.items[0].amount_minor, 28322);
    assert_string_equal(out.items[0].currency, "643");
    assert_int_equal(out.items[0].created_at, 1651650989);
    assert_non_null(strstr(out.items[0].items_json, "\"article\":\"one-ring-7548\""));
    assert_string_equal(out.items[1].status, EF_ORDER_CANCELLED);
    assert_null(out.items[1].items_json); /* status only: a stored order */
    assert_false(ef_market_wildberries.sync_request(cfg, &st, &rq));
    free(page);
    free(statuses);
    ef_order_list_cleanup(&out);
    ef_sync_state_cleanup(&st);
    ef_platform_wildberries.close(cfg);
}

static void test_errors_and_normalize(void **state)
{
    (void)state;
    void *cfg = open_ok("{}");
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    ef_order_list out;
    ef_order_list_init(&out);
    ef_mkt_result res;
    char *e401 = Q("{'title':'unauthorized','detail':'token is malformed: could not parse',"
                   "'code':'07e4668e','requestId':'x','origin':'s2s-api-auth-marketplace',"
                   "'status':401,'statusText':'Unauthorized'}");
    ef_market_wildberries.sync_response(cfg, &st, 401, e401, strlen(e401), &out, &res);
    assert_int_equal(res.fault, EF_EAUTH);
    assert_non_null(strstr(res.reason, "token is malformed"));
    assert_null(strstr(res.reason, TOKEN));
    ef_market_wildberries.sync_response(cfg, &st, 429, "{}", 2, &out, &res);
    assert_int_equal(res.fault, EF_ELIMIT);
    ef_market_wildberries.sync_response(cfg, &st, 200, "{\"orders\":7}", 12, &out, &res);
    assert_int_equal(res.fault, EF_EPROTO);
    assert_int_equal(st.stage, 0);
    const char *pong = "{\"TS\":\"2024-08-16T11:19:05+03:00\",\"Status\":\"OK\"}";
    ef_market_wildberries.check_response(200, pong, strlen(pong), &res);
    assert_int_equal(res.fault, 0);
    free(e401);
    ef_platform_wildberries.close(cfg);
}

static const char *EVENTS =
    "{'result':{'next':1698045576000,'newestEventTime':'2023-10-23T07:19:36Z',"
    "'oldestEventTime':'2023-10-23T07:19:35Z','totalEvents':2,'events':[{'chatID':"
    "'1:1e265a58-a120-b178-008c-60af2460207c','eventID':'4a7b3c2f-9d1e-4f6a-8b5c-2d3e4f5a6b7c',"
    "'eventType':'message','isNewChat':true,'message':{'attachments':{'goodCard':{'date':"
    "'2023-10-20T10:00:00Z','needRefund':false,'nmID':12345678,'price':500,'priceCurrency':"
    "'RUB','rid':'f884001e44e511edb8780242ac120002','size':'0','statusID':1}},'text':"
    "'Где мой заказ?'},'source':'rusite','addTimestamp':1698045575000,'addTime':"
    "'2023-10-23T07:19:35Z','replySign':'1:1e265a58:sign','sender':'client','clientID':"
    "'186132','clientName':'Никита'},{'chatID':'1:1e265a58-a120-b178-008c-60af2460207c',"
    "'eventID':'5b8c','eventType':'message','isNewChat':false,'message':{'text':'Ответ'},"
    "'source':'seller-portal','addTimestamp':1698045576000,'sender':'seller'}]},'errors':[]}";

static void test_chat_events_and_reply(void **state)
{
    (void)state;
    void *cfg = open_ok("{\"api_url\":\"http://127.0.0.1:9\"}");
    ef_out_req rq;
    assert_int_equal(ef_platform_wildberries.poll_request(cfg, "", 0, &rq), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9/api/v1/seller/events");
    assert_string_equal(rq.header, "Authorization: Bearer " TOKEN);
    assert_null(rq.body);
    ef_out_req_cleanup(&rq);
    ef_msg_list out;
    ef_msg_list_init(&out);
    ef_poll_result res;
    char *ev = Q(EVENTS);
    ef_platform_wildberries.poll_response(cfg, "", 200, ev, strlen(ev), 32, &out, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 1); /* the seller's own message is skipped */
    assert_string_equal(res.next_cursor, "1698045576000");
    ef_msg *m = out.items[0];
    assert_string_equal(m->message_id, "4a7b3c2f-9d1e-4f6a-8b5c-2d3e4f5a6b7c");
    assert_string_equal(m->chat_id, "1:1e265a58:sign"); /* the replySign keys the chat */
    assert_non_null(strstr(m->meta_json, "\"chat_id\":\"1:1e265a58-a120-b178-008c-60af2460207c\""));
    assert_string_equal(m->sender_id, "186132");
    assert_string_equal(m->text, "Где мой заказ?");
    assert_string_equal(m->thread_id, "1:1e265a58:sign");
    assert_int_equal(m->date, 1698045575);
    assert_non_null(strstr(m->meta_json, "\"order_ref\":\"f884001e44e511edb8780242ac120002\""));
    ef_out_msg om = {.row_id = "r1",
                     .chat_id = m->chat_id,
                     .text = "Заказ передан в доставку",
                     .meta_json = "{\"thread_id\":\"1:1e265a58:sign\"}"};
    char err[200];
    assert_int_equal(ef_platform_wildberries.build_send(cfg, &om, &rq, err, sizeof(err)), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9/api/v1/seller/message");
    assert_non_null(strstr(rq.content_type, "multipart/form-data; boundary="));
    assert_non_null(strstr(rq.body, "name=\"replySign\"\r\n\r\n1:1e265a58:sign\r\n"));
    assert_non_null(strstr(rq.body, "name=\"message\"\r\n\r\nЗаказ передан в доставку\r\n"));
    ef_out_req_cleanup(&rq);
    /* An operator's reply carries no thread id: the chat key is the sign. */
    om.meta_json = "{\"operator_id\":\"x\"}";
    assert_int_equal(ef_platform_wildberries.build_send(cfg, &om, &rq, err, sizeof(err)), 0);
    assert_non_null(strstr(rq.body, "name=\"replySign\"\r\n\r\n1:1e265a58:sign\r\n"));
    ef_out_req_cleanup(&rq);
    om.chat_id = NULL;
    om.meta_json = "{}";
    assert_int_equal(ef_platform_wildberries.build_send(cfg, &om, &rq, err, sizeof(err)),
                     EF_EINVAL);
    assert_non_null(strstr(err, "replySign"));
    ef_send_result sr;
    const char *refused = "{\"result\":{},\"errors\":[\"chat is closed\"]}";
    ef_platform_wildberries.parse_send(cfg, &om, 400, refused, strlen(refused), &sr);
    assert_int_equal(sr.outcome, EF_SEND_FAIL);
    assert_non_null(strstr(sr.reason, "chat is closed"));
    ef_platform_wildberries.parse_send(cfg, &om, 429, "{}", 2, &sr);
    assert_int_equal(sr.outcome, EF_SEND_RATE);
    ef_platform_wildberries.poll_response(cfg, "", 401, "{}", 2, 32, &out, &res);
    assert_int_equal(res.fault, EF_EAUTH);
    free(ev);
    ef_msg_list_cleanup(&out);
    ef_platform_wildberries.close(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_orders_then_statuses),
        cmocka_unit_test(test_errors_and_normalize),
        cmocka_unit_test(test_chat_events_and_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
