/*
 * ws.h -- the WebSockets: /ws/console (operators' live events) and /ws/chat
 * (web chat visitors), inside http.c's libwebsockets context. The protocol
 * is docs/websocket.md.
 *
 * Events across gateways: committed changes publish NOTIFY ef_events
 * (sql/011_events.sql); a thread of ours LISTENs and hands each payload to
 * the lws thread, which pushes it to the consoles and, for a web chat
 * conversation, looks the row up on a worker (ef_work) and pushes it to the
 * visitor's sockets held here.
 *
 * A visitor's frame is read by the channel's adapter (EF_PLAT_SOCKET:
 * verify = the signed visitor id, handshake = a new one, parse = the frame
 * into an ef_msg) and goes through the pipeline like a webhook; the ack
 * goes out once the job's commit is done.
 *
 * Must never: block the lws thread (PostgreSQL only on the work pool and
 * the LISTEN thread), buffer without bound for a slow client (a full send
 * queue closes the socket), push anything to a console before its token
 * is checked, or log a token, a visitor id or message text.
 *
 * Thread model: ef_ws_callback and ef_ws_tick on the lws thread only;
 * the LISTEN thread, work-pool and pipeline callbacks only queue onto the
 * inbox (under its lock) and wake the loop with lws_cancel_service().
 */
#ifndef EF_GATEWAY_WS_H
#define EF_GATEWAY_WS_H

#include "base/crypto.h"
#include "base/ef.h"
#include "gateway/channels.h"
#include "gateway/pipeline.h"

struct lws;
struct lws_context;

#define EF_WS_CONSOLE_PATH "/ws/console"
#define EF_WS_CHAT_PATH "/ws/chat"
#define EF_WS_CONSOLE_PROTOCOL "ef.console.v1"
#define EF_WS_CHAT_PROTOCOL "ef.chat.v1"
#define EF_WS_FRAME_MAX ((size_t)16 * 1024) /* one client frame at most */

typedef struct ef_ws ef_ws;

typedef struct ef_ws_opts {
    const char *pg_url;     /* the LISTEN connection and the lookups */
    const char *redis_url;  /* (the work pool opens one; unused here) */
    ef_channels *channels;  /* borrowed: the web chat's channel */
    ef_pipeline *pipe;      /* borrowed: visitors' messages */
    const ef_keyring *keys; /* keys[0] (EF_SECRET_KEY) checks console tokens as
                               the API signs them; none: consoles are refused */
    int chat_rate_per_min;  /* EF_WEBCHAT_RATE_PER_MIN: messages per visitor per
                               minute (a burst of as many); 0: no limit */
} ef_ws_opts;

/* Starts the LISTEN thread and the lookup workers. */
ef_ws *ef_ws_new(const ef_ws_opts *opts);
/* The lws context to wake (NULL: none any more, before it is destroyed).
 * Called by http.c. */
void ef_ws_set_context(ef_ws *ws, struct lws_context *ctx);
/* The lws callback of both WebSocket protocols (http.c's protocol table
 * forwards to it); user is the per-session storage (a pointer). */
int ef_ws_callback(ef_ws *ws, struct lws *wsi, int reason, void *user, void *in, size_t len);
/* Pings, deadlines, the inbox: from http.c's periodic tick. */
void ef_ws_tick(ef_ws *ws);
/* Stops the LISTEN thread and the workers (their results are dropped at
 * free). Before the server is freed. Idempotent. */
void ef_ws_stop(ef_ws *ws);
/* After the server is freed (its sockets closed). NULL is a no-op. */
void ef_ws_free(ef_ws *ws);

/* Sockets open now, per kind (for logs and tests). */
size_t ef_ws_count(const ef_ws *ws, bool chat);

#endif /* EF_GATEWAY_WS_H */
