/*
 * yaml_int.h -- the libyaml document helpers botdef.c and fsm_def.c share:
 * node access with a visit count, type tests, mapping lookup, strict key
 * checks and "path:line:column: reason" errors.
 *
 * What it must never do: be included outside src/nlp/ and its unit tests,
 * or keep a node beyond the document it came from.
 *
 * Thread model: an ef_nlp__yaml belongs to the one loader using it.
 */
#ifndef EF_NLP_YAML_INT_H
#define EF_NLP_YAML_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* One document being read, and where its first problem goes. */
typedef struct ef_nlp__yaml {
    yaml_document_t *doc;
    const char *path; /* named in messages; NULL reads "<bot>" */
    char *err;        /* "path:line:column: reason", NUL-terminated */
    size_t errlen;
    int rc;        /* 0, or the first failure (later ones keep its message) */
    size_t visits; /* node lookups so far, to bound work on hostile files */
} ef_nlp__yaml;

/* 1-based line and column of a node's start. */
#define EF_NLP__YAML_LINE(n) ((size_t)(n)->start_mark.line + 1)
#define EF_NLP__YAML_COL(n) ((size_t)(n)->start_mark.column + 1)

/* Records the first failure as "path:line:col: reason" and returns
 * EF_EINVAL (or the failure already recorded). _fail takes the position of
 * node n (line 1, column 1 when n is NULL). */
int ef_nlp__yaml_fail_at(ef_nlp__yaml *y, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int ef_nlp__yaml_fail(ef_nlp__yaml *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The node with document index id (NULL when there is none); counts a
 * visit. */
yaml_node_t *ef_nlp__yaml_node(ef_nlp__yaml *y, int id);

static inline bool ef_nlp__yaml_is_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE;
}

static inline bool ef_nlp__yaml_is_map(const yaml_node_t *n)
{
    return n && n->type == YAML_MAPPING_NODE;
}

static inline bool ef_nlp__yaml_is_seq(const yaml_node_t *n)
{
    return n && n->type == YAML_SEQUENCE_NODE;
}

/* The text of a scalar node (borrowed from the document). */
static inline const char *ef_nlp__yaml_sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static inline size_t ef_nlp__yaml_map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static inline size_t ef_nlp__yaml_seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* "a string", "a list", "a mapping" or "nothing", for messages. */
const char *ef_nlp__yaml_kind(const yaml_node_t *n);
/* A plain scalar YAML reads as null: "", "~", "null", "Null", "NULL". */
bool ef_nlp__yaml_is_null(const yaml_node_t *n);
/* Fails unless n is a non-empty string scalar without NUL bytes; what names
 * it in the message. */
int ef_nlp__yaml_want_string(ef_nlp__yaml *y, const yaml_node_t *n, const char *what);
/* The value of key in mapping map, or NULL; *keynode (when keynode is not
 * NULL) gets the key's node. */
yaml_node_t *ef_nlp__yaml_get(ef_nlp__yaml *y, const yaml_node_t *map, const char *key,
                              yaml_node_t **keynode);
/* Checks that every key of mapping map is a string, none twice, and each in
 * allowed (NULL-terminated; NULL allows any); what names the mapping in
 * messages. */
int ef_nlp__yaml_check_keys(ef_nlp__yaml *y, const yaml_node_t *map, const char *const *allowed,
                            const char *what);
/* Writes the n strings of list into buf (len bytes) as "a, b, c",
 * truncated to fit. */
void ef_nlp__yaml_join(char *buf, size_t len, const char *const *list, size_t n);

#endif /* EF_NLP_YAML_INT_H */
