/*
 * yaml.c -- libyaml document helpers shared by botdef.c and fsm_def.c (see
 * yaml_int.h).
 */
#include "nlp/yaml_int.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int vfail_at(ef_nlp__yaml *y, size_t line, size_t col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Copies src into dst (cap > 0 bytes, NUL-terminated, cut before an escape
 * that would not fit) with a line break shown as \n and any other control
 * byte as \xNN: an error is one line, and the scalars it quotes (a pattern, a name)
 * may hold line breaks. */
static void copy_escaped(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src; src++) {
        unsigned char c = (unsigned char)*src;
        char esc[5] = {(char)c, 0};
        size_t k = 1;
        if (c == '\n')
            k = (size_t)snprintf(esc, sizeof(esc), "\\n");
        else if (c < 0x20 || c == 0x7f)
            k = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
        if (o + k >= cap)
            break;
        memcpy(dst + o, esc, k);
        o += k;
    }
    dst[o] = '\0';
}

static int vfail_at(ef_nlp__yaml *y, size_t line, size_t col, const char *fmt, va_list ap)
{
    if (y->rc)
        return y->rc;
    y->rc = EF_EINVAL;
    if (!y->err || y->errlen == 0)
        return y->rc;
    int n = snprintf(y->err, y->errlen, "%s:%zu:%zu: ", y->path ? y->path : "<bot>", line, col);
    if (n >= 0 && (size_t)n < y->errlen) {
        char msg[1024];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        copy_escaped(y->err + n, y->errlen - (size_t)n, msg);
    }
    return y->rc;
}

int ef_nlp__yaml_fail_at(ef_nlp__yaml *y, size_t line, size_t col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(y, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

int ef_nlp__yaml_fail(ef_nlp__yaml *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(y, n ? EF_NLP__YAML_LINE(n) : 1, n ? EF_NLP__YAML_COL(n) : 1, fmt, ap);
    va_end(ap);
    return rc;
}

yaml_node_t *ef_nlp__yaml_node(ef_nlp__yaml *y, int id)
{
    y->visits++;
    return yaml_document_get_node(y->doc, id);
}

const char *ef_nlp__yaml_kind(const yaml_node_t *n)
{
    switch (n ? n->type : YAML_NO_NODE) {
    case YAML_SCALAR_NODE:
        return "a string";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

bool ef_nlp__yaml_is_null(const yaml_node_t *n)
{
    if (!ef_nlp__yaml_is_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = ef_nlp__yaml_sval(n);
    return !v[0] || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

int ef_nlp__yaml_want_string(ef_nlp__yaml *y, const yaml_node_t *n, const char *what)
{
    if (!ef_nlp__yaml_is_scalar(n))
        return ef_nlp__yaml_fail(
            y, n, "%s: expected a string, got %s%s", what, ef_nlp__yaml_kind(n),
            ef_nlp__yaml_is_map(n)   ? " (quote it: a plain YAML string cannot contain ': ')"
            : ef_nlp__yaml_is_seq(n) ? " (quote it: a plain YAML string cannot start with '[')"
                                     : "");
    if (n->data.scalar.length == 0 || ef_nlp__yaml_is_null(n))
        return ef_nlp__yaml_fail(y, n, "%s: must not be empty", what);
    if (strlen(ef_nlp__yaml_sval(n)) != n->data.scalar.length)
        return ef_nlp__yaml_fail(y, n, "%s: contains a NUL character", what);
    return 0;
}

yaml_node_t *ef_nlp__yaml_get(ef_nlp__yaml *y, const yaml_node_t *map, const char *key,
                              yaml_node_t **keynode)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ef_nlp__yaml_node(y, p->key);
        if (ef_nlp__yaml_is_scalar(k) && strcmp(ef_nlp__yaml_sval(k), key) == 0) {
            if (keynode)
                *keynode = k;
            return ef_nlp__yaml_node(y, p->value);
        }
    }
    return NULL;
}

void ef_nlp__yaml_join(char *buf, size_t len, const char *const *list, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int k = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", list[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

static bool allowed_key(const char *const *allowed, const char *key)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(allowed[i], key) == 0)
            return true;
    return false;
}

int ef_nlp__yaml_check_keys(ef_nlp__yaml *y, const yaml_node_t *map, const char *const *allowed,
                            const char *what)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ef_nlp__yaml_node(y, p->key);
        if (!ef_nlp__yaml_is_scalar(k) || k->data.scalar.length == 0 ||
            strlen(ef_nlp__yaml_sval(k)) != k->data.scalar.length)
            return ef_nlp__yaml_fail(y, k ? k : map, "%s: keys must be plain non-empty strings",
                                     what);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = ef_nlp__yaml_node(y, q->key);
            if (ef_nlp__yaml_is_scalar(k2) &&
                strcmp(ef_nlp__yaml_sval(k2), ef_nlp__yaml_sval(k)) == 0)
                return ef_nlp__yaml_fail(y, k, "%s: duplicate key '%s' (first at line %zu)", what,
                                         ef_nlp__yaml_sval(k), EF_NLP__YAML_LINE(k2));
        }
        if (allowed && !allowed_key(allowed, ef_nlp__yaml_sval(k))) {
            size_t n = 0;
            while (allowed[n])
                n++;
            char list[256];
            ef_nlp__yaml_join(list, sizeof(list), allowed, n);
            return ef_nlp__yaml_fail(y, k, "%s: unknown key '%s' (expected one of: %s)", what,
                                     ef_nlp__yaml_sval(k), list);
        }
    }
    return 0;
}
