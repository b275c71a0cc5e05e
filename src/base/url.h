/*
 * base/url.h -- the one check of where a configured platform API URL may
 * point: such URLs carry tokens, so https://, or plain http:// only on a
 * loopback address (tests, a local proxy). Used by the configuration
 * (TELEGRAM_API_URL, ...) and by the adapters (an integration's api_url).
 */
#ifndef EF_BASE_URL_H
#define EF_BASE_URL_H

#include <stdbool.h>

/* True for https://<something>, or http:// whose host is localhost,
 * 127.0.0.0/8 or ::1 (user:password@ skipped, [v6] understood). */
bool ef_url_https_or_loopback(const char *url);

#endif /* EF_BASE_URL_H */
