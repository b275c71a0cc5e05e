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

const char *ef_bootstrap_env_hint(const ef_platform_ops *ops)
{
    if (ops == &ef_platform_telegram)
        return "TELEGRAM_SECRET_TOKEN (and TELEGRAM_BOT_TOKEN to reply)";
    if (ops == &ef_platform_whatsapp)
        return "WHATSAPP_APP_SECRET, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_ACCESS_TOKEN "
               "(WHATSAPP_VERIFY_TOKEN for the subscription check)";
    return NULL;
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

/* The blob to store for creds under row id: when the row exists (existing)
 * and its blob already opens to exactly creds, that blob (a restart with
 * the same secrets rewrites nothing, so the integration keeps its status),
 * else creds sealed for id. */
static int seal_for(const ef_bootstrap_ctx *bc, const char *id, bool existing, const char *creds,
                    uint8_t **out, size_t *n, const char **key_id)
{
    ef_integration_row row;
    if (existing && ef_store_integration_get(bc->st, id, &row) == 0) {
        char *plain = NULL;
        size_t plen = 0;
        bool legacy = false;
        bool same = row.sealed &&
                    ef_keyring_open(bc->keys, row.key_id, id, row.sealed, row.sealed_len, &plain,
                                    &plen, &legacy) == 0 &&
                    !legacy && plen == strlen(creds) && memcmp(plain, creds, plen) == 0 &&
                    row.key_id && strcmp(row.key_id, bc->keys->ids[0]) == 0;
        ef_free(plain);
        if (same) {
            *out = row.sealed;
            *n = row.sealed_len;
            row.sealed = NULL;
            *key_id = bc->keys->ids[0];
            ef_integration_row_cleanup(&row);
            return 0;
        }
        ef_integration_row_cleanup(&row);
    }
    *key_id = bc->keys->ids[0];
    return ef_cred_seal(bc->keys, id, creds, strlen(creds), out, n);
}

/* The platform's default row, or a further configuration-sourced one. */
static int store_upsert(const ef_bootstrap_ctx *bc, const ef_integration_in *in, char **id)
{
    return in->is_default ? ef_store_integration_upsert_default(bc->st, in, id)
                          : ef_store_integration_upsert_config(bc->st, in, id);
}

/* Upserts in (default or further configuration row) with creds sealed for
 * the row's id. The id is known only once the row exists: the first try
 * seals for a fresh id, and when the row is there under another id the
 * store writes nothing and names it, so the next try seals for that one. */
static int upsert_sealed(const ef_bootstrap_ctx *bc, ef_integration_in *in, const char *creds,
                         char **id)
{
    char want[37];
    if (ef_uuid_v4(want) != 0)
        return EF_EIO;
    int rc = EF_ECONFLICT;
    for (int attempt = 0; attempt < 4 && rc == EF_ECONFLICT; attempt++) {
        uint8_t *sealed = NULL;
        size_t n = 0;
        /* After the first try, want is the id of a row that exists. */
        rc = seal_for(bc, want, attempt > 0, creds, &sealed, &n, &in->key_id);
        if (rc)
            return rc;
        in->id = want;
        in->sealed = sealed;
        in->sealed_len = n;
        ef_free(*id);
        *id = NULL;
        rc = store_upsert(bc, in, id);
        ef_free(sealed);
        in->sealed = NULL;
        if (rc == EF_ECONFLICT && *id && strlen(*id) < sizeof(want))
            memcpy(want, *id, strlen(*id) + 1);
        else if (rc == EF_ECONFLICT)
            return EF_EDB;
    }
    in->id = NULL;
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
    bool sealed = bc->keys->n > 0;
    char *id = NULL;
    int rc;
    if (sealed)
        rc = upsert_sealed(bc, &in, creds, &id);
    else
        rc = store_upsert(bc, &in, &id);
    ops->close(cfg);
    if (rc) {
        ef_errf(err, errlen, "%s default integration not stored: %s", ops->name,
                rc == EF_EIO ? "no random id" : ef_store_errmsg(bc->st));
        ef_free(id);
        return rc;
    }
    if (!sealed)
        ef_channels_set_memory_creds(bc->channels, id, creds);
    EF_LOG(EF_LOG_INFO, EF_C_CFG, "integration=%s %s \"%s\" from the environment%s", id, ops->name,
           name, sealed ? "" : " (credentials in memory only: EF_SECRET_KEY unset)");
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

/* The first environment variable that holds platform credentials, or NULL. */
static const char *env_credentials(const ef_config *c)
{
    static const char *const keys[] = {"TELEGRAM_BOT_TOKEN", "WHATSAPP_ACCESS_TOKEN",
                                       "WHATSAPP_APP_SECRET"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = ef_cfg_get_str(c, keys[i]);
        if (v && *v)
            return keys[i];
    }
    return NULL;
}

/* EF_SECRET_KEY is required as soon as an integration holds credentials
 * (from the environment or sealed in the database): without it they would
 * sit in memory only, or not open at all. */
static int require_key(const ef_bootstrap_ctx *bc, char *err, size_t errlen)
{
    if (bc->keys->n > 0)
        return 0;
    const char *var = env_credentials(bc->cfg);
    if (var) {
        ef_errf(err, errlen,
                "EF_SECRET_KEY is not set but %s holds credentials: they are stored only "
                "encrypted (set 64 hex digits, e.g. openssl rand -hex 32)",
                var);
        return EF_EINVAL;
    }
    long n = 0;
    int rc = ef_store_integrations_sealed_count(bc->st, &n);
    if (rc) {
        ef_errf(err, errlen, "integrations not counted: %s", ef_store_errmsg(bc->st));
        return EF_EDB;
    }
    if (n > 0) {
        ef_errf(err, errlen,
                "EF_SECRET_KEY is not set but %ld integration(s) hold sealed credentials: set "
                "the key that sealed them",
                n);
        return EF_EINVAL;
    }
    return 0;
}

int ef_bootstrap_defaults(const ef_bootstrap_ctx *bc, char *err, size_t errlen)
{
    int rc = require_key(bc, err, errlen);
    if (!rc)
        rc = telegram_default(bc, err, errlen);
    if (!rc)
        rc = whatsapp_defaults(bc, err, errlen);
    if (!rc)
        rc = webchat_default(bc, err, errlen);
    return rc;
}
