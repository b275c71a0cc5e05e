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
 * Limits: Telegram ~30 messages/s per bot, 1 per second per chat, 20 per
 * minute per group; WhatsApp WHATSAPP_RATE_LIMIT per business number.
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

typedef struct ef_dispatcher ef_dispatcher;

typedef struct ef_dispatch_opts {
    const char *pg_url;
    const char *tg_api_url;  /* TELEGRAM_API_URL */
    const char *tg_token;    /* NULL: Telegram rows wait until configured */
    const char *wa_api_url;  /* WHATSAPP_API_URL */
    const char *wa_token;    /* WHATSAPP_ACCESS_TOKEN */
    int wa_rate_per_sec;     /* per business number */
    const char *wa_template; /* "name:lang" sent outside the 24-hour window; NULL: fail */
    int tg_rate_per_sec;     /* per bot (default 30) */
    int tg_chat_interval_ms; /* per chat (default 1000) */
    int tg_group_per_min;    /* per group (default 20) */
} ef_dispatch_opts;

ef_dispatcher *ef_dispatch_start(const ef_dispatch_opts *opts);
/* New rows were committed: look at the outbox now rather than at the next
 * periodic check. Any thread; async-signal-unsafe. */
void ef_dispatch_wake(ef_dispatcher *d);
/* Finishes the requests in flight (bounded), then stops. */
void ef_dispatch_stop(ef_dispatcher *d);

#endif /* EF_DISPATCH_H */
