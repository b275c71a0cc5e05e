/*
 * test_pjson.c -- the strict JSON parser and typed getters adapters share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

#include "platforms/platform.h"

/* Parses a C string literal (length without the terminating NUL). */
#define PARSE(lit, depth, out, err)                                                                \
    ef_json_parse((lit), sizeof(lit) - 1, (depth), (out), (err), sizeof(err))

static int parse_rc(const char *body, size_t len, int depth, char *err, size_t errlen)
{
    struct json_object *o = NULL;
    int rc = ef_json_parse(body, len, depth, &o, err, errlen);
    json_object_put(o);
    return rc;
}

/* A body of n nested arrays around `inner` ("" or "1"). */
static char *nested(int n, const char *inner)
{
    ef_buf b;
    ef_buf_init(&b, 1 << 20);
    for (int i = 0; i < n; i++)
        assert_int_equal(ef_buf_append(&b, "[", 1), 0);
    assert_int_equal(ef_buf_append(&b, inner, strlen(inner)), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(ef_buf_append(&b, "]", 1), 0);
    return ef_buf_steal(&b, NULL);
}

/* json-c's strict mode still accepts these; RFC 8259 does not. */
static void test_lenient_json_refused(void **state)
{
    (void)state;
    char err[128];
    const char *bad[] = {"{'update_id': 1}", "{\"a\": 1.}", "{\"a\": \"raw\ttab\"}",
                         "{\"a\": \"raw\nnewline\"}", "{\"a\": [1.]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_rc(bad[i], strlen(bad[i]), 64, err, sizeof(err)), EF_EPROTO);
    /* Their lookalikes that are valid JSON still parse. */
    const char *good[] = {"{\"a\": \"it's\"}", "{\"a\": 1.5e3}", "{\"a\": \"tab\\t\"}",
                          "{\"a\": \"1. пункт\"}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(parse_rc(good[i], strlen(good[i]), 64, err, sizeof(err)), 0);
}

static void test_valid_object(void **state)
{
    (void)state;
    struct json_object *o = NULL;
    char err[128];
    assert_int_equal(PARSE("{\"text\":\"Привет 👋\",\"id\":5012345678}", 64, &o, err), 0);
    assert_true(json_object_is_type(o, json_type_object));
    const char *s = NULL;
    size_t len = 0;
    assert_int_equal(ef_pj_str(o, "text", true, &s, &len, NULL, NULL), 1);
    assert_int_equal(len, strlen("Привет 👋"));
    assert_memory_equal(s, "Привет 👋", len);
    json_object_put(o);
}

static void test_invalid_utf8_body(void **state)
{
    (void)state;
    char err[128];
    /* a stray continuation byte, an overlong '/', an encoded surrogate */
    assert_int_equal(parse_rc("{\"a\":\"\x80\"}", 8, 64, err, sizeof(err)), EF_EUTF8);
    assert_non_null(strstr(err, "UTF-8"));
    assert_int_equal(parse_rc("{\"a\":\"\xc0\xaf\"}", 9, 64, err, sizeof(err)), EF_EUTF8);
    assert_int_equal(parse_rc("{\"a\":\"\xed\xa0\x80\"}", 10, 64, err, sizeof(err)), EF_EUTF8);
    /* invalid bytes in a key, and outside any string */
    assert_int_equal(parse_rc("{\"\xff\":1}", 7, 64, err, sizeof(err)), EF_EUTF8);
    assert_int_equal(parse_rc("{}\xfe", 3, 64, err, sizeof(err)), EF_EUTF8);
}

static void test_lone_surrogates(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    assert_int_equal(PARSE("\"\\ud800\"", 64, &o, err), EF_EUTF8);
    assert_non_null(strstr(err, "surrogate"));
    assert_null(o);
    assert_int_equal(PARSE("\"\\udc00\"", 64, &o, err), EF_EUTF8);
    assert_int_equal(PARSE("\"\\uD83D x\"", 64, &o, err), EF_EUTF8);
    assert_int_equal(PARSE("\"\\ud800\\u0041\"", 64, &o, err), EF_EUTF8);
    assert_int_equal(PARSE("\"\\ud800\\ud800\"", 64, &o, err), EF_EUTF8);
    assert_int_equal(PARSE("\"\\ude00\\ud83d\"", 64, &o, err), EF_EUTF8);
    assert_int_equal(PARSE("{\"k\\udfff\":1}", 64, &o, err), EF_EUTF8);
    assert_int_equal(PARSE("{\"a\":[\"ok\",{\"b\":\"\\ud83d\"}]}", 64, &o, err), EF_EUTF8);

    /* a proper pair decodes to the 4-byte sequence */
    assert_int_equal(PARSE("\"\\ud83d\\ude00\"", 64, &o, err), 0);
    assert_int_equal(json_object_get_string_len(o), 4);
    assert_memory_equal(json_object_get_string(o), "\xF0\x9F\x98\x80", 4);
    json_object_put(o);

    /* a genuine U+FFFD (what json-c makes of lone surrogates) is fine */
    assert_int_equal(PARSE("[\"\\ufffd\",\"\xEF\xBF\xBD\"]", 64, &o, err), 0);
    assert_memory_equal(json_object_get_string(json_object_array_get_idx(o, 0)), "\xEF\xBF\xBD", 3);
    json_object_put(o);

    /* an escaped backslash followed by "ud800" is plain text */
    assert_int_equal(PARSE("\"\\\\ud800\"", 64, &o, err), 0);
    assert_string_equal(json_object_get_string(o), "\\ud800");
    json_object_put(o);
}

static void test_nul_in_strings(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    assert_int_equal(PARSE("{\"text\":\"a\\u0000b\"}", 64, &o, err), EF_EPROTO);
    assert_non_null(strstr(err, "u0000"));
    assert_null(o);
    assert_int_equal(PARSE("{\"a\\u0000b\":1}", 64, &o, err), EF_EPROTO);
    /* a raw NUL byte ends json-c's input: the rest is trailing data */
    assert_int_equal(parse_rc("{\"a\":\"x\0y\"}", 11, 64, err, sizeof(err)), EF_EPROTO);
}

static void test_depth(void **state)
{
    (void)state;
    char err[128];
    char *b64 = nested(64, "1");
    char *b65 = nested(65, "1");
    char *e64 = nested(64, "");
    char *e65 = nested(65, "");
    char *b200 = nested(200, "1");
    assert_int_equal(parse_rc(b64, strlen(b64), 64, err, sizeof(err)), 0);
    assert_int_equal(parse_rc(e64, strlen(e64), 64, err, sizeof(err)), 0);
    assert_int_equal(parse_rc(b65, strlen(b65), 64, err, sizeof(err)), EF_ELIMIT);
    assert_string_equal(err, "nesting deeper than 64");
    assert_int_equal(parse_rc(e65, strlen(e65), 64, err, sizeof(err)), EF_ELIMIT);
    assert_string_equal(err, "nesting deeper than 64");
    assert_int_equal(parse_rc(b200, strlen(b200), 64, err, sizeof(err)), EF_ELIMIT);
    /* objects count the same way */
    assert_int_equal(parse_rc("{\"a\":{\"b\":1}}", 13, 2, err, sizeof(err)), 0);
    assert_int_equal(parse_rc("{\"a\":{\"b\":{}}}", 14, 2, err, sizeof(err)), EF_ELIMIT);
    assert_int_equal(parse_rc("{\"a\":[1]}", 9, 1, err, sizeof(err)), EF_ELIMIT);
    ef_free(b64);
    ef_free(b65);
    ef_free(e64);
    ef_free(e65);
    ef_free(b200);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    assert_int_equal(PARSE("{\"a\":1} x", 64, &o, err), EF_EPROTO);
    assert_null(o);
    assert_int_equal(PARSE("{\"a\":1}{\"a\":2}", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("[1] [2]", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("12 13", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("{\"a\":1}\0junk", 64, &o, err), EF_EPROTO);
    assert_non_null(strstr(err, "offset 7"));
    /* white space around the value is fine */
    assert_int_equal(PARSE(" \r\n{\"a\":1}\n\t ", 64, &o, err), 0);
    json_object_put(o);
    /* the body need not be NUL-terminated: only len bytes are read */
    const char buf[] = "{\"a\":1}XYZ";
    assert_int_equal(ef_json_parse(buf, 7, 64, &o, err, sizeof(err)), 0);
    json_object_put(o);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    assert_int_equal(PARSE("{\"update_id\":1,\"message\":{\"text\":'x'}}", 64, &o, err), EF_EPROTO);
    assert_non_null(strstr(err, "invalid JSON at offset 33"));
    assert_int_equal(PARSE("{\"a\":1,}", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("[1,2", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("{\"a\"}", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("\"\\x\"", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("007", 64, &o, err), EF_EPROTO);
    /* json-c's strict mode still takes these; we do not */
    assert_int_equal(PARSE("[NaN]", 64, &o, err), EF_EPROTO);
    assert_int_equal(PARSE("{\"x\":-Infinity}", 64, &o, err), EF_EPROTO);
    assert_null(o);
}

static void test_empty_body(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    assert_int_equal(ef_json_parse("", 0, 64, &o, err, sizeof(err)), EF_EPROTO);
    assert_string_equal(err, "empty body");
    assert_int_equal(PARSE(" \n\t ", 64, &o, err), EF_EPROTO);
    assert_string_equal(err, "empty body");
    assert_int_equal(PARSE("null", 64, &o, err), EF_EPROTO);
    assert_null(o);
    assert_int_equal(ef_json_parse(NULL, 0, 64, &o, err, sizeof(err)), EF_EINVAL);
    assert_int_equal(PARSE("{}", 0, &o, err), EF_EINVAL);
}

static void test_top_level_non_object(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    assert_int_equal(PARSE("[1,2,3]", 64, &o, err), 0);
    assert_true(json_object_is_type(o, json_type_array));
    assert_int_equal(json_object_array_length(o), 3);
    json_object_put(o);
    assert_int_equal(PARSE("42", 64, &o, err), 0);
    assert_int_equal(json_object_get_int64(o), 42);
    json_object_put(o);
    assert_int_equal(PARSE("\"ok\"", 64, &o, err), 0);
    assert_string_equal(json_object_get_string(o), "ok");
    json_object_put(o);
    assert_int_equal(PARSE("true", 64, &o, err), 0);
    assert_true(json_object_get_boolean(o));
    json_object_put(o);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    /* json-c would keep the last value silently: refused, the key named */
    assert_int_equal(PARSE("{\"a\":{\"x\":[1,2]},\"a\":\"second\",\"a\":3}", 64, &o, err),
                     EF_EPROTO);
    assert_string_equal(err, "duplicate key \"a\"");
    assert_null(o);
    /* however the key is spelled: an escape decodes to the same key */
    assert_int_equal(PARSE("{\"id\":1,\"\\u0069d\":2}", 64, &o, err), EF_EPROTO);
    assert_string_equal(err, "duplicate key \"id\"");
    /* deep inside, after objects that are fine, inside arrays */
    assert_int_equal(PARSE("{\"update_id\":1,\"message\":{\"chat\":{\"id\":1,\"type\":\"private\"},"
                           "\"entities\":[{\"type\":\"a\"},{\"type\":\"b\",\"offset\":0,"
                           "\"offset\":5}]}}",
                           64, &o, err),
                     EF_EPROTO);
    assert_string_equal(err, "duplicate key \"offset\"");
    /* a duplicate whose first value held objects: the objects after it
     * are still matched up correctly (the first mismatch is the culprit) */
    assert_int_equal(PARSE("[{\"k\":{\"a\":{}},\"k\":{}},{\"z\":1,\"z\":2}]", 64, &o, err),
                     EF_EPROTO);
    assert_string_equal(err, "duplicate key \"k\"");
    assert_int_equal(PARSE("[{\"k\":{\"a\":1,\"b\":2}},{\"z\":1,\"z\":2}]", 64, &o, err),
                     EF_EPROTO);
    assert_string_equal(err, "duplicate key \"z\"");
    /* a value equal to a key, keys in other objects, keys with commas and
     * braces in them: all fine */
    assert_int_equal(
        PARSE("{\"a\":\"a\",\"b\":{\"a\":1,\"b\":[{\"a\":2}]},\"x,}{\":\"y\",\"\":0}", 64, &o, err),
        0);
    assert_int_equal(json_object_object_length(o), 4);
    json_object_put(o);
    assert_int_equal(PARSE("{\"a\\\"\":1,\"a\":2}", 64, &o, err), 0);
    json_object_put(o);
    assert_int_equal(PARSE("[{},{},{\"a\":1},[{}]]", 64, &o, err), 0);
    json_object_put(o);
}

/* open, then n items "<pre><i><post>" joined by commas, then close. */
static char *repeated(const char *open, const char *pre, const char *post, size_t n,
                      const char *close)
{
    ef_buf b;
    ef_buf_init(&b, 1 << 24);
    assert_int_equal(ef_buf_append(&b, open, strlen(open)), 0);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_int_equal(ef_buf_append(&b, ",", 1), 0);
        assert_int_equal(ef_buf_appendf(&b, "%s%zu%s", pre, i, post), 0);
    }
    assert_int_equal(ef_buf_append(&b, close, strlen(close)), 0);
    return ef_buf_steal(&b, NULL);
}

static void test_limits_default(void **state)
{
    (void)state;
    char err[160];
    /* a batch of 10 000 entries passes, one more is refused before json-c
     * builds anything */
    char *ok = repeated("{\"entry\":[", "{\"id\":\"", "\"}", 10000, "]}");
    char *big = repeated("{\"entry\":[", "{\"id\":\"", "\"}", 10001, "]}");
    assert_int_equal(parse_rc(ok, strlen(ok), 64, err, sizeof(err)), 0);
    assert_int_equal(parse_rc(big, strlen(big), 64, err, sizeof(err)), EF_ELIMIT);
    assert_non_null(strstr(err, "more than 10000 entries"));
    ef_free(ok);
    ef_free(big);
    /* objects: 10 000 keys */
    ok = repeated("{", "\"k", "\":1", 10000, "}");
    big = repeated("{", "\"k", "\":1", 10001, "}");
    assert_int_equal(parse_rc(ok, strlen(ok), 64, err, sizeof(err)), 0);
    assert_int_equal(parse_rc(big, strlen(big), 64, err, sizeof(err)), EF_ELIMIT);
    assert_non_null(strstr(err, "more than 10000 keys"));
    ef_free(ok);
    ef_free(big);
    /* strings: 1 MiB once decoded */
    size_t mib = (size_t)1 << 20;
    char *s = ef_malloc(mib + 16);
    memcpy(s, "[\"", 2);
    memset(s + 2, 'x', mib);
    memcpy(s + 2 + mib, "\"]", 3);
    assert_int_equal(parse_rc(s, strlen(s), 64, err, sizeof(err)), 0);
    s[2 + mib] = 'x';
    memcpy(s + 3 + mib, "\"]", 3);
    assert_int_equal(parse_rc(s, strlen(s), 64, err, sizeof(err)), EF_ELIMIT);
    assert_non_null(strstr(err, "longer than 1048576 bytes"));
    ef_free(s);
}

static void test_limits_custom(void **state)
{
    (void)state;
    char err[160];
    struct json_object *o = NULL;
    ef_json_limits lim = {.max_depth = 4, .max_string = 4, .max_array = 3, .max_keys = 2};
#define PARSE_L(lit) ef_json_parse_limits((lit), sizeof(lit) - 1, &lim, &o, err, sizeof(err))
    assert_int_equal(PARSE_L("[1,2,3]"), 0);
    json_object_put(o);
    assert_int_equal(PARSE_L("[1,2,3,4]"), EF_ELIMIT);
    assert_int_equal(PARSE_L("[[],[],[[1,2,3]]]"), 0);
    json_object_put(o);
    assert_int_equal(PARSE_L("[[],[],[[1,2,3,4]]]"), EF_ELIMIT);
    assert_int_equal(PARSE_L("{\"a\":1,\"b\":2}"), 0);
    json_object_put(o);
    assert_int_equal(PARSE_L("{\"a\":1,\"b\":2,\"c\":3}"), EF_ELIMIT);
    assert_non_null(strstr(err, "more than 2 keys"));
    /* strings and keys count decoded bytes: "\u00e9" is 2, a pair is 4 */
    assert_int_equal(PARSE_L("[\"abcd\",\"\\u00e9\\u00e9\",\"\\ud83d\\ude00\"]"), 0);
    json_object_put(o);
    assert_int_equal(PARSE_L("[\"abcde\"]"), EF_ELIMIT);
    assert_int_equal(PARSE_L("[\"\\u00e9\\u00e9x\"]"), EF_ELIMIT);
    assert_int_equal(PARSE_L("{\"abcde\":1}"), EF_ELIMIT);
    assert_int_equal(PARSE_L("[\"\\\"\\\\\\n\\t\"]"), 0);
    json_object_put(o);
    /* depth as ef_json_parse counts it */
    assert_int_equal(PARSE_L("[[[[1]]]]"), 0);
    json_object_put(o);
    assert_int_equal(PARSE_L("[[[[[1]]]]]"), EF_ELIMIT);
    assert_string_equal(err, "nesting deeper than 4");
    /* zero fields take the defaults; NULL limits are all defaults */
    ef_json_limits zero = {0};
    assert_int_equal(ef_json_parse_limits("[1]", 3, &zero, &o, err, sizeof(err)), 0);
    json_object_put(o);
    assert_int_equal(ef_json_parse_limits("[1]", 3, NULL, &o, err, sizeof(err)), 0);
    json_object_put(o);
    ef_json_limits neg = {.max_depth = -1};
    assert_int_equal(ef_json_parse_limits("[1]", 3, &neg, &o, err, sizeof(err)), EF_EINVAL);
    /* garbage over a limit is still refused (as over the limit) */
    assert_int_equal(PARSE_L("[,,,,,,]"), EF_ELIMIT);
    assert_int_equal(PARSE_L("]]]]"), EF_EPROTO);
#undef PARSE_L
}

static void test_pj_int64_range(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    ef_parse_info info;
    int64_t v = 7;
    assert_int_equal(PARSE("{\"max\":9223372036854775807,\"min1\":-9223372036854775807,"
                           "\"big\":9223372036854775808,\"huge\":99999999999999999999,"
                           "\"neg\":-9223372036854775809,\"exp\":1e30,\"dbl\":5.0,"
                           "\"str\":\"123\",\"sg\":-1001234567890,\"nul\":null}",
                           64, &o, err),
                     0);
    assert_int_equal(ef_pj_int64(o, "max", true, &v, &info, "x"), 1);
    assert_true(v == INT64_MAX);
    assert_int_equal(ef_pj_int64(o, "min1", true, &v, &info, "x"), 1);
    assert_true(v == -INT64_MAX);
    assert_int_equal(ef_pj_int64(o, "sg", true, &v, &info, "x"), 1);
    assert_true(v == -1001234567890LL);

    v = 7;
    assert_int_equal(ef_pj_int64(o, "big", true, &v, &info, "message.chat"), EF_EPROTO);
    assert_string_equal(info.note, "message.chat.big: integer out of int64 range");
    assert_int_equal(v, 7);
    assert_int_equal(ef_pj_int64(o, "huge", false, &v, &info, "x"), EF_EPROTO);
    assert_int_equal(ef_pj_int64(o, "neg", false, &v, &info, "x"), EF_EPROTO);
    assert_int_equal(ef_pj_int64(o, "exp", false, &v, &info, "message.chat"), EF_EPROTO);
    assert_string_equal(info.note, "message.chat.exp: expected integer");
    assert_int_equal(ef_pj_int64(o, "dbl", false, &v, &info, "x"), EF_EPROTO);
    assert_int_equal(ef_pj_int64(o, "str", false, &v, &info, "x"), EF_EPROTO);
    assert_int_equal(v, 7);

    /* absent: 0 when optional (untouched), EF_EPROTO when required; null = absent */
    assert_int_equal(ef_pj_int64(o, "nope", false, &v, &info, "x"), 0);
    assert_int_equal(v, 7);
    assert_int_equal(ef_pj_int64(o, "nul", false, &v, &info, "x"), 0);
    assert_int_equal(ef_pj_int64(o, "nope", true, &v, &info, "message"), EF_EPROTO);
    assert_string_equal(info.note, "message.nope: missing");
    assert_int_equal(ef_pj_int64(o, "nope", true, &v, &info, NULL), EF_EPROTO);
    assert_string_equal(info.note, "nope: missing");
    json_object_put(o);
}

static void test_pj_getters(void **state)
{
    (void)state;
    char err[128];
    struct json_object *o = NULL;
    struct json_object *sub = NULL;
    ef_parse_info info;
    assert_int_equal(
        PARSE("{\"s\":\"Привет\",\"b\":true,\"o\":{\"k\":1},\"a\":[1],\"n\":5}", 64, &o, err), 0);
    const char *s = NULL;
    size_t len = 0;
    bool b = false;
    assert_int_equal(ef_pj_str(o, "s", true, &s, &len, &info, "m"), 1);
    assert_int_equal(len, 12);
    assert_string_equal(s, "Привет");
    assert_int_equal(ef_pj_str(o, "n", true, &s, NULL, &info, "m"), EF_EPROTO);
    assert_string_equal(info.note, "m.n: expected string");
    assert_int_equal(ef_pj_bool(o, "b", true, &b, &info, "m"), 1);
    assert_true(b);
    assert_int_equal(ef_pj_obj(o, "o", true, &sub, &info, "m"), 1);
    assert_true(json_object_is_type(sub, json_type_object));
    assert_int_equal(ef_pj_obj(o, "a", true, &sub, &info, "m"), EF_EPROTO);
    assert_string_equal(info.note, "m.a: expected object");
    assert_int_equal(ef_pj_arr(o, "a", true, &sub, &info, "m"), 1);
    assert_int_equal(json_object_array_length(sub), 1);
    assert_int_equal(ef_pj_arr(o, "o", false, &sub, &info, "m"), EF_EPROTO);
    assert_string_equal(info.note, "m.o: expected array");
    /* obj itself must be an object */
    assert_int_equal(ef_pj_str(sub, "x", false, &s, NULL, &info, "m.a"), EF_EPROTO);
    assert_string_equal(info.note, "m.a: expected object");
    json_object_put(o);
}

static void test_pj_check_table(void **state)
{
    (void)state;
    static const ef_pj_field fields[] = {
        {"id", EF_PJ_INT64, true},
        {"type", EF_PJ_STRING, true},
        {"title", EF_PJ_STRING, false},
        {"lat", EF_PJ_NUMBER, false},
    };
    char err[128];
    struct json_object *o = NULL;
    ef_parse_info info;
    assert_int_equal(PARSE("{\"id\":-1001234567890,\"type\":\"supergroup\",\"lat\":55.75,\"x\":[]}",
                           64, &o, err),
                     0);
    assert_int_equal(ef_pj_check(o, fields, 4, &info, "message.chat"), 0);
    json_object_put(o);

    assert_int_equal(PARSE("{\"id\":1,\"type\":\"private\",\"title\":7}", 64, &o, err), 0);
    assert_int_equal(ef_pj_check(o, fields, 4, &info, "message.chat"), EF_EPROTO);
    assert_string_equal(info.note, "message.chat.title: expected string");
    json_object_put(o);

    assert_int_equal(PARSE("{\"id\":\"1\",\"type\":\"private\"}", 64, &o, err), 0);
    assert_int_equal(ef_pj_check(o, fields, 4, &info, "message.chat"), EF_EPROTO);
    assert_string_equal(info.note, "message.chat.id: expected integer");
    json_object_put(o);

    assert_int_equal(PARSE("{\"id\":1}", 64, &o, err), 0);
    assert_int_equal(ef_pj_check(o, fields, 4, &info, "message.chat"), EF_EPROTO);
    assert_string_equal(info.note, "message.chat.type: missing");
    json_object_put(o);

    assert_int_equal(PARSE("[1]", 64, &o, err), 0);
    assert_int_equal(ef_pj_check(o, fields, 4, &info, "message.chat"), EF_EPROTO);
    assert_string_equal(info.note, "message.chat: expected object");
    json_object_put(o);
}

static void test_msg_list(void **state)
{
    (void)state;
    ef_msg_list l;
    ef_msg_list_init(&l);
    assert_int_equal(l.n, 0);
    for (int i = 0; i < 37; i++) {
        ef_msg *m = ef_msg_new(EF_MSG_NEW, "telegram");
        m->chat_id = ef_asprintf("%d", i);
        ef_msg_list_push(&l, m);
    }
    assert_int_equal(l.n, 37);
    assert_string_equal(l.items[0]->chat_id, "0");
    assert_string_equal(l.items[36]->chat_id, "36");
    ef_msg_list_cleanup(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.items);
    /* reusable after cleanup; cleanup of an empty list is fine */
    ef_msg_list_push(&l, ef_msg_new(EF_MSG_EDIT, "telegram"));
    assert_int_equal(l.n, 1);
    ef_msg_list_cleanup(&l);
    ef_msg_list_cleanup(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_object),      cmocka_unit_test(test_lenient_json_refused),
        cmocka_unit_test(test_invalid_utf8_body), cmocka_unit_test(test_lone_surrogates),
        cmocka_unit_test(test_nul_in_strings),    cmocka_unit_test(test_depth),
        cmocka_unit_test(test_trailing_garbage),  cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_empty_body),        cmocka_unit_test(test_top_level_non_object),
        cmocka_unit_test(test_duplicate_keys),    cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_limits_custom),     cmocka_unit_test(test_pj_int64_range),
        cmocka_unit_test(test_pj_getters),        cmocka_unit_test(test_pj_check_table),
        cmocka_unit_test(test_msg_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
