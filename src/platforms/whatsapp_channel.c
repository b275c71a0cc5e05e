/*
 * whatsapp_channel.c -- one WhatsApp Business number as a channel: its
 * credentials and settings (open), the signature check and subscription
 * handshake of the app's webhook, and the Graph API base and bearer its
 * sends use. The webhook parser is in whatsapp.c, the send requests in
 * whatsapp_send.c.
 *
 * Credentials: {"access_token", "app_secret", "verify_token",
 * "phone_number_id"} (without access_token a number only receives: its
 * replies wait, queued). Every number of one Meta app shares one webhook URL:
 * events name their number (metadata.phone_number_id = channel_key), and
 * the gateway routes each to its channel (policy.route_by_key).
 * Settings: "api_url" (default the public Graph API), "rate_per_sec" (80),
 * "template" ("name" or "name:lang"): the approved template sent once the
 * 24-hour customer service window has closed.
 */
#include "platforms/channel_int.h"

#include "base/crypto.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define WA_DEFAULT_API "https://graph.facebook.com/v25.0"
#define WA_WINDOW_MS (24LL * 3600 * 1000)

typedef struct wa_cfg {
    char *number;        /* phone_number_id */
    char *api;           /* Graph API base, no trailing slash */
    char *auth;          /* "Authorization: Bearer <token>": never logged */
    char *app_secret;    /* keys the X-Hub-Signature-256 HMAC */
    char *verify_token;  /* the subscription handshake's token; NULL: none */
    char *template_meta; /* {"template":{..}} or NULL */
} wa_cfg;

static void wa_close(void *p)
{
    wa_cfg *c = p;
    if (!c)
        return;
    ef_free(c->number);
    ef_free(c->api);
    ef_free(c->auth);
    ef_free(c->app_secret);
    ef_free(c->verify_token);
    ef_free(c->template_meta);
    ef_free(c);
}

/* "name" or "name:lang" -> {"template":{"name":..,"language":{"code":..}}} */
static char *template_meta(const char *spec)
{
    const char *colon = strchr(spec, ':');
    char *name = colon ? ef_strndup(spec, (size_t)(colon - spec)) : ef_strdup(spec);
    json_object *lang = json_object_new_object();
    json_object_object_add(lang, "code",
                           json_object_new_string(colon && colon[1] ? colon + 1 : "ru"));
    json_object *t = json_object_new_object();
    json_object_object_add(t, "name", json_object_new_string(name));
    json_object_object_add(t, "language", lang);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "template", t);
    char *s = ef_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    ef_free(name);
    return s;
}

static int check_number(const char *n, char *err, size_t errlen)
{
    size_t len = strlen(n);
    bool ok = len > 0 && len <= 32;
    for (const char *p = n; ok && *p; p++)
        ok = *p >= '0' && *p <= '9';
    if (!ok)
        ef_errf(err, errlen, "credentials: \"phone_number_id\" must be digits (Meta's id)");
    return ok ? 0 : EF_EINVAL;
}

static wa_cfg *cfg_new(json_object *creds, json_object *settings, const char *token,
                       const char *number, const char *app_secret)
{
    wa_cfg *c = ef_calloc(1, sizeof(*c));
    c->number = ef_strdup(number);
    c->api = ef_chan__base_url(ef_chan__str(settings, "api_url"), WA_DEFAULT_API);
    c->auth = token && *token ? ef_asprintf("Authorization: Bearer %s", token) : NULL;
    c->app_secret = ef_strdup(app_secret);
    const char *vt = ef_chan__str(creds, "verify_token");
    c->verify_token = vt && *vt ? ef_strdup(vt) : NULL;
    const char *tmpl = ef_chan__str(settings, "template");
    c->template_meta = tmpl && *tmpl ? template_meta(tmpl) : NULL;
    return c;
}

static int wa_open(const char *creds_json, const char *settings_json, void **out,
                   ef_platform_policy *policy, char *err, size_t errlen)
{
    json_object *creds = NULL, *settings = NULL;
    const char *token = NULL, *number = NULL, *app_secret = NULL;
    int rc = ef_chan__object(creds_json, "credentials", &creds, err, errlen);
    if (!rc)
        rc = ef_chan__object(settings_json, "settings", &settings, err, errlen);
    token = ef_chan__str(creds, "access_token");
    if (!rc)
        rc = ef_chan__need(creds, "credentials", "phone_number_id", &number, err, errlen);
    if (!rc)
        rc = check_number(number, err, errlen);
    if (!rc)
        rc = ef_chan__need(creds, "credentials", "app_secret", &app_secret, err, errlen);
    if (!rc)
        rc = ef_chan__secret("credentials", "app_secret", app_secret, err, errlen);
    if (!rc)
        rc = ef_chan__common(&ef_platform_whatsapp, settings, policy, err, errlen);
    if (!rc) {
        wa_cfg *c = cfg_new(creds, settings, token, number, app_secret);
        policy->window_template = c->template_meta != NULL;
        policy->receive_only = !token || !*token;
        *out = c;
    }
    json_object_put(creds);
    json_object_put(settings);
    return rc;
}

static const char *wa_key(const void *cfg)
{
    return ((const wa_cfg *)cfg)->number;
}

/* X-Hub-Signature-256: the HMAC of the raw body under the app secret. */
static int wa_verify(const void *cfg, const ef_http_req *rq)
{
    const wa_cfg *c = cfg;
    return ef_wa_verify_signature(c->app_secret, rq->auth, rq->body, rq->len);
}

/* Meta's subscription check: GET ?hub.mode=subscribe&hub.verify_token=..
 * &hub.challenge=.. answered with the challenge as text. */
static int wa_handshake(const void *cfg, const ef_http_req *rq, ef_buf *resp)
{
    const wa_cfg *c = cfg;
    char mode[64], token[300], challenge[300];
    const char *m = rq->arg(rq->arg_ud, "hub.mode", mode, sizeof(mode));
    const char *t = rq->arg(rq->arg_ud, "hub.verify_token", token, sizeof(token));
    const char *ch = rq->arg(rq->arg_ud, "hub.challenge", challenge, sizeof(challenge));
    if (!m || !t || !ch || strcmp(m, "subscribe") != 0 || !c->verify_token ||
        !ef_secure_equal(t, strlen(t), c->verify_token, strlen(c->verify_token)))
        return EF_EAUTH;
    return ef_buf_append(resp, ch, strlen(ch));
}

static int wa_build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                         size_t errlen)
{
    const wa_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    ef_out_msg mm = *m;
    if (m->as_template) {
        if (!c->template_meta) {
            ef_errf(err, errlen, "the reply window closed and no template is configured");
            return EF_EINVAL;
        }
        mm.meta_json = c->template_meta;
    }
    if (!c->auth) {
        ef_errf(err, errlen, "no access_token: this number only receives");
        return EF_EINVAL;
    }
    int rc = ef_wa__build_send(&mm, rq, err, errlen);
    if (rc)
        return rc;
    rq->url = ef_asprintf("%s%s", c->api, rq->path);
    rq->header = ef_strdup(c->auth);
    rq->counted = !ef_chan__is_method(m->meta_json);
    return 0;
}

static void wa_parse_send(const void *cfg, const ef_out_msg *m, long status, const char *body,
                          size_t len, ef_send_result *res)
{
    (void)cfg;
    ef_wa__parse_send(m, status, body, len, res);
    /* 401, or Graph error 190 (access token expired or revoked): the
     * number's credentials, not this message. */
    if (status == 401 || strncmp(res->reason, "190 ", 4) == 0)
        res->outcome = EF_SEND_AUTH;
}

const ef_platform_ops ef_platform_whatsapp = {
    .name = "whatsapp",
    .api_version = EF_PLATFORM_API_VERSION,
    .supports = EF_PLAT_WEBHOOK | EF_PLAT_BUTTONS | EF_PLAT_TYPING | EF_PLAT_SIGNED | EF_PLAT_SEND,
    .policy =
        {
            .per_account = {80, 1000},
            .text_max = 4096,
            .reply_window_ms = WA_WINDOW_MS,
            .read_receipts = true,
            .route_by_key = true,
            .receive_webhook = true,
        },
    .open = wa_open,
    .close = wa_close,
    .channel_key = wa_key,
    .webhook_path = "/webhook/whatsapp",
    .auth_header = "x-hub-signature-256",
    .verify_needs_body = true,
    .verify = wa_verify,
    .handshake = wa_handshake,
    .parse = ef_wa__parse,
    .build_send = wa_build_send,
    .parse_send = wa_parse_send,
};
