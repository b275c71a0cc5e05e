/*
 * send_fixture.h -- the fixture the outbound adapter tests share: build a
 * request from a queued row through an adapter's build_send and parse the
 * body back strictly; feed an answer to parse_send from an exact-size heap
 * copy (no NUL after it, so a read past len shows up under ASan).
 *
 * Include after defining SEND_OPS (the adapter's ops struct, e.g.
 * ef_platform_telegram) and SEND_CHANNEL (the row's channel_id, or NULL).
 * Meta and answer bodies are written with single quotes for readability and
 * turned into double quotes here (none contains an apostrophe).
 */
#ifndef EF_TEST_SEND_FIXTURE_H
#define EF_TEST_SEND_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/platform.h"

#define FX_UNUSED __attribute__((unused))

typedef struct fx {
    ef_out_req req;
    ef_send_result res;
    struct json_object *body; /* parsed req.body of the last build() */
    char err[256];
} fx;

FX_UNUSED static void reset(fx *f)
{
    ef_out_req_cleanup(&f->req);
    ef_send_result_cleanup(&f->res);
    json_object_put(f->body);
    f->body = NULL;
    memset(f->err, 0, sizeof(f->err));
}

FX_UNUSED static int setup(void **state)
{
    fx *f = ef_calloc(1, sizeof(*f));
    *state = f;
    return 0;
}

FX_UNUSED static int teardown(void **state)
{
    fx *f = *state;
    reset(f);
    ef_free(f);
    return 0;
}

/* A heap copy of s with every ' turned into ". */
FX_UNUSED static char *Q(const char *s)
{
    char *d = ef_strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

FX_UNUSED static ef_out_msg row(const char *chat_id, const char *text, const char *meta_json)
{
    return (ef_out_msg){.row_id = "42",
                        .chat_id = chat_id,
                        .chat_type = "private",
                        .channel_id = SEND_CHANNEL,
                        .text = text,
                        .meta_json = meta_json};
}

/* The channel the requests are built for: SEND_CREDS and SEND_SETTINGS
 * opened once by the adapter (reachable from a static: not a leak). */
FX_UNUSED static void *fx_cfg(void)
{
    static void *cfg;
    if (!cfg) {
        ef_platform_policy pol;
        char err[300];
        if (SEND_OPS.open(SEND_CREDS, SEND_SETTINGS, &cfg, &pol, err, sizeof(err)) != 0)
            fail_msg("the test channel does not open: %s", err);
    }
    return cfg;
}

/* Runs build_send on m (meta given with single quotes); on success parses
 * the body strictly (valid UTF-8 everywhere, one JSON object). */
FX_UNUSED static int build(fx *f, ef_out_msg m)
{
    reset(f);
    char *meta = m.meta_json ? Q(m.meta_json) : NULL;
    m.meta_json = meta;
    int rc = SEND_OPS.build_send(fx_cfg(), &m, &f->req, f->err, sizeof(f->err));
    ef_free(meta);
    if (rc != 0)
        return rc;
    assert_non_null(f->req.path);
    assert_non_null(f->req.body);
    char err[128];
    int prc = ef_json_parse(f->req.body, strlen(f->req.body), 64, &f->body, err, sizeof(err));
    if (prc != 0)
        fail_msg("request body is not valid JSON (%s): %s", err, f->req.body);
    assert_true(json_object_is_type(f->body, json_type_object));
    return 0;
}

/* build() that must succeed. */
FX_UNUSED static void built(fx *f, ef_out_msg m)
{
    int rc = build(f, m);
    if (rc != 0)
        fail_msg("build_send failed: %s (%s)", ef_errname(rc), f->err);
}

/* build() that must be refused with EF_EINVAL, a reason containing `why`,
 * and no request written. */
FX_UNUSED static void refused(fx *f, ef_out_msg m, const char *why)
{
    int rc = build(f, m);
    if (rc != EF_EINVAL)
        fail_msg("expected EF_EINVAL, got %s (body %s)", ef_errname(rc),
                 f->req.body ? f->req.body : "-");
    assert_null(f->req.path);
    assert_null(f->req.body);
    if (strstr(f->err, why) == NULL)
        fail_msg("reason \"%s\" does not contain \"%s\"", f->err, why);
}

/* Body lookup by "a.b[2].c"; NULL when absent. */
FX_UNUSED static struct json_object *jget(struct json_object *root, const char *path)
{
    struct json_object *o = root;
    const char *p = path;
    while (o && *p) {
        if (*p == '[') {
            char *end = NULL;
            size_t idx = (size_t)strtoul(p + 1, &end, 10);
            assert_true(*end == ']');
            p = end + 1;
            if (!json_object_is_type(o, json_type_array) || idx >= json_object_array_length(o))
                return NULL;
            o = json_object_array_get_idx(o, idx);
        } else {
            char part[64];
            size_t n = strcspn(p, ".[");
            assert_true(n < sizeof(part));
            memcpy(part, p, n);
            part[n] = '\0';
            p += n;
            struct json_object *v = NULL;
            if (!json_object_is_type(o, json_type_object) ||
                !json_object_object_get_ex(o, part, &v))
                return NULL;
            o = v;
        }
        if (*p == '.')
            p++;
    }
    return o;
}

FX_UNUSED static const char *bstr(fx *f, const char *path)
{
    struct json_object *v = jget(f->body, path);
    if (!json_object_is_type(v, json_type_string))
        fail_msg("body %s is not a string in %s", path, f->req.body);
    return json_object_get_string(v);
}

FX_UNUSED static int64_t bint(fx *f, const char *path)
{
    struct json_object *v = jget(f->body, path);
    if (!json_object_is_type(v, json_type_int))
        fail_msg("body %s is not an integer in %s", path, f->req.body);
    return json_object_get_int64(v);
}

FX_UNUSED static size_t blen(fx *f, const char *path)
{
    struct json_object *v = jget(f->body, path);
    if (!json_object_is_type(v, json_type_array))
        fail_msg("body %s is not an array in %s", path, f->req.body);
    return json_object_array_length(v);
}

FX_UNUSED static bool bhas(fx *f, const char *path)
{
    return jget(f->body, path) != NULL;
}

/* Runs parse_send on an exact-size heap copy of the answer (no NUL after
 * it, so a read past len shows up under ASan). */
FX_UNUSED static ef_send_result *answer(fx *f, const char *chat_id, long status, const char *body)
{
    reset(f);
    ef_out_msg m = row(chat_id, "Привет", NULL);
    char *q = body ? Q(body) : NULL;
    size_t len = q ? strlen(q) : 0;
    char *copy = len ? ef_malloc(len) : NULL;
    if (len)
        memcpy(copy, q, len);
    ef_free(q);
    memset(&f->res, 0x5a, sizeof(f->res)); /* parse_send must write every field */
    SEND_OPS.parse_send(fx_cfg(), &m, status, copy, len, &f->res);
    ef_free(copy);
    assert_non_null(memchr(f->res.reason, '\0', sizeof(f->res.reason)));
    return &f->res;
}

#endif /* EF_TEST_SEND_FIXTURE_H */
