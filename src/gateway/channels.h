/*
 * channels.h -- the live set of channels: one per enabled integrations row
 * (a connected bot, number or shop), each with its adapter, the adapter's
 * configuration built from the row's opened credentials and settings, its
 * policy and its bot.
 *
 * The set is rebuilt from PostgreSQL at start, whenever an integration
 * changes (the CLI and the API NOTIFY ef_integrations; a watch thread
 * LISTENs), on SIGHUP, and every 30 s as a safety net. A rebuild keeps the
 * channels whose row did not change (same object, same bot) and swaps in
 * the others; a channel still in use (a request, a batch, a send in flight)
 * lives until its last reference is dropped.
 *
 * A channel whose credentials are refused by its platform (401) is marked
 * failed: its row gets status 'error' with a readable status_message, its
 * poller and its sends stop, and every other channel goes on. `integration
 * enable ID` clears it.
 *
 * Thread model: every function may be called from any thread; lookups take
 * a mutex for a few pointer compares and return a reference the caller
 * drops with ef_channel_unref().
 */
#ifndef EF_CHANNELS_H
#define EF_CHANNELS_H

#include "base/crypto.h"
#include "base/ef.h"
#include "nlp/nlp.h"
#include "platforms/platform.h"
#include "store/store.h"

#include <stdatomic.h>

typedef struct ef_channel {
    char *id;   /* integrations.id */
    char *name; /* integrations.name */
    const ef_platform_ops *ops;
    void *cfg; /* ops->open() */
    ef_platform_policy policy;
    char *key;                      /* ops->channel_key(cfg) */
    ef_bot *bot;                    /* NULL: messages are stored, nothing is answered */
    struct ef_bot_share *bot_share; /* the load bot belongs to, shared by channels (channels.c) */
    bool is_default;                /* served on the platform's bare webhook path */
    uint64_t version;               /* what it was built from */
    atomic_bool failed;
    atomic_int refs;
} ef_channel;

typedef struct ef_channels ef_channels;

typedef struct ef_channels_opts {
    const char *pg_url;
    const ef_keyring *keys;       /* copied */
    const char *default_bot_file; /* EF_BOT_FILE, for rows without settings.bot_file */
    /* The platform-wide settings a row's own settings override (a JSON
     * object, owned by the caller of the hook); NULL: none. */
    char *(*settings_defaults)(void *ud, const ef_platform_ops *ops);
    void *settings_ud;
    /* Runs on the watch thread after a rebuild that changed the set (the
     * serve loop starts and stops pollers there). */
    void (*on_change)(void *ud);
    void *on_change_ud;
} ef_channels_opts;

/* Work that must succeed once before the first rebuild (the environment's
 * default integrations when PostgreSQL was down at start): called before
 * each rebuild until it returns something other than EF_EDB. */
void ef_channels_set_bootstrap(ef_channels *cs, int (*fn)(void *ud), void *ud);
/* True once a rebuild succeeded: before that, webhooks cannot be verified
 * and are answered 503 (retry), never 404. */
bool ef_channels_ready(ef_channels *cs);

ef_channels *ef_channels_new(const ef_channels_opts *opts);
/* Stops the watch thread and drops the set (channels still referenced
 * elsewhere live on until their last unref). */
void ef_channels_free(ef_channels *cs);

/* Loads file's bot (or takes the copy already loaded from it) and keeps it
 * loaded while cs lives, so that the channels built from the same file take
 * it instead of loading it again (the demo bot is ~0.6 s of CPU to load).
 * 0 and *bot (borrowed from cs), else the loader's error in err. */
int ef_channels_keep_bot(ef_channels *cs, const char *file, const ef_bot **bot, char *err,
                         size_t errlen);

/* Credentials kept in memory only, for a configuration-sourced row whose
 * credentials are not sealed (no EF_SECRET_KEY): creds_json is copied. */
void ef_channels_set_memory_creds(ef_channels *cs, const char *id, const char *creds_json);

/* Rebuilds the set from PostgreSQL now: 0, or EF_EDB (the set is kept). */
int ef_channels_reload(ef_channels *cs);
/* Starts the watch thread (LISTEN, SIGHUP requests, 30 s safety net). */
void ef_channels_watch(ef_channels *cs);
/* Asks the watch thread for a rebuild (async-signal-safe). */
void ef_channels_request_reload(ef_channels *cs);

/* Lookups: a new reference, or NULL. */
ef_channel *ef_channels_get(ef_channels *cs, const char *id);
/* The channel a webhook path serves: sub is what follows ops->webhook_path
 * ("" or "/"): the platform's default; "/<id>": that integration). */
ef_channel *ef_channels_route(ef_channels *cs, const ef_platform_ops *ops, const char *sub);
/* The channel of ops whose channel_key is key. */
ef_channel *ef_channels_by_key(ef_channels *cs, const ef_platform_ops *ops, const char *key);
/* Every channel (of ops, or all when ops is NULL), each referenced: *out
 * owned by the caller, freed with ef_channels_list_free(). */
size_t ef_channels_list(ef_channels *cs, const ef_platform_ops *ops, ef_channel ***out);
void ef_channels_list_free(ef_channel **list, size_t n);

ef_channel *ef_channel_ref(ef_channel *ch);
void ef_channel_unref(ef_channel *ch);
/* Failed (credentials refused): no sends, no polls until enabled again. */
bool ef_channel_failed(const ef_channel *ch);
/* Marks ch failed now and records status 'error' with reason through st
 * (the caller's connection; a failure to record is retried by the next
 * call). */
void ef_channels_fail(ef_channel *ch, ef_store *st, const char *reason);

#endif /* EF_CHANNELS_H */
