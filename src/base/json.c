/*
 * json.c -- JSON helpers: a strict parser for webhook bodies, and typed field
 * access that names the bad field.
 *
 * json-c facts this file relies on (json-c 0.16, checked by test_pjson.c):
 *  - a lone UTF-16 surrogate escape ("\ud800") is decoded to U+FFFD, so the
 *    parsed tree cannot tell it apart from a genuine U+FFFD: the raw body is
 *    scanned for escapes instead;
 *  - "\u0000" is decoded to a NUL byte inside the string (and would silently
 *    cut an object key short): refused;
 *  - JSON_TOKENER_STRICT still accepts NaN and Infinity: non-finite numbers
 *    are refused by the tree walk;
 *  - integer literals beyond int64 are saturated, not refused: see
 *    ef_pj_int64().
 */
#include "base/json.h"

#include "base/ef.h"

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- strict parsing ---------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at s[0..3] (n bytes available). */
static bool hex4(const char *s, size_t n, unsigned *out)
{
    if (n < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return false;
        v = (v << 4) | (unsigned)h;
    }
    *out = v;
    return true;
}

/*
 * Scans the \u escapes of an already successfully parsed JSON text: refuses
 * \u0000 and any surrogate escape that is not a high surrogate immediately
 * followed by a low one. Because the text parsed, every '"' outside a string
 * opens one and every '\\' inside a string starts an escape.
 */
static int scan_escapes(const char *s, size_t n, char *err, size_t errlen)
{
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!in_str) {
            if (c == '"') {
                in_str = true;
            } else if (c == '\'') {
                /* json-c's strict mode still takes 'single-quoted' strings. */
                ef_errf(err, errlen, "single-quoted string at offset %zu", i);
                return EF_EPROTO;
            } else if (c == '.' && (i + 1 >= n || s[i + 1] < '0' || s[i + 1] > '9')) {
                /* ...and numbers like "1." */
                ef_errf(err, errlen, "number without digits after the point at offset %zu", i);
                return EF_EPROTO;
            }
            continue;
        }
        if (c == '"') {
            in_str = false;
            continue;
        }
        if ((unsigned char)c < 0x20) {
            /* ...and raw control characters inside strings. */
            ef_errf(err, errlen, "unescaped control character 0x%02x in a string at offset %zu",
                    (unsigned)(unsigned char)c, i);
            return EF_EPROTO;
        }
        if (c != '\\')
            continue;
        size_t at = i;
        i++;
        if (i >= n || s[i] != 'u')
            continue;
        unsigned u;
        if (!hex4(s + i + 1, n - i - 1, &u)) {
            ef_errf(err, errlen, "bad \\u escape at offset %zu", at);
            return EF_EPROTO;
        }
        i += 4;
        if (u == 0) {
            ef_errf(err, errlen, "\\u0000 in string at offset %zu", at);
            return EF_EPROTO;
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
            ef_errf(err, errlen, "lone low surrogate \\u%04x at offset %zu", u, at);
            return EF_EUTF8;
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u' &&
                hex4(s + i + 3, n - i - 3, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                i += 6;
                continue;
            }
            ef_errf(err, errlen, "lone high surrogate \\u%04x at offset %zu", u, at);
            return EF_EUTF8;
        }
    }
    return 0;
}

/* Checks every key and string of the tree and the container depth (a
 * top-level object or array is depth 1). */
static int walk(struct json_object *o, int depth, int max_depth, char *err, size_t errlen)
{
    switch (json_object_get_type(o)) {
    case json_type_object: {
        if (depth + 1 > max_depth) {
            ef_errf(err, errlen, "nesting deeper than %d", max_depth);
            return EF_ELIMIT;
        }
        json_object_object_foreach(o, key, val)
        {
            if (!ef_utf8_valid(key, strlen(key))) {
                ef_errf(err, errlen, "object key is not valid UTF-8");
                return EF_EUTF8;
            }
            int rc = walk(val, depth + 1, max_depth, err, errlen);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case json_type_array: {
        if (depth + 1 > max_depth) {
            ef_errf(err, errlen, "nesting deeper than %d", max_depth);
            return EF_ELIMIT;
        }
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++) {
            int rc = walk(json_object_array_get_idx(o, i), depth + 1, max_depth, err, errlen);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case json_type_string: {
        const char *s = json_object_get_string(o);
        size_t len = (size_t)json_object_get_string_len(o);
        if (strlen(s) != len) {
            ef_errf(err, errlen, "NUL character inside a string");
            return EF_EPROTO;
        }
        if (!ef_utf8_valid(s, len)) {
            ef_errf(err, errlen, "string is not valid UTF-8");
            return EF_EUTF8;
        }
        return 0;
    }
    case json_type_double:
        if (!isfinite(json_object_get_double(o))) {
            ef_errf(err, errlen, "number is not finite");
            return EF_EPROTO;
        }
        return 0;
    default:
        return 0;
    }
}

int ef_json_parse(const char *body, size_t len, int max_depth, struct json_object **out, char *err,
                  size_t errlen)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    int rc;

    ef_errf(err, errlen, "ok");
    if (!body || max_depth < 1 || max_depth >= INT_MAX) {
        ef_errf(err, errlen, "invalid arguments");
        return EF_EINVAL;
    }
    if (len > INT_MAX) {
        ef_errf(err, errlen, "body larger than %d bytes", INT_MAX);
        return EF_ELIMIT;
    }
    if (!ef_utf8_valid(body, len)) {
        ef_errf(err, errlen, "body is not valid UTF-8");
        return EF_EUTF8;
    }
    size_t lead = 0;
    while (lead < len && is_ws(body[lead]))
        lead++;
    if (lead == len) {
        ef_errf(err, errlen, "empty body");
        return EF_EPROTO;
    }

    /* json-c's depth counts every value on its stack, the innermost scalar
     * included; one extra slot lets max_depth containers hold a scalar. The
     * walk below enforces the exact container bound. */
    tok = json_tokener_new_ex(max_depth + 1);
    if (!tok)
        EF_PANIC("json_tokener_new_ex failed");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

    root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (!root && jerr == json_tokener_continue) {
        /* A top-level number (or truncated input) needs an end marker. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (jerr == json_tokener_error_depth) {
        ef_errf(err, errlen, "nesting deeper than %d", max_depth);
        rc = EF_ELIMIT;
        goto fail;
    }
    if (jerr != json_tokener_success) {
        ef_errf(err, errlen, "invalid JSON at offset %zu (%s)", end, json_tokener_error_desc(jerr));
        rc = EF_EPROTO;
        goto fail;
    }
    if (!root) {
        /* json-c represents a literal null as NULL: no value to hand out. */
        ef_errf(err, errlen, "body is JSON null");
        rc = EF_EPROTO;
        goto fail;
    }
    for (size_t i = end; i < len; i++) {
        if (!is_ws(body[i])) {
            ef_errf(err, errlen, "trailing data after the JSON value at offset %zu", i);
            rc = EF_EPROTO;
            goto fail;
        }
    }
    rc = scan_escapes(body, end, err, errlen);
    if (rc < 0)
        goto fail;
    rc = walk(root, 0, max_depth, err, errlen);
    if (rc < 0)
        goto fail;

    json_tokener_free(tok);
    *out = root;
    return 0;

fail:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

/* ---- typed field access ------------------------------------------------ */

static const char *const type_names[] = {
    [EF_PJ_INT64] = "integer", [EF_PJ_NUMBER] = "number", [EF_PJ_STRING] = "string",
    [EF_PJ_BOOL] = "boolean",  [EF_PJ_OBJECT] = "object", [EF_PJ_ARRAY] = "array",
};

static int bad(ef_parse_info *info, const char *path, const char *key, const char *what)
{
    if (info) {
        if (path && *path)
            snprintf(info->note, sizeof(info->note), "%s.%s: %s", path, key, what);
        else
            snprintf(info->note, sizeof(info->note), "%s: %s", key, what);
    }
    return EF_EPROTO;
}

/* Whether an integer-typed json-c value holds an exact int64 (see header). */
static bool fits_int64(struct json_object *v)
{
    int64_t i = json_object_get_int64(v);
    if (i == INT64_MIN)
        return false;
    if (i >= 0 && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
        return false;
    return true;
}

static bool has_type(struct json_object *v, ef_pj_type type)
{
    switch (type) {
    case EF_PJ_INT64:
        return json_object_is_type(v, json_type_int);
    case EF_PJ_NUMBER:
        return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
    case EF_PJ_STRING:
        return json_object_is_type(v, json_type_string);
    case EF_PJ_BOOL:
        return json_object_is_type(v, json_type_boolean);
    case EF_PJ_OBJECT:
        return json_object_is_type(v, json_type_object);
    case EF_PJ_ARRAY:
        return json_object_is_type(v, json_type_array);
    }
    return false;
}

/* The one lookup behind every getter and the table validator. */
static int get_typed(struct json_object *obj, const char *key, ef_pj_type type, bool required,
                     struct json_object **val, ef_parse_info *info, const char *path)
{
    struct json_object *v = NULL;
    if (!json_object_is_type(obj, json_type_object)) {
        if (info)
            snprintf(info->note, sizeof(info->note), "%s: expected object",
                     path && *path ? path : "(root)");
        return EF_EPROTO;
    }
    if (!json_object_object_get_ex(obj, key, &v) || !v) {
        if (required)
            return bad(info, path, key, "missing");
        return 0;
    }
    if (!has_type(v, type)) {
        char what[32];
        snprintf(what, sizeof(what), "expected %s", type_names[type]);
        return bad(info, path, key, what);
    }
    if (type == EF_PJ_INT64 && !fits_int64(v))
        return bad(info, path, key, "integer out of int64 range");
    if (type == EF_PJ_NUMBER && !isfinite(json_object_get_double(v)))
        return bad(info, path, key, "number is not finite");
    *val = v;
    return 1;
}

int ef_pj_check(struct json_object *obj, const ef_pj_field *fields, size_t n, ef_parse_info *info,
                const char *path)
{
    if (!json_object_is_type(obj, json_type_object)) {
        if (info)
            snprintf(info->note, sizeof(info->note), "%s: expected object",
                     path && *path ? path : "(root)");
        return EF_EPROTO;
    }
    for (size_t i = 0; i < n; i++) {
        struct json_object *v;
        int rc = get_typed(obj, fields[i].key, fields[i].type, fields[i].required, &v, info, path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ef_pj_int64(struct json_object *obj, const char *key, bool required, int64_t *out,
                ef_parse_info *info, const char *path)
{
    struct json_object *v;
    int rc = get_typed(obj, key, EF_PJ_INT64, required, &v, info, path);
    if (rc > 0)
        *out = json_object_get_int64(v);
    return rc;
}

int ef_pj_str(struct json_object *obj, const char *key, bool required, const char **out,
              size_t *len, ef_parse_info *info, const char *path)
{
    struct json_object *v;
    int rc = get_typed(obj, key, EF_PJ_STRING, required, &v, info, path);
    if (rc > 0) {
        *out = json_object_get_string(v);
        if (len)
            *len = (size_t)json_object_get_string_len(v);
    }
    return rc;
}

int ef_pj_bool(struct json_object *obj, const char *key, bool required, bool *out,
               ef_parse_info *info, const char *path)
{
    struct json_object *v;
    int rc = get_typed(obj, key, EF_PJ_BOOL, required, &v, info, path);
    if (rc > 0)
        *out = json_object_get_boolean(v);
    return rc;
}

int ef_pj_obj(struct json_object *obj, const char *key, bool required, struct json_object **out,
              ef_parse_info *info, const char *path)
{
    struct json_object *v;
    int rc = get_typed(obj, key, EF_PJ_OBJECT, required, &v, info, path);
    if (rc > 0)
        *out = v;
    return rc;
}

int ef_pj_arr(struct json_object *obj, const char *key, bool required, struct json_object **out,
              ef_parse_info *info, const char *path)
{
    struct json_object *v;
    int rc = get_typed(obj, key, EF_PJ_ARRAY, required, &v, info, path);
    if (rc > 0)
        *out = v;
    return rc;
}
