/*
 * test_webchat.c -- the web chat adapter through its ops struct: open()
 * checks the visitor key; handshake issues visitor ids that verify accepts
 * under the same key only; any altered id is refused; parse turns a visitor
 * frame into one ef_msg (chat = the id's random part, platform message id =
 * "<chat>:<client id>") and refuses bad frames; build_send asks for no
 * request and parse_send accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "platforms/platform.h"

#define KEY_A                                                                                      \
    "{\"visitor_key\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}"
#define KEY_B                                                                                      \
    "{\"visitor_key\":\"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\"}"

static const ef_platform_ops *W = &ef_platform_webchat;

static void *open_ok(const char *creds)
{
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[200] = "";
    assert_int_equal(W->open(creds, "{}", &cfg, &pol, err, sizeof(err)), 0);
    assert_non_null(cfg);
    return cfg;
}

/* A new visitor id into out. */
static void issue(void *cfg, char *out, size_t n)
{
    ef_buf b;
    ef_buf_init(&b, 256);
    ef_http_req rq = {.post = false};
    assert_int_equal(W->handshake(cfg, &rq, &b), 0);
    assert_true(b.len < n);
    snprintf(out, n, "%.*s", (int)b.len, b.data);
    ef_buf_cleanup(&b);
}

static int check(void *cfg, const char *visitor)
{
    ef_http_req rq = {.post = true, .auth = visitor};
    return ef_platform_verify(W, cfg, &rq);
}

static void test_open(void **state)
{
    (void)state;
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[200] = "";
    assert_int_equal(W->open("{}", "{}", &cfg, &pol, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, "visitor_key"));
    assert_int_equal(W->open("{\"visitor_key\":\"abc\"}", "{}", &cfg, &pol, err, sizeof(err)),
                     EF_EINVAL);
    cfg = open_ok(KEY_A);
    assert_string_equal(W->channel_key(cfg), "");
    assert_true(W->supports & EF_PLAT_SOCKET);
    char why[200];
    assert_int_equal(ef_platform_check(W, why, sizeof(why)), 0);
    W->close(cfg);
}

static void test_ids_verify_only_unaltered_and_under_their_key(void **state)
{
    (void)state;
    void *a = open_ok(KEY_A), *b = open_ok(KEY_B);
    char v[128], v2[128];
    issue(a, v, sizeof(v));
    issue(a, v2, sizeof(v2));
    assert_int_equal(strncmp(v, "v1.", 3), 0);
    assert_int_equal(strlen(v), 3 + 32 + 1 + 43);
    assert_string_not_equal(v, v2); /* random */
    assert_int_equal(check(a, v), 0);
    assert_int_equal(check(a, v2), 0);
    assert_int_equal(check(b, v), EF_EAUTH); /* another key */
    /* Every single character changed is refused. */
    for (size_t i = 0; v[i]; i++) {
        char f[128];
        snprintf(f, sizeof(f), "%s", v);
        f[i] = f[i] == 'a' ? 'b' : 'a';
        if (strcmp(f, v) != 0)
            assert_int_equal(check(a, f), EF_EAUTH);
    }
    /* Truncated, extended, upper-case hex, the mac of another id. */
    char f[160];
    snprintf(f, sizeof(f), "%.*s", (int)strlen(v) - 1, v);
    assert_int_equal(check(a, f), EF_EAUTH);
    snprintf(f, sizeof(f), "%sA", v);
    assert_int_equal(check(a, f), EF_EAUTH);
    snprintf(f, sizeof(f), "v1.%.32s%s", v2 + 3, v + 35);
    assert_int_equal(check(a, f), EF_EAUTH);
    assert_int_equal(check(a, NULL), EF_EAUTH);
    assert_int_equal(check(a, ""), EF_EAUTH);
    W->close(a);
    W->close(b);
}

/* Parses a frame; returns the rc and the one message in *out (or NULL). */
static int parse(const char *json, ef_msg_list *out, ef_parse_info *info)
{
    json_object *root = json_tokener_parse(json);
    assert_non_null(root);
    ef_msg_list_init(out);
    memset(info, 0, sizeof(*info));
    int rc = ef_platform_parse(W, root, out, info);
    json_object_put(root);
    return rc;
}

#define VIS "v1.00112233445566778899aabbccddeeff.mac"

static void test_parse(void **state)
{
    (void)state;
    ef_msg_list l;
    ef_parse_info info;
    assert_int_equal(parse("{\"visitor\":\"" VIS "\",\"type\":\"message\",\"id\":\"c-1\","
                           "\"text\":\"Привет\",\"date\":1700000000}",
                           &l, &info),
                     0);
    assert_int_equal(l.n, 1);
    ef_msg *m = l.items[0];
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->platform, "webchat");
    assert_string_equal(m->chat_id, "00112233445566778899aabbccddeeff");
    assert_string_equal(m->sender_id, m->chat_id);
    assert_string_equal(m->message_id, "00112233445566778899aabbccddeeff:c-1");
    assert_string_equal(m->text, "Привет");
    assert_int_equal(m->date, 1700000000);
    assert_non_null(strstr(m->meta_json, "\"client_id\":\"c-1\""));
    ef_msg_list_cleanup(&l);

    assert_int_equal(parse("{\"visitor\":\"" VIS "\",\"type\":\"button\",\"id\":\"c-2\","
                           "\"payload\":\"delivery\",\"title\":\"Доставка\"}",
                           &l, &info),
                     0);
    m = l.items[0];
    assert_int_equal(m->kind, EF_MSG_CALLBACK);
    assert_string_equal(m->text, "delivery");
    assert_non_null(strstr(m->meta_json, "\"title\":\"Доставка\""));
    ef_msg_list_cleanup(&l);

    assert_int_equal(parse("{\"visitor\":\"" VIS "\",\"type\":\"seen\",\"status\":\"read\","
                           "\"message\":\"0b6c8f1e-1a2b-4c3d-8e9f-001122334455\"}",
                           &l, &info),
                     0);
    m = l.items[0];
    assert_int_equal(m->kind, EF_MSG_STATUS);
    assert_string_equal(m->target_id, "web:0b6c8f1e-1a2b-4c3d-8e9f-001122334455");
    assert_string_equal(m->status, "read");
    assert_string_equal(m->message_id, "web:0b6c8f1e-1a2b-4c3d-8e9f-001122334455:read");
    ef_msg_list_cleanup(&l);

    const char *bad[] = {
        "{\"visitor\":\"" VIS "\",\"type\":\"seen\",\"status\":\"read\",\"message\":\"x\"}",
        "{\"visitor\":\"" VIS "\",\"type\":\"seen\",\"status\":\"sent\","
        "\"message\":\"0b6c8f1e-1a2b-4c3d-8e9f-001122334455\"}",
        "{\"type\":\"message\",\"id\":\"c\",\"text\":\"x\"}",
        "{\"visitor\":\"" VIS "\",\"type\":\"other\",\"id\":\"c\",\"text\":\"x\"}",
        "{\"visitor\":\"" VIS "\",\"type\":\"message\",\"text\":\"x\"}",
        "{\"visitor\":\"" VIS "\",\"type\":\"message\",\"id\":\"a:b\",\"text\":\"x\"}",
        "{\"visitor\":\"" VIS "\",\"type\":\"message\",\"id\":\"c\",\"text\":\"\"}",
        "{\"visitor\":\"" VIS "\",\"type\":\"message\",\"id\":\"c\",\"text\":5}",
        "{\"visitor\":\"" VIS "\",\"type\":\"button\",\"id\":\"c\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &l, &info), EF_EPROTO);
        assert_int_equal(l.n, 0);
        assert_true(info.note[0] != '\0');
        ef_msg_list_cleanup(&l);
    }
}

static void test_send(void **state)
{
    (void)state;
    void *cfg = open_ok(KEY_A);
    ef_out_msg m = {.row_id = "r1", .chat_id = "00112233445566778899aabbccddeeff", .text = "hi"};
    ef_out_req rq;
    char err[200] = "";
    assert_int_equal(W->build_send(cfg, &m, &rq, err, sizeof(err)), 0);
    assert_null(rq.url); /* no request: the gateway pushes it */
    ef_out_req_cleanup(&rq);
    ef_send_result res;
    W->parse_send(cfg, &m, 200, NULL, 0, &res);
    assert_int_equal(res.outcome, EF_SEND_OK);
    assert_string_equal(res.platform_message_id, "web:r1");
    ef_send_result_cleanup(&res);
    ef_out_msg bad = {.row_id = "r2", .chat_id = "42", .text = "hi"};
    assert_int_equal(W->build_send(cfg, &bad, &rq, err, sizeof(err)), EF_EINVAL);
    ef_out_req_cleanup(&rq);
    W->close(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_ids_verify_only_unaltered_and_under_their_key),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
