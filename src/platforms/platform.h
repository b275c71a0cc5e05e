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

#include "base/ef.h"
#include "base/json.h"

struct json_object;
struct ef_out_msg;
struct ef_out_req;
struct ef_send_result;

#define EF_PLATFORM_API_VERSION 1

/* Capability bits: check these, never compare names. */
enum {
    EF_PLAT_WEBHOOK = 1 << 0,
    EF_PLAT_POLL = 1 << 1,
    EF_PLAT_BUTTONS = 1 << 2,
    EF_PLAT_TYPING = 1 << 3,
    EF_PLAT_SIGNED = 1 << 4 /* webhook bodies carry an HMAC signature */
};

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
    /*
     * Outbound (optional: NULL for receive-only adapters). build_send turns
     * one queued row into the HTTP request to make (0, or EF_EINVAL when the
     * row cannot be sent at all -- reason in err). parse_send reads the
     * platform's answer (http_status 0 = network error) into res.
     */
    int (*build_send)(const struct ef_out_msg *m, struct ef_out_req *out, char *err, size_t errlen);
    void (*parse_send)(const struct ef_out_msg *m, long http_status, const char *body, size_t len,
                       struct ef_send_result *res);
    /*
     * Signed webhooks (supports has EF_PLAT_SIGNED; NULL otherwise).
     * signature_header is the request header carrying the signature, in
     * lower case ("x-hub-signature-256"). verify checks that header's value
     * against the raw body bytes exactly as received, keyed with the
     * platform's secret: 0, or EF_EAUTH (missing, malformed or wrong). The
     * gateway calls it before parsing anything and answers 401 on failure.
     */
    const char *signature_header;
    int (*verify)(const char *secret, const char *header_value, const char *body, size_t len);
} ef_platform_ops;

static inline int ef_platform_parse(const ef_platform_ops *p, struct json_object *root,
                                    ef_msg_list *out, ef_parse_info *info)
{
    return p->parse(root, out, info);
}

/* The signature check of a signed platform (see the verify slot). Fails
 * closed: an adapter without a verify slot refuses every body. */
static inline int ef_platform_verify(const ef_platform_ops *p, const char *secret,
                                     const char *header_value, const char *body, size_t len)
{
    if (!p->verify)
        return EF_EAUTH;
    return p->verify(secret, header_value, body, len);
}

extern const ef_platform_ops ef_platform_telegram;
extern const ef_platform_ops ef_platform_whatsapp;

/*
 * WhatsApp (whatsapp.c): checks an X-Hub-Signature-256 header value against
 * the raw POST body. header_value must be exactly "sha256=" followed by 64
 * hex digits (lower case as Meta sends them; upper case accepted), the
 * HMAC-SHA256 of the len bytes at body keyed with app_secret. The bytes are
 * used as received -- never a re-serialized or unescaped copy, which would
 * not match (Meta escapes non-ASCII as \uXXXX and '/' as \/). The MAC is
 * compared in constant time. Returns 0, or EF_EAUTH when app_secret is NULL
 * or empty, header_value is NULL or malformed, or the MAC differs. body may
 * be NULL only when len is 0. Pure; any thread. Also ef_platform_whatsapp's
 * verify slot.
 */
int ef_wa_verify_signature(const char *app_secret, const char *header_value, const char *body,
                           size_t len);

/* registry.c: every built-in adapter, NULL-terminated. */
extern const ef_platform_ops *const ef_platforms[];
/* Checks that an adapter has every mandatory slot and the right API
 * version; on failure writes the reason into err. */
int ef_platform_check(const ef_platform_ops *p, char *err, size_t errlen);
const ef_platform_ops *ef_platform_find(const char *name);

/* ---- outbound: replies to the platform's API -------------------------- */

/* One queued outbound row, as the dispatcher hands it to an adapter. All
 * strings borrowed. meta_json may carry "buttons":[{"title","payload"}],
 * "reply_to" (platform_message_id), "thread_id", and "method" for API calls
 * that are not messages ("answerCallbackQuery" with "callback_query_id"). */
typedef struct ef_out_msg {
    const char *row_id;
    const char *chat_id;    /* the conversation's chat key */
    const char *chat_type;  /* private | group | supergroup | channel | NULL */
    const char *channel_id; /* business number (WhatsApp); NULL otherwise */
    const char *text;
    const char *meta_json;
} ef_out_msg;

/* The HTTP request an adapter wants made. path is appended to the
 * platform's API base (which holds the credentials' place: the dispatcher
 * adds the token); body is JSON. Both owned by the request. */
typedef struct ef_out_req {
    char *path;
    char *body;
} ef_out_req;

void ef_out_req_cleanup(ef_out_req *r);

typedef enum ef_send_outcome {
    EF_SEND_OK = 0,   /* accepted: platform_message_id set when known */
    EF_SEND_RETRY,    /* transient (5xx, network, throughput): back off */
    EF_SEND_RATE,     /* rate limited: wait retry_after_ms before this chat's next send */
    EF_SEND_FAIL,     /* permanent: reason says why */
    EF_SEND_MIGRATED, /* the chat moved: resend to new_chat_id */
    EF_SEND_WINDOW    /* outside the platform's reply window (WhatsApp 24 h) */
} ef_send_outcome;

typedef struct ef_send_result {
    ef_send_outcome outcome;
    char *platform_message_id; /* owned; NULL when none */
    char *new_chat_id;         /* owned; EF_SEND_MIGRATED */
    int64_t retry_after_ms;    /* EF_SEND_RATE; 0 = use backoff */
    bool undeliverable;        /* the customer blocked us / is unreachable */
    char reason[256];          /* for failed_reason and the log */
} ef_send_result;

void ef_send_result_cleanup(ef_send_result *r);

/* Module-private: adapter halves that live in separate files. */
int ef_tg__build_send(const ef_out_msg *m, ef_out_req *out, char *err, size_t errlen);
void ef_tg__parse_send(const ef_out_msg *m, long http_status, const char *body, size_t len,
                       ef_send_result *res);
int ef_wa__build_send(const ef_out_msg *m, ef_out_req *out, char *err, size_t errlen);
void ef_wa__parse_send(const ef_out_msg *m, long http_status, const char *body, size_t len,
                       ef_send_result *res);

#endif /* EF_PLATFORM_H */
