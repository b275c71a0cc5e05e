/*
 * api_admin.c -- what admins manage over /api/v1 (operators get 403 from
 * the route table): operator accounts (list in api_auth.c; add with a
 * password, disable, enable) and integrations (list with status and
 * status_message, add with credentials, disable, enable).
 *
 * Never returned: password hashes, credentials (write-only: sealed with
 * EF_SECRET_KEY as `easyflow integration add` does, and checked with the
 * platform's adapter first), sealed blobs. Every change to an integration
 * goes through store/integrations.c, whose statements NOTIFY the running
 * gateways (channels.h rebuilds the live set), exactly as the CLI.
 */
#include "gateway/api_int.h"

#include "base/json.h"
#include "base/utf8.h"
#include "gateway/cli_operator.h"
#include "nlp/nlp.h"
#include "platforms/platform.h"
#include "store/console.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024
#define NAME_MAX_BYTES 255
#define CREDS_MAX 16384

/* The store's {"result":..} answer for account changes. */
static void account_answer(ef_api_call *c, ef_work_conn *conn, int rc, char *text, int status)
{
    if (rc != 0) {
        ef_api__store_error(c, rc, "operator", ef_store_errmsg(conn->st));
        return;
    }
    json_object *res = NULL;
    char err[80];
    const char *result = NULL;
    if (ef_json_parse(text, strlen(text), 16, &res, err, sizeof(err)) != 0 ||
        ef_pj_str(res, "result", true, &result, NULL, NULL, NULL) != 1 || !result) {
        ef_api__error(c, 500, "unexpected store answer");
    } else if (strcmp(result, "exists") == 0) {
        ef_api__error(c, 409, "an account with this e-mail exists");
    } else if (strcmp(result, "notfound") == 0) {
        ef_api__error(c, 404, "operator not found");
    } else if (strcmp(result, "self") == 0) {
        ef_api__error(c, 409, "an admin cannot disable their own account");
    } else {
        json_object_object_del(res, "result");
        ef_api__reply(c, status, json_object_get(res));
    }
    if (res)
        json_object_put(res);
    ef_free(text);
}

/* ---- operators ------------------------------------------------------------------ */

int ef_api__operator_body(ef_api_call *c, api_operator_in *o)
{
    o->email = ef_api__body_str(c, "email");
    o->name = ef_api__body_str(c, "name");
    o->role = ef_api__body_str(c, "role");
    o->password = ef_api__body_str(c, "password");
    if (!o->role)
        o->role = "operator";
    if (!o->email || !ef_operator_email_ok(o->email)) {
        ef_api__error(c, 400, "\"email\" must be an e-mail address");
        return 400;
    }
    const char *name = o->name, *pw = o->password;
    if (!name || !*name || strlen(name) > NAME_MAX_BYTES || !ef_utf8_valid(name, strlen(name))) {
        ef_api__error(c, 400, "\"name\" string is required (1-255 bytes)");
        return 400;
    }
    if (strcmp(o->role, "operator") != 0 && strcmp(o->role, "admin") != 0) {
        ef_api__error(c, 400, "\"role\" must be operator or admin");
        return 400;
    }
    if (!pw || strlen(pw) < PASSWORD_MIN || strlen(pw) > PASSWORD_MAX ||
        !ef_utf8_valid(pw, strlen(pw))) {
        ef_api__error(c, 422, "\"password\" must be 8..1024 bytes of text");
        return 422;
    }
    return 0;
}

void ef_api__operator_add(ef_api_call *c, ef_work_conn *conn)
{
    api_operator_in o;
    if (ef_api__operator_body(c, &o) != 0)
        return;
    const char *email = o.email, *name = o.name, *role = o.role, *pw = o.password;
    char *hash = NULL;
    if (ef_password_hash(pw, &hash) != 0) {
        ef_api__error(c, 500, "cannot hash the password");
        return;
    }
    char *text = NULL;
    int rc = ef_store_operator_add(conn->st, email, name, role, hash, &text);
    memset(hash, 0, strlen(hash));
    ef_free(hash);
    if (rc == 0)
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "operator account added role=%s by admin=%s", role,
               c->who.sub);
    account_answer(c, conn, rc, text, 201);
}

static void operator_set(ef_api_call *c, ef_work_conn *conn, bool active)
{
    char *text = NULL;
    int rc = ef_store_operator_set_active(conn->st, c->id, active, c->who.sub, &text);
    if (rc == EF_EINVAL) {
        ef_api__error(c, 404, "operator not found");
        return;
    }
    if (rc == 0)
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "operator=%s %s by admin=%s", c->id,
               active ? "enabled" : "disabled", c->who.sub);
    account_answer(c, conn, rc, text, 200);
}

void ef_api__operator_disable(ef_api_call *c, ef_work_conn *conn)
{
    operator_set(c, conn, false);
}

void ef_api__operator_enable(ef_api_call *c, ef_work_conn *conn)
{
    operator_set(c, conn, true);
}

/* ---- integrations ---------------------------------------------------------------- */

/* Whether a settings key may hold a secret (never shown back). */
static bool secret_key(const char *k)
{
    static const char *const words[] = {"secret", "token", "password", "key", "auth", NULL};
    for (size_t i = 0; words[i]; i++)
        if (strstr(k, words[i]))
            return true;
    return false;
}

/* One row as the API shows it: no credentials, no secret-looking setting. */
static json_object *integration_json(const ef_integration_row *r)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "platform", json_object_new_string(r->platform));
    json_object_object_add(o, "name", json_object_new_string(r->name ? r->name : ""));
    json_object_object_add(o, "external_id",
                           r->external_id ? json_object_new_string(r->external_id) : NULL);
    json_object_object_add(o, "status",
                           json_object_new_string(r->enabled ? r->status : "disconnected"));
    json_object_object_add(o, "status_message",
                           r->status_message ? json_object_new_string(r->status_message) : NULL);
    json_object_object_add(o, "enabled", json_object_new_boolean(r->enabled));
    json_object_object_add(o, "is_default", json_object_new_boolean(r->is_default));
    json_object_object_add(o, "source", r->source ? json_object_new_string(r->source) : NULL);
    json_object_object_add(o, "has_credentials", json_object_new_boolean(r->sealed != NULL));
    json_object *settings = json_object_new_object(), *all = NULL;
    char err[80];
    if (r->settings_json &&
        ef_json_parse(r->settings_json, strlen(r->settings_json), 8, &all, err, sizeof(err)) == 0) {
        json_object_object_foreach(all, k, v)
        {
            if (!secret_key(k) && json_object_is_type(v, json_type_string))
                json_object_object_add(settings, k, json_object_get(v));
        }
        json_object_put(all);
    }
    json_object_object_add(o, "settings", settings);
    const ef_platform_ops *ops = ef_platform_find(r->platform);
    if (ops && (ops->supports & EF_PLAT_WEBHOOK) && ops->webhook_path) {
        char path[160];
        snprintf(path, sizeof(path), "%s/%s", ops->webhook_path, r->id);
        json_object_object_add(o, "webhook_path", json_object_new_string(path));
    }
    return o;
}

void ef_api__integrations(ef_api_call *c, ef_work_conn *conn)
{
    ef_integration_row *rows = NULL;
    size_t n = 0;
    int rc = ef_store_integrations_list(conn->st, true, &rows, &n);
    if (rc != 0) {
        ef_api__store_error(c, rc, "integrations", ef_store_errmsg(conn->st));
        return;
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, integration_json(&rows[i]));
    ef_integration_rows_free(rows, n);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "integrations", arr);
    ef_api__reply(c, 200, o);
}

void ef_api__integration_in_cleanup(api_integration_in *n)
{
    if (n->creds) {
        memset(n->creds, 0, strlen(n->creds));
        ef_free(n->creds);
    }
    ef_free(n->settings);
}

/* Settings: an object of strings. 0, or answered. */
static int read_settings(ef_api_call *c, json_object *s, api_integration_in *n)
{
    json_object_object_foreach(s, k, v)
    {
        (void)k;
        if (!json_object_is_type(v, json_type_string)) {
            ef_api__error(c, 400, "\"settings\" values must be strings");
            return 400;
        }
    }
    n->settings = ef_strdup(
        json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

/* The settings' bot_file, when there is one, must load. 0, or answered. */
static int check_bot_file(ef_api_call *c)
{
    json_object *s = NULL, *v = NULL;
    if (!json_object_object_get_ex(c->json, "settings", &s) ||
        !json_object_object_get_ex(s, "bot_file", &v))
        return 0;
    ef_bot *bot = NULL;
    char err[400], why[480];
    if (ef_bot_load(json_object_get_string(v), &bot, err, sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "bot definition refused: %s", err);
        ef_api__error(c, 422, why);
        return 422;
    }
    ef_bot_free(bot);
    return 0;
}

int ef_api__integration_body(ef_api_call *c, api_integration_in *n)
{
    memset(n, 0, sizeof(*n));
    const char *platform = ef_api__body_str(c, "platform");
    n->name = ef_api__body_str(c, "name");
    n->ops = platform ? ef_platform_find(platform) : NULL;
    if (!n->ops) {
        ef_api__error(c, 400, "\"platform\" must name a compiled-in platform");
        return 400;
    }
    if (!n->name || !*n->name || strlen(n->name) > NAME_MAX_BYTES ||
        !ef_utf8_valid(n->name, strlen(n->name))) {
        ef_api__error(c, 400, "\"name\" string is required (1-255 bytes)");
        return 400;
    }
    json_object *cr = NULL, *s = NULL;
    if (!json_object_object_get_ex(c->json, "credentials", &cr) ||
        !json_object_is_type(cr, json_type_object)) {
        ef_api__error(c, 400, "\"credentials\" object is required");
        return 400;
    }
    n->creds = ef_strdup(json_object_to_json_string_ext(cr, JSON_C_TO_STRING_PLAIN));
    if (strlen(n->creds) > CREDS_MAX) {
        ef_api__error(c, 413, "credentials too large");
        return 413;
    }
    if (json_object_object_get_ex(c->json, "settings", &s) && s &&
        !json_object_is_type(s, json_type_object)) {
        ef_api__error(c, 400, "\"settings\" must be an object of strings");
        return 400;
    }
    if (s)
        return read_settings(c, s, n);
    n->settings = ef_strdup("{}");
    return 0;
}

/* Checks the credentials with the adapter, seals them, inserts the row
 * (which NOTIFYs the gateways). */
static void store_new(ef_api_call *c, ef_work_conn *conn, const api_integration_in *n)
{
    const ef_keyring *kr = c->api->opts.keys;
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[400];
    if (n->ops->open(n->creds, n->settings, &cfg, &pol, err, sizeof(err)) != 0) {
        ef_api__error(c, 422, err);
        return;
    }
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    char *id = NULL;
    char uuid[37];
    if (pol.receive_only) {
        ef_api__error(c, 422, "credentials: no API token to answer with");
    } else if (ef_uuid_v4(uuid) != 0 ||
               ef_cred_seal(kr, uuid, n->creds, strlen(n->creds), &sealed, &sealed_len) != 0) {
        ef_api__error(c, 500, "cannot seal the credentials");
    } else {
        const char *key = n->ops->channel_key(cfg);
        ef_integration_in in = {.id = uuid,
                                .platform = n->ops->name,
                                .name = n->name,
                                .external_id = key && *key ? key : NULL,
                                .settings_json = n->settings,
                                .source = "api",
                                .sealed = sealed,
                                .sealed_len = sealed_len,
                                .key_id = kr->ids[0]};
        int rc = ef_store_integration_add(conn->st, &in, &id);
        ef_integration_row row;
        memset(&row, 0, sizeof(row));
        if (rc == EF_ECONFLICT) {
            ef_api__error(c, 409, "this platform has an integration with this name or account");
        } else if (rc != 0) {
            ef_api__store_error(c, rc, "integration", ef_store_errmsg(conn->st));
        } else if ((rc = ef_store_integration_get(conn->st, id, &row)) != 0) {
            ef_api__store_error(c, rc, "integration", ef_store_errmsg(conn->st));
        } else {
            EF_LOG(EF_LOG_INFO, EF_C_HTTP, "integration=%s (%s) added by admin=%s", id,
                   n->ops->name, c->who.sub);
            json_object *o = json_object_new_object();
            json_object_object_add(o, "integration", integration_json(&row));
            ef_api__reply(c, 201, o);
        }
        ef_integration_row_cleanup(&row);
    }
    ef_free(id);
    ef_free(sealed);
    n->ops->close(cfg);
}

void ef_api__integration_add(ef_api_call *c, ef_work_conn *conn)
{
    const ef_keyring *kr = c->api->opts.keys;
    if (!kr || kr->n == 0) {
        ef_api__error(c, 422, "EF_SECRET_KEY is not set: credentials are stored only encrypted");
        return;
    }
    api_integration_in n;
    if (ef_api__integration_body(c, &n) == 0 && check_bot_file(c) == 0)
        store_new(c, conn, &n);
    ef_api__integration_in_cleanup(&n);
}

static void integration_set(ef_api_call *c, ef_work_conn *conn, bool enabled)
{
    int rc = ef_store_integration_set_enabled(conn->st, c->id, enabled);
    if (rc == EF_ENOTFOUND || rc == EF_EINVAL) {
        ef_api__error(c, 404, "integration not found");
        return;
    }
    if (rc != 0) {
        ef_api__store_error(c, rc, "integration", ef_store_errmsg(conn->st));
        return;
    }
    EF_LOG(EF_LOG_INFO, EF_C_HTTP, "integration=%s %s by admin=%s", c->id,
           enabled ? "enabled" : "disabled", c->who.sub);
    ef_integration_row row;
    memset(&row, 0, sizeof(row));
    rc = ef_store_integration_get(conn->st, c->id, &row);
    if (rc != 0) {
        ef_api__store_error(c, rc, "integration", ef_store_errmsg(conn->st));
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "integration", integration_json(&row));
    ef_integration_row_cleanup(&row);
    ef_api__reply(c, 200, o);
}

void ef_api__integration_disable(ef_api_call *c, ef_work_conn *conn)
{
    integration_set(c, conn, false);
}

void ef_api__integration_enable(ef_api_call *c, ef_work_conn *conn)
{
    integration_set(c, conn, true);
}
