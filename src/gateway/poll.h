/*
 * poll.h -- Telegram long polling (TELEGRAM_MODE=poll).
 *
 * One thread calls getUpdates with a long timeout and allowed_updates,
 * normalizes the batch, hands it to the pipeline and waits for the commit;
 * only then is the offset advanced (and persisted in PostgreSQL), so a
 * restart neither loses nor repeats updates. Network errors and 5xx back
 * off exponentially; 401 (bad token) and 409 (a webhook is set) are logged
 * clearly and retried slowly.
 *
 * Must never: block the event loop (it has its own thread and its own
 * PostgreSQL connection for the offset), log the bot token.
 */
#ifndef EF_POLL_H
#define EF_POLL_H

#include "base/ef.h"
#include "gateway/pipeline.h"

typedef struct ef_poller ef_poller;

typedef struct ef_poller_opts {
    const char *api_url; /* TELEGRAM_API_URL */
    const char *token;   /* TELEGRAM_BOT_TOKEN */
    const char *pg_url;  /* for the persisted offset */
    int timeout_s;       /* getUpdates long-poll timeout */
    int json_max_depth;
    size_t max_body;
    ef_pipeline *pipe; /* borrowed */
} ef_poller_opts;

/* Starts the polling thread. NULL with err on bad options. */
ef_poller *ef_poller_start(const ef_poller_opts *opts, char *err, size_t errlen);
/* Asks the thread to stop (aborting a long poll in progress), joins it. */
void ef_poller_stop(ef_poller *p);

#endif /* EF_POLL_H */
