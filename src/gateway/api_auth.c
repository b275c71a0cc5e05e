/*
 * api_auth.c -- /api/v1/auth/...: login, refresh, logout, logout-all; the
 * login throttle; the admins' operator list.
 *
 * Login answers 401 with one body for every bad credential, and spends
 * the same Argon2id work whether the e-mail exists or not (a dummy hash
 * is verified for unknown accounts). Failures are counted per account and
 * per client address in memory (this process): past the limit within the
 * window, further attempts get 429 with Retry-After, correct password or
 * not, for a lockout that doubles with each further failure (at most the
 * window). A successful login clears the account's count.
 *
 * Refresh tokens are 32 random bytes (base64url); only their SHA-256 is
 * stored. Access tokens: api_token.h.
 */
#include "gateway/api_int.h"

#include "base/json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define ACCOUNT_LIMIT 5 /* failures per account within the window */
#define ADDR_LIMIT 20   /* failures per client address within the window */
#define WINDOW_MS ((int64_t)15 * 60 * 1000)
#define LOCKOUT_MS ((int64_t)60 * 1000) /* the first lockout; doubles */
#define THROTTLE_SLOTS 4096
#define EMAIL_MAX 255
#define PASSWORD_MAX 1024
#define BAD_LOGIN "invalid e-mail or password"

/* ---- the throttle ------------------------------------------------------------ */

typedef struct th_entry {
    char key[EMAIL_MAX + 8]; /* "a:<email>" or "i:<address>"; "" = free */
    int fails;
    int64_t first_ms, last_ms, blocked_until_ms;
} th_entry;

struct api_throttle {
    pthread_mutex_t lock;
    th_entry e[THROTTLE_SLOTS];
};

api_throttle *ef_api__throttle_new(void)
{
    api_throttle *t = ef_calloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void ef_api__throttle_free(api_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    ef_free(t);
}

/* The entry for key (with the lock held); create: take a free slot, else
 * the least recently used one. */
static th_entry *th_find(api_throttle *t, const char *key, bool create, int64_t now)
{
    th_entry *victim = NULL;
    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        th_entry *e = &t->e[i];
        if (!e->key[0]) {
            if (!victim || victim->key[0])
                victim = e;
        } else if (strcmp(e->key, key) == 0) {
            return e;
        } else if (!victim || (victim->key[0] && e->last_ms < victim->last_ms)) {
            victim = e;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    victim->first_ms = now;
    victim->last_ms = now;
    return victim;
}

/* Milliseconds key stays locked (0: not locked). */
static int64_t th_locked_ms(api_throttle *t, const char *key, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    th_entry *e = th_find(t, key, false, now);
    int64_t left = e && e->blocked_until_ms > now ? e->blocked_until_ms - now : 0;
    pthread_mutex_unlock(&t->lock);
    return left;
}

static void th_fail(api_throttle *t, const char *key, int limit, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    th_entry *e = th_find(t, key, true, now);
    if (now - e->first_ms > WINDOW_MS && now >= e->blocked_until_ms) {
        e->fails = 0;
        e->first_ms = now;
    }
    e->fails++;
    e->last_ms = now;
    if (e->fails >= limit) {
        int shift = e->fails - limit > 4 ? 4 : e->fails - limit;
        int64_t lock = LOCKOUT_MS << shift;
        e->blocked_until_ms = now + (lock > WINDOW_MS ? WINDOW_MS : lock);
    }
    pthread_mutex_unlock(&t->lock);
}

static void th_clear(api_throttle *t, const char *key, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    th_entry *e = th_find(t, key, false, now);
    if (e)
        memset(e, 0, sizeof(*e));
    pthread_mutex_unlock(&t->lock);
}

static void keys_for(const ef_api_call *c, const char *email, char *acct, size_t alen, char *addr,
                     size_t iplen)
{
    snprintf(acct, alen, "a:");
    for (size_t i = 0; email && email[i] && i + 3 < alen; i++) {
        char ch = email[i];
        acct[i + 2] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        acct[i + 3] = '\0';
    }
    snprintf(addr, iplen, "i:%s", c->ip);
}

int ef_api__login_body(ef_api_call *c, const char **email, const char **password)
{
    *email = ef_api__body_str(c, "email");
    *password = ef_api__body_str(c, "password");
    if (!*email || !*password || !**email || strlen(*email) > EMAIL_MAX ||
        strlen(*password) > PASSWORD_MAX) {
        ef_api__error(c, 400, "\"email\" and \"password\" strings are required");
        return 400;
    }
    return 0;
}

void ef_api__login_precheck(ef_api_call *c)
{
    const char *email = NULL, *pw = NULL;
    if (ef_api__login_body(c, &email, &pw) != 0)
        return;
    char acct[EMAIL_MAX + 8], addr[80];
    keys_for(c, email, acct, sizeof(acct), addr, sizeof(addr));
    int64_t now = ef_now_ms();
    int64_t a = th_locked_ms(c->api->throttle, acct, now);
    int64_t i = th_locked_ms(c->api->throttle, addr, now);
    int64_t left = a > i ? a : i;
    if (left > 0) {
        c->header_name = "retry-after:";
        snprintf(c->header_value, sizeof(c->header_value), "%lld", (long long)(left + 999) / 1000);
        ef_api__error(c, 429, "too many failed logins, retry later");
    }
}

/* ---- tokens ------------------------------------------------------------------ */

/* A new refresh token (base64url of 32 random bytes) and its SHA-256 hex. */
static int new_refresh(char **token, char hash[65])
{
    uint8_t raw[32];
    if (ef_random_bytes(raw, sizeof(raw)) != 0)
        return EF_EIO;
    *token = ef_base64url_encode(raw, sizeof(raw));
    memset(raw, 0, sizeof(raw));
    ef_sha256_hex(*token, strlen(*token), hash);
    return 0;
}

/* 200 with a new access token for (user, role) and the refresh token. */
static void reply_tokens(ef_api_call *c, const char *user_id, const char *role, const char *name,
                         const char *refresh)
{
    ef_api_claims cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", user_id);
    snprintf(cl.role, sizeof(cl.role), "%s", role);
    cl.iat = ef_wall_ms() / 1000;
    cl.exp = cl.iat + API_ACCESS_TTL_S;
    char *access = NULL;
    if (ef_api_token_sign(c->api->key, &cl, &access) != 0) {
        ef_api__error(c, 500, "cannot sign a token");
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "access_token", json_object_new_string(access));
    json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
    json_object_object_add(o, "expires_in", json_object_new_int(API_ACCESS_TTL_S));
    json_object_object_add(o, "refresh_token", json_object_new_string(refresh));
    json_object_object_add(o, "refresh_expires_in", json_object_new_int(API_REFRESH_TTL_S));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "id", json_object_new_string(user_id));
    json_object_object_add(u, "role", json_object_new_string(role));
    if (name)
        json_object_object_add(u, "name", json_object_new_string(name));
    json_object_object_add(o, "user", u);
    ef_free(access);
    ef_api__reply(c, 200, o);
}

/* ---- login ------------------------------------------------------------------- */

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char *dummy_hash;

static void make_dummy(void)
{
    if (ef_password_hash("easyflow-timing-equalizer", &dummy_hash) != 0)
        dummy_hash = NULL;
}

static void login_failed(ef_api_call *c, const char *acct, const char *addr, const char *why)
{
    int64_t now = ef_now_ms();
    th_fail(c->api->throttle, acct, ACCOUNT_LIMIT, now);
    th_fail(c->api->throttle, addr, ADDR_LIMIT, now);
    EF_LOG(EF_LOG_INFO, EF_C_HTTP, "login refused ip=%s (%s)", c->ip, why);
    ef_api__error(c, 401, BAD_LOGIN);
}

void ef_api__login(ef_api_call *c, ef_work_conn *conn)
{
    const char *email = ef_api__body_str(c, "email");
    const char *pw = ef_api__body_str(c, "password");
    char acct[EMAIL_MAX + 8], addr[80];
    keys_for(c, email, acct, sizeof(acct), addr, sizeof(addr));
    ef_operator op;
    memset(&op, 0, sizeof(op));
    int rc = ef_store_operator_by_email(conn->st, email, &op);
    if (rc != 0 && rc != EF_ENOTFOUND) {
        ef_api__store_error(c, rc, "login", ef_store_errmsg(conn->st));
        return;
    }
    bool usable = rc == 0 && op.active && op.password_hash;
    if (!usable) {
        pthread_once(&dummy_once, make_dummy);
        ef_password_verify(pw, dummy_hash);
        login_failed(c, acct, addr, rc == 0 ? "account disabled" : "unknown account");
    } else if (ef_password_verify(pw, op.password_hash) != 0) {
        login_failed(c, acct, addr, "wrong password");
    } else {
        char *rehash = NULL, *refresh = NULL, hash[65];
        if (ef_password_needs_rehash(op.password_hash) && ef_password_hash(pw, &rehash) != 0)
            rehash = NULL;
        if (new_refresh(&refresh, hash) != 0) {
            ef_api__error(c, 500, "no random bytes");
        } else if ((rc = ef_store_login_ok(conn->st, op.id, hash, c->ip[0] != '-' ? c->ip : NULL,
                                           c->user_agent, API_REFRESH_TTL_S, rehash)) != 0) {
            ef_api__store_error(c, rc, "login", ef_store_errmsg(conn->st));
        } else {
            th_clear(c->api->throttle, acct, ef_now_ms());
            EF_LOG(EF_LOG_INFO, EF_C_HTTP, "login user=%s role=%s ip=%s%s", op.id, op.role, c->ip,
                   rehash ? " (password hash upgraded)" : "");
            reply_tokens(c, op.id, op.role, op.name, refresh);
        }
        ef_free(refresh);
        ef_free(rehash);
    }
    ef_operator_cleanup(&op);
}

/* ---- refresh and logout ------------------------------------------------------- */

int ef_api__refresh_body(ef_api_call *c, const char **token)
{
    *token = ef_api__body_str(c, "refresh_token");
    if (!*token || !**token || strlen(*token) > 256) {
        ef_api__error(c, 400, "\"refresh_token\" string is required");
        return 400;
    }
    return 0;
}

void ef_api__refresh(ef_api_call *c, ef_work_conn *conn)
{
    const char *old = NULL;
    if (ef_api__refresh_body(c, &old) != 0)
        return;
    char old_hash[65], new_hash[65], err[80], *refresh = NULL, *res = NULL;
    ef_sha256_hex(old, strlen(old), old_hash);
    if (new_refresh(&refresh, new_hash) != 0) {
        ef_api__error(c, 500, "no random bytes");
        return;
    }
    int rc = ef_store_refresh_rotate(conn->st, old_hash, new_hash, c->ip[0] != '-' ? c->ip : NULL,
                                     c->user_agent, API_REFRESH_TTL_S, &res);
    json_object *o = NULL;
    if (rc != 0) {
        ef_api__store_error(c, rc, "refresh", ef_store_errmsg(conn->st));
    } else if (ef_json_parse(res, strlen(res), 4, &o, err, sizeof(err)) != 0) {
        ef_api__error(c, 500, "unreadable store answer");
    } else {
        const char *result = NULL, *uid = NULL, *role = NULL, *name = NULL;
        ef_pj_str(o, "result", true, &result, NULL, NULL, NULL);
        ef_pj_str(o, "user_id", false, &uid, NULL, NULL, NULL);
        ef_pj_str(o, "role", false, &role, NULL, NULL, NULL);
        ef_pj_str(o, "name", false, &name, NULL, NULL, NULL);
        if (result && strcmp(result, "ok") == 0 && uid && role) {
            reply_tokens(c, uid, role, name, refresh);
        } else {
            if (result && strcmp(result, "reuse") == 0)
                EF_LOG(EF_LOG_WARN, EF_C_HTTP,
                       "refresh token reused after rotation: family revoked user=%s ip=%s",
                       uid ? uid : "-", c->ip);
            ef_api__error(c, 401, "invalid refresh token");
        }
    }
    if (o)
        json_object_put(o);
    ef_free(res);
    ef_free(refresh);
}

void ef_api__logout(ef_api_call *c, ef_work_conn *conn)
{
    const char *tok = ef_api__body_str(c, "refresh_token");
    if (!tok || !*tok || strlen(tok) > 256) {
        ef_api__error(c, 400, "\"refresh_token\" string is required");
        return;
    }
    char hash[65];
    ef_sha256_hex(tok, strlen(tok), hash);
    long n = 0;
    int rc = ef_store_refresh_revoke(conn->st, c->who.sub, hash, &n);
    if (rc != 0) {
        ef_api__store_error(c, rc, "logout", ef_store_errmsg(conn->st));
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "revoked", json_object_new_int64(n));
    ef_api__reply(c, 200, o);
}

void ef_api__logout_all(ef_api_call *c, ef_work_conn *conn)
{
    long n = 0;
    int rc = ef_store_refresh_revoke_all(conn->st, c->who.sub, &n);
    if (rc != 0) {
        ef_api__store_error(c, rc, "logout", ef_store_errmsg(conn->st));
        return;
    }
    EF_LOG(EF_LOG_INFO, EF_C_HTTP, "logout everywhere user=%s revoked=%ld", c->who.sub, n);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "revoked", json_object_new_int64(n));
    ef_api__reply(c, 200, o);
}

void ef_api__operators(ef_api_call *c, ef_work_conn *conn)
{
    char *json = NULL;
    int rc = ef_store_operators_list(conn->st, &json);
    if (rc != 0) {
        ef_api__store_error(c, rc, "operators", ef_store_errmsg(conn->st));
        return;
    }
    ef_api__reply_text(c, 200, json);
}
