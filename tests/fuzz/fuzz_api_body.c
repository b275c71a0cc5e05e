/*
 * fuzz_api_body.c -- libFuzzer target: the JSON bodies of /api/v1 ->
 * ef_api__parse_body (the API's limits) -> each route's body reader
 * (api_int.h "request bodies"): login, refresh, an operator's reply, a
 * note, a quick reply (create and update), an operator account, an
 * integration. No HTTP, no database: the readers decide before either.
 *
 * Input: an optional first line naming one reader (login, refresh, reply,
 * note, quick, quick_update, operator, integration), then the body; without
 * it (or with another word) every reader reads the body.
 *
 * Checked on every input: a reader accepts (0, no answer) or answers
 * exactly once with 400, 413 or 422 and a body that is strict JSON
 * {"error": "<text>"}; what it accepts holds its route's limits: e-mail
 * 1..255 bytes and password <= 1024 (login), a token of 1..256 bytes, a
 * reply of valid UTF-8 that is not blank (or a template), note and quick
 * reply texts of valid UTF-8 within their lengths, a lang of letters and
 * '-' (<= 10), an operator of role operator|admin with a name of 1..255
 * valid UTF-8 bytes and a password of 8..1024, an integration of a
 * compiled-in platform with credentials and settings that are strict JSON
 * objects (settings: strings only).
 */
#include "fuzz_common.h"

#include "gateway/api_int.h"
#include "gateway/cli_operator.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ef_api *api;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ef_log_set_level(EF_LOG_ERROR); /* every refusal logs one INFO line */
    ef_api_opts opts;
    memset(&opts, 0, sizeof(opts));
    api = ef_api_new(&opts);
    return 0;
}

/* Characters of s when it is valid UTF-8, else -1. */
static long chars(const char *s)
{
    size_t n = strlen(s);
    if (!ef_utf8_valid(s, n))
        return -1;
    long k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

static void text_within(const char *s, long max, bool required)
{
    if (!s) {
        if (required)
            abort();
        return;
    }
    long n = chars(s);
    if (n < 1 || n > max || blank(s))
        abort();
}

/* The answer of a reader: accepted, or one refusal as strict JSON. */
static bool answered(const ef_api_call *c, int rc)
{
    if (rc == 0) {
        if (c->out)
            abort();
        return false;
    }
    if (rc != c->status || (rc != 400 && rc != 413 && rc != 422) || !c->out ||
        c->out_len != strlen(c->out))
        abort();
    struct json_object *o = NULL, *e;
    char err[80];
    if (ef_json_parse(c->out, c->out_len, 4, &o, err, sizeof(err)) != 0 ||
        !json_object_object_get_ex(o, "error", &e) || !json_object_is_type(e, json_type_string))
        abort();
    json_object_put(o);
    return true;
}

static void one(int which, const char *body, size_t len)
{
    static const ef_api_in in = {.method = "POST", .path = "/api/v1/fuzz", .ip = "127.0.0.1"};
    ef_api_call *c = ef_api_call_new(api, &in);
    snprintf(c->id, sizeof(c->id), "%s", "0f8fad5b-d9cb-469f-a165-70867728950e");
    if (answered(c, ef_api__parse_body(c, body, len))) {
        ef_api_call_free(c);
        return;
    }
    if (!json_object_is_type(c->json, json_type_object))
        abort();
    const char *a = NULL, *b = NULL;
    api_quick_in q;
    api_operator_in op;
    api_integration_in n;
    switch (which) {
    case 0:
        if (!answered(c, ef_api__login_body(c, &a, &b)) &&
            (!*a || strlen(a) > 255 || strlen(b) > 1024))
            abort();
        break;
    case 1:
        if (!answered(c, ef_api__refresh_body(c, &a)) && (!*a || strlen(a) > 256))
            abort();
        break;
    case 2:
        if (!answered(c, ef_api__reply_body(c, &a, &b)) && !b)
            text_within(a, 4096, true);
        break;
    case 3:
        if (!answered(c, ef_api__note_body(c, &a)))
            text_within(a, 4096, true);
        break;
    case 4:
    case 5:
        if (!answered(c, ef_api__quick_body(c, which == 4, &q))) {
            text_within(q.title, 100, which == 4);
            text_within(q.body, 4096, which == 4);
            if (q.lang && (strlen(q.lang) > 10 ||
                           strspn(q.lang, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ-") != strlen(q.lang)))
                abort();
            fz_check_cstr(q.pos, sizeof(q.pos));
        }
        break;
    case 6:
        if (!answered(c, ef_api__operator_body(c, &op))) {
            if (!ef_operator_email_ok(op.email) ||
                (strcmp(op.role, "operator") != 0 && strcmp(op.role, "admin") != 0) ||
                strlen(op.name) > 255 || chars(op.name) < 1 || strlen(op.password) < 8 ||
                strlen(op.password) > 1024 || chars(op.password) < 0)
                abort();
        }
        break;
    default:
        if (!answered(c, ef_api__integration_body(c, &n))) {
            if (!n.ops || ef_platform_find(n.ops->name) != n.ops || !n.name || chars(n.name) < 1 ||
                strlen(n.name) > 255)
                abort();
            fz_check_json(n.creds);
            fz_check_json(n.settings);
        }
        ef_api__integration_in_cleanup(&n);
        break;
    }
    ef_api_call_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"login", "refresh",      "reply",    "note",
                                        "quick", "quick_update", "operator", "integration"};
    fz_input in;
    fz_split(data, size, &in);
    int which = -1;
    for (int i = 0; i < 8; i++)
        if (strcmp(in.word, names[i]) == 0)
            which = i;
    for (int i = 0; i < 8; i++)
        if (which < 0 || which == i)
            one(i, in.body, in.len);
    fz_free(&in);
    return 0;
}
