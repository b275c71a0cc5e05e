/*
 * platform.h -- the interface every messaging platform adapter implements.
 *
 * An adapter translates one platform's wire format to and from easyflow's
 * own types: inbound JSON -> ef_msg (normalize), ef_reply -> outbound HTTP
 * request (issue 3/4), outbound HTTP response -> delivery result. Adapters do
 * no I/O of their own and never include store or nlp headers: the gateway
 * does the HTTP for them and hands them parsed JSON.
 *
 * Add-a-platform checklist:
 *   1. src/platforms/<name>.c exporting one `const ef_platform_ops`
 *      (ef_platform_<name>) with every mandatory slot filled;
 *   2. a line in registry.c;
 *   3. its configuration keys in src/gateway/config.c (API URL included, so
 *      tests can point it at loopback);
 *   4. a fake API server in tests/e2e/ speaking the real wire format;
 *   5. unit tests in tests/unit/platforms/test_<name>.c, a fuzz target in
 *      tests/fuzz/, an end-to-end test in tests/e2e/.
 *
 * Thread model: ops are immutable and their functions are pure (no globals),
 * so they may be called from any thread.
 */
#ifndef EF_PLATFORM_H
#define EF_PLATFORM_H

#include "ef.h"

struct json_object;

#define EF_PLATFORM_API_VERSION 1

/* Capability bits: check these, never compare names. */
enum {
    EF_PLAT_WEBHOOK = 1 << 0,
    EF_PLAT_POLL = 1 << 1,
    EF_PLAT_BUTTONS = 1 << 2,
    EF_PLAT_TYPING = 1 << 3,
    EF_PLAT_SIGNED = 1 << 4 /* webhook bodies carry an HMAC signature */
};

/* A growable list of normalized events; owns its ef_msg's. */
typedef struct ef_msg_list {
    ef_msg **items;
    size_t n;
    size_t cap;
} ef_msg_list;

void ef_msg_list_init(ef_msg_list *l);
/* Takes ownership of m. */
void ef_msg_list_push(ef_msg_list *l, ef_msg *m);
/* Frees every ef_msg still in the list. */
void ef_msg_list_cleanup(ef_msg_list *l);

/* What parsing one webhook body produced, besides the events. */
typedef struct ef_parse_info {
    char what[64];    /* the update/change type seen ("message", "inline_query") */
    char note[256];   /* why nothing was stored, or which field was bad */
    int64_t update_id; /* Telegram update_id, 0 when none */
} ef_parse_info;

typedef struct ef_platform_ops {
    const char *name; /* "telegram" */
    int api_version;  /* EF_PLATFORM_API_VERSION */
    unsigned supports;
    const char *webhook_path; /* "/webhook/telegram" */
    /*
     * Normalizes one parsed webhook body (or one getUpdates result item)
     * into zero or more events appended to out.
     * Returns 0 when the payload is a genuine platform payload -- even one
     * that carries nothing to store (then info->note says why and out gains
     * nothing); EF_EPROTO when it is not a valid payload at all (info->note
     * names the field). On error nothing is appended to out.
     */
    int (*parse)(struct json_object *root, ef_msg_list *out, ef_parse_info *info);
} ef_platform_ops;

static inline int ef_platform_parse(const ef_platform_ops *p, struct json_object *root,
                                    ef_msg_list *out, ef_parse_info *info)
{
    return p->parse(root, out, info);
}

extern const ef_platform_ops ef_platform_telegram;

/* registry.c: every built-in adapter, NULL-terminated. */
extern const ef_platform_ops *const ef_platforms[];
/* Checks that an adapter has every mandatory slot and the right API
 * version; on failure writes the reason into err. */
int ef_platform_check(const ef_platform_ops *p, char *err, size_t errlen);
const ef_platform_ops *ef_platform_find(const char *name);

/* ---- JSON helpers shared by adapters (pjson.c) ------------------------- */

/* Parses body as JSON, enforcing: valid UTF-8 everywhere (EF_EUTF8), nesting
 * depth <= max_depth (EF_ELIMIT), no NUL inside strings (EF_EPROTO), one
 * value and nothing but white space after it (EF_EPROTO). On success *out is
 * a new reference owned by the caller. err gets a short reason. */
int ef_json_parse(const char *body, size_t len, int max_depth, struct json_object **out,
                  char *err, size_t errlen);

#endif /* EF_PLATFORM_H */
