/*
 * registry.c -- the built-in platform adapters and their start-up check.
 * Adding a platform: one line in ef_platforms[] (see platform.h).
 */
#include "platforms/platform.h"

#include <stdio.h>
#include <string.h>

const ef_platform_ops *const ef_platforms[] = {
    &ef_platform_telegram,
    &ef_platform_whatsapp,
    NULL,
};

int ef_platform_check(const ef_platform_ops *p, char *err, size_t errlen)
{
    const char *slot = NULL;
    if (!p) {
        snprintf(err, errlen, "platform adapter is NULL");
        return EF_EINVAL;
    }
    const char *name = p->name ? p->name : "(unnamed)";
    if (!p->name || !*p->name)
        slot = "name";
    else if (!p->parse)
        slot = "parse";
    else if ((p->supports & EF_PLAT_WEBHOOK) && (!p->webhook_path || p->webhook_path[0] != '/'))
        slot = "webhook_path";
    else if ((p->supports & EF_PLAT_SIGNED) && (!p->verify || !p->signature_header))
        slot = "verify";
    else if ((p->build_send == NULL) != (p->parse_send == NULL))
        slot = p->build_send ? "parse_send" : "build_send";
    if (slot) {
        snprintf(err, errlen, "platform %s: mandatory slot %s is missing", name, slot);
        return EF_EINVAL;
    }
    if (p->api_version != EF_PLATFORM_API_VERSION) {
        snprintf(err, errlen, "platform %s: api_version %d, expected %d", name, p->api_version,
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
