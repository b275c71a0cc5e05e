/*
 * config.c -- one table of keys (Redis static_configs).
 *
 * The parser (file, environment, command line), the type and range checks,
 * --help, --print-config and the README's Markdown table all read the same
 * static table below, so adding a key is one line here and nothing else.
 *
 * Values are kept as strings (normalized on the way in: enum values in their
 * canonical spelling, API URLs without a trailing '/') plus the parsed number
 * for int and bool keys. A value that fails its check never replaces the one
 * already held, and the error names the key but never a secret's value.
 */
#include "gateway/config.h"

#include "base/url.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A config file line longer than this is refused (bounded buffers). */
#define LINE_MAX_BYTES 65536
/* How much of a bad (non-secret) value an error message repeats. */
#define SHOW_MAX 80
/* Most bytes a KEY_FILE may hold (a secret, not a document). */
#define SECRET_FILE_MAX 65536
/* The suffix naming a secret's file: TELEGRAM_BOT_TOKEN_FILE=path. */
#define FILE_SUFFIX "_FILE"

typedef enum key_type { T_STR, T_INT, T_BOOL, T_ENUM, T_LISTEN, T_URL } key_type;

enum {
    F_SECRET = 1u << 0,   /* never printed, never repeated in errors */
    F_REQUIRED = 1u << 1, /* ef_config_validate() fails while unset */
};

typedef struct key_def key_def;

/* Extra per-key rule, run after the type check on a non-empty value. */
typedef int (*check_fn)(const key_def *k, const char *v, char *err, size_t errlen);

struct key_def {
    const char *key;
    key_type type;
    const char *def;           /* default text ("" = unset) */
    int64_t min, max;          /* T_INT range */
    const char *const *values; /* T_ENUM: allowed values; T_URL: allowed schemes */
    unsigned flags;
    check_fn check; /* NULL when the type check is all */
    const char *help;
};

static int check_pg_url(const key_def *k, const char *v, char *err, size_t errlen);
static int check_redis_url(const key_def *k, const char *v, char *err, size_t errlen);
static int check_hex_key(const key_def *k, const char *v, char *err, size_t errlen);
static int check_log_debug(const key_def *k, const char *v, char *err, size_t errlen);
static int check_tg_secret(const key_def *k, const char *v, char *err, size_t errlen);
static int check_wa_numbers(const key_def *k, const char *v, char *err, size_t errlen);
static int check_api_url(const key_def *k, const char *v, char *err, size_t errlen);

static const char *const pg_schemes[] = {"postgresql", "postgres", NULL};
static const char *const redis_schemes[] = {"redis", "rediss", NULL};
static const char *const http_schemes[] = {"https", "http", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", "trace", NULL};
/* The components of log.c, in the order EF_LOG_DEBUG's help lists them. */
static const char *const log_comps[] = {"http", "tg",   "wa",   "nlp", "fsm",  "pg", "redis",
                                        "curl", "pipe", "poll", "cfg", "main", NULL};
static const char *const tg_modes[] = {"webhook", "poll", NULL};

static const key_def keys[] = {
    {.key = "EF_DATABASE_URL",
     .type = T_URL,
     .def = "postgresql://127.0.0.1:5432/easyflow",
     .values = pg_schemes,
     .check = check_pg_url,
     .help = "PostgreSQL connection URI (libpq): postgresql://user:password@host:port/dbname"},
    {.key = "EF_REDIS_URL",
     .type = T_URL,
     .def = "redis://127.0.0.1:6379/0",
     .values = redis_schemes,
     .check = check_redis_url,
     .help = "Redis server: redis://[[user]:password@]host[:port][/db]; rediss:// for TLS "
             "(the server's certificate and name verified)"},
    {.key = "EF_LISTEN",
     .type = T_LISTEN,
     .def = "127.0.0.1:8080",
     .help = "HTTP listen address, host:port ([addr]:port for IPv6)"},
    {.key = "EF_BOT_FILE", .type = T_STR, .def = "", .help = "Bot definition file to serve"},
    {.key = "EF_SECRET_KEY",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .check = check_hex_key,
     .help = "64 hex digits: the key sealing platform credentials at rest (HKDF, AES-256-GCM); "
             "required once any integration holds credentials"},
    {.key = "EF_SECRET_KEY_OLD",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .help = "Previous EF_SECRET_KEY value(s), comma-separated, during a key rotation: they only "
             "open credentials (`easyflow integration rotate-key` re-seals them)"},
    {.key = "EF_SQL_DIR",
     .type = T_STR,
     .def = "",
     .help = "Directory of NNN_name.sql migrations (empty: found next to the binary)"},
    {.key = "EF_WEB_DIR",
     .type = T_STR,
     .def = "",
     .help = "Directory whose console/ the gateway serves at /console, read once at start "
             "(empty: web/ found next to the binary)"},
    {.key = "EF_LOG_LEVEL",
     .type = T_ENUM,
     .def = "info",
     .values = log_levels,
     .help = "Log level of every component"},
    {.key = "EF_LOG_DEBUG",
     .type = T_STR,
     .def = "",
     .check = check_log_debug,
     .help = "Components raised to DEBUG, comma-separated "
             "(http,tg,wa,nlp,fsm,pg,redis,curl,pipe,poll,cfg,main)"},
    {.key = "EF_LOG_REPLIES",
     .type = T_BOOL,
     .def = "false",
     .help = "Log each reply the bot queues at INFO with its chat and first 40 characters "
             "(`make run` sets it; message text is personal data: off in production)"},
    {.key = "EF_MAX_BODY",
     .type = T_INT,
     .def = "1048576",
     .min = 1024,
     .max = 67108864,
     .help = "Largest accepted request body, bytes"},
    {.key = "EF_JSON_MAX_DEPTH",
     .type = T_INT,
     .def = "64",
     .min = 2,
     .max = 512,
     .help = "Deepest JSON nesting accepted in a payload"},
    {.key = "EF_JSON_MAX_STRING",
     .type = T_INT,
     .def = "1048576",
     .min = 256,
     .max = 67108864,
     .help = "Longest JSON string or key accepted in a payload, bytes (decoded)"},
    {.key = "EF_JSON_MAX_ARRAY",
     .type = T_INT,
     .def = "10000",
     .min = 16,
     .max = 1000000,
     .help = "Most entries of one JSON array accepted in a payload"},
    {.key = "EF_JSON_MAX_KEYS",
     .type = T_INT,
     .def = "10000",
     .min = 16,
     .max = 1000000,
     .help = "Most members of one JSON object accepted in a payload"},
    {.key = "EF_STORE_WORKERS",
     .type = T_INT,
     .def = "2",
     .min = 1,
     .max = 64,
     .help = "Store worker threads, one PostgreSQL connection each"},
    {.key = "EF_BATCH_MAX",
     .type = T_INT,
     .def = "256",
     .min = 1,
     .max = 10000,
     .help = "Most events committed in one store transaction"},
    {.key = "EF_SESSION_TTL",
     .type = T_INT,
     .def = "86400",
     .min = 60,
     .max = 31536000,
     .help = "Seconds a Redis session lives after its last message"},
    {.key = "EF_REQUEST_TIMEOUT_MS",
     .type = T_INT,
     .def = "15000",
     .min = 100,
     .max = 120000,
     .help = "Milliseconds a webhook waits for its commit before answering 503"},
    {.key = "EF_REQUEST_DEADLINE_MS",
     .type = T_INT,
     .def = "10000",
     .min = 100,
     .max = 600000,
     .help = "Milliseconds a client has to send a whole request, headers and body; a body "
             "not complete by then gets 408 and the connection is closed"},
    {.key = "EF_MAX_CONNECTIONS",
     .type = T_INT,
     .def = "1000",
     .min = 1,
     .max = 100000,
     .help = "Most open HTTP connections; beyond it new ones are closed at once"},
    {.key = "EF_MAX_CONNECTIONS_PER_IP",
     .type = T_INT,
     .def = "200",
     .min = 1,
     .max = 100000,
     .help = "Most open HTTP connections from one client address; beyond it new ones are "
             "closed at once"},
    {.key = "EF_WEBCHAT_RATE_PER_MIN",
     .type = T_INT,
     .def = "30",
     .min = 0,
     .max = 6000,
     .help = "Messages (and button presses) one web chat visitor may send per minute, a burst "
             "of as many allowed; beyond it each is refused with a nack (code 429, retry_after_s) "
             "and one log line; 0: no limit"},
    {.key = "EF_QUEUE_MAX",
     .type = T_INT,
     .def = "20000",
     .min = 1,
     .max = 10000000,
     .help = "Most events waiting for their commit across the store workers; beyond it "
             "webhooks get 503 with Retry-After at once"},
    {.key = "EF_REDIS_TIMEOUT_MS",
     .type = T_INT,
     .def = "200",
     .min = 10,
     .max = 10000,
     .help = "Milliseconds a Redis connect or command may take; after a failure Redis is "
             "skipped for a short backoff"},
    {.key = "EF_REDIS_TLS_CA_FILE",
     .type = T_STR,
     .def = "",
     .help = "PEM file of the CAs trusted for a rediss:// server's certificate (empty: the "
             "system CA store)"},
    {.key = "EF_REDIS_TLS_CERT_FILE",
     .type = T_STR,
     .def = "",
     .help = "PEM client certificate presented to a rediss:// server that asks for one"},
    {.key = "EF_REDIS_TLS_KEY_FILE",
     .type = T_STR,
     .def = "",
     .help = "PEM private key of EF_REDIS_TLS_CERT_FILE (empty: read from that file)"},
    {.key = "EF_DRAIN_TIMEOUT_MS",
     .type = T_INT,
     .def = "10000",
     .min = 0,
     .max = 600000,
     .help = "Milliseconds shutdown waits for work in flight"},
    {.key = "EF_REPLY_TTL_S",
     .type = T_INT,
     .def = "3600",
     .min = 0,
     .max = 604800,
     .help = "Seconds a reply may wait in the outbox (an outage, a channel in error): one not "
             "sent by then fails as expired instead of going out late; 0: never expires"},
    {.key = "EF_RETENTION_DAYS",
     .type = T_INT,
     .def = "0",
     .min = 0,
     .max = 36500,
     .help = "Days a conversation closed or idle is kept: older ones are deleted with their "
             "messages by a background task (hourly, in small batches); 0: kept forever"},
    {.key = "EF_RETENTION_INTERVAL_S",
     .type = T_INT,
     .def = "3600",
     .min = 1,
     .max = 86400,
     .help = "Seconds between two runs of the retention task (EF_RETENTION_DAYS)"},
    {.key = "EF_METRICS_ROLLUP_S",
     .type = T_INT,
     .def = "300",
     .min = 0,
     .max = 3600,
     .help = "Seconds between two runs of the hourly metrics rollup into platform_metrics "
             "(GET /api/v1/metrics, the console's dashboard); 0: no rollup"},
    {.key = "TELEGRAM_BOT_TOKEN",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .help = "Telegram bot token (from @BotFather)"},
    {.key = "TELEGRAM_SECRET_TOKEN",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .check = check_tg_secret,
     .help = "Required X-Telegram-Bot-Api-Secret-Token header value (1-256 of A-Z a-z 0-9 _ -)"},
    {.key = "TELEGRAM_MODE",
     .type = T_ENUM,
     .def = "webhook",
     .values = tg_modes,
     .help = "How Telegram updates arrive (poll: getUpdates long polling)"},
    {.key = "TELEGRAM_API_URL",
     .type = T_URL,
     .def = "https://api.telegram.org",
     .values = http_schemes,
     .check = check_api_url,
     .help = "Telegram Bot API base URL (https://; http:// only on a loopback address)"},
    {.key = "TELEGRAM_POLL_TIMEOUT",
     .type = T_INT,
     .def = "25",
     .min = 0,
     .max = 50,
     .help = "Long-poll timeout of getUpdates, seconds"},
    {.key = "WHATSAPP_ACCESS_TOKEN",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .help = "WhatsApp Cloud API access token"},
    {.key = "WHATSAPP_APP_SECRET",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .help = "Meta app secret: verifies X-Hub-Signature-256 on webhooks"},
    {.key = "WHATSAPP_VERIFY_TOKEN",
     .type = T_STR,
     .def = "",
     .flags = F_SECRET,
     .help = "Token expected in the GET /webhook/whatsapp verification"},
    {.key = "WHATSAPP_PHONE_NUMBER_ID",
     .type = T_STR,
     .def = "",
     .check = check_wa_numbers,
     .help = "Business phone number id, or several separated by commas"},
    {.key = "WHATSAPP_API_URL",
     .type = T_URL,
     .def = "https://graph.facebook.com/v25.0",
     .values = http_schemes,
     .check = check_api_url,
     .help = "WhatsApp Graph API base URL (https://; http:// only on a loopback address)"},
    {.key = "WILDBERRIES_API_URL",
     .type = T_URL,
     .def = "",
     .values = http_schemes,
     .check = check_api_url,
     .help = "Replaces every Wildberries seller API host (marketplace-api, buyer-chat-api "
             ".wildberries.ru) for every shop; empty: the real hosts"},
    {.key = "OZON_API_URL",
     .type = T_URL,
     .def = "",
     .values = http_schemes,
     .check = check_api_url,
     .help = "Replaces https://api-seller.ozon.ru for every Ozon shop; empty: the real host"},
    {.key = "WHATSAPP_TEMPLATE",
     .type = T_STR,
     .def = "",
     .help = "Re-engagement template sent instead of a reply outside WhatsApp's 24-hour window, "
             "name:language (e.g. reengage:ru); empty: such replies fail with the reason"},
    {.key = "WHATSAPP_RATE_LIMIT",
     .type = T_INT,
     .def = "80",
     .min = 1,
     .max = 1000,
     .help = "Messages per second per business number"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct ef_config {
    char *val[NKEYS];   /* owned; NULL: the default applies */
    int64_t num[NKEYS]; /* T_INT / T_BOOL: the parsed value in effect */
};

static const key_def *find_key(const char *key, size_t *idx)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].key, key) == 0) {
            if (idx)
                *idx = i;
            return &keys[i];
        }
    }
    return NULL;
}

/* How an error message shows a value: quoted and cut for ordinary keys,
 * redacted for URLs (passwords), never for secrets. */
static void show(const key_def *k, const char *v, char *out, size_t outlen)
{
    if (k->flags & F_SECRET) {
        snprintf(out, outlen, "(secret value)");
        return;
    }
    char *r = k->type == T_URL ? ef_redact_url(v) : NULL;
    const char *s = r ? r : v;
    size_t n = strlen(s);
    snprintf(out, outlen, "\"%.*s%s\"", (int)(n > SHOW_MAX ? SHOW_MAX : n), s,
             n > SHOW_MAX ? "..." : "");
    ef_free(r);
}

/* Strict decimal: optional '-', digits only, no blanks, no overflow. */
static bool parse_int64(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s) || *s == '+')
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static void join_values(const char *const *values, const char *sep, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; values[i]; i++) {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? sep : "", values[i]);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

/* Port text -> 1..65535. why receives the reason on failure. */
static bool parse_port(const char *s, size_t n, int *port, char *why, size_t whylen)
{
    if (n == 0) {
        snprintf(why, whylen, "missing port");
        return false;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            snprintf(why, whylen, "port \"%.*s\" is not a number", (int)(n > 16 ? 16 : n), s);
            return false;
        }
        if (v < 1000000)
            v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) {
        if (v >= 1000000)
            snprintf(why, whylen, "port %.*s not in 1..65535", (int)(n > 16 ? 16 : n), s);
        else
            snprintf(why, whylen, "port %lld not in 1..65535", (long long)v);
        return false;
    }
    *port = (int)v;
    return true;
}

static bool host_char_ok(char ch)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_';
}

/* Hex digits, ':' and '.', and a "%zone" suffix (an interface name). */
static bool ipv6_char_ok(char ch)
{
    return isalnum((unsigned char)ch) || ch == ':' || ch == '.' || ch == '%';
}

/* host[:port] or [v6][:port] at s (n bytes). port_required says whether the
 * port may be left out. Fills host/port on success, why on failure. */
static bool parse_hostport(const char *s, size_t n, bool port_required, char *host, size_t hostlen,
                           int *port, char *why, size_t whylen)
{
    const char *h;
    size_t hn;
    const char *rest;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            snprintf(why, whylen, "missing ']' after the IPv6 address");
            return false;
        }
        h = s + 1;
        hn = (size_t)(close - h);
        for (size_t i = 0; i < hn; i++) {
            if (!ipv6_char_ok(h[i])) {
                snprintf(why, whylen, "bad character in IPv6 address");
                return false;
            }
        }
        rest = close + 1;
        if (rest < s + n && *rest != ':') {
            snprintf(why, whylen, "expected ':' after ']'");
            return false;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        h = s;
        hn = colon ? (size_t)(colon - s) : n;
        if (colon && memchr(colon + 1, ':', n - hn - 1)) {
            snprintf(why, whylen, "write an IPv6 address as [addr]:port");
            return false;
        }
        for (size_t i = 0; i < hn; i++) {
            if (!host_char_ok(h[i])) {
                snprintf(why, whylen, "bad character in host name");
                return false;
            }
        }
        rest = h + hn;
    }
    if (hn == 0) {
        snprintf(why, whylen, "missing host");
        return false;
    }
    if (hn >= hostlen) {
        snprintf(why, whylen, "host name too long");
        return false;
    }
    int p = 0;
    if (rest < s + n) { /* *rest == ':' */
        if (!parse_port(rest + 1, (size_t)(s + n - rest - 1), &p, why, whylen))
            return false;
    } else if (port_required) {
        snprintf(why, whylen, "expected host:port");
        return false;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = p;
    return true;
}

int ef_config_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    char why[128];
    char h[256];
    int p;
    if (!s || !parse_hostport(s, strlen(s), true, h, sizeof(h), &p, why, sizeof(why)))
        return EF_EINVAL;
    if (strlen(h) >= hostlen)
        return EF_EINVAL;
    memcpy(host, h, strlen(h) + 1);
    *port = p;
    return 0;
}

/* scheme://authority... with the scheme in k->values and a non-empty
 * authority without blanks. */
static int check_url(const key_def *k, const char *v, char *err, size_t errlen)
{
    char shown[SHOW_MAX + 16];
    char schemes[64];
    const char *sep = strstr(v, "://");
    bool ok = false;
    if (sep) {
        size_t sn = (size_t)(sep - v);
        for (size_t i = 0; k->values[i]; i++)
            if (strlen(k->values[i]) == sn && strncasecmp(v, k->values[i], sn) == 0)
                ok = true;
    }
    if (!ok) {
        join_values(k->values, "://, ", schemes, sizeof(schemes));
        show(k, v, shown, sizeof(shown));
        ef_errf(err, errlen, "%s: %s does not start with %s://", k->key, shown, schemes);
        return EF_EINVAL;
    }
    const char *auth = sep + 3;
    if (*auth == '\0' || *auth == '/' || *auth == '?') {
        ef_errf(err, errlen, "%s: missing host after %.*s://", k->key, (int)(sep - v), v);
        return EF_EINVAL;
    }
    for (const char *p = v; *p; p++) {
        if (*p == ' ') {
            show(k, v, shown, sizeof(shown));
            ef_errf(err, errlen, "%s: %s contains a blank", k->key, shown);
            return EF_EINVAL;
        }
    }
    return 0;
}

/* libpq itself parses the URI; its message is cut before any quoted part,
 * which could be a piece of the password. */
static int check_pg_url(const key_def *k, const char *v, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(v, &msg);
    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    char why[160] = "not a valid connection URI";
    if (msg) {
        size_t n = strcspn(msg, "\"\n");
        while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == ':'))
            n--;
        if (n > 0)
            snprintf(why, sizeof(why), "%.*s", (int)n, msg);
        PQfreemem(msg);
    }
    ef_errf(err, errlen, "%s: %s", k->key, why);
    return EF_EINVAL;
}

static int check_redis_url(const key_def *k, const char *v, char *err, size_t errlen)
{
    char why[128];
    char host[256];
    int port;
    const char *auth = strstr(v, "://") + 3; /* check_url ran first */
    size_t an = strcspn(auth, "/");
    const char *at = NULL;
    for (size_t i = 0; i < an; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *hp = at ? at + 1 : auth;
    size_t hn = (size_t)(auth + an - hp);
    if (!parse_hostport(hp, hn, false, host, sizeof(host), &port, why, sizeof(why))) {
        ef_errf(err, errlen, "%s: %s (expected redis://host:port/db)", k->key, why);
        return EF_EINVAL;
    }
    const char *db = auth + an;
    if (*db == '/') {
        db++;
        if (strlen(db) > 6) {
            ef_errf(err, errlen, "%s: database number too large", k->key);
            return EF_EINVAL;
        }
        for (const char *p = db; *p; p++) {
            if (!isdigit((unsigned char)*p)) {
                ef_errf(err, errlen,
                        "%s: database \"%s\" is not a number (expected redis://host:port/db)",
                        k->key, db);
                return EF_EINVAL;
            }
        }
    }
    return 0;
}

static int check_hex_key(const key_def *k, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    bool hex = true;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)v[i]))
            hex = false;
    if (n != 64 || !hex) {
        ef_errf(err, errlen,
                "%s: must be 64 hex digits (a 32-byte AES-256-GCM key), e.g. from "
                "`openssl rand -hex 32`; the value given has %zu characters%s",
                k->key, n, hex ? "" : " and non-hex ones");
        return EF_EINVAL;
    }
    return 0;
}

/* Same rules as ef_log_set_debug(): comma-separated exact names, empty
 * items ignored; but nothing is changed here. */
static int check_log_debug(const key_def *k, const char *v, char *err, size_t errlen)
{
    const char *p = v;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool found = n == 0;
        for (size_t i = 0; log_comps[i] && !found; i++)
            if (strlen(log_comps[i]) == n && strncmp(log_comps[i], p, n) == 0)
                found = true;
        if (!found) {
            char names[128];
            join_values(log_comps, ",", names, sizeof(names));
            ef_errf(err, errlen, "%s: unknown component \"%.*s\" (known: %s)", k->key,
                    (int)(n > 32 ? 32 : n), p, names);
            return EF_EINVAL;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int check_tg_secret(const key_def *k, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= 256;
    for (size_t i = 0; i < n && ok; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '_' || v[i] == '-';
    if (!ok) {
        ef_errf(err, errlen, "%s: must be 1..256 characters of A-Z a-z 0-9 _ - (Telegram's rule)",
                k->key);
        return EF_EINVAL;
    }
    return 0;
}

static int check_wa_numbers(const key_def *k, const char *v, char *err, size_t errlen)
{
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        bool ok = n > 0 && n <= 64;
        for (size_t i = 0; i < n && ok; i++)
            ok = isdigit((unsigned char)p[i]);
        if (!ok) {
            ef_errf(err, errlen,
                    "%s: \"%.*s\" is not a phone number id (digits; several ids separated by "
                    "commas, no blanks)",
                    k->key, (int)(n > 64 ? 64 : n), p);
            return EF_EINVAL;
        }
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

/* Platform API URLs carry tokens: https://, or http:// on loopback (tests,
 * a local proxy). */
static int check_api_url(const key_def *k, const char *v, char *err, size_t errlen)
{
    if (ef_url_https_or_loopback(v))
        return 0;
    ef_errf(err, errlen,
            "%s: must be https:// (plain http:// only on a loopback address: 127.0.0.0/8, ::1, "
            "localhost)",
            k->key);
    return EF_EINVAL;
}

/* Type check and normalization of a non-empty value. On success *norm receives
 * a new string to keep and *num the parsed number (INT/BOOL). */
static int check_value(const key_def *k, const char *v, char **norm, int64_t *num, char *err,
                       size_t errlen)
{
    char shown[SHOW_MAX + 16];
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            ef_errf(err, errlen, "%s: contains a control character", k->key);
            return EF_EINVAL;
        }
    }
    int64_t n = 0;
    char *out = NULL;
    switch (k->type) {
    case T_STR:
        break;
    case T_INT:
        if (!parse_int64(v, &n)) {
            show(k, v, shown, sizeof(shown));
            ef_errf(err, errlen, "%s: %s is not an integer", k->key, shown);
            return EF_EINVAL;
        }
        if (n < k->min || n > k->max) {
            ef_errf(err, errlen, "%s: %lld not in %lld..%lld", k->key, (long long)n,
                    (long long)k->min, (long long)k->max);
            return EF_EINVAL;
        }
        break;
    case T_BOOL: {
        bool b;
        if (!parse_bool(v, &b)) {
            show(k, v, shown, sizeof(shown));
            ef_errf(err, errlen, "%s: %s is not a boolean (true/false, yes/no, on/off, 1/0)",
                    k->key, shown);
            return EF_EINVAL;
        }
        n = b;
        out = ef_strdup(b ? "true" : "false");
        break;
    }
    case T_ENUM: {
        for (size_t i = 0; k->values[i] && !out; i++)
            if (strcasecmp(v, k->values[i]) == 0)
                out = ef_strdup(k->values[i]);
        if (!out) {
            char list[128];
            join_values(k->values, "|", list, sizeof(list));
            show(k, v, shown, sizeof(shown));
            ef_errf(err, errlen, "%s: %s is not one of %s", k->key, shown, list);
            return EF_EINVAL;
        }
        break;
    }
    case T_LISTEN: {
        char why[128];
        char host[256];
        int port;
        if (!parse_hostport(v, strlen(v), true, host, sizeof(host), &port, why, sizeof(why))) {
            ef_errf(err, errlen, "%s: %s", k->key, why);
            return EF_EINVAL;
        }
        break;
    }
    case T_URL: {
        int rc = check_url(k, v, err, errlen);
        if (rc)
            return rc;
        /* Callers append "/bot<token>/method" and the like. */
        if (k->values == http_schemes) {
            size_t len = strlen(v);
            const char *auth_end = strstr(v, "://") + 3;
            while (len > (size_t)(auth_end - v) + 1 && v[len - 1] == '/')
                len--;
            out = ef_strndup(v, len);
        }
        break;
    }
    }
    if (k->check) {
        int rc = k->check(k, out ? out : v, err, errlen);
        if (rc) {
            ef_free(out);
            return rc;
        }
    }
    *norm = out ? out : ef_strdup(v);
    *num = n;
    return 0;
}

/* The number a key's default stands for (INT/BOOL). The table is ours, so
 * a default that does not parse is a programmer error. */
static int64_t default_num(const key_def *k)
{
    int64_t n = 0;
    bool b = false;
    if (k->type == T_INT && !parse_int64(k->def, &n))
        EF_PANIC("config: default of %s does not parse", k->key);
    if (k->type == T_BOOL) {
        if (!parse_bool(k->def, &b))
            EF_PANIC("config: default of %s does not parse", k->key);
        n = b;
    }
    return n;
}

ef_config *ef_config_new(void)
{
    ef_config *c = ef_calloc(1, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++)
        c->num[i] = default_num(&keys[i]);
    return c;
}

void ef_config_free(ef_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        ef_free(c->val[i]);
    ef_free(c);
}

/* The secret key whose file `name` (KEY_FILE) names, else NULL. */
static const key_def *file_key(const char *name)
{
    size_t n = strlen(name), sl = strlen(FILE_SUFFIX);
    if (n <= sl || strcmp(name + n - sl, FILE_SUFFIX) != 0)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++)
        if ((keys[i].flags & F_SECRET) && strlen(keys[i].key) == n - sl &&
            strncmp(keys[i].key, name, n - sl) == 0)
            return &keys[i];
    return NULL;
}

bool ef_config_is_secret(const char *key)
{
    const key_def *k = find_key(key, NULL);
    return k && (k->flags & F_SECRET);
}

int ef_config_read_secret_file(const char *var, const char *path, char **out, char *err,
                               size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        ef_errf(err, errlen, "%s: cannot read %.200s: %s", var, path, strerror(errno));
        return EF_EIO;
    }
    char *buf = ef_malloc(SECRET_FILE_MAX + 2);
    size_t n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
    int rc = ferror(f) ? EF_EIO : 0;
    fclose(f);
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (rc)
        ef_errf(err, errlen, "%s: cannot read %.200s: read error", var, path);
    else if (n > SECRET_FILE_MAX)
        ef_errf(err, errlen, "%s: %.200s is larger than %d bytes", var, path, SECRET_FILE_MAX);
    else if (n == 0)
        ef_errf(err, errlen, "%s: %.200s is empty", var, path);
    if (rc || n == 0 || n > SECRET_FILE_MAX) {
        explicit_bzero(buf, SECRET_FILE_MAX + 2);
        ef_free(buf);
        return rc ? rc : EF_EINVAL;
    }
    *out = buf;
    return 0;
}

/* KEY_FILE=path: the secret KEY read from path ("" puts KEY back to its
 * default). The value read is wiped once copied. */
static int set_from_file(ef_config *c, const key_def *k, const char *name, const char *path,
                         char *err, size_t errlen)
{
    if (!path || !*path)
        return ef_config_set(c, k->key, NULL, err, errlen);
    char *v = NULL;
    int rc = ef_config_read_secret_file(name, path, &v, err, errlen);
    if (rc)
        return rc;
    rc = ef_config_set(c, k->key, v, err, errlen);
    explicit_bzero(v, strlen(v));
    ef_free(v);
    return rc;
}

int ef_config_set(ef_config *c, const char *key, const char *value, char *err, size_t errlen)
{
    size_t i;
    const key_def *k = find_key(key, &i);
    const key_def *fk = k ? NULL : file_key(key);
    if (fk)
        return set_from_file(c, fk, key, value, err, errlen);
    if (!k) {
        ef_errf(err, errlen, "unknown key \"%.64s\"", key);
        return EF_EINVAL;
    }
    if (!value || !*value) { /* "" counts as unset: back to the default */
        ef_free(c->val[i]);
        c->val[i] = NULL;
        c->num[i] = default_num(k);
        return 0;
    }
    char *norm = NULL;
    int64_t num = 0;
    int rc = check_value(k, value, &norm, &num, err, errlen);
    if (rc)
        return rc;
    ef_free(c->val[i]);
    c->val[i] = norm;
    c->num[i] = num;
    return 0;
}

int ef_config_load_env_key(ef_config *c, const char *key, char *err, size_t errlen)
{
    const key_def *k = find_key(key, NULL);
    if (!k) {
        ef_errf(err, errlen, "unknown key \"%.64s\"", key);
        return EF_EINVAL;
    }
    const char *v = getenv(key);
    if (!(k->flags & F_SECRET))
        return v ? ef_config_set(c, key, v, err, errlen) : 0;
    char name[96];
    snprintf(name, sizeof(name), "%s" FILE_SUFFIX, key);
    const char *path = getenv(name);
    if (v && *v && path && *path) {
        ef_errf(err, errlen, "%s and %s are both set: keep one", key, name);
        return EF_EINVAL;
    }
    if (path && *path)
        return set_from_file(c, k, name, path, err, errlen);
    return v ? ef_config_set(c, key, v, err, errlen) : 0;
}

int ef_config_load_env(ef_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        int rc = ef_config_load_env_key(c, keys[i].key, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads one line into b (without the newline). Returns 1 for a line, 0 at
 * the end of the file, EF_ELIMIT for an overlong line, EF_EINVAL for a NUL
 * byte, EF_EIO on a read error. */
static int read_line(FILE *f, ef_buf *b)
{
    ef_buf_reset(b);
    int ch;
    bool any = false;
    int rc = 1;
    while ((ch = getc(f)) != EOF) {
        any = true;
        if (ch == '\n')
            break;
        if (ch == '\0')
            rc = EF_EINVAL;
        char c8 = (char)ch;
        if (rc == 1 && ef_buf_append(b, &c8, 1) != 0)
            rc = EF_ELIMIT;
    }
    if (ferror(f))
        return EF_EIO;
    if (!any)
        return 0;
    return rc;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int ef_config_load_file(ef_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        ef_errf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? EF_ENOTFOUND : EF_EIO;
    }
    ef_buf line;
    ef_buf_init(&line, LINE_MAX_BYTES);
    char sub[256];
    int rc = 0;
    for (int lineno = 1;; lineno++) {
        int r = read_line(f, &line);
        if (r == 0)
            break;
        if (r < 0) {
            ef_errf(err, errlen, "%s:%d: %s", path, lineno,
                    r == EF_ELIMIT ? "line longer than 65536 bytes"
                    : r == EF_EIO  ? "read error"
                                   : "line contains a NUL byte");
            rc = r == EF_EIO ? EF_EIO : EF_EINVAL;
            goto fail;
        }
        if (!line.data)
            continue; /* an empty line */
        char *p = line.data;
        if (lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
            p += 3;
        p = trim(p);
        if (*p == '\0' || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            ef_errf(err, errlen, "%s:%d: expected KEY = value", path, lineno);
            rc = EF_EINVAL;
            goto fail;
        }
        *eq = '\0';
        char *key = trim(p);
        char *value = trim(eq + 1);
        if (*key == '\0') {
            ef_errf(err, errlen, "%s:%d: missing key before '='", path, lineno);
            rc = EF_EINVAL;
            goto fail;
        }
        if (*value == '"') {
            size_t n = strlen(value);
            if (n < 2 || value[n - 1] != '"') {
                ef_errf(err, errlen, "%s:%d: %s: unterminated quote", path, lineno, key);
                rc = EF_EINVAL;
                goto fail;
            }
            value[n - 1] = '\0';
            value++;
        }
        rc = ef_config_set(c, key, value, sub, sizeof(sub));
        if (rc) {
            ef_errf(err, errlen, "%s:%d: %s", path, lineno, sub);
            goto fail;
        }
    }
fail:
    ef_buf_cleanup(&line);
    fclose(f);
    return rc;
}

/* The text in effect ("" when unset). */
static const char *raw_value(const ef_config *c, size_t i)
{
    return c->val[i] ? c->val[i] : keys[i].def;
}

int ef_config_validate(const ef_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if ((keys[i].flags & F_REQUIRED) && *raw_value(c, i) == '\0') {
            ef_errf(err, errlen, "%s: required but not set", keys[i].key);
            return EF_EINVAL;
        }
    }
    const char *mode = ef_cfg_get_str(c, "TELEGRAM_MODE");
    if (mode && strcmp(mode, "poll") == 0 && !ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN")) {
        ef_errf(err, errlen, "TELEGRAM_MODE: poll needs TELEGRAM_BOT_TOKEN to be set");
        return EF_EINVAL;
    }
    return 0;
}

static size_t must_find(const char *key)
{
    size_t i;
    if (!find_key(key, &i))
        EF_PANIC("config: unknown key %s asked for", key);
    return i;
}

const char *ef_cfg_get_str(const ef_config *c, const char *key)
{
    const char *v = raw_value(c, must_find(key));
    return *v ? v : NULL;
}

int64_t ef_cfg_get_int(const ef_config *c, const char *key)
{
    size_t i = must_find(key);
    if (keys[i].type != T_INT)
        EF_PANIC("config: %s is not an integer key", key);
    return c->num[i];
}

bool ef_cfg_get_bool(const ef_config *c, const char *key)
{
    size_t i = must_find(key);
    if (keys[i].type != T_BOOL)
        EF_PANIC("config: %s is not a boolean key", key);
    return c->num[i] != 0;
}

void ef_config_print(const ef_config *c, FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *v = raw_value(c, i);
        if (*v == '\0') {
            fprintf(out, "%s=(unset)\n", keys[i].key);
        } else if (keys[i].flags & F_SECRET) {
            fprintf(out, "%s=***\n", keys[i].key);
        } else if (keys[i].type == T_URL) {
            char *r = ef_redact_url(v);
            fprintf(out, "%s=%s\n", keys[i].key, r);
            ef_free(r);
        } else {
            fprintf(out, "%s=%s\n", keys[i].key, v);
        }
    }
}

/* What --help and the README table say below the keys. */
#define SECRET_FILE_NOTE                                                                           \
    "Each [secret] key can be read from a file instead: KEY_FILE=path (e.g. "                      \
    "TELEGRAM_BOT_TOKEN_FILE=/run/secrets/tg_token; one trailing newline removed). Setting both "  \
    "KEY and KEY_FILE is an error, and secret keys are refused as --KEY value on the command "     \
    "line (they would show in ps)."

/* The help text plus what the table knows: range, choices, secrecy. */
static void describe(const key_def *k, char *out, size_t outlen)
{
    char extra[160] = "";
    if (k->type == T_INT) {
        snprintf(extra, sizeof(extra), " (%lld..%lld)", (long long)k->min, (long long)k->max);
    } else if (k->type == T_ENUM) {
        char list[128];
        join_values(k->values, "|", list, sizeof(list));
        snprintf(extra, sizeof(extra), " (%s)", list);
    } else if (k->type == T_BOOL) {
        snprintf(extra, sizeof(extra), " (true|false)");
    }
    snprintf(out, outlen, "%s%s%s%s", k->help, extra, (k->flags & F_SECRET) ? " [secret]" : "",
             (k->flags & F_REQUIRED) ? " [required]" : "");
}

void ef_config_help(FILE *out)
{
    int kw = (int)strlen("Variable");
    int dw = (int)strlen("Default");
    for (size_t i = 0; i < NKEYS; i++) {
        int kl = (int)strlen(keys[i].key);
        int dl = (int)strlen(*keys[i].def ? keys[i].def : "-");
        kw = kl > kw ? kl : kw;
        dw = dl > dw ? dl : dw;
    }
    fprintf(out, "  %-*s  %-*s  %s\n", kw, "Variable", dw, "Default", "Meaning");
    for (size_t i = 0; i < NKEYS; i++) {
        char meaning[512];
        describe(&keys[i], meaning, sizeof(meaning));
        fprintf(out, "  %-*s  %-*s  %s\n", kw, keys[i].key, dw, *keys[i].def ? keys[i].def : "-",
                meaning);
    }
    fprintf(out, "\n  %s\n", SECRET_FILE_NOTE);
}

/* Markdown table cells: '|' would end the cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void ef_config_markdown(FILE *out)
{
    fprintf(out, "| Variable | Default | Meaning |\n| --- | --- | --- |\n");
    for (size_t i = 0; i < NKEYS; i++) {
        char meaning[512];
        describe(&keys[i], meaning, sizeof(meaning));
        fprintf(out, "| `%s` | ", keys[i].key);
        if (*keys[i].def) {
            fputc('`', out);
            md_cell(out, keys[i].def);
            fputc('`', out);
        }
        fprintf(out, " | ");
        md_cell(out, meaning);
        fprintf(out, " |\n");
    }
    fprintf(out, "\n%s\n", SECRET_FILE_NOTE);
}
