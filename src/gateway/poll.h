/*
 * poll.h -- long polling, one thread per channel whose policy says it
 * polls (Telegram getUpdates in mode=poll; the marketplaces' chat events).
 *
 * The thread asks the adapter for the request (poll_request), makes it,
 * lets the adapter read the answer (poll_response: events, next cursor,
 * fault), hands the events to the pipeline and waits for the commit; only
 * then is the cursor advanced and persisted in PostgreSQL, so a restart
 * neither loses nor repeats updates. An update the adapter cannot
 * normalize is skipped (logged and counted), never a reason to fetch the
 * same batch forever. Network errors and 5xx back off exponentially; a
 * refusal of the credentials (401) puts the channel in error and ends its
 * poller; a conflict (409: a webhook is set) is logged and retried slowly.
 *
 * Must never: block the event loop (it has its own thread and its own
 * PostgreSQL connection for the cursor), log a credential.
 */
#ifndef EF_POLL_H
#define EF_POLL_H

#include "base/ef.h"
#include "gateway/channels.h"
#include "gateway/pipeline.h"

typedef struct ef_poller ef_poller;

typedef struct ef_poller_opts {
    const char *pg_url; /* for the persisted cursor */
    int json_max_depth;
    size_t max_body;
    ef_pipeline *pipe; /* borrowed */
} ef_poller_opts;

/* Starts polling for ch (referenced until ef_poller_stop). */
ef_poller *ef_poller_start(ef_channel *ch, const ef_poller_opts *opts);
/* The channel it polls for (borrowed). */
const ef_channel *ef_poller_channel(const ef_poller *p);
/* True once its thread ended by itself (the channel failed). */
bool ef_poller_done(const ef_poller *p);
/* Asks the thread to stop (aborting a long poll in progress), joins it,
 * frees p. */
void ef_poller_stop(ef_poller *p);

#endif /* EF_POLL_H */
