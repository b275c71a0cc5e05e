/*
 * registry.c -- the built-in platform adapters and their start-up check.
 * Adding a platform: one line in ef_platforms[] (see platform.h).
 */
#include "platforms/platform.h"

#include "platforms/market.h"

#include <stdio.h>
#include <string.h>

const ef_platform_ops *const ef_platforms[] = {
    &ef_platform_telegram,    &ef_platform_whatsapp, &ef_platform_webchat,
    &ef_platform_wildberries, &ef_platform_ozon,     NULL,
};

/* The first mandatory slot p lacks for what it says it supports, or NULL. */
static const char *missing_slot(const ef_platform_ops *p)
{
    if (!p->name || !*p->name)
        return "name";
    if (!p->parse)
        return "parse";
    if (!p->open || !p->close || !p->channel_key)
        return !p->open ? "open" : !p->close ? "close" : "channel_key";
    if ((p->supports & EF_PLAT_WEBHOOK) &&
        (!p->webhook_path || p->webhook_path[0] != '/' || !p->verify || !p->auth_header))
        return !p->verify ? "verify" : !p->auth_header ? "auth_header" : "webhook_path";
    if ((p->supports & EF_PLAT_POLL) && (!p->poll_request || !p->poll_response))
        return p->poll_request ? "poll_response" : "poll_request";
    if ((p->supports & EF_PLAT_SEND) && (!p->build_send || !p->parse_send))
        return p->build_send ? "parse_send" : "build_send";
    return NULL;
}

int ef_platform_check(const ef_platform_ops *p, char *err, size_t errlen)
{
    if (!p) {
        snprintf(err, errlen, "platform adapter is NULL");
        return EF_EINVAL;
    }
    const char *slot = missing_slot(p);
    if (slot) {
        snprintf(err, errlen, "platform %s: mandatory slot %s is missing",
                 p->name ? p->name : "(unnamed)", slot);
        return EF_EINVAL;
    }
    if (p->api_version != EF_PLATFORM_API_VERSION) {
        snprintf(err, errlen, "platform %s: api_version %d, expected %d", p->name, p->api_version,
                 EF_PLATFORM_API_VERSION);
        return EF_EINVAL;
    }
    return 0;
}

const ef_platform_ops *ef_platform_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; ef_platforms[i]; i++)
        if (strcmp(ef_platforms[i]->name, name) == 0)
            return ef_platforms[i];
    return NULL;
}

/* The marketplaces' order side, beside their platform adapters. */
static const ef_market_ops *const markets[] = {&ef_market_wildberries, &ef_market_ozon};

const ef_market_ops *ef_market_of(const ef_platform_ops *p)
{
    for (size_t i = 0; p && i < sizeof(markets) / sizeof(markets[0]); i++)
        if (markets[i]->platform == p)
            return markets[i];
    return NULL;
}
