/*
 * bootstrap.h -- configuration bootstrap: what the environment variables
 * of a single-bot set-up (TELEGRAM_*, WHATSAPP_*) become now that every
 * channel is an integrations row.
 *
 * At each start, the environment creates or updates one default
 * integration per platform (WhatsApp: one per business number; the first
 * is the default), so existing set-ups and `make run` keep working
 * unchanged: the environment wins on every start. Their credentials are
 * sealed under EF_SECRET_KEY when it is set, else kept in this process's
 * memory only (nothing in clear is ever stored).
 *
 * Also: the platform-wide settings every integration of a platform gets
 * unless its row says otherwise (<PLATFORM>_API_URL, ...).
 *
 * This file and the adapter list (platforms/registry.c) are the only
 * places in the gateway that name a platform.
 */
#ifndef EF_BOOTSTRAP_H
#define EF_BOOTSTRAP_H

#include "base/crypto.h"
#include "gateway/channels.h"
#include "gateway/config.h"
#include "store/store.h"

#define EF_BOOTSTRAP_SECRET_MIN 16

typedef struct ef_bootstrap_ctx {
    const ef_config *cfg;
    ef_store *st;
    const ef_keyring *keys;
    ef_channels *channels; /* gets the in-memory credentials */
} ef_bootstrap_ctx;

/* Upserts the default integrations the environment describes. EF_EINVAL
 * (err says which variable) for a short secret or credentials the adapter
 * refuses; EF_EDB when PostgreSQL is unreachable. */
int ef_bootstrap_defaults(const ef_bootstrap_ctx *bc, char *err, size_t errlen);

/* The environment variables that make a default integration of ops, as
 * words for a message ("WHATSAPP_APP_SECRET, ..."); NULL when the
 * environment makes none. Static. */
const char *ef_bootstrap_env_hint(const ef_platform_ops *ops);

/* The settings defaults of ops's integrations from the configuration, as a
 * JSON object (owned). */
char *ef_bootstrap_platform_defaults(const ef_config *c, const ef_platform_ops *ops);

#endif /* EF_BOOTSTRAP_H */
