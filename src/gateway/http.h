/*
 * http.h -- the HTTP server (libwebsockets): webhooks, /healthz, /metrics.
 *
 * Routes:
 *   POST <adapter webhook path>[/<integration id>]
 *                            for every compiled-in adapter that receives
 *                            webhooks: the route names the channel (the
 *                            bare path: the platform's default one; an
 *                            adapter whose one URL serves many channels
 *                            routes each event by the channel it names).
 *                            The adapter's verify (a secret header before
 *                            the body, or an HMAC over the raw body before
 *                            any parsing), body limit, strict JSON,
 *                            normalization, then the pipeline; answered 200
 *                            only once the update is committed (or known
 *                            to be a duplicate), 503 while PostgreSQL is
 *                            unreachable, 422 for data that cannot be
 *                            stored or an event for a channel not served,
 *                            503 + Retry-After: 1 at once while the
 *                            pipeline is saturated (EF_QUEUE_MAX) and when
 *                            the commit outlasts the request timeout (the
 *                            job's untaken events are then dropped).
 *   GET  <webhook path>      the adapter's subscription handshake (403
 *                            otherwise), when it has one.
 *   GET  /healthz            200 when PostgreSQL and Redis answer, else 503
 *                            with a JSON reason.
 *   GET  /metrics            Prometheus text.
 *   *    /api/v1/...         the operator API (api.h), when opts.api is set.
 *   GET  /console, /chat     the console's and the web chat's pages (static.h).
 *   GET  /ws/console, /ws/chat (Upgrade: websocket) with the subprotocol
 *                            ef.console.v1 / ef.chat.v1: ws.h, when opts.ws
 *                            is set; an upgrade without it is refused.
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
#include "base/json.h"
#include "gateway/channels.h"
#include "gateway/pipeline.h"

#include <signal.h>

typedef struct ef_server ef_server;

typedef struct ef_server_opts {
    const char *listen;      /* "127.0.0.1:8080" */
    size_t max_body;         /* bytes; larger bodies get 413 */
    ef_json_limits json;     /* deeper or larger JSON gets 400 */
    int request_timeout_ms;  /* a commit slower than this gets 503 */
    int request_deadline_ms; /* headers + body not received by then: 408, closed */
    size_t max_conns;        /* open connections; beyond: closed at accept */
    size_t max_conns_per_ip; /* the same, per client address */
    ef_channels *channels;   /* borrowed: who serves which webhook */
    ef_pipeline *pipe;       /* borrowed */
    struct ef_api *api;      /* borrowed; NULL: no /api/v1 */
    /* Borrowed; NULL: no /console (static.h: GET only, from memory). */
    const struct ef_static *web;
    /* Borrowed; NULL: no /ws/console, /ws/chat (ws.h). */
    struct ef_ws *ws;
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
