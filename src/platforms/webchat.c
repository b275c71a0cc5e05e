/*
 * webchat.c -- the web chat (/chat) as a platform: the browser is the
 * platform and the gateway's own WebSocket /ws/chat its transport
 * (docs/websocket.md). Pure like every adapter: no I/O.
 *
 *   verify     a visitor id "v1.<32 hex>.<mac>" (rq->auth): the mac is the
 *              HMAC-SHA256 of "v1.<32 hex>" under the channel's visitor_key
 *              (derived from EF_SECRET_KEY by the bootstrap), base64url;
 *              compared in constant time; anything else is EF_EAUTH
 *   handshake  a new visitor id (16 random bytes) into resp
 *   parse      one visitor frame, as the gateway passes it on:
 *              {"visitor": <verified id>, "type": "message"|"button",
 *               "id": <client message id>, "text", "payload", "title",
 *               "date": <Unix seconds>}
 *              chat and sender = the visitor's random id; the platform
 *              message id "<visitor>:<client id>" makes a resend a duplicate;
 *              or {"visitor", "type": "seen", "message": <row id>,
 *              "status": "delivered"|"read"}: the page showed a reply (a
 *              delivery status, like WhatsApp's, for "web:<row id>")
 *   build_send no request (url NULL): the gateway pushes the row to the
 *              visitor's sockets once it is recorded as sent
 *   parse_send always accepted: "web:<row id>"
 */
#include "platforms/adapter.h"
#include "platforms/channel_int.h"
#include "platforms/platform.h"

#include "base/crypto.h"
#include "base/hex.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static const char PLATFORM[] = "webchat";

#define VISITOR_RAND 16 /* bytes of the random part */
#define VISITOR_HEX (VISITOR_RAND * 2)
#define MAC_B64 43 /* base64url of 32 bytes, no padding */
#define CLIENT_ID_MAX 64
#define TEXT_MAX 4096

typedef struct webchat_cfg {
    uint8_t key[32];
} webchat_cfg;

static int wc_open(const char *creds_json, const char *settings_json, void **cfg,
                   ef_platform_policy *policy, char *err, size_t errlen)
{
    json_object *creds = NULL;
    if (ef_chan__object(creds_json, "credentials", &creds, err, errlen))
        return EF_EINVAL;
    const char *hex = ef_chan__str(creds, "visitor_key");
    webchat_cfg *c = ef_calloc(1, sizeof(*c));
    if (!hex || ef_secret_key_parse(hex, c->key) != 0) {
        ef_errf(err, errlen, "credentials: visitor_key must be 64 hex digits");
        json_object_put(creds);
        ef_free(c);
        return EF_EINVAL;
    }
    json_object_put(creds);
    (void)settings_json;
    *policy = ef_platform_webchat.policy;
    *cfg = c;
    return 0;
}

static void wc_close(void *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof(webchat_cfg));
    ef_free(cfg);
}

static const char *wc_channel_key(const void *cfg)
{
    (void)cfg;
    return "";
}

/* The mac of "v1.<hex>" as base64url (owned). */
static char *visitor_mac(const webchat_cfg *c, const char *hex)
{
    char signed_part[8 + VISITOR_HEX];
    snprintf(signed_part, sizeof(signed_part), "v1.%.*s", VISITOR_HEX, hex);
    uint8_t mac[32];
    if (ef_hmac_sha256(c->key, sizeof(c->key), signed_part, strlen(signed_part), mac) != 0)
        return NULL;
    return ef_base64url_encode(mac, sizeof(mac));
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ef_hexval(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F'))
            return false;
    return true;
}

static int wc_verify(const void *cfg, const ef_http_req *rq)
{
    const char *v = rq->auth;
    if (!v || strlen(v) != 3 + VISITOR_HEX + 1 + MAC_B64 || strncmp(v, "v1.", 3) != 0 ||
        v[3 + VISITOR_HEX] != '.' || !all_hex(v + 3, VISITOR_HEX))
        return EF_EAUTH;
    char *mac = visitor_mac(cfg, v + 3);
    if (!mac)
        return EF_EAUTH;
    bool ok = ef_secure_equal(mac, strlen(mac), v + 4 + VISITOR_HEX, MAC_B64);
    ef_free(mac);
    return ok ? 0 : EF_EAUTH;
}

static int wc_handshake(const void *cfg, const ef_http_req *rq, ef_buf *resp)
{
    (void)rq;
    uint8_t rnd[VISITOR_RAND];
    char hex[VISITOR_HEX + 1];
    if (ef_random_bytes(rnd, sizeof(rnd)) != 0)
        return EF_EIO;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    char *mac = visitor_mac(cfg, hex);
    if (!mac)
        return EF_EIO;
    char out[3 + VISITOR_HEX + 1 + MAC_B64 + 1];
    snprintf(out, sizeof(out), "v1.%s.%s", hex, mac);
    ef_free(mac);
    return ef_buf_append(resp, out, strlen(out));
}

static bool client_id_ok(const char *id, size_t len)
{
    if (!id || len == 0 || len > CLIENT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* The frame's text (a button: its payload) with the limits checked. */
static const char *frame_text(json_object *root, bool button, size_t *len, ef_parse_info *info)
{
    const char *text = ef_ad__jstr(root, button ? "payload" : "text", len);
    if (!text || *len == 0) {
        ef_ad__note(info, "%s: missing or empty", button ? "payload" : "text");
        return NULL;
    }
    if (*len > TEXT_MAX) {
        ef_ad__note(info, "%s: longer than %d bytes", button ? "payload" : "text", TEXT_MAX);
        return NULL;
    }
    return text;
}

static bool row_id_ok(const char *s, size_t len)
{
    if (!s || len != 36)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A reply the page showed: its delivery status. */
static int parse_seen(json_object *root, const char *visitor, ef_msg_list *out, ef_parse_info *info)
{
    size_t rlen = 0;
    const char *row = ef_ad__jstr(root, "message", &rlen);
    const char *st = ef_ad__jstr(root, "status", NULL);
    if (!row_id_ok(row, rlen)) {
        ef_ad__note(info, "message: a row id expected");
        return EF_EPROTO;
    }
    if (!st || (strcmp(st, "delivered") != 0 && strcmp(st, "read") != 0)) {
        ef_ad__note(info, "status: delivered or read expected");
        return EF_EPROTO;
    }
    ef_msg *m = ef_msg_new(EF_MSG_STATUS, PLATFORM);
    m->chat_id = ef_strndup(visitor + 3, VISITOR_HEX);
    m->chat_type = ef_strdup("private");
    m->sender_id = ef_strdup(m->chat_id);
    m->target_id = ef_asprintf("web:%.*s", (int)rlen, row);
    m->status = ef_strdup(st);
    m->message_id = ef_asprintf("%s:%s", m->target_id, m->status);
    m->text = ef_strdup("");
    m->content_type = ef_strdup("status");
    int64_t date = 0;
    if (ef_ad__jint(root, "date", &date))
        m->date = date;
    m->meta_json = ef_strdup("{}");
    ef_msg_list_push(out, m);
    snprintf(info->what, sizeof(info->what), "seen");
    return 0;
}

static int wc_parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    const char *visitor = ef_ad__jstr(root, "visitor", NULL);
    const char *type = ef_ad__jstr(root, "type", NULL);
    size_t idlen = 0, len = 0;
    const char *cid = ef_ad__jstr(root, "id", &idlen);
    if (!visitor || strlen(visitor) < 3 + VISITOR_HEX || strncmp(visitor, "v1.", 3) != 0) {
        ef_ad__note(info, "visitor: missing");
        return EF_EPROTO;
    }
    if (type && strcmp(type, "seen") == 0)
        return parse_seen(root, visitor, out, info);
    if (!type || (strcmp(type, "message") != 0 && strcmp(type, "button") != 0)) {
        ef_ad__note(info, "type: message, button or seen expected");
        return EF_EPROTO;
    }
    if (!client_id_ok(cid, idlen)) {
        ef_ad__note(info, "id: 1-%d characters of A-Za-z0-9_- expected", CLIENT_ID_MAX);
        return EF_EPROTO;
    }
    bool button = strcmp(type, "button") == 0;
    const char *text = frame_text(root, button, &len, info);
    if (!text)
        return EF_EPROTO;
    ef_msg *m = ef_msg_new(button ? EF_MSG_CALLBACK : EF_MSG_NEW, PLATFORM);
    m->chat_id = ef_strndup(visitor + 3, VISITOR_HEX);
    m->chat_type = ef_strdup("private");
    m->sender_id = ef_strdup(m->chat_id);
    m->message_id = ef_asprintf("%s:%.*s", m->chat_id, (int)idlen, cid);
    m->text = ef_strndup(text, len);
    m->text_len = len;
    m->content_type = ef_strdup(button ? "callback" : "text");
    int64_t date = 0;
    if (ef_ad__jint(root, "date", &date))
        m->date = date;
    json_object *meta = json_object_new_object();
    ef_ad__put_str(meta, "client_id", cid, idlen);
    if (button) {
        size_t tlen = 0;
        const char *title = ef_ad__jstr(root, "title", &tlen);
        if (title && tlen <= TEXT_MAX)
            ef_ad__put_str(meta, "title", title, tlen);
    }
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    ef_msg_list_push(out, m);
    snprintf(info->what, sizeof(info->what), "%s", button ? "button" : "message");
    return 0;
}

static int wc_build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                         size_t errlen)
{
    (void)cfg;
    memset(rq, 0, sizeof(*rq));
    if (!m->chat_id || strlen(m->chat_id) != VISITOR_HEX) {
        ef_errf(err, errlen, "not a web chat visitor");
        return EF_EINVAL;
    }
    return 0;
}

static void wc_parse_send(const void *cfg, const ef_out_msg *m, long http_status, const char *body,
                          size_t len, ef_send_result *res)
{
    (void)cfg;
    (void)http_status;
    (void)body;
    (void)len;
    memset(res, 0, sizeof(*res));
    res->outcome = EF_SEND_OK;
    res->platform_message_id = ef_asprintf("web:%s", m->row_id ? m->row_id : "-");
}

const ef_platform_ops ef_platform_webchat = {
    .name = PLATFORM,
    .api_version = EF_PLATFORM_API_VERSION,
    .supports = EF_PLAT_SOCKET | EF_PLAT_BUTTONS | EF_PLAT_SEND,
    .policy = {.text_max = TEXT_MAX},
    .open = wc_open,
    .close = wc_close,
    .channel_key = wc_channel_key,
    .verify = wc_verify,
    .handshake = wc_handshake,
    .parse = wc_parse,
    .build_send = wc_build_send,
    .parse_send = wc_parse_send,
};
