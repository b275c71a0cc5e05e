/*
 * dispatch.h -- the outbox dispatcher: delivers queued replies through the
 * platform adapters, in order per chat, within each platform's limits.
 *
 * Replies enter the outbox (messages rows, direction outbound, status
 * queued) in the same transaction as the message that caused them. The
 * dispatcher loads them, sends each chat's rows strictly one after another
 * (the next only once the previous was accepted or failed for good), and
 * records the outcome: sent (with the platform's message id), a retry
 * later (429 retry_after, 5xx and network errors with exponential backoff),
 * or failed with failed_reason (400/403, undeliverable chats). A restart
 * resumes from the rows still queued. Delivery is at least once.
 *
 * Limits are each channel's policy (platforms/platform.h): per account (a
 * bot, a number), per chat, per group; a reply window after which the
 * channel's template goes instead, or the row fails. Rows of a channel
 * that is disabled, unknown or failed (credentials refused) wait, queued,
 * without spending attempts; a 401 puts the channel in error.
 *
 * Must never: run on the event loop (it has its own thread, its own
 * PostgreSQL connection and a curl multi handle), send two rows of one chat
 * at once, or log a token (URLs go through ef_redact_url()).
 *
 * Only one dispatcher sends at a time across gateway instances (a
 * PostgreSQL advisory lock); the others stand by.
 */
#ifndef EF_DISPATCH_H
#define EF_DISPATCH_H

#include "base/ef.h"
#include "gateway/channels.h"

typedef struct ef_dispatcher ef_dispatcher;

typedef struct ef_dispatch_opts {
    const char *pg_url;
    ef_channels *channels; /* borrowed: each row's channel (adapter, credentials, policy) */
} ef_dispatch_opts;

ef_dispatcher *ef_dispatch_start(const ef_dispatch_opts *opts);
/* New rows were committed: look at the outbox now rather than at the next
 * periodic check. Any thread; async-signal-unsafe. */
void ef_dispatch_wake(ef_dispatcher *d);
/* Finishes the requests in flight (bounded), then stops. */
void ef_dispatch_stop(ef_dispatcher *d);

#endif /* EF_DISPATCH_H */
