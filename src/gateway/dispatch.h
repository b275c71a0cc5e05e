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
 * Two threads: the sending loop (curl multi) never waits on PostgreSQL;
 * a store thread with its own connection fetches the rows that are due and
 * records every outcome (sent, retry, failed, migrated), handed over
 * through queues. A row whose outcome is not recorded yet stays in memory
 * and is never sent twice by one process; a slow database delays only the
 * recording and the fetch, not the sends already decided.
 *
 * A reply that cannot be sent within reply_ttl_s of being queued (an
 * outage, a channel in error) fails as expired instead of going out late;
 * a reply whose outcome cannot be recorded (a data error) fails with the
 * reason instead of being retried.
 *
 * Several gateways on one database: only the holder of the outbox lease
 * (sql/006 outbox_lease) sends; the others stand by and take over once it
 * lapses or is released. Leadership rather than claiming rows, because the
 * platforms' limits are per bot and per chat and the windows that keep
 * them live in one process's memory: two dispatchers sharing a bot would
 * each spend its whole rate. A dispatcher that regains the lease after
 * losing it forgets the rows it held (another may have sent them) and
 * re-reads the outbox.
 */
#ifndef EF_DISPATCH_H
#define EF_DISPATCH_H

#include "base/ef.h"
#include "gateway/channels.h"

typedef struct ef_dispatcher ef_dispatcher;

typedef struct ef_dispatch_opts {
    const char *pg_url;
    ef_channels *channels; /* borrowed: each row's channel (adapter, credentials, policy) */
    int reply_ttl_s;       /* a reply not sent this long after it was queued fails as
                              expired; 0: never */
} ef_dispatch_opts;

ef_dispatcher *ef_dispatch_start(const ef_dispatch_opts *opts);
/* New rows were committed: look at the outbox now rather than at the next
 * periodic check. Any thread; async-signal-unsafe. */
void ef_dispatch_wake(ef_dispatcher *d);
/* Finishes the requests in flight (bounded), records their outcomes
 * (bounded), gives the sending lease up, then stops. */
void ef_dispatch_stop(ef_dispatcher *d);

/* Pure pieces, unit-tested. */

/* Copies src (NULL: "") into dst of n bytes, cut so that it never ends
 * inside a UTF-8 character (nor keeps one that src already ended inside:
 * adapters cut reasons by bytes). Returns the length copied. */
size_t ef_dispatch_copy_reason(char *dst, size_t n, const char *src);
/* When a row fetched at fetched_ms (monotonic), queued age_ms before, has
 * waited ttl_s: the time from which it fails as expired; 0 when ttl_s is
 * 0 (never). */
int64_t ef_dispatch_expires_at(int64_t fetched_ms, int64_t age_ms, int ttl_s);

#endif /* EF_DISPATCH_H */
