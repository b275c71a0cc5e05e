/*
 * base/json.h -- strict JSON parsing (json-c underneath) and typed field
 * access that names the bad field. json-c types are only forward-declared
 * here; json.c is the one file that knows json-c's quirks.
 */
#ifndef EF_BASE_JSON_H
#define EF_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* What parsing one webhook body produced, besides the events. */
typedef struct ef_parse_info {
    char what[64];     /* the update/change type seen ("message", "inline_query") */
    char note[256];    /* why nothing was stored, or which field was bad */
    int64_t update_id; /* Telegram update_id, 0 when none */
    bool unknown_type; /* a genuine payload of a type the adapter does not know
                          (acknowledged, nothing stored; what names the type) */
    size_t refused;    /* events of an accepted payload refused one by one
                          (not stored; note says why) */
} ef_parse_info;

/* Size bounds of one JSON text, checked by a linear scan of the raw bytes
 * before json-c allocates anything. A zero field takes its default. */
typedef struct ef_json_limits {
    int max_depth;     /* nested containers; a top-level object is depth 1 */
    size_t max_string; /* bytes of one decoded string or object key */
    size_t max_array;  /* entries of one array */
    size_t max_keys;   /* members of one object */
} ef_json_limits;

#define EF_JSON_MAX_DEPTH 64
#define EF_JSON_MAX_STRING ((size_t)1 << 20)
#define EF_JSON_MAX_ARRAY ((size_t)10000)
#define EF_JSON_MAX_KEYS ((size_t)10000)

/* Parses body as JSON, enforcing: valid UTF-8 everywhere (EF_EUTF8); the
 * limits (EF_ELIMIT: nesting deeper than max_depth, a string or key longer
 * than max_string bytes once decoded, an array of more than max_array
 * entries, an object of more than max_keys members); no NUL inside strings
 * and no object with the same key twice, however escaped (EF_EPROTO,
 * err `duplicate key "k"`: json-c would silently keep one value); one value
 * and nothing but white space after it (EF_EPROTO). On success *out is a
 * new reference owned by the caller. err gets a short reason.
 * Also refused: lone UTF-16 surrogate escapes such as "\ud800" (EF_EUTF8;
 * json-c would turn them into U+FFFD), "\u0000" in keys or strings, NaN and
 * Infinity, an empty body and a bare `null` (EF_EPROTO). Any other top-level
 * value (array, number, string) is accepted: the adapter decides.
 * limits may be NULL (all defaults); a negative field is EF_EINVAL. */
int ef_json_parse_limits(const char *body, size_t len, const ef_json_limits *limits,
                         struct json_object **out, char *err, size_t errlen);

/* ef_json_parse_limits() with the default limits and this max_depth
 * (>= 1, else EF_EINVAL). */
int ef_json_parse(const char *body, size_t len, int max_depth, struct json_object **out, char *err,
                  size_t errlen);

/*
 * Typed field access for adapters. All of these look up `key` in the JSON
 * object obj (borrowed) and check its JSON type. A JSON null counts as an
 * absent field. path names obj in notes ("message.chat"), so a bad field is
 * reported in info->note as "message.chat.id: expected integer"; path and
 * info may be NULL.
 *
 * Each returns 1 when the field is present with the right type (*out is
 * written), 0 when it is absent and not required (*out untouched), and
 * EF_EPROTO when it is absent but required, has the wrong type, or (integers)
 * does not fit int64_t. Pointers written to *out are borrowed from obj.
 */
typedef enum ef_pj_type {
    EF_PJ_INT64,  /* a JSON integer that fits int64_t (never a double) */
    EF_PJ_NUMBER, /* any finite JSON number (coordinates) */
    EF_PJ_STRING,
    EF_PJ_BOOL,
    EF_PJ_OBJECT,
    EF_PJ_ARRAY
} ef_pj_type;

/* One row of a payload description: see ef_pj_check(). */
typedef struct ef_pj_field {
    const char *key;
    ef_pj_type type;
    bool required;
} ef_pj_field;

/* Validates obj against a static table of n fields: every required field is
 * present, every present field has its JSON type. Fields the table does not
 * name are ignored. Returns 0 or EF_EPROTO (info->note names the first bad
 * field); EF_EPROTO too when obj itself is not a JSON object. */
int ef_pj_check(struct json_object *obj, const ef_pj_field *fields, size_t n, ef_parse_info *info,
                const char *path);

/* Integers: json-c reads literals beyond int64 as saturated values (big
 * positive ones as uint64, big negative ones clamped to INT64_MIN), so both
 * are refused; INT64_MIN itself is refused for that reason. */
int ef_pj_int64(struct json_object *obj, const char *key, bool required, int64_t *out,
                ef_parse_info *info, const char *path);
/* Strings: *out is the borrowed, NUL-terminated bytes; *len (if len is not
 * NULL) their exact length. */
int ef_pj_str(struct json_object *obj, const char *key, bool required, const char **out,
              size_t *len, ef_parse_info *info, const char *path);
int ef_pj_bool(struct json_object *obj, const char *key, bool required, bool *out,
               ef_parse_info *info, const char *path);
int ef_pj_obj(struct json_object *obj, const char *key, bool required, struct json_object **out,
              ef_parse_info *info, const char *path);
int ef_pj_arr(struct json_object *obj, const char *key, bool required, struct json_object **out,
              ef_parse_info *info, const char *path);

#endif /* EF_BASE_JSON_H */
