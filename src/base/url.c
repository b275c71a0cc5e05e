/*
 * url.c -- where a configured platform API URL may point. See url.h.
 */
#include "base/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Whether the host of url (scheme://[user@]host[:port]/...) is loopback:
 * localhost, 127.0.0.0/8 or ::1. */
static bool loopback_host(const char *url)
{
    const char *a = strstr(url, "://");
    if (!a)
        return false;
    a += 3;
    size_t n = strcspn(a, "/?#");
    for (size_t i = n; i > 0; i--) { /* skip user:password@ */
        if (a[i - 1] == '@') {
            n -= i;
            a += i;
            break;
        }
    }
    bool br = a[0] == '[';
    size_t hl = br ? strcspn(a + 1, "]") : strcspn(a, ":/?#");
    char host[256];
    if (hl >= sizeof(host) || hl > n)
        return false;
    memcpy(host, br ? a + 1 : a, hl);
    host[hl] = '\0';
    unsigned char ip[16];
    if (inet_pton(AF_INET, host, ip) == 1)
        return ip[0] == 127;
    if (inet_pton(AF_INET6, host, ip) == 1)
        return memcmp(ip, &in6addr_loopback, 16) == 0;
    return strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0;
}

bool ef_url_https_or_loopback(const char *url)
{
    if (!url)
        return false;
    if (strncasecmp(url, "https://", 8) == 0)
        return url[8] != '\0';
    return strncasecmp(url, "http://", 7) == 0 && url[7] && loopback_host(url);
}
