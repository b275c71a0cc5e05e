/*
 * bootstrap.c -- configuration bootstrap: the one place besides the
 * adapter list that names platforms. See bootstrap.h.
 */
#include "gateway/bootstrap.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* ---- platform-wide settings defaults ------------------------------------ */

static void put_str(json_object *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_object_add(o, key, json_object_new_string(v));
}

static void put_int(json_object *o, const char *key, int64_t v)
{
    json_object_object_add(o, key, json_object_new_int64(v));
}

static char *to_json(json_object *o)
{
    char *s = ef_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

char *ef_bootstrap_platform_defaults(const ef_config *c, const ef_platform_ops *ops)
{
    json_object *o = json_object_new_object();
    /* <PLATFORM>_API_URL: where every integration of the platform calls
     * (tests point it at loopback fakes). */
    char key[64];
    snprintf(key, sizeof(key), "%s_API_URL", ops->name);
    for (char *p = key; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (!(ops->supports & EF_PLAT_SOCKET)) /* the web chat calls no API */
        put_str(o, "api_url", ef_cfg_get_str(c, key));
    if (strcmp(ops->name, "telegram") == 0)
        put_int(o, "poll_timeout", ef_cfg_get_int(c, "TELEGRAM_POLL_TIMEOUT"));
    return to_json(o);
}

/* ---- the default integrations ------------------------------------------- */

/* A set secret shorter than the minimum is refused at start. */
static int check_secret(const ef_config *c, const char *key, char *err, size_t errlen)
{
    const char *v = ef_cfg_get_str(c, key);
    if (v && *v && strlen(v) < EF_BOOTSTRAP_SECRET_MIN) {
        ef_errf(err, errlen, "%s is shorter than %d characters: use a long random value", key,
                EF_BOOTSTRAP_SECRET_MIN);
        return EF_EINVAL;
    }
    return 0;
}

/* Seals creds again for the row id (the upsert kept an existing row). */
static int reseal_for(const ef_bootstrap_ctx *bc, const char *id, const char *creds)
{
    uint8_t *sealed = NULL;
    size_t n = 0;
    int rc = ef_cred_seal(bc->keys, id, creds, strlen(creds), &sealed, &n);
    if (rc == 0)
        rc = ef_store_integration_reseal(bc->st, id, sealed, n, bc->keys->ids[0]);
    ef_free(sealed);
    return rc;
}

/* Seals creds (when a key is configured) and upserts the default row;
 * without a key the credentials stay in this process's memory only. */
static int upsert(const ef_bootstrap_ctx *bc, const ef_platform_ops *ops, const char *name,
                  const char *creds, const char *settings, bool is_default, char *err,
                  size_t errlen)
{
    void *cfg = NULL;
    ef_platform_policy pol;
    char why[300];
    if (ops->open(creds, settings, &cfg, &pol, why, sizeof(why)) != 0) {
        ef_errf(err, errlen, "%s from the environment: %s", ops->name, why);
        return EF_EINVAL;
    }
    const char *key = ops->channel_key(cfg);
    ef_integration_in in = {.platform = ops->name,
                            .name = name,
                            .external_id = key && *key ? key : NULL,
                            .settings_json = settings,
                            .source = "config",
                            .is_default = is_default};
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    char uuid[37];
    if (bc->keys->n > 0 && ef_uuid_v4(uuid) == 0 &&
        ef_cred_seal(bc->keys, uuid, creds, strlen(creds), &sealed, &sealed_len) == 0) {
        in.id = uuid;
        in.sealed = sealed;
        in.sealed_len = sealed_len;
        in.key_id = bc->keys->ids[0];
    }
    char *id = NULL;
    int rc = is_default ? ef_store_integration_upsert_default(bc->st, &in, &id)
                        : ef_store_integration_upsert_config(bc->st, &in, &id);
    ops->close(cfg);
    ef_free(sealed);
    if (rc == 0 && in.sealed && strcmp(id, uuid) != 0)
        rc = reseal_for(bc, id, creds); /* an existing row: bind the blob to its id */
    if (rc) {
        ef_errf(err, errlen, "%s default integration not stored: %s", ops->name,
                ef_store_errmsg(bc->st));
        return rc;
    }
    if (!in.sealed)
        ef_channels_set_memory_creds(bc->channels, id, creds);
    EF_LOG(EF_LOG_INFO, EF_C_CFG, "integration=%s %s \"%s\" from the environment%s", id, ops->name,
           name, in.sealed ? "" : " (credentials in memory only: EF_SECRET_KEY unset)");
    ef_free(id);
    return 0;
}

static int telegram_default(const ef_bootstrap_ctx *bc, char *err, size_t errlen)
{
    const ef_config *c = bc->cfg;
    const char *token = ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN");
    const char *secret = ef_cfg_get_str(c, "TELEGRAM_SECRET_TOKEN");
    if ((!token || !*token) && (!secret || !*secret))
        return 0; /* a secret alone: a webhook that only receives */
    if (check_secret(c, "TELEGRAM_SECRET_TOKEN", err, errlen))
        return EF_EINVAL;
    json_object *cr = json_object_new_object();
    put_str(cr, "bot_token", token);
    put_str(cr, "secret_token", secret);
    json_object *st = json_object_new_object();
    put_str(st, "mode", ef_cfg_get_str(c, "TELEGRAM_MODE"));
    char *creds = to_json(cr), *settings = to_json(st);
    int rc = upsert(bc, &ef_platform_telegram, "default", creds, settings, true, err, errlen);
    memset(creds, 0, strlen(creds));
    ef_free(creds);
    ef_free(settings);
    return rc;
}

/* One integration per business number of WHATSAPP_PHONE_NUMBER_ID. */
static int whatsapp_defaults(const ef_bootstrap_ctx *bc, char *err, size_t errlen)
{
    const ef_config *c = bc->cfg;
    const char *token = ef_cfg_get_str(c, "WHATSAPP_ACCESS_TOKEN");
    const char *numbers = ef_cfg_get_str(c, "WHATSAPP_PHONE_NUMBER_ID");
    const char *secret = ef_cfg_get_str(c, "WHATSAPP_APP_SECRET");
    if (!numbers || !*numbers || ((!token || !*token) && (!secret || !*secret)))
        return 0;
    if (check_secret(c, "WHATSAPP_APP_SECRET", err, errlen))
        return EF_EINVAL;
    int rc = 0;
    bool first = true;
    for (const char *p = numbers; p && *p && !rc;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char number[64];
        snprintf(number, sizeof(number), "%.*s", (int)(len < 63 ? len : 63), p);
        p = comma ? comma + 1 : NULL;
        if (!number[0])
            continue;
        json_object *cr = json_object_new_object();
        put_str(cr, "access_token", token);
        put_str(cr, "app_secret", secret);
        put_str(cr, "verify_token", ef_cfg_get_str(c, "WHATSAPP_VERIFY_TOKEN"));
        put_str(cr, "phone_number_id", number);
        json_object *st = json_object_new_object();
        put_int(st, "rate_per_sec", ef_cfg_get_int(c, "WHATSAPP_RATE_LIMIT"));
        put_str(st, "template", ef_cfg_get_str(c, "WHATSAPP_TEMPLATE"));
        char *creds = to_json(cr), *settings = to_json(st);
        char name[80];
        snprintf(name, sizeof(name), first ? "default" : "default %s", number);
        rc = upsert(bc, &ef_platform_whatsapp, name, creds, settings, first, err, errlen);
        memset(creds, 0, strlen(creds));
        ef_free(creds);
        ef_free(settings);
        first = false;
    }
    return rc;
}

/* The web chat (/chat): always there, so that a newcomer can talk to the
 * bot with no messenger account. Its visitor ids are signed with a key
 * derived from EF_SECRET_KEY (HKDF), the same in every gateway and across
 * restarts; without EF_SECRET_KEY, a random key per process (visitors
 * start over after a restart). */
static int webchat_default(const ef_bootstrap_ctx *bc, char *err, size_t errlen)
{
    static uint8_t random_key[32];
    static bool have_random;
    uint8_t key[32];
    if (bc->keys->n > 0) {
        if (ef_hkdf_sha256(bc->keys->keys[0], 32, "easyflow", "webchat visitor id v1", key,
                           sizeof(key)) != 0) {
            ef_errf(err, errlen, "webchat: cannot derive the visitor key");
            return EF_EINVAL;
        }
    } else {
        if (!have_random) {
            if (ef_random_bytes(random_key, sizeof(random_key)) != 0) {
                ef_errf(err, errlen, "webchat: no random bytes for the visitor key");
                return EF_EIO;
            }
            have_random = true;
            EF_LOG(EF_LOG_WARN, EF_C_CFG,
                   "webchat: EF_SECRET_KEY unset, visitor ids are signed with a key of this "
                   "process only (visitors start over after a restart)");
        }
        memcpy(key, random_key, sizeof(key));
    }
    char hex[65];
    for (size_t i = 0; i < sizeof(key); i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    memset(key, 0, sizeof(key));
    json_object *cr = json_object_new_object();
    put_str(cr, "visitor_key", hex);
    memset(hex, 0, sizeof(hex));
    char *creds = to_json(cr);
    int rc = upsert(bc, &ef_platform_webchat, "default", creds, "{}", true, err, errlen);
    memset(creds, 0, strlen(creds));
    ef_free(creds);
    return rc;
}

int ef_bootstrap_defaults(const ef_bootstrap_ctx *bc, char *err, size_t errlen)
{
    int rc = telegram_default(bc, err, errlen);
    if (!rc)
        rc = whatsapp_defaults(bc, err, errlen);
    if (!rc)
        rc = webchat_default(bc, err, errlen);
    return rc;
}
