/*
 * template.c -- reply templates of the FSM: "Заказ {order_number} в пути,
 * {context.name|друг}!".
 *
 * Grammar (docs/fsm.md, "Templates"):
 *   {name}              value of a slot or entity called name
 *   {name|default}      the same, default text when it has no value
 *   {context.key}       value of context key
 *   {context.key|dflt}  the same with a default
 *   {{  }}              a literal "{" and "}"
 * name and key are ASCII letters, digits, '_' and '-' (at most
 * EF_FSM__NAME_MAX of them). A placeholder without
 * a value and without a default renders as nothing.
 *
 * Checking happens once at load (ef_fsm__tpl_check); rendering
 * (ef_fsm__tpl_render) trusts that and never fails on syntax.
 */
#include "nlp/fsm_int.h"

#include <stdio.h>
#include <string.h>

#define CTX_PREFIX "context."
#define CTX_PREFIX_LEN (sizeof(CTX_PREFIX) - 1)

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool in_list(const char *s, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (list[i] && strlen(list[i]) == n && memcmp(list[i], s, n) == 0)
            return true;
    }
    return false;
}

/* One placeholder between '{' and '}' (exclusive): where its parts are. */
typedef struct ph {
    const char *name;
    size_t name_len;
    bool is_context;
    const char *dflt; /* NULL when there is no '|' */
    size_t dflt_len;
} ph;

static void split_ph(const char *s, size_t n, ph *p)
{
    const char *bar = memchr(s, '|', n);
    size_t head = bar ? (size_t)(bar - s) : n;
    p->is_context = head > CTX_PREFIX_LEN && memcmp(s, CTX_PREFIX, CTX_PREFIX_LEN) == 0;
    p->name = p->is_context ? s + CTX_PREFIX_LEN : s;
    p->name_len = p->is_context ? head - CTX_PREFIX_LEN : head;
    p->dflt = bar ? bar + 1 : NULL;
    p->dflt_len = bar ? n - head - 1 : 0;
}

int ef_fsm__tpl_check(const char *tpl, const char *const *entity_types, size_t n_entity_types,
                      const char *const *slot_names, size_t n_slot_names, size_t *at, char *why,
                      size_t whylen)
{
    size_t n = strlen(tpl);
    for (size_t i = 0; i < n; i++) {
        char c = tpl[i];
        if (c == '}') {
            if (i + 1 < n && tpl[i + 1] == '}') {
                i++;
                continue;
            }
            *at = i;
            snprintf(why, whylen, "unmatched '}' in template (write '}}' for a literal brace)");
            return EF_EINVAL;
        }
        if (c != '{')
            continue;
        if (i + 1 < n && tpl[i + 1] == '{') {
            i++;
            continue;
        }
        const char *close = NULL;
        for (size_t j = i + 1; j < n; j++) {
            if (tpl[j] == '{')
                break;
            if (tpl[j] == '}') {
                close = tpl + j;
                break;
            }
        }
        if (!close) {
            *at = i;
            snprintf(why, whylen, "unclosed '{' in template (write '{{' for a literal brace)");
            return EF_EINVAL;
        }
        ph p;
        split_ph(tpl + i + 1, (size_t)(close - tpl) - i - 1, &p);
        if (p.name_len == 0) {
            *at = i;
            snprintf(why, whylen, "empty placeholder name in template");
            return EF_EINVAL;
        }
        if (p.name_len > EF_FSM__NAME_MAX) {
            *at = i;
            snprintf(why, whylen, "placeholder name longer than %d characters", EF_FSM__NAME_MAX);
            return EF_EINVAL;
        }
        for (size_t k = 0; k < p.name_len; k++) {
            if (!name_char(p.name[k])) {
                *at = i;
                /* The name up to the bad byte: the rest may be a newline or
                 * anything else that has no place in a one-line error. */
                unsigned char bad = (unsigned char)p.name[k];
                snprintf(why, whylen,
                         "bad placeholder {%.*s...}: byte 0x%02x after it; names are letters, "
                         "digits, '_' and '-'",
                         (int)k, p.name, bad);
                return EF_EINVAL;
            }
        }
        if (!p.is_context && !in_list(p.name, p.name_len, entity_types, n_entity_types) &&
            !in_list(p.name, p.name_len, slot_names, n_slot_names)) {
            *at = i;
            snprintf(why, whylen,
                     "unknown placeholder {%.*s}: not an entity type or slot name "
                     "(use {context.%.*s} for a context key)",
                     (int)p.name_len, p.name, (int)p.name_len, p.name);
            return EF_EINVAL;
        }
        i = (size_t)(close - tpl);
    }
    return 0;
}

int ef_fsm__tpl_render(const char *tpl, ef_fsm__lookup_fn lookup, void *ud, ef_buf *b)
{
    const char *s = tpl;
    int rc = 0;
    while (*s && rc == 0) {
        /* Copy the literal run up to the next brace in one go. */
        size_t lit = strcspn(s, "{}");
        if (lit) {
            rc = ef_buf_append(b, s, lit);
            s += lit;
            continue;
        }
        if (s[0] == s[1]) { /* "{{" or "}}" */
            rc = ef_buf_append(b, s, 1);
            s += 2;
            continue;
        }
        const char *close = strchr(s, '}');
        if (s[0] == '}' || !close) { /* unreachable after a check: copy as is */
            rc = ef_buf_append(b, s, 1);
            s++;
            continue;
        }
        ph p;
        split_ph(s + 1, (size_t)(close - s) - 1, &p);
        const char *v = lookup(ud, p.name, p.name_len, p.is_context);
        if (v && *v)
            rc = ef_buf_append(b, v, strlen(v));
        else if (p.dflt && p.dflt_len)
            rc = ef_buf_append(b, p.dflt, p.dflt_len);
        s = close + 1;
    }
    return rc;
}
