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

#define EF_PLATFORM_API_VERSION 2

/* Capability bits: check these, never compare names. */
enum {
    EF_PLAT_WEBHOOK = 1 << 0, /* receives webhooks (webhook_path, verify, parse) */
    EF_PLAT_POLL = 1 << 1,    /* can long-poll (poll_request, poll_response) */
    EF_PLAT_BUTTONS = 1 << 2,
    EF_PLAT_TYPING = 1 << 3,
    EF_PLAT_SIGNED = 1 << 4, /* webhook bodies carry an HMAC signature */
    EF_PLAT_SEND = 1 << 5,   /* sends replies (build_send, parse_send) */
    /* Receives on the gateway's own visitor WebSocket (/ws/chat, ws.h):
     * verify checks a visitor id (auth), handshake issues a new one, parse
     * reads one visitor frame; a send whose build_send leaves url NULL is
     * delivered by the gateway itself (pushed to the visitor's sockets). */
    EF_PLAT_SOCKET = 1 << 6
};

/* n requests per per_ms milliseconds; {0, 0}: no limit. */
typedef struct ef_rate {
    int n;
    int per_ms;
} ef_rate;

/*
 * What one channel (a bot, a number) may do and must respect: data, not
 * code. ops->policy holds the platform's defaults; open() copies them into
 * the channel's policy and may change them from the integration's settings
 * (a lower rate, a template, the receive mode).
 */
typedef struct ef_platform_policy {
    ef_rate per_account;     /* one bot / number: Telegram 30/s, WhatsApp 80/s */
    ef_rate per_chat;        /* one chat: Telegram 1/s */
    ef_rate per_group;       /* one group chat: Telegram 20/min */
    size_t text_max;         /* longest text one message may carry (bytes of UTF-8); 0: none */
    int64_t reply_window_ms; /* after the customer's last message, free-form replies
                                stop (WhatsApp 24 h); 0: no window */
    bool window_template;    /* a template may be sent once the window closed */
    bool read_receipts;      /* mark each handled inbound message as read */
    bool route_by_key;       /* one webhook URL serves every channel of an app: each
                                event names its channel (ef_msg.channel_id = channel_key) */
    bool receive_webhook;    /* this channel receives on its webhook URL */
    bool receive_poll;       /* ... or long-polls (EF_PLAT_POLL) */
    bool receive_only;       /* no credentials to send with: replies wait, queued */
    int poll_timeout_s;      /* long-poll timeout, seconds (0: short polls) */
} ef_platform_policy;

/* One webhook request as an adapter sees it: no lws, no sockets. */
typedef struct ef_http_req {
    bool post;        /* POST (else GET) */
    const char *auth; /* the value of ops->auth_header; NULL when absent */
    const char *body; /* raw bytes as received (POST, after the body) */
    size_t len;
    /* A URL query argument, decoded, into buf (NULL when absent). */
    const char *(*arg)(void *ud, const char *name, char *buf, size_t buflen);
    void *arg_ud;
} ef_http_req;

/* One HTTP request an adapter wants made (a send, a getUpdates). */
typedef struct ef_out_req {
    char *path;   /* build_send's part: appended to the channel's API base */
    char *url;    /* the full URL (the channel's base, credentials' place); NULL from
                     build_send of an EF_PLAT_SOCKET channel: no request, the gateway
                     delivers the row itself and parse_send gets status 200 */
    char *body;   /* JSON */
    char *header; /* one extra "Name: value" (authorization), or NULL */
    /* A second extra header (Ozon: Client-Id and Api-Key), or NULL. */
    char *header2;
    /* Static: the body's type (a multipart form); NULL: application/json. */
    const char *content_type;
    bool counted; /* counts against the message rate limits */
} ef_out_req;

/* What one long-poll answer meant. */
typedef struct ef_poll_result {
    char next_cursor[64]; /* "" when unchanged */
    int fault;            /* 0; EF_EAUTH credentials revoked (channel error);
                             EF_ECONFLICT another consumer (webhook set);
                             EF_EIO transient; EF_EPROTO an answer that is not the API's */
    int64_t retry_after_ms;
    size_t skipped;   /* updates that could not be normalized (recorded, skipped) */
    char reason[256]; /* for the log and the channel's status_message */
} ef_poll_result;

typedef struct ef_platform_ops {
    const char *name; /* "telegram": the platforms row id */
    int api_version;  /* EF_PLATFORM_API_VERSION */
    unsigned supports;
    ef_platform_policy policy; /* the platform's defaults */

    /* A channel from its integration row: credentials JSON (opened) and
     * settings JSON. Checks what it needs (missing or short secrets are
     * refused: a webhook that cannot be verified is never served) and
     * fills *policy (from ops->policy and the settings). 0, or EF_EINVAL
     * with the reason in err. */
    int (*open)(const char *creds_json, const char *settings_json, void **cfg,
                ef_platform_policy *policy, char *err, size_t errlen);
    void (*close)(void *cfg);
    /* The channel's public key among its platform's channels (Telegram bot
     * id, WhatsApp phone_number_id): integrations.external_id; "" when it
     * has none (a receive-only channel). */
    const char *(*channel_key)(const void *cfg);

    /* Webhooks (EF_PLAT_WEBHOOK). auth_header: the lower-case request
     * header verify needs. verify_needs_body: verify runs after the body
     * (an HMAC over it), else before any body byte is read. */
    const char *webhook_path; /* "/webhook/telegram"; "/<id>" may follow */
    const char *auth_header;
    bool verify_needs_body;
    int (*verify)(const void *cfg, const ef_http_req *rq); /* 0 | EF_EAUTH */
    /* A GET on the webhook URL (subscription handshake), optional: 0 with
     * the text to answer in resp, or EF_EAUTH (403). */
    int (*handshake)(const void *cfg, const ef_http_req *rq, ef_buf *resp);
    /*
     * Normalizes one parsed webhook body (or one getUpdates result item)
     * into zero or more events appended to out.
     * Returns 0 when the payload is a genuine platform payload -- even one
     * that carries nothing to store (then info->note says why and out gains
     * nothing); EF_EPROTO when it is not a valid payload at all (info->note
     * names the field). On error nothing is appended to out.
     */
    int (*parse)(struct json_object *root, ef_msg_list *out, ef_parse_info *info);

    /* Long polling (EF_PLAT_POLL): the cursor is opaque text ("" at first),
     * saved only after the batch it returned is committed. poll_response
     * gets the cursor its request was made with (an answer that does not
     * restate its key, such as one chat's history, is read with it). */
    int (*poll_request)(const void *cfg, const char *cursor, int timeout_s, ef_out_req *rq);
    void (*poll_response)(const void *cfg, const char *cursor, long http_status, const char *body,
                          size_t len, int max_depth, ef_msg_list *out, ef_poll_result *res);

    /* Outbound (EF_PLAT_SEND). build_send turns one queued row into the
     * request to make (0, or EF_EINVAL when the row cannot be sent at all:
     * reason in err). parse_send reads the platform's answer (http_status
     * 0 = network error) into res; EF_SEND_AUTH means the channel's
     * credentials were refused. */
    int (*build_send)(const void *cfg, const struct ef_out_msg *m, ef_out_req *rq, char *err,
                      size_t errlen);
    void (*parse_send)(const void *cfg, const struct ef_out_msg *m, long http_status,
                       const char *body, size_t len, struct ef_send_result *res);
} ef_platform_ops;

static inline int ef_platform_parse(const ef_platform_ops *p, struct json_object *root,
                                    ef_msg_list *out, ef_parse_info *info)
{
    return p->parse(root, out, info);
}

/* The webhook check of one channel. Fails closed: an adapter without a
 * verify slot refuses every request. */
static inline int ef_platform_verify(const ef_platform_ops *p, const void *cfg,
                                     const ef_http_req *rq)
{
    if (!p->verify || !cfg)
        return EF_EAUTH;
    return p->verify(cfg, rq);
}

extern const ef_platform_ops ef_platform_telegram;
extern const ef_platform_ops ef_platform_whatsapp;
extern const ef_platform_ops ef_platform_webchat;

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
    bool as_template; /* the reply window closed: send the channel's template instead */
} ef_out_msg;

void ef_out_req_cleanup(ef_out_req *r);

typedef enum ef_send_outcome {
    EF_SEND_OK = 0,   /* accepted: platform_message_id set when known */
    EF_SEND_RETRY,    /* transient (5xx, network, throughput): back off */
    EF_SEND_RATE,     /* rate limited: wait retry_after_ms before this chat's next send */
    EF_SEND_FAIL,     /* permanent: reason says why */
    EF_SEND_MIGRATED, /* the chat moved: resend to new_chat_id */
    EF_SEND_WINDOW,   /* outside the platform's reply window (WhatsApp 24 h) */
    EF_SEND_AUTH      /* the channel's credentials were refused (token revoked) */
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
int ef_tg__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info);
int ef_wa__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info);
int ef_tg__build_send(const ef_out_msg *m, ef_out_req *out, char *err, size_t errlen);
void ef_tg__parse_send(const ef_out_msg *m, long http_status, const char *body, size_t len,
                       ef_send_result *res);
int ef_wa__build_send(const ef_out_msg *m, ef_out_req *out, char *err, size_t errlen);
void ef_wa__parse_send(const ef_out_msg *m, long http_status, const char *body, size_t len,
                       ef_send_result *res);

#endif /* EF_PLATFORM_H */
