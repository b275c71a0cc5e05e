/*
 * api.c -- /api/v1: the route table, the checks every request goes
 * through, and the reply helpers. See api.h for the contract.
 *
 * A request, in order (each step may answer and stop):
 *   route      method + path against the table (404, 405)
 *   token      Authorization: Bearer <access token>, verified with the
 *              signing key alone (401), then the route's role (403)
 *   body       bounded (413), a JSON object where the route wants one (400)
 *   precheck   the route's own check on the lws thread (login: throttle)
 *   handler    on the work pool: PostgreSQL, Redis, password hashing
 */
#include "gateway/api_int.h"

#include "base/json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The routes, Redis-command-table style: {method, pattern, handler, role,
 * json body, precheck}. */
static const api_route routes[] = {
    {"POST", "/auth/login", ef_api__login, API_PUBLIC, true, ef_api__login_precheck},
    {"POST", "/auth/refresh", ef_api__refresh, API_PUBLIC, true, NULL},
    {"POST", "/auth/logout", ef_api__logout, API_OPERATOR, true, NULL},
    {"POST", "/auth/logout-all", ef_api__logout_all, API_OPERATOR, false, NULL},
    {"GET", "/operators", ef_api__operators, API_ADMIN, false, NULL},
    {"POST", "/operators", ef_api__operator_add, API_ADMIN, true, NULL},
    {"POST", "/operators/{id}/disable", ef_api__operator_disable, API_ADMIN, false, NULL},
    {"POST", "/operators/{id}/enable", ef_api__operator_enable, API_ADMIN, false, NULL},
    {"GET", "/integrations", ef_api__integrations, API_ADMIN, false, NULL},
    {"POST", "/integrations", ef_api__integration_add, API_ADMIN, true, NULL},
    {"POST", "/integrations/{id}/disable", ef_api__integration_disable, API_ADMIN, false, NULL},
    {"POST", "/integrations/{id}/enable", ef_api__integration_enable, API_ADMIN, false, NULL},
    {"GET", "/quick-replies", ef_api__quick_list, API_OPERATOR, false, NULL},
    {"POST", "/quick-replies", ef_api__quick_add, API_ADMIN, true, NULL},
    {"PUT", "/quick-replies/{id}", ef_api__quick_update, API_ADMIN, true, NULL},
    {"DELETE", "/quick-replies/{id}", ef_api__quick_delete, API_ADMIN, false, NULL},
    {"GET", "/conversations", ef_api__conv_list, API_OPERATOR, false, NULL},
    {"GET", "/conversations/{id}", ef_api__conv_get, API_OPERATOR, false, NULL},
    {"POST", "/conversations/{id}/claim", ef_api__conv_claim, API_OPERATOR, false, NULL},
    {"POST", "/conversations/{id}/release", ef_api__conv_release, API_OPERATOR, false, NULL},
    {"POST", "/conversations/{id}/close", ef_api__conv_close, API_OPERATOR, false, NULL},
    {"POST", "/conversations/{id}/escalate", ef_api__conv_escalate, API_OPERATOR, false, NULL},
    {"POST", "/conversations/{id}/messages", ef_api__conv_reply, API_OPERATOR, true, NULL},
    {"GET", "/conversations/{id}/notes", ef_api__notes_list, API_OPERATOR, false, NULL},
    {"POST", "/conversations/{id}/notes", ef_api__notes_add, API_OPERATOR, true, NULL},
    {"GET", "/metrics", ef_api__metrics, API_OPERATOR, false, NULL},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- lifecycle ------------------------------------------------------------ */

ef_api *ef_api_new(const ef_api_opts *opts)
{
    ef_api *api = ef_calloc(1, sizeof(*api));
    api->opts = *opts;
    if (opts->keys && opts->keys->n > 0) {
        if (ef_api_token_key(opts->keys->keys[0], 32, api->key) != 0)
            EF_PANIC("cannot derive the API token key");
    } else {
        if (ef_random_bytes(api->key, sizeof(api->key)) != 0)
            EF_PANIC("no random bytes for the API token key");
        EF_LOG(EF_LOG_WARN, EF_C_HTTP,
               "EF_SECRET_KEY is not set: API access tokens are signed with a key of this "
               "process only (they stop working at restart and in other gateways)");
    }
    api->throttle = ef_api__throttle_new();
    return api;
}

void ef_api_free(ef_api *api)
{
    if (!api)
        return;
    ef_api__throttle_free(api->throttle);
    memset(api->key, 0, sizeof(api->key));
    ef_free(api);
}

/* Whether path matches pattern; the {id} segment goes to id. */
static bool match(const char *pattern, const char *path, char *id, size_t idlen)
{
    while (*pattern && *path) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= idlen)
                return false;
            memcpy(id, path, n);
            id[n] = '\0';
            path += n;
            pattern += 4;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* The route for c, or NULL with 404/405 answered. */
static const api_route *find_route(ef_api_call *c)
{
    const char *rest = c->path + strlen(EF_API_PREFIX);
    bool path_known = false;
    for (size_t i = 0; i < NROUTES; i++) {
        char id[sizeof(c->id)];
        if (!match(routes[i].pattern, rest, id, sizeof(id)))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, c->method) == 0) {
            memcpy(c->id, id, sizeof(id));
            return &routes[i];
        }
    }
    ef_api__error(c, path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
    return NULL;
}

/* The Bearer token and the route's role: 0, or answered 401/403. */
static int check_token(ef_api_call *c)
{
    const char *a = c->authorization;
    if (!a || strncasecmp(a, "Bearer ", 7) != 0) {
        c->header_name = "www-authenticate:";
        snprintf(c->header_value, sizeof(c->header_value), "Bearer");
        ef_api__error(c, 401, "missing bearer token");
        return 401;
    }
    const char *tok = a + 7;
    while (*tok == ' ')
        tok++;
    int rc = ef_api_token_verify(c->api->key, tok, strlen(tok), ef_wall_ms() / 1000, &c->who);
    if (rc != 0) {
        memset(&c->who, 0, sizeof(c->who));
        c->header_name = "www-authenticate:";
        snprintf(c->header_value, sizeof(c->header_value), "Bearer error=\"invalid_token\"");
        ef_api__error(c, 401, rc == EF_ETIMEDOUT ? "token expired" : "invalid token");
        return 401;
    }
    bool admin = strcmp(c->who.role, "admin") == 0;
    bool ok = c->route->role == API_ADMIN ? admin : admin || strcmp(c->who.role, "operator") == 0;
    if (!ok) {
        ef_api__error(c, 403, c->route->role == API_ADMIN ? "admins only" : "operators only");
        return 403;
    }
    return 0;
}

int ef_api__parse_body(ef_api_call *c, const char *body, size_t len)
{
    char err[160];
    ef_json_limits lim = {
        .max_depth = 8, .max_string = 32 * 1024, .max_array = 256, .max_keys = 64};
    if (len == 0) {
        ef_api__error(c, 400, "a JSON object body is required");
        return 400;
    }
    if (ef_json_parse_limits(body, len, &lim, &c->json, err, sizeof(err)) != 0 ||
        !json_object_is_type(c->json, json_type_object)) {
        char why[200];
        snprintf(why, sizeof(why), "invalid JSON body: %s", c->json ? "not an object" : err);
        ef_api__error(c, 400, why);
        return 400;
    }
    return 0;
}

/* ---- one call ------------------------------------------------------------ */

ef_api_call *ef_api_call_new(ef_api *api, const ef_api_in *in)
{
    ef_api_call *c = ef_calloc(1, sizeof(*c));
    c->api = api;
    c->started_ms = ef_now_ms();
    snprintf(c->method, sizeof(c->method), "%s", in->method ? in->method : "");
    snprintf(c->path, sizeof(c->path), "%s", in->path ? in->path : "");
    for (size_t i = 0; i < in->nargs && c->nargs < API_ARGS_MAX; i++)
        c->args[c->nargs++] = ef_strdup(in->args[i]);
    c->authorization = in->authorization ? ef_strdup(in->authorization) : NULL;
    snprintf(c->ip, sizeof(c->ip), "%s", in->ip && *in->ip ? in->ip : "-");
    c->user_agent = in->user_agent ? ef_strdup(in->user_agent) : NULL;
    return c;
}

static void run_task(ef_work_conn *conn, void *ud)
{
    ef_api_call *c = ud;
    if (!conn) {
        ef_api__error(c, 503, "shutting down");
        return;
    }
    c->route->handler(c, conn);
    if (!c->out)
        ef_api__error(c, 500, "no answer");
}

static void task_done(void *ud)
{
    ef_api_call *c = ud;
    c->done(c->done_ud);
}

int ef_api_call_start(ef_api_call *c, const char *body, size_t len, bool too_large,
                      void (*done)(void *ud), void *ud)
{
    c->route = find_route(c);
    if (!c->route)
        return 1;
    if (c->route->role != API_PUBLIC && check_token(c) != 0)
        return 1;
    if (too_large) {
        ef_api__error(c, 413, "body too large");
        return 1;
    }
    if (c->route->json_body && ef_api__parse_body(c, body, len) != 0)
        return 1;
    if (c->route->precheck) {
        c->route->precheck(c);
        if (c->out)
            return 1;
    }
    c->done = done;
    c->done_ud = ud;
    int rc = ef_work_submit(c->api->opts.work, run_task, task_done, c);
    if (rc != 0) {
        ef_api__error(c, 503, rc == EF_ELIMIT ? "too busy, retry later" : "shutting down");
        return 1;
    }
    return 0;
}

ef_api_out ef_api_call_result(const ef_api_call *c)
{
    ef_api_out o = {.status = c->status ? c->status : 500,
                    .body = c->out ? c->out : "{\"error\":\"no answer\"}",
                    .header_name = c->header_name,
                    .header_value = c->header_value};
    o.len = strlen(o.body);
    return o;
}

void ef_api_call_free(ef_api_call *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nargs; i++)
        ef_free(c->args[i]);
    ef_free(c->authorization);
    ef_free(c->user_agent);
    if (c->json)
        json_object_put(c->json);
    ef_free(c->out);
    ef_free(c);
}
