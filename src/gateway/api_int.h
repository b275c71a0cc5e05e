/*
 * api_int.h -- what api.c, api_auth.c and api_conversations.c share:
 * the call, the route table's row, the reply helpers. Private to the API.
 *
 * Thread model: a call belongs to the lws thread until it is submitted to
 * the work pool, then to one worker until done(); never both at once.
 */
#ifndef EF_GATEWAY_API_INT_H
#define EF_GATEWAY_API_INT_H

#include "gateway/api.h"
#include "gateway/api_token.h"

#include <pthread.h>

struct json_object;
struct ef_platform_ops;

#define API_ACCESS_TTL_S (15 * 60)
#define API_REFRESH_TTL_S (30 * 24 * 3600)
#define API_ARGS_MAX 16

typedef enum api_role {
    API_PUBLIC = 0, /* no token (login, refresh) */
    API_OPERATOR,   /* an operator or an admin */
    API_ADMIN
} api_role;

/* Runs on a work-pool thread; c->conn is NULL when the pool is stopping. */
typedef void (*api_handler)(ef_api_call *c, ef_work_conn *conn);
/* Runs on the lws thread before the handler is queued: may answer (then
 * the handler never runs). */
typedef void (*api_precheck)(ef_api_call *c);

typedef struct api_route {
    const char *method;
    const char *pattern; /* after EF_API_PREFIX; "{id}" matches one segment */
    api_handler handler;
    api_role role;
    bool json_body; /* the body must be a JSON object */
    api_precheck precheck;
} api_route;

typedef struct api_throttle api_throttle;

struct ef_api {
    ef_api_opts opts;
    uint8_t key[32]; /* token signing key */
    api_throttle *throttle;
};

struct ef_api_call {
    ef_api *api;
    const api_route *route;
    char method[8];
    char path[256];
    char id[64]; /* the {id} segment */
    char *args[API_ARGS_MAX];
    size_t nargs;
    char *authorization;
    char ip[64];
    char *user_agent;
    struct json_object *json; /* the parsed body (json_body routes) */
    ef_api_claims who;        /* the token's claims (non-public routes) */
    void (*done)(void *ud);
    void *done_ud;
    /* The answer. */
    int status;
    char *out;
    size_t out_len;
    const char *header_name;
    char header_value[64];
    int64_t started_ms;
};

/* The value of query argument name (NULL when absent); borrowed. */
const char *ef_api__arg(const ef_api_call *c, const char *name);
/* A string member of the JSON body (NULL when absent or not a string). */
const char *ef_api__body_str(const ef_api_call *c, const char *key);
/* Answers with o (takes the reference) serialized. */
void ef_api__reply(ef_api_call *c, int status, struct json_object *o);
/* Answers with JSON text made elsewhere (takes ownership of text). */
void ef_api__reply_text(ef_api_call *c, int status, char *text);
/* Answers {"error": why} and logs one line. */
void ef_api__error(ef_api_call *c, int status, const char *why);
/* 503 for a store error (the reason logged, not returned), 400 for data
 * the database refused (a malformed id), 404 for EF_ENOTFOUND. */
void ef_api__store_error(ef_api_call *c, int rc, const char *what, const char *detail);

/* ---- request bodies ----------------------------------------------------------
 * The readers of each route's JSON body, apart from its handler so that
 * tests/fuzz/fuzz_api_body.c drives them without HTTP or a database. Each
 * returns 0 with the members borrowed from c->json, or the status it
 * answered (400/413/422, c->out set). */

/* api.c: the body as a JSON object within the API's limits into c->json. */
int ef_api__parse_body(ef_api_call *c, const char *body, size_t len);
/* api_auth.c: login {"email","password"}; refresh {"refresh_token"}. */
int ef_api__login_body(ef_api_call *c, const char **email, const char **password);
int ef_api__refresh_body(ef_api_call *c, const char **token);
/* api_conversations.c: an operator's reply {"text"} or {"template"}. */
int ef_api__reply_body(ef_api_call *c, const char **text, const char **tmpl);
/* api_notes.c: a note {"body"}; a quick reply {"title","body","lang",
 * "position"} (create: title and body required). */
int ef_api__note_body(ef_api_call *c, const char **body);
typedef struct api_quick_in {
    const char *title, *body, *lang; /* NULL when absent (update) */
    char pos[24];                    /* the position in decimal; "" when absent */
} api_quick_in;
int ef_api__quick_body(ef_api_call *c, bool create, api_quick_in *q);
/* api_admin.c: an operator account {"email","name","role","password"};
 * an integration {"platform","name","credentials","settings"} (its
 * settings' bot_file is checked by the handler, not here). */
typedef struct api_operator_in {
    const char *email, *name, *role, *password;
} api_operator_in;
int ef_api__operator_body(ef_api_call *c, api_operator_in *o);
typedef struct api_integration_in {
    const struct ef_platform_ops *ops;
    const char *name;
    char *creds;    /* owned, wiped by the cleanup */
    char *settings; /* owned */
} api_integration_in;
int ef_api__integration_body(ef_api_call *c, api_integration_in *n);
void ef_api__integration_in_cleanup(api_integration_in *n);

/* api_auth.c */
api_throttle *ef_api__throttle_new(void);
void ef_api__throttle_free(api_throttle *t);
void ef_api__login_precheck(ef_api_call *c);
void ef_api__login(ef_api_call *c, ef_work_conn *conn);
void ef_api__refresh(ef_api_call *c, ef_work_conn *conn);
void ef_api__logout(ef_api_call *c, ef_work_conn *conn);
void ef_api__logout_all(ef_api_call *c, ef_work_conn *conn);
void ef_api__operators(ef_api_call *c, ef_work_conn *conn);

/* api_conversations.c */
void ef_api__conv_list(ef_api_call *c, ef_work_conn *conn);
void ef_api__conv_get(ef_api_call *c, ef_work_conn *conn);
void ef_api__conv_claim(ef_api_call *c, ef_work_conn *conn);
void ef_api__conv_release(ef_api_call *c, ef_work_conn *conn);
void ef_api__conv_close(ef_api_call *c, ef_work_conn *conn);
void ef_api__conv_escalate(ef_api_call *c, ef_work_conn *conn);
void ef_api__conv_reply(ef_api_call *c, ef_work_conn *conn);

/* api_notes.c */
void ef_api__notes_list(ef_api_call *c, ef_work_conn *conn);
void ef_api__notes_add(ef_api_call *c, ef_work_conn *conn);
void ef_api__quick_list(ef_api_call *c, ef_work_conn *conn);
void ef_api__quick_add(ef_api_call *c, ef_work_conn *conn);
void ef_api__quick_update(ef_api_call *c, ef_work_conn *conn);
void ef_api__quick_delete(ef_api_call *c, ef_work_conn *conn);

/* api_admin.c */
void ef_api__operator_add(ef_api_call *c, ef_work_conn *conn);
void ef_api__operator_disable(ef_api_call *c, ef_work_conn *conn);
void ef_api__operator_enable(ef_api_call *c, ef_work_conn *conn);
void ef_api__integrations(ef_api_call *c, ef_work_conn *conn);
void ef_api__integration_add(ef_api_call *c, ef_work_conn *conn);
void ef_api__integration_disable(ef_api_call *c, ef_work_conn *conn);
void ef_api__integration_enable(ef_api_call *c, ef_work_conn *conn);

/* api_metrics.c */
void ef_api__metrics(ef_api_call *c, ef_work_conn *conn);

/* api_window.c: the conversation's channel and its reply window. */
typedef struct api_window {
    bool known;          /* the channel is live and was asked */
    bool closed;         /* the window has a limit and it passed */
    int64_t limit_s;     /* the window's length (0: none) */
    int64_t closes_at;   /* Unix seconds (0: no limit or no inbound message yet) */
    char template_[128]; /* the channel's re-engagement template ("" : none) */
    char lang[16];       /* its language ("" : the platform's default) */
    char handoff[512];   /* the bot's hand-off message ("" : none) */
    char status[16];     /* the conversation's status before the request */
} api_window;
/* Reads the conversation's integration and last inbound message, and asks
 * the live channel: 0, or a store error (EF_ENOTFOUND, EF_EINVAL, EF_EDB). */
int ef_api__window(ef_api_call *c, ef_work_conn *conn, const char *conv_id, api_window *w);
/* w as the JSON object "reply_window" (new reference). */
struct json_object *ef_api__window_json(const api_window *w);
/* Whether the caller's token says admin. */
bool ef_api__is_admin(const ef_api_call *c);

#endif /* EF_GATEWAY_API_INT_H */
