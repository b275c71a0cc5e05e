/*
 * http.h -- the HTTP server (libwebsockets): webhooks, /healthz, /metrics.
 *
 * Routes:
 *   POST /webhook/telegram   secret header check, body limit, strict JSON,
 *                            normalization, then the pipeline; answered 200
 *                            only once the update is committed (or known
 *                            to be a duplicate), 503 while PostgreSQL is
 *                            unreachable.
 *   GET  /webhook/whatsapp   hub.challenge verification (403 otherwise).
 *   POST /webhook/whatsapp   X-Hub-Signature-256 over the raw body (401
 *                            before anything is parsed), then as above;
 *                            events for business numbers we do not serve
 *                            are acknowledged and logged, never stored.
 *   GET  /healthz            200 when PostgreSQL and Redis answer, else 503
 *                            with a JSON reason.
 *   GET  /metrics            Prometheus text.
 *
 * Must never: block the event loop (PostgreSQL/Redis work happens on the
 * pipeline's threads), answer 2xx before the commit, or log a secret.
 *
 * Thread model: everything here runs on the one lws service thread, except
 * the pipeline's done callback, which only queues the finished request and
 * wakes the loop with lws_cancel_service().
 */
#ifndef EF_HTTP_H
#define EF_HTTP_H

#include "base/ef.h"
#include "gateway/pipeline.h"

#include <signal.h>

typedef struct ef_server ef_server;

typedef struct ef_server_opts {
    const char *listen;     /* "127.0.0.1:8080" */
    size_t max_body;        /* bytes; larger bodies get 413 */
    int json_max_depth;     /* deeper JSON gets 400 */
    int request_timeout_ms; /* a commit slower than this gets 503 */
    const char *tg_secret;  /* TELEGRAM_SECRET_TOKEN; NULL = not checked */
    bool tg_webhook;        /* serve /webhook/telegram (false in poll mode) */
    /* WhatsApp: served when wa_app_secret is set. */
    const char *wa_app_secret;   /* WHATSAPP_APP_SECRET: X-Hub-Signature-256 key */
    const char *wa_verify_token; /* WHATSAPP_VERIFY_TOKEN: GET hub.verify_token */
    const char *wa_numbers;      /* WHATSAPP_PHONE_NUMBER_ID: comma-separated ids */
    ef_pipeline *pipe;           /* borrowed */
} ef_server_opts;

/* Binds the listening socket. NULL with err filled on failure. */
ef_server *ef_server_new(const ef_server_opts *opts, char *err, size_t errlen);

/* Serves until *stop becomes non-zero, then stops taking new webhooks
 * (503), lets the requests in flight finish (at most drain_timeout_ms) and
 * returns 0. */
int ef_server_run(ef_server *srv, volatile sig_atomic_t *stop, int drain_timeout_ms);

void ef_server_free(ef_server *srv);

/* The port actually bound (useful with port 0). */
int ef_server_port(const ef_server *srv);

#endif /* EF_HTTP_H */
