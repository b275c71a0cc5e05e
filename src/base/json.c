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
#include "base/hex.h"

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

/* Reads 4 hex digits at s[0..3] (n bytes available). */
static bool hex4(const char *s, size_t n, unsigned *out)
{
    if (n < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = ef_hexval(s[i]);
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

/* ---- size bounds and key counts: one raw pass before json-c ----------- */

/* One open container of the raw scan. */
typedef struct frame {
    bool obj;
    bool any;      /* holds at least one entry */
    size_t commas; /* entry separators seen at this level */
    size_t slot;   /* objects: index into shape.keys */
} frame;

/* What the raw scan learned: the member count of every object, in the
 * order of their opening braces (which is json-c's pre-order), and where
 * each one starts. Counts are raw: two members named alike count twice. */
typedef struct shape {
    size_t *keys;
    size_t *starts;
    size_t n, cap;
    frame *stack;
    size_t depth, stack_cap;
} shape;

static void shape_cleanup(shape *sh)
{
    ef_free(sh->keys);
    ef_free(sh->starts);
    ef_free(sh->stack);
}

/* Bytes a \u escape decodes to, as json-c decodes it. s points after the
 * "\u" (n bytes available); *skip gets the bytes the escape uses there: 4,
 * or 10 for a surrogate pair, or 0 for a bad escape (json-c refuses those;
 * it counts 0 bytes). */
static size_t u_escape_len(const char *s, size_t n, size_t *skip)
{
    unsigned u, lo;
    *skip = 0;
    if (!hex4(s, n, &u))
        return 0;
    *skip = 4;
    if (u < 0x80)
        return 1;
    if (u < 0x800)
        return 2;
    if (u >= 0xD800 && u <= 0xDBFF && n >= 10 && s[4] == '\\' && s[5] == 'u' &&
        hex4(s + 6, n - 6, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
        *skip = 10;
        return 4;
    }
    return 3; /* the BMP, or U+FFFD for a lone surrogate */
}

/* Skips the string whose opening quote is at s[i]; returns the index of its
 * closing quote (n when unterminated) and bounds its decoded length. */
static int scan_string(const char *s, size_t n, size_t i, size_t max, size_t *end, char *err,
                       size_t errlen)
{
    size_t at = i, dlen = 0;
    for (i++; i < n && s[i] != '"'; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
            if (s[i] == 'u') {
                size_t skip;
                dlen += u_escape_len(s + i + 1, n - i - 1, &skip);
                i += skip;
            } else {
                dlen++;
            }
        } else {
            dlen++;
        }
        if (dlen > max) {
            ef_errf(err, errlen, "string at offset %zu longer than %zu bytes", at, max);
            return EF_ELIMIT;
        }
    }
    *end = i < n ? i : n;
    return 0;
}

static int scan_open(shape *sh, const char *s, size_t i, const ef_json_limits *lim, char *err,
                     size_t errlen)
{
    if (sh->depth > 0)
        sh->stack[sh->depth - 1].any = true;
    if (sh->depth + 1 > (size_t)lim->max_depth) {
        ef_errf(err, errlen, "nesting deeper than %d", lim->max_depth);
        return EF_ELIMIT;
    }
    if (sh->depth == sh->stack_cap) {
        sh->stack_cap = sh->stack_cap ? 2 * sh->stack_cap : 16;
        sh->stack = ef_realloc(sh->stack, sh->stack_cap * sizeof(*sh->stack));
    }
    frame *f = &sh->stack[sh->depth++];
    *f = (frame){.obj = s[i] == '{'};
    if (!f->obj)
        return 0;
    if (sh->n == sh->cap) {
        sh->cap = sh->cap ? 2 * sh->cap : 16;
        sh->keys = ef_realloc(sh->keys, sh->cap * sizeof(*sh->keys));
        sh->starts = ef_realloc(sh->starts, sh->cap * sizeof(*sh->starts));
    }
    f->slot = sh->n++;
    sh->keys[f->slot] = 0;
    sh->starts[f->slot] = i;
    return 0;
}

/* A separator: the entry after it is entry commas + 1. */
static int scan_comma(shape *sh, size_t i, const ef_json_limits *lim, char *err, size_t errlen)
{
    if (sh->depth == 0)
        return 0; /* not JSON: json-c will say so */
    frame *f = &sh->stack[sh->depth - 1];
    f->commas++;
    size_t max = f->obj ? lim->max_keys : lim->max_array;
    if (f->commas >= max) {
        ef_errf(err, errlen, "%s at offset %zu has more than %zu %s", f->obj ? "object" : "array",
                i, max, f->obj ? "keys" : "entries");
        return EF_ELIMIT;
    }
    return 0;
}

/*
 * The raw pass: depth, string, array and object bounds, and the member
 * count of every object. It runs before json-c on text not yet known to be
 * JSON, so on garbage its counts mean nothing -- json-c then refuses the
 * text; after json-c accepted it, every '"' outside a string opens one and
 * the counts are exact. Memory: one stack frame per nesting level and two
 * words per object.
 */
static int scan_shape(const char *s, size_t n, const ef_json_limits *lim, shape *sh, char *err,
                      size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        switch (s[i]) {
        case '"':
            if (sh->depth > 0)
                sh->stack[sh->depth - 1].any = true;
            rc = scan_string(s, n, i, lim->max_string, &i, err, errlen);
            break;
        case '{':
        case '[':
            rc = scan_open(sh, s, i, lim, err, errlen);
            break;
        case '}':
        case ']':
            if (sh->depth > 0) {
                frame *f = &sh->stack[--sh->depth];
                if (f->obj)
                    sh->keys[f->slot] = f->commas + (f->any ? 1 : 0);
            }
            break;
        case ',':
            rc = scan_comma(sh, i, lim, err, errlen);
            break;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case ':':
            break;
        default:
            if (sh->depth > 0)
                sh->stack[sh->depth - 1].any = true;
            break;
        }
    }
    return rc;
}

/* Names the first key that appears twice in the object whose '{' is at
 * s[at] (json-c accepted the text, so its structure is sound): each direct
 * member's key literal is decoded by json-c and looked up in a set. */
static void name_duplicate(const char *s, size_t n, size_t at, char *err, size_t errlen)
{
    struct json_object *seen = json_object_new_object();
    int depth = 0;
    bool want_key = true;
    ef_errf(err, errlen, "duplicate key");
    for (size_t i = at; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            size_t end = i;
            (void)scan_string(s, n, i, SIZE_MAX, &end, NULL, 0);
            if (end >= n)
                break;
            if (depth == 1 && want_key) {
                char *lit = ef_strndup(s + i, end + 1 - i);
                struct json_object *k = json_tokener_parse(lit);
                ef_free(lit);
                const char *key = k ? json_object_get_string(k) : NULL;
                if (key && json_object_object_get_ex(seen, key, NULL)) {
                    ef_errf(err, errlen, "duplicate key \"%.64s\"", key);
                    json_object_put(k);
                    break;
                }
                if (key)
                    json_object_object_add(seen, key, NULL);
                json_object_put(k);
                want_key = false;
            }
            i = end;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                break;
        } else if (c == ',' && depth == 1) {
            want_key = true;
        }
    }
    json_object_put(seen);
}

/* ---- the tree walk ------------------------------------------------------ */

typedef struct walker {
    const ef_json_limits *lim;
    const shape *sh;
    size_t next_obj; /* pre-order index of the next object */
    const char *body;
    size_t len;
    char *err;
    size_t errlen;
} walker;

static int walk(walker *w, struct json_object *o, int depth);

static int walk_object(walker *w, struct json_object *o, int depth)
{
    /* Objects come in the order of their '{' as long as no earlier object
     * lost a member to a duplicate; the first one that did shows fewer
     * members than the raw text has, so it is found here first. */
    size_t idx = w->next_obj++;
    size_t members = (size_t)json_object_object_length(o);
    if (idx >= w->sh->n || w->sh->keys[idx] != members) {
        if (idx < w->sh->n)
            name_duplicate(w->body, w->len, w->sh->starts[idx], w->err, w->errlen);
        else
            ef_errf(w->err, w->errlen, "duplicate key");
        return EF_EPROTO;
    }
    if (members > w->lim->max_keys) {
        ef_errf(w->err, w->errlen, "object has more than %zu keys", w->lim->max_keys);
        return EF_ELIMIT;
    }
    json_object_object_foreach(o, key, val)
    {
        size_t klen = strlen(key);
        if (klen > w->lim->max_string) {
            ef_errf(w->err, w->errlen, "object key longer than %zu bytes", w->lim->max_string);
            return EF_ELIMIT;
        }
        if (!ef_utf8_valid(key, klen)) {
            ef_errf(w->err, w->errlen, "object key is not valid UTF-8");
            return EF_EUTF8;
        }
        int rc = walk(w, val, depth + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int walk_string(walker *w, struct json_object *o)
{
    const char *s = json_object_get_string(o);
    size_t len = (size_t)json_object_get_string_len(o);
    if (strlen(s) != len) {
        ef_errf(w->err, w->errlen, "NUL character inside a string");
        return EF_EPROTO;
    }
    if (len > w->lim->max_string) {
        ef_errf(w->err, w->errlen, "string longer than %zu bytes", w->lim->max_string);
        return EF_ELIMIT;
    }
    if (!ef_utf8_valid(s, len)) {
        ef_errf(w->err, w->errlen, "string is not valid UTF-8");
        return EF_EUTF8;
    }
    return 0;
}

/* Checks every key and string of the tree, the container depth (a
 * top-level object or array is depth 1), the sizes, and that no object lost
 * a member to a duplicate key. The raw pass already bounded the sizes; the
 * checks here are what json-c actually built. */
static int walk(walker *w, struct json_object *o, int depth)
{
    enum json_type t = json_object_get_type(o);
    if ((t == json_type_object || t == json_type_array) && depth + 1 > w->lim->max_depth) {
        ef_errf(w->err, w->errlen, "nesting deeper than %d", w->lim->max_depth);
        return EF_ELIMIT;
    }
    switch (t) {
    case json_type_object:
        return walk_object(w, o, depth);
    case json_type_array: {
        size_t n = json_object_array_length(o);
        if (n > w->lim->max_array) {
            ef_errf(w->err, w->errlen, "array has more than %zu entries", w->lim->max_array);
            return EF_ELIMIT;
        }
        for (size_t i = 0; i < n; i++) {
            int rc = walk(w, json_object_array_get_idx(o, i), depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case json_type_string:
        return walk_string(w, o);
    case json_type_double:
        if (!isfinite(json_object_get_double(o))) {
            ef_errf(w->err, w->errlen, "number is not finite");
            return EF_EPROTO;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- ef_json_parse ------------------------------------------------------ */

/* The limits to apply: defaults for zero fields; false when one is
 * negative or out of range. */
static bool resolve_limits(const ef_json_limits *in, ef_json_limits *out)
{
    *out = (ef_json_limits){EF_JSON_MAX_DEPTH, EF_JSON_MAX_STRING, EF_JSON_MAX_ARRAY,
                            EF_JSON_MAX_KEYS};
    if (!in)
        return true;
    if (in->max_depth < 0 || in->max_depth >= INT_MAX)
        return false;
    if (in->max_depth > 0)
        out->max_depth = in->max_depth;
    if (in->max_string > 0)
        out->max_string = in->max_string;
    if (in->max_array > 0)
        out->max_array = in->max_array;
    if (in->max_keys > 0)
        out->max_keys = in->max_keys;
    return true;
}

/* json-c's own parse of a body the raw pass found within bounds. */
static int tokenize(const char *body, size_t len, int max_depth, struct json_object **out,
                    size_t *end_out, char *err, size_t errlen)
{
    /* json-c's depth counts every value on its stack, the innermost scalar
     * included; one extra slot lets max_depth containers hold a scalar. The
     * walk enforces the exact container bound. */
    struct json_tokener *tok = json_tokener_new_ex(max_depth + 1);
    if (!tok)
        EF_PANIC("json_tokener_new_ex failed");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

    struct json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (!root && jerr == json_tokener_continue) {
        /* A top-level number (or truncated input) needs an end marker. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    json_tokener_free(tok);
    int rc = 0;
    if (jerr == json_tokener_error_depth) {
        ef_errf(err, errlen, "nesting deeper than %d", max_depth);
        rc = EF_ELIMIT;
    } else if (jerr != json_tokener_success) {
        ef_errf(err, errlen, "invalid JSON at offset %zu (%s)", end, json_tokener_error_desc(jerr));
        rc = EF_EPROTO;
    } else if (!root) {
        /* json-c represents a literal null as NULL: no value to hand out. */
        ef_errf(err, errlen, "body is JSON null");
        rc = EF_EPROTO;
    }
    for (size_t i = end; rc == 0 && i < len; i++) {
        if (!is_ws(body[i])) {
            ef_errf(err, errlen, "trailing data after the JSON value at offset %zu", i);
            rc = EF_EPROTO;
        }
    }
    if (rc < 0) {
        json_object_put(root);
        return rc;
    }
    *out = root;
    *end_out = end;
    return 0;
}

int ef_json_parse_limits(const char *body, size_t len, const ef_json_limits *limits,
                         struct json_object **out, char *err, size_t errlen)
{
    ef_json_limits lim;
    shape sh = {0};
    struct json_object *root = NULL;
    size_t end = 0;
    int rc;

    ef_errf(err, errlen, "ok");
    if (!body || !out || !resolve_limits(limits, &lim)) {
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
    rc = scan_shape(body, len, &lim, &sh, err, errlen);
    if (rc < 0)
        goto fail;
    rc = tokenize(body, len, lim.max_depth, &root, &end, err, errlen);
    if (rc < 0)
        goto fail;
    rc = scan_escapes(body, end, err, errlen);
    if (rc < 0)
        goto fail;
    walker w = {.lim = &lim, .sh = &sh, .body = body, .len = end, .err = err, .errlen = errlen};
    rc = walk(&w, root, 0);
    if (rc < 0)
        goto fail;
    shape_cleanup(&sh);
    *out = root;
    return 0;

fail:
    json_object_put(root);
    shape_cleanup(&sh);
    return rc;
}

int ef_json_parse(const char *body, size_t len, int max_depth, struct json_object **out, char *err,
                  size_t errlen)
{
    if (max_depth < 1) {
        ef_errf(err, errlen, "invalid arguments");
        return EF_EINVAL;
    }
    ef_json_limits lim = {.max_depth = max_depth};
    return ef_json_parse_limits(body, len, &lim, out, err, errlen);
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
