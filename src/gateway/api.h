/*
 * api.h -- the operator API under /api/v1 (JSON): login and tokens
 * (api_auth.c), the console's conversations (api_conversations.c), notes
 * and quick replies (api_notes.c), the admins' operators and integrations
 * (api_admin.c). The route table is in api.c: {method, path pattern,
 * handler, role}.
 *
 * One request is one ef_api_call. http.c makes it from what lws parsed
 * (ef_api_in, copied), starts it, and takes the answer back (status, JSON
 * body, an optional extra header). Routing, the Bearer check (a signed
 * token, no database), the role check, body parsing and the login
 * throttle run at once on the caller's thread and may answer there; the
 * rest (PostgreSQL, Redis, password hashing) runs on the work pool and
 * calls done(ud) once on a worker thread when the answer is ready.
 *
 * Must never: block the calling (lws) thread, log a token or a password,
 * answer without a JSON body ({"error": "..."} for every failure, one log
 * line each).
 *
 * Thread model: ef_api_new/free and ef_api_call_new/start/result/free on
 * the lws thread; handlers on work-pool threads; the throttle table has
 * its own lock.
 */
#ifndef EF_GATEWAY_API_H
#define EF_GATEWAY_API_H

#include "base/crypto.h"
#include "base/ef.h"
#include "gateway/work.h"

struct ef_channels;

#define EF_API_PREFIX "/api/v1"
#define EF_API_MAX_BODY ((size_t)64 * 1024)

typedef struct ef_api ef_api;
typedef struct ef_api_call ef_api_call;

typedef struct ef_api_opts {
    const ef_keyring *keys;       /* keys[0] (EF_SECRET_KEY) signs tokens; none: a random
                                     key per process (tokens die with it), with a warning */
    ef_work *work;                /* borrowed */
    struct ef_channels *channels; /* borrowed; the live set, for a channel's reply window
                                     and bot (NULL: no window is checked) */
    void (*wake)(void *ud);       /* an operator reply was queued: wake the dispatcher */
    void *wake_ud;
} ef_api_opts;

ef_api *ef_api_new(const ef_api_opts *opts);
void ef_api_free(ef_api *api);

/* What http.c read of the request; everything is copied. */
typedef struct ef_api_in {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* starts with EF_API_PREFIX, no query */
    const char *const *args; /* decoded query fragments "name=value" */
    size_t nargs;
    const char *authorization; /* NULL when absent */
    const char *ip;            /* the peer's address */
    const char *user_agent;    /* NULL when absent */
} ef_api_in;

typedef struct ef_api_out {
    int status;
    const char *body; /* JSON */
    size_t len;
    const char *header_name;  /* "retry-after:", "www-authenticate:" or NULL */
    const char *header_value; /* its value */
} ef_api_out;

ef_api_call *ef_api_call_new(ef_api *api, const ef_api_in *in);
/* The body (at most EF_API_MAX_BODY bytes; too_large: more came and was
 * dropped, answered 413). Returns 1 when the answer is decided already
 * (done never runs), 0 when it is under way: done(ud) then runs exactly
 * once on a worker thread. */
int ef_api_call_start(ef_api_call *c, const char *body, size_t len, bool too_large,
                      void (*done)(void *ud), void *ud);
/* The answer, once decided; borrowed from c. */
ef_api_out ef_api_call_result(const ef_api_call *c);
/* NULL is a no-op. Never while a start that returned 0 has not called done. */
void ef_api_call_free(ef_api_call *c);

#endif /* EF_GATEWAY_API_H */
