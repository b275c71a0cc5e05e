/*
 * test_ozon.c -- the Ozon adapter's order side: credentials (open), the
 * requests it builds (headers, the v4 FBS cursor body, the v3 FBO offset
 * body), and postings as Ozon sends them (v4 FBS list, v3 FBO list, error
 * bodies) normalized into orders. Q() turns single quotes into double
 * quotes so that payloads stay readable.
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

#define CREDS "{\"client_id\":\"836492\",\"api_key\":\"5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c\"}"

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
    int rc = ef_platform_ozon.open(CREDS, settings, &cfg, &pol, err, sizeof(err));
    if (rc)
        fail_msg("open: %s", err);
    return cfg;
}

static void test_open_refuses_missing_keys(void **state)
{
    (void)state;
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[300] = "";
    assert_int_equal(
        ef_platform_ozon.open("{\"client_id\":\"1\"}", "{}", &cfg, &pol, err, sizeof(err)),
        EF_EINVAL);
    assert_non_null(strstr(err, "api_key"));
    assert_int_equal(
        ef_platform_ozon.open(CREDS, "{\"page_size\":\"500\"}", &cfg, &pol, err, sizeof(err)),
        EF_EINVAL);
    assert_non_null(strstr(err, "page_size"));
    assert_int_equal(ef_platform_ozon.open(CREDS, "{\"api_url\":\"http://example.com\"}", &cfg,
                                           &pol, err, sizeof(err)),
                     EF_EINVAL);
    cfg = open_ok("{}");
    assert_string_equal(ef_platform_ozon.channel_key(cfg), "836492");
    ef_platform_ozon.close(cfg);
}

static void test_fbs_request_body_and_headers(void **state)
{
    (void)state;
    void *cfg = open_ok("{\"api_url\":\"http://127.0.0.1:9/\",\"page_size\":\"2\"}");
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    st.since = 1764547200; /* 2025-12-01T00:00:00Z */
    st.until = 1765065600; /* 2025-12-07T00:00:00Z */
    ef_mkt_req rq;
    assert_true(ef_market_ozon.sync_request(cfg, &st, &rq));
    assert_string_equal(rq.url, "http://127.0.0.1:9/v4/posting/fbs/list");
    assert_string_equal(rq.headers[0], "Client-Id: 836492");
    assert_string_equal(rq.headers[1], "Api-Key: 5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c");
    json_object *b = json_tokener_parse(rq.body), *f, *ch, *v;
    assert_non_null(b);
    assert_true(json_object_object_get_ex(b, "filter", &f));
    assert_true(json_object_object_get_ex(f, "last_changed_status_date", &ch));
    assert_true(json_object_object_get_ex(ch, "from", &v));
    assert_string_equal(json_object_get_string(v), "2025-12-01T00:00:00Z");
    assert_true(json_object_object_get_ex(f, "to", &v));
    assert_string_equal(json_object_get_string(v), "2025-12-07T00:00:00Z");
    assert_true(json_object_object_get_ex(b, "limit", &v));
    assert_int_equal(json_object_get_int(v), 2);
    json_object_put(b);
    ef_mkt_req_cleanup(&rq);
    ef_platform_ozon.close(cfg);
}

/* A v4 FBS page with a cursor, then the last page, then FBO by offset. */
static void test_pages_and_postings(void **state)
{
    (void)state;
    void *cfg = open_ok("{\"page_size\":\"2\"}");
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    st.since = 1764547200;
    st.until = 1765065600;
    ef_order_list out;
    ef_order_list_init(&out);
    ef_mkt_result res;
    char *page1 =
        Q("{'postings':[{'posting_number':'0123456789-0001-1','order_id':680420041,"
          "'order_number':'0123456789-0001','status':'awaiting_packaging','substatus':"
          "'posting_created','in_process_at':'2025-12-03T10:15:01.123Z','shipment_date':"
          "'2025-12-04T10:00:00Z','delivering_date':null,'products':[{'price':'1390.000000',"
          "'offer_id':'tee-blue-m','name':'Футболка','sku':180550365,'quantity':2,"
          "'currency_code':'RUB'}]},{'posting_number':'0123456789-0002-1','status':"
          "'delivering','delivering_date':'2025-12-05T08:00:00+03:00','products':[]}],"
          "'cursor':'eyJsYXN0SWQiOjJ9','has_next':true}");
    ef_market_ozon.sync_response(cfg, &st, 200, page1, strlen(page1), &out, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.items[0].number, "0123456789-0001-1");
    assert_string_equal(out.items[0].order_ref, "0123456789-0001");
    assert_string_equal(out.items[0].status, EF_ORDER_ASSEMBLING);
    assert_int_equal(out.items[0].amount_minor, 278000);
    assert_string_equal(out.items[0].currency, "RUB");
    assert_int_equal(out.items[0].created_at, 1764756901);
    assert_string_equal(out.items[1].status, EF_ORDER_SHIPPED);
    assert_int_equal(out.items[1].status_at, 1764910800);
    assert_string_equal(st.cursor, "eyJsYXN0SWQiOjJ9");
    char *last = Q("{'postings':[],'cursor':'','has_next':false}");
    ef_market_ozon.sync_response(cfg, &st, 200, last, strlen(last), &out, &res);
    assert_int_equal(res.fault, 0);
    ef_mkt_req rq;
    assert_true(ef_market_ozon.sync_request(cfg, &st, &rq));
    assert_non_null(strstr(rq.url, "/v3/posting/fbo/list"));
    assert_non_null(strstr(rq.body, "\"offset\":0"));
    ef_mkt_req_cleanup(&rq);
    char *fbo = Q("{'result':[{'posting_number':'9876543210-0001-1','order_number':"
                  "'9876543210-0001','status':'delivered','created_at':'2025-12-01T09:00:00Z',"
                  "'products':[{'price':'499.5','quantity':1,'sku':1}]}]}");
    ef_market_ozon.sync_response(cfg, &st, 200, fbo, strlen(fbo), &out, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.items[2].scheme, "fbo");
    assert_string_equal(out.items[2].status, EF_ORDER_DELIVERED);
    assert_int_equal(out.items[2].amount_minor, 49950);
    assert_false(ef_market_ozon.sync_request(cfg, &st, &rq)); /* short page: done */
    free(page1);
    free(last);
    free(fbo);
    ef_order_list_cleanup(&out);
    ef_sync_state_cleanup(&st);
    ef_platform_ozon.close(cfg);
}

static void test_errors(void **state)
{
    (void)state;
    void *cfg = open_ok("{}");
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    ef_order_list out;
    ef_order_list_init(&out);
    ef_mkt_result res;
    char *e403 = Q("{'code':7,'message':'Invalid Api-Key, please contact support','details':[]}");
    ef_market_ozon.sync_response(cfg, &st, 403, e403, strlen(e403), &out, &res);
    assert_int_equal(res.fault, EF_EAUTH);
    assert_non_null(strstr(res.reason, "Invalid Api-Key"));
    char *e429 = Q("{'code':8,'message':'You have reached request rate limit per second'}");
    ef_market_ozon.sync_response(cfg, &st, 429, e429, strlen(e429), &out, &res);
    assert_int_equal(res.fault, EF_ELIMIT);
    ef_market_ozon.sync_response(cfg, &st, 200, "{\"x\":1}", 7, &out, &res);
    assert_int_equal(res.fault, EF_EPROTO);
    ef_market_ozon.check_response(200, "{\"result\":[]}", 13, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 0);
    assert_int_equal(st.stage, 0);
    free(e403);
    free(e429);
    ef_platform_ozon.close(cfg);
}

static void test_status_ranks(void **state)
{
    (void)state;
    assert_true(ef_order_rank(EF_ORDER_NEW) < ef_order_rank(EF_ORDER_ASSEMBLING));
    assert_true(ef_order_rank(EF_ORDER_SHIPPED) < ef_order_rank(EF_ORDER_DELIVERED));
    assert_int_equal(ef_order_rank("lost"), -1);
    assert_int_equal(ef_mkt__time("2025-12-03T10:15:01.5+03:00"), 1764746101);
    assert_int_equal(ef_mkt__time("yesterday"), 0);
    char buf[32];
    ef_mkt__iso(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

/* Chats: the list picks the next unread buyer chat, the history gives the
 * buyer's messages of that chat (the cursor names it), replies and read
 * marks carry both headers. */
static void test_chats(void **state)
{
    (void)state;
    void *cfg = open_ok("{\"api_url\":\"http://127.0.0.1:9\"}");
    ef_out_req rq;
    assert_int_equal(ef_platform_ozon.poll_request(cfg, "", 0, &rq), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9/v3/chat/list");
    assert_non_null(strstr(rq.body, "\"unread_only\":true"));
    assert_string_equal(rq.header, "Client-Id: 836492");
    assert_string_equal(rq.header2, "Api-Key: 5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c");
    ef_out_req_cleanup(&rq);
    ef_msg_list out;
    ef_msg_list_init(&out);
    ef_poll_result res;
    char *list = Q("{'chats':[{'chat':{'chat_id':'aaaa','chat_status':'Opened','chat_type':"
                   "'Buyer_Seller','created_at':'2022-07-22T08:07:19.581Z'},"
                   "'first_unread_message_id':3000000000118021931,'last_message_id':"
                   "30000000001280042740,'unread_count':1},{'chat':{'chat_id':'bbbb',"
                   "'chat_type':'Buyer_Seller'},'first_unread_message_id':'3000000000118029999',"
                   "'unread_count':2},{'chat':{'chat_id':'cccc','chat_type':'Seller_Support'},"
                   "'first_unread_message_id':'1','unread_count':5}],'total_unread_count':8}");
    ef_platform_ozon.poll_response(cfg, "", 200, list, strlen(list), 32, &out, &res);
    assert_int_equal(res.fault, 0);
    assert_string_equal(res.next_cursor, "H:aaaa:3000000000118021931");
    ef_platform_ozon.poll_response(cfg, "L:aaaa", 200, list, strlen(list), 32, &out, &res);
    assert_string_equal(res.next_cursor, "H:bbbb:3000000000118029999");
    ef_platform_ozon.poll_response(cfg, "L:bbbb", 200, list, strlen(list), 32, &out, &res);
    assert_string_equal(res.next_cursor, "H:aaaa:3000000000118021931"); /* wraps, not support */
    assert_int_equal(out.n, 0);
    assert_int_equal(ef_platform_ozon.poll_request(cfg, "H:bbbb:3000000000118029999", 0, &rq), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9/v3/chat/history");
    assert_non_null(strstr(rq.body, "\"from_message_id\":3000000000118029999"));
    ef_out_req_cleanup(&rq);
    char *hist = Q("{'has_next':false,'messages':[{'context':{'order_number':'123456789-0001',"
                   "'sku':'73453843'},'created_at':'2022-07-18T20:58:04.528Z','data':['Где',"
                   "'мой заказ?'],'is_image':false,'is_read':false,'message_id':"
                   "3000000000118029999,'user':{'id':'115','type':'Customer'}},{'created_at':"
                   "'2022-07-18T21:00:00Z','data':['Ответ'],'message_id':'3000000000118030000',"
                   "'user':{'id':'836492','type':'Seller'}}]}");
    ef_platform_ozon.poll_response(cfg, "H:bbbb:3000000000118029999", 200, hist, strlen(hist), 32,
                                   &out, &res);
    assert_int_equal(res.fault, 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.items[0]->chat_id, "bbbb");
    assert_string_equal(out.items[0]->message_id, "3000000000118029999");
    assert_string_equal(out.items[0]->text, "Где\nмой заказ?");
    assert_string_equal(out.items[0]->sender_id, "115");
    assert_non_null(strstr(out.items[0]->meta_json, "\"order_ref\":\"123456789-0001\""));
    assert_string_equal(res.next_cursor, "L:bbbb");
    ef_out_msg read = {.chat_id = "bbbb",
                       .text = "",
                       .meta_json =
                           "{\"method\":\"markRead\",\"message_id\":\"3000000000118029999\"}"};
    char err[200];
    assert_int_equal(ef_platform_ozon.build_send(cfg, &read, &rq, err, sizeof(err)), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9/v2/chat/read");
    assert_non_null(strstr(rq.body, "\"from_message_id\":3000000000118029999"));
    assert_false(rq.counted);
    ef_out_req_cleanup(&rq);
    ef_out_msg reply = {.chat_id = "bbbb", .text = "Заказ в пути", .meta_json = "{}"};
    assert_int_equal(ef_platform_ozon.build_send(cfg, &reply, &rq, err, sizeof(err)), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9/v1/chat/send/message");
    assert_string_equal(rq.body, "{\"chat_id\":\"bbbb\",\"text\":\"Заказ в пути\"}");
    ef_out_req_cleanup(&rq);
    ef_send_result sr;
    const char *premium = "{\"code\":7,\"message\":\"Premium Plus subscription required\"}";
    ef_platform_ozon.parse_send(cfg, &reply, 403, premium, strlen(premium), &sr);
    assert_int_equal(sr.outcome, EF_SEND_FAIL);
    assert_non_null(strstr(sr.reason, "Premium"));
    const char *badkey = "{\"code\":7,\"message\":\"Invalid Api-Key, please contact support\"}";
    ef_platform_ozon.parse_send(cfg, &reply, 403, badkey, strlen(badkey), &sr);
    assert_int_equal(sr.outcome, EF_SEND_AUTH);
    free(list);
    free(hist);
    ef_msg_list_cleanup(&out);
    ef_platform_ozon.close(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refuses_missing_keys),
        cmocka_unit_test(test_fbs_request_body_and_headers),
        cmocka_unit_test(test_pages_and_postings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_status_ranks),
        cmocka_unit_test(test_chats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
