/*
 * test_config.c -- the configuration table: defaults, precedence, every
 * validation rule, secrets kept out of output and errors, the file format,
 * --help and the README table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The public names of DESIGN.md and the gateway's own keys. */
static const char *const all_keys[] = {
    "EF_DATABASE_URL",
    "EF_REDIS_URL",
    "EF_LISTEN",
    "EF_BOT_FILE",
    "EF_SECRET_KEY",
    "EF_SECRET_KEY_OLD",
    "EF_SQL_DIR",
    "EF_WEB_DIR",
    "EF_LOG_LEVEL",
    "EF_LOG_DEBUG",
    "EF_LOG_REPLIES",
    "EF_MAX_BODY",
    "EF_JSON_MAX_DEPTH",
    "EF_JSON_MAX_STRING",
    "EF_JSON_MAX_ARRAY",
    "EF_JSON_MAX_KEYS",
    "EF_STORE_WORKERS",
    "EF_BATCH_MAX",
    "EF_SESSION_TTL",
    "EF_REQUEST_TIMEOUT_MS",
    "EF_REQUEST_DEADLINE_MS",
    "EF_MAX_CONNECTIONS",
    "EF_MAX_CONNECTIONS_PER_IP",
    "EF_WEBCHAT_RATE_PER_MIN",
    "EF_QUEUE_MAX",
    "EF_REDIS_TIMEOUT_MS",
    "EF_REDIS_TLS_CA_FILE",
    "EF_REDIS_TLS_CERT_FILE",
    "EF_REDIS_TLS_KEY_FILE",
    "EF_DRAIN_TIMEOUT_MS",
    "EF_REPLY_TTL_S",
    "EF_RETENTION_DAYS",
    "EF_RETENTION_INTERVAL_S",
    "EF_METRICS_ROLLUP_S",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_SECRET_TOKEN",
    "TELEGRAM_MODE",
    "TELEGRAM_API_URL",
    "TELEGRAM_POLL_TIMEOUT",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_API_URL",
    "WILDBERRIES_API_URL",
    "OZON_API_URL",
    "WHATSAPP_RATE_LIMIT",
    "WHATSAPP_TEMPLATE",
};
#define NALL (sizeof(all_keys) / sizeof(all_keys[0]))

static const char *const secret_keys[] = {
    "EF_SECRET_KEY",         "TELEGRAM_BOT_TOKEN",  "TELEGRAM_SECRET_TOKEN",
    "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN",
};

static const char hexkey[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static void clear_env(void)
{
    for (size_t i = 0; i < NALL; i++)
        unsetenv(all_keys[i]);
}

/* Writes text to a new temporary file; returns its path (caller frees). */
static char *write_tmp(const char *text)
{
    char *path = ef_strdup("/tmp/ef-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Runs one printer into a temporary FILE and returns what it wrote. */
static char *capture(const ef_config *c, int which)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    if (which == 0)
        ef_config_print(c, f);
    else if (which == 1)
        ef_config_help(f);
    else
        ef_config_markdown(f);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *buf = ef_malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_defaults(void **state)
{
    (void)state;
    ef_config *c = ef_config_new();
    assert_string_equal(ef_cfg_get_str(c, "EF_DATABASE_URL"),
                        "postgresql://127.0.0.1:5432/easyflow");
    assert_string_equal(ef_cfg_get_str(c, "EF_REDIS_URL"), "redis://127.0.0.1:6379/0");
    assert_string_equal(ef_cfg_get_str(c, "EF_LISTEN"), "127.0.0.1:8080");
    assert_string_equal(ef_cfg_get_str(c, "EF_LOG_LEVEL"), "info");
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_MODE"), "webhook");
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_API_URL"), "https://api.telegram.org");
    assert_string_equal(ef_cfg_get_str(c, "WHATSAPP_API_URL"), "https://graph.facebook.com/v25.0");
    assert_null(ef_cfg_get_str(c, "EF_BOT_FILE"));
    assert_null(ef_cfg_get_str(c, "EF_SQL_DIR"));
    assert_null(ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN"));
    assert_null(ef_cfg_get_str(c, "EF_SECRET_KEY"));
    assert_int_equal(ef_cfg_get_int(c, "EF_MAX_BODY"), 1048576);
    assert_int_equal(ef_cfg_get_int(c, "EF_JSON_MAX_DEPTH"), 64);
    assert_int_equal(ef_cfg_get_int(c, "EF_STORE_WORKERS"), 2);
    assert_int_equal(ef_cfg_get_int(c, "EF_BATCH_MAX"), 256);
    assert_int_equal(ef_cfg_get_int(c, "EF_SESSION_TTL"), 86400);
    assert_int_equal(ef_cfg_get_int(c, "EF_REQUEST_TIMEOUT_MS"), 15000);
    assert_int_equal(ef_cfg_get_int(c, "EF_DRAIN_TIMEOUT_MS"), 10000);
    assert_int_equal(ef_cfg_get_int(c, "TELEGRAM_POLL_TIMEOUT"), 25);
    assert_int_equal(ef_cfg_get_int(c, "WHATSAPP_RATE_LIMIT"), 80);
    char err[256];
    assert_int_equal(ef_config_validate(c, err, sizeof(err)), 0);
    ef_config_free(c);
}

static void test_env_beats_file(void **state)
{
    (void)state;
    clear_env();
    char *path = write_tmp("EF_LISTEN = 127.0.0.1:9000\n"
                           "EF_BATCH_MAX = 17\n"
                           "TELEGRAM_MODE = poll\n");
    setenv("EF_LISTEN", "0.0.0.0:9100", 1);
    setenv("TELEGRAM_BOT_TOKEN", "123:env-token", 1);
    setenv("EF_TEST_UNRELATED", "whatever", 1); /* not a key: ignored */
    ef_config *c = ef_config_new();
    char err[256] = "";
    assert_int_equal(ef_config_load_file(c, path, err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "EF_LISTEN"), "127.0.0.1:9000");
    assert_int_equal(ef_config_load_env(c, err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "EF_LISTEN"), "0.0.0.0:9100");
    assert_int_equal(ef_cfg_get_int(c, "EF_BATCH_MAX"), 17);         /* file only */
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_MODE"), "poll"); /* file only */
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN"), "123:env-token");
    /* Then the command line's --KEY value. */
    assert_int_equal(ef_config_set(c, "EF_LISTEN", "127.0.0.1:9200", err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "EF_LISTEN"), "127.0.0.1:9200");
    assert_int_equal(ef_config_validate(c, err, sizeof(err)), 0);

    /* A bad environment value fails naming the key. */
    setenv("EF_MAX_BODY", "12", 1);
    assert_int_equal(ef_config_load_env(c, err, sizeof(err)), EF_EINVAL);
    assert_string_equal(err, "EF_MAX_BODY: 12 not in 1024..67108864");

    ef_config_free(c);
    clear_env();
    unsetenv("EF_TEST_UNRELATED");
    unlink(path);
    ef_free(path);
}

typedef struct bad_case {
    const char *key;
    const char *value;
    const char *error; /* the exact message */
} bad_case;

static void test_validation_errors(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"EF_LISTEN", "127.0.0.1:70000", "EF_LISTEN: port 70000 not in 1..65535"},
        {"EF_LISTEN", "127.0.0.1:0", "EF_LISTEN: port 0 not in 1..65535"},
        {"EF_LISTEN", "8080", "EF_LISTEN: expected host:port"},
        {"EF_LISTEN", ":8080", "EF_LISTEN: missing host"},
        {"EF_LISTEN", "localhost:http", "EF_LISTEN: port \"http\" is not a number"},
        {"EF_LISTEN", "::1:8080", "EF_LISTEN: write an IPv6 address as [addr]:port"},
        {"EF_LISTEN", "[::1:8080", "EF_LISTEN: missing ']' after the IPv6 address"},
        {"EF_MAX_BODY", "1023", "EF_MAX_BODY: 1023 not in 1024..67108864"},
        {"EF_MAX_BODY", "67108865", "EF_MAX_BODY: 67108865 not in 1024..67108864"},
        {"EF_MAX_BODY", "1MB", "EF_MAX_BODY: \"1MB\" is not an integer"},
        {"EF_MAX_BODY", " 2048", "EF_MAX_BODY: \" 2048\" is not an integer"},
        {"EF_MAX_BODY", "99999999999999999999",
         "EF_MAX_BODY: \"99999999999999999999\" is not an integer"},
        {"EF_JSON_MAX_DEPTH", "1", "EF_JSON_MAX_DEPTH: 1 not in 2..512"},
        {"EF_STORE_WORKERS", "65", "EF_STORE_WORKERS: 65 not in 1..64"},
        {"EF_BATCH_MAX", "0", "EF_BATCH_MAX: 0 not in 1..10000"},
        {"EF_SESSION_TTL", "59", "EF_SESSION_TTL: 59 not in 60..31536000"},
        {"EF_REQUEST_TIMEOUT_MS", "120001", "EF_REQUEST_TIMEOUT_MS: 120001 not in 100..120000"},
        {"EF_DRAIN_TIMEOUT_MS", "-1", "EF_DRAIN_TIMEOUT_MS: -1 not in 0..600000"},
        {"TELEGRAM_POLL_TIMEOUT", "51", "TELEGRAM_POLL_TIMEOUT: 51 not in 0..50"},
        {"WHATSAPP_RATE_LIMIT", "1001", "WHATSAPP_RATE_LIMIT: 1001 not in 1..1000"},
        {"EF_LOG_LEVEL", "verbose",
         "EF_LOG_LEVEL: \"verbose\" is not one of error|warn|info|debug|trace"},
        {"TELEGRAM_MODE", "push", "TELEGRAM_MODE: \"push\" is not one of webhook|poll"},
        {"EF_LOG_DEBUG", "tg,sql",
         "EF_LOG_DEBUG: unknown component \"sql\" (known: "
         "http,tg,wa,nlp,fsm,pg,redis,curl,pipe,poll,cfg,main)"},
        {"EF_LOG_DEBUG", "tg, pg",
         "EF_LOG_DEBUG: unknown component \" pg\" (known: "
         "http,tg,wa,nlp,fsm,pg,redis,curl,pipe,poll,cfg,main)"},
        {"EF_REDIS_URL", "http://127.0.0.1:6379/0",
         "EF_REDIS_URL: \"http://127.0.0.1:6379/0\" does not start with redis://, rediss://"},
        {"EF_REDIS_URL", "redis://127.0.0.1:99999/0",
         "EF_REDIS_URL: port 99999 not in 1..65535 (expected redis://host:port/db)"},
        {"EF_REDIS_URL", "redis://127.0.0.1:6379/zero",
         "EF_REDIS_URL: database \"zero\" is not a number (expected redis://host:port/db)"},
        {"EF_REDIS_URL", "redis://", "EF_REDIS_URL: missing host after redis://"},
        {"EF_REDIS_URL", "redis://:pw@:6379/0",
         "EF_REDIS_URL: missing host (expected redis://host:port/db)"},
        {"EF_DATABASE_URL", "mysql://localhost/x",
         "EF_DATABASE_URL: \"mysql://localhost/x\" does not start with postgresql://, "
         "postgres://"},
        {"EF_DATABASE_URL", "postgresql://u@h:5432/db?nosuchoption=1",
         "EF_DATABASE_URL: invalid URI query parameter"},
        {"TELEGRAM_API_URL", "ftp://example.org",
         "TELEGRAM_API_URL: \"ftp://example.org\" does not start with https://, http://"},
        {"TELEGRAM_API_URL", "http://", "TELEGRAM_API_URL: missing host after http://"},
        {"TELEGRAM_API_URL", "http://api.telegram.org",
         "TELEGRAM_API_URL: must be https:// (plain http:// only on a loopback address: "
         "127.0.0.0/8, ::1, localhost)"},
        {"WHATSAPP_API_URL", "http://10.1.2.3:8080/v25.0",
         "WHATSAPP_API_URL: must be https:// (plain http:// only on a loopback address: "
         "127.0.0.0/8, ::1, localhost)"},
        {"WHATSAPP_API_URL", "http://127.0.0.1.example.org",
         "WHATSAPP_API_URL: must be https:// (plain http:// only on a loopback address: "
         "127.0.0.0/8, ::1, localhost)"},
        {"WHATSAPP_API_URL", "https://graph example",
         "WHATSAPP_API_URL: \"https://graph "
         "example\" contains a blank"},
        {"WHATSAPP_PHONE_NUMBER_ID", "1234,abc",
         "WHATSAPP_PHONE_NUMBER_ID: \"abc\" is not a phone number id (digits; several ids "
         "separated by commas, no blanks)"},
        {"WHATSAPP_PHONE_NUMBER_ID", "1234,,5678",
         "WHATSAPP_PHONE_NUMBER_ID: \"\" is not a phone number id (digits; several ids "
         "separated by commas, no blanks)"},
        {"EF_BOT_FILE", "bot\n.yaml", "EF_BOT_FILE: contains a control character"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ef_config *c = ef_config_new();
        char err[512] = "";
        const char *before = ef_cfg_get_str(c, cases[i].key);
        char *kept = before ? ef_strdup(before) : NULL;
        int rc = ef_config_set(c, cases[i].key, cases[i].value, err, sizeof(err));
        if (rc != EF_EINVAL || strcmp(err, cases[i].error) != 0)
            fail_msg("%s=%s: rc=%d err=\"%s\", want \"%s\"", cases[i].key, cases[i].value, rc, err,
                     cases[i].error);
        /* A refused value never replaces the one in effect. */
        const char *after = ef_cfg_get_str(c, cases[i].key);
        if (kept)
            assert_string_equal(after, kept);
        else
            assert_null(after);
        ef_free(kept);
        ef_config_free(c);
    }
}

static void test_valid_values(void **state)
{
    (void)state;
    ef_config *c = ef_config_new();
    char err[256] = "";
    static const char *const ok[][2] = {
        {"EF_LISTEN", "[::1]:8443"},
        {"EF_LISTEN", "0.0.0.0:1"},
        {"EF_LISTEN", "localhost:65535"},
        {"EF_REDIS_URL", "redis://localhost"},
        {"EF_REDIS_URL", "redis://:pw@[::1]:6380/3"},
        {"EF_REDIS_URL", "rediss://:pw@cache.example.com:6380/1"},
        {"EF_DATABASE_URL", "postgres://u:p@db.example:6543/ef?sslmode=require"},
        {"EF_LOG_DEBUG", "tg,pg,,redis"},
        {"EF_LOG_LEVEL", "DEBUG"},
        {"WHATSAPP_PHONE_NUMBER_ID", "106540352242922,106540352242923"},
        {"TELEGRAM_SECRET_TOKEN", "Abc_09-z"},
        {"EF_SECRET_KEY", hexkey},
        {"TELEGRAM_POLL_TIMEOUT", "0"},
        {"TELEGRAM_API_URL", "https://tg-proxy.example.org/"},
        {"TELEGRAM_API_URL", "http://127.0.0.2:8081"},
        {"WHATSAPP_API_URL", "http://[::1]:9/v25.0"},
        {"WHATSAPP_API_URL", "http://localhost:9"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (ef_config_set(c, ok[i][0], ok[i][1], err, sizeof(err)) != 0)
            fail_msg("%s=%s refused: %s", ok[i][0], ok[i][1], err);
    }
    /* Enum values are kept in their canonical spelling. */
    assert_string_equal(ef_cfg_get_str(c, "EF_LOG_LEVEL"), "debug");
    assert_int_equal(ef_cfg_get_int(c, "TELEGRAM_POLL_TIMEOUT"), 0);
    /* API URLs lose a trailing '/' so "/bot<token>/method" can be appended. */
    assert_int_equal(
        ef_config_set(c, "TELEGRAM_API_URL", "http://127.0.0.1:4567/", err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_API_URL"), "http://127.0.0.1:4567");
    /* "" counts as unset: back to the default. */
    assert_int_equal(ef_config_set(c, "TELEGRAM_API_URL", "", err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_API_URL"), "https://api.telegram.org");
    assert_int_equal(ef_config_set(c, "TELEGRAM_POLL_TIMEOUT", "", err, sizeof(err)), 0);
    assert_int_equal(ef_cfg_get_int(c, "TELEGRAM_POLL_TIMEOUT"), 25);
    ef_config_free(c);
}

/* The components EF_LOG_DEBUG accepts are exactly those log.c knows. */
static void test_log_debug_matches_logger(void **state)
{
    (void)state;
    static const char *const comps[] = {"http",  "tg",   "wa",   "nlp",  "fsm", "pg",
                                        "redis", "curl", "pipe", "poll", "cfg", "main"};
    int saved[EF_C__COUNT];
    memcpy(saved, ef_log_levels, sizeof(saved));
    ef_config *c = ef_config_new();
    char err[256];
    for (size_t i = 0; i < sizeof(comps) / sizeof(comps[0]); i++) {
        assert_int_equal(ef_log_set_debug(comps[i]), 0);
        assert_int_equal(ef_config_set(c, "EF_LOG_DEBUG", comps[i], err, sizeof(err)), 0);
    }
    assert_int_equal(sizeof(comps) / sizeof(comps[0]), EF_C__COUNT);
    assert_int_not_equal(ef_log_set_debug("bogus"), 0);
    memcpy(ef_log_levels, saved, sizeof(saved));
    /* Validation alone changes no level. */
    assert_int_equal(ef_config_set(c, "EF_LOG_DEBUG", "pg,tg", err, sizeof(err)), 0);
    assert_memory_equal(ef_log_levels, saved, sizeof(saved));
    ef_config_free(c);
}

static void test_secrets_never_echoed(void **state)
{
    (void)state;
    ef_config *c = ef_config_new();
    char err[512] = "";
    const char *bad_key = "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_int_equal(ef_config_set(c, "EF_SECRET_KEY", bad_key, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, "EF_SECRET_KEY: must be 64 hex digits"));
    assert_null(strstr(err, "zz1122"));
    assert_int_equal(ef_config_set(c, "EF_SECRET_KEY", "abcdef", err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, "has 6 characters"));
    assert_null(strstr(err, "abcdef"));

    const char *bad_tok = "s3cr3t tok!";
    assert_int_equal(ef_config_set(c, "TELEGRAM_SECRET_TOKEN", bad_tok, err, sizeof(err)),
                     EF_EINVAL);
    assert_string_equal(err, "TELEGRAM_SECRET_TOKEN: must be 1..256 characters of A-Z a-z 0-9 _ - "
                             "(Telegram's rule)");
    char longtok[258];
    memset(longtok, 'a', 257);
    longtok[257] = '\0';
    assert_int_equal(ef_config_set(c, "TELEGRAM_SECRET_TOKEN", longtok, err, sizeof(err)),
                     EF_EINVAL);
    longtok[256] = '\0';
    assert_int_equal(ef_config_set(c, "TELEGRAM_SECRET_TOKEN", longtok, err, sizeof(err)), 0);

    assert_int_equal(ef_config_set(c, "WHATSAPP_APP_SECRET", "app\tsecret", err, sizeof(err)),
                     EF_EINVAL);
    assert_string_equal(err, "WHATSAPP_APP_SECRET: contains a control character");

    /* A database password never appears in an error. */
    assert_int_equal(
        ef_config_set(c, "EF_DATABASE_URL", "postgresql://u:hunter2@h/db?x=%zz", err, sizeof(err)),
        EF_EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(
        ef_config_set(c, "EF_REDIS_URL", "valkey://:hunter2@h:6379/0", err, sizeof(err)),
        EF_EINVAL);
    assert_non_null(strstr(err, "EF_REDIS_URL: \"valkey://:***@h:6379/0\""));
    assert_null(strstr(err, "hunter2"));
    ef_config_free(c);
}

static void test_validate_cross_keys(void **state)
{
    (void)state;
    ef_config *c = ef_config_new();
    char err[256] = "";
    assert_int_equal(ef_config_set(c, "TELEGRAM_MODE", "poll", err, sizeof(err)), 0);
    assert_int_equal(ef_config_validate(c, err, sizeof(err)), EF_EINVAL);
    assert_string_equal(err, "TELEGRAM_MODE: poll needs TELEGRAM_BOT_TOKEN to be set");
    assert_int_equal(ef_config_set(c, "TELEGRAM_BOT_TOKEN", "42:abc", err, sizeof(err)), 0);
    assert_int_equal(ef_config_validate(c, err, sizeof(err)), 0);
    ef_config_free(c);
}

static void test_print_masks_secrets(void **state)
{
    (void)state;
    ef_config *c = ef_config_new();
    char err[256];
    assert_int_equal(
        ef_config_set(c, "TELEGRAM_BOT_TOKEN", "123456:AAHsecretBotToken", err, sizeof(err)), 0);
    assert_int_equal(ef_config_set(c, "WHATSAPP_APP_SECRET", "appsecret42", err, sizeof(err)), 0);
    assert_int_equal(ef_config_set(c, "EF_SECRET_KEY", hexkey, err, sizeof(err)), 0);
    assert_int_equal(ef_config_set(c, "EF_DATABASE_URL", "postgresql://ef:dbpass99@db:5432/ef", err,
                                   sizeof(err)),
                     0);
    assert_int_equal(ef_config_set(c, "EF_BATCH_MAX", "99", err, sizeof(err)), 0);
    char *out = capture(c, 0);
    assert_non_null(strstr(out, "TELEGRAM_BOT_TOKEN=***\n"));
    assert_non_null(strstr(out, "WHATSAPP_APP_SECRET=***\n"));
    assert_non_null(strstr(out, "EF_SECRET_KEY=***\n"));
    assert_non_null(strstr(out, "WHATSAPP_ACCESS_TOKEN=(unset)\n"));
    assert_non_null(strstr(out, "TELEGRAM_SECRET_TOKEN=(unset)\n"));
    assert_non_null(strstr(out, "EF_DATABASE_URL=postgresql://ef:***@db:5432/ef\n"));
    assert_non_null(strstr(out, "EF_BATCH_MAX=99\n"));
    assert_non_null(strstr(out, "EF_LISTEN=127.0.0.1:8080\n"));
    assert_null(strstr(out, "AAHsecretBotToken"));
    assert_null(strstr(out, "appsecret42"));
    assert_null(strstr(out, "00112233"));
    assert_null(strstr(out, "dbpass99"));
    /* One line per key. */
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, NALL);
    ef_free(out);
    ef_config_free(c);
}

typedef struct file_case {
    const char *text;
    const char *error; /* after "path:" */
} file_case;

static void test_file_errors(void **state)
{
    (void)state;
    static const file_case cases[] = {
        {"# comment\n\nEF_LISTEN 127.0.0.1:8080\n", "3: expected KEY = value"},
        {"EF_LISTEN = 1.2.3.4:80\nNO_SUCH_KEY = 1\n", "2: unknown key \"NO_SUCH_KEY\""},
        {"\n\n\n\nEF_LISTEN = 1.2.3.4:70000\n", "5: EF_LISTEN: port 70000 not in 1..65535"},
        {"EF_BOT_FILE = \"bot.yaml\nEF_LISTEN=x\n", "1: EF_BOT_FILE: unterminated quote"},
        {"= value\n", "1: missing key before '='"},
        {"ef_listen = 1.2.3.4:80\n", "1: unknown key \"ef_listen\""},
        {"EF_SECRET_KEY = \"nothex\"\n",
         "1: EF_SECRET_KEY: must be 64 hex digits (a 32-byte AES-256-GCM key), e.g. from "
         "`openssl rand -hex 32`; the value given has 6 characters and non-hex ones"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_tmp(cases[i].text);
        char want[512];
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].error);
        ef_config *c = ef_config_new();
        char err[512] = "";
        int rc = ef_config_load_file(c, path, err, sizeof(err));
        if (rc != EF_EINVAL || strcmp(err, want) != 0)
            fail_msg("case %zu: rc=%d err=\"%s\", want \"%s\"", i, rc, err, want);
        ef_config_free(c);
        unlink(path);
        ef_free(path);
    }

    /* A line with a NUL byte, and one beyond the bound. */
    char *path = ef_strdup("/tmp/ef-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "EF_LISTEN = 1.2.3.4:80\nEF_BOT_FILE = a\0b\n", 41), 41);
    close(fd);
    ef_config *c = ef_config_new();
    char err[512];
    assert_int_equal(ef_config_load_file(c, path, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, ":2: line contains a NUL byte"));
    ef_config_free(c);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("EF_BOT_FILE = ", f);
    for (int i = 0; i < 70000; i++)
        fputc('a', f);
    fputc('\n', f);
    fclose(f);
    c = ef_config_new();
    assert_int_equal(ef_config_load_file(c, path, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, ":1: line longer than 65536 bytes"));
    ef_config_free(c);
    unlink(path);

    /* A missing file. */
    c = ef_config_new();
    assert_int_equal(ef_config_load_file(c, path, err, sizeof(err)), EF_ENOTFOUND);
    assert_non_null(strstr(err, "No such file or directory"));
    ef_config_free(c);
    ef_free(path);
}

static void test_file_format(void **state)
{
    (void)state;
    char *path = write_tmp("\xEF\xBB\xBF# easyflow.conf\r\n"
                           "\n"
                           "   # indented comment\n"
                           "EF_LISTEN=127.0.0.1:8181\n"
                           "EF_BOT_FILE = \"bots/demo # shop.yaml\"\r\n"
                           "\tTELEGRAM_BOT_TOKEN   =   \"12:a=b\"   \n"
                           "EF_SQL_DIR = \"\"\n"
                           "WHATSAPP_VERIFY_TOKEN = \"with \"inner\" quotes\"\n"
                           "EF_LOG_LEVEL = Warn\n"
                           "EF_BATCH_MAX = 10\n"
                           "EF_BATCH_MAX = 20\n"); /* later wins */
    ef_config *c = ef_config_new();
    char err[512] = "";
    if (ef_config_load_file(c, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(ef_cfg_get_str(c, "EF_LISTEN"), "127.0.0.1:8181");
    assert_string_equal(ef_cfg_get_str(c, "EF_BOT_FILE"), "bots/demo # shop.yaml");
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN"), "12:a=b");
    assert_null(ef_cfg_get_str(c, "EF_SQL_DIR"));
    assert_string_equal(ef_cfg_get_str(c, "WHATSAPP_VERIFY_TOKEN"), "with \"inner\" quotes");
    assert_string_equal(ef_cfg_get_str(c, "EF_LOG_LEVEL"), "warn");
    assert_int_equal(ef_cfg_get_int(c, "EF_BATCH_MAX"), 20);
    ef_config_free(c);
    unlink(path);
    ef_free(path);
}

static void test_unknown_key(void **state)
{
    (void)state;
    ef_config *c = ef_config_new();
    char err[256] = "";
    assert_int_equal(ef_config_set(c, "EF_LISTENN", "1.2.3.4:80", err, sizeof(err)), EF_EINVAL);
    assert_string_equal(err, "unknown key \"EF_LISTENN\"");
    ef_config_free(c);
}

static void test_parse_listen(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(ef_config_parse_listen("127.0.0.1:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(ef_config_parse_listen("[::1]:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    snprintf(host, sizeof(host), "unchanged");
    port = 7;
    assert_int_equal(ef_config_parse_listen("localhost", host, sizeof(host), &port), EF_EINVAL);
    assert_int_equal(ef_config_parse_listen("a:65536", host, sizeof(host), &port), EF_EINVAL);
    assert_int_equal(ef_config_parse_listen("localhost:80", host, 4, &port), EF_EINVAL);
    assert_string_equal(host, "unchanged");
    assert_int_equal(port, 7);
}

static void test_help_and_markdown(void **state)
{
    (void)state;
    char *help = capture(NULL, 1);
    char *md = capture(NULL, 2);
    for (size_t i = 0; i < NALL; i++) {
        if (!strstr(help, all_keys[i]))
            fail_msg("--help lacks %s", all_keys[i]);
        char cell[64];
        snprintf(cell, sizeof(cell), "| `%s` |", all_keys[i]);
        if (!strstr(md, cell))
            fail_msg("markdown lacks %s", all_keys[i]);
    }
    /* Aligned: every row's default column starts at the same offset. */
    const char *row = strstr(help, "\n  EF_LISTEN ");
    const char *row2 = strstr(help, "\n  WHATSAPP_PHONE_NUMBER_ID ");
    assert_non_null(row);
    assert_non_null(row2);
    const char *d1 = strstr(row, "127.0.0.1:8080");
    size_t col1 = (size_t)(d1 - row);
    const char *d2 = row2 + 1;
    while (*d2 == ' ')
        d2++;
    while (*d2 != ' ')
        d2++;
    while (*d2 == ' ')
        d2++;
    assert_int_equal((size_t)(d2 - row2), col1);
    assert_non_null(strstr(help, "(1024..67108864)"));
    assert_non_null(strstr(help, "(webhook|poll)"));
    /* Secrets are flagged and their (empty) defaults shown as "-". */
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
        const char *r = strstr(help, secret_keys[i]);
        const char *eol = strchr(r, '\n');
        const char *flag = strstr(r, "[secret]");
        assert_true(flag && flag < eol);
    }
    /* The Markdown table: header, separator, one row per key; '|' escaped. */
    assert_memory_equal(md, "| Variable | Default | Meaning |\n| --- | --- | --- |\n", 50);
    assert_non_null(strstr(md, "| `TELEGRAM_MODE` | `webhook` | How Telegram updates arrive "
                               "(poll: getUpdates long polling) (webhook\\|poll) |\n"));
    size_t lines = 0;
    for (const char *p = md; *p; p++)
        lines += *p == '|' && (p == md || p[-1] == '\n');
    assert_int_equal(lines, NALL + 2);
    /* Below the table and --help: how to read a secret from a file. */
    assert_non_null(strstr(md, "\nEach [secret] key can be read from a file instead: KEY_FILE="));
    assert_non_null(strstr(help, "KEY_FILE=path"));
    ef_free(help);
    ef_free(md);
}

/* KEY_FILE: read from a file, one trailing newline removed, errors name
 * the variable and the path but never the content. */
static void test_secret_files(void **state)
{
    (void)state;
    clear_env();
    char err[512] = "";
    char *tok = write_tmp("123456:ABC-token-from-a-file\n");
    char *crlf = write_tmp("s3cr3t-value\r\n");
    char *two = write_tmp("line-one\n\n");
    char *empty = write_tmp("");
    char *only_nl = write_tmp("\n");
    char *hex = write_tmp(hexkey);
    ef_config *c = ef_config_new();
    /* Through the environment. */
    setenv("TELEGRAM_BOT_TOKEN_FILE", tok, 1);
    setenv("EF_SECRET_KEY_FILE", hex, 1);
    setenv("WHATSAPP_APP_SECRET_FILE", crlf, 1);
    assert_int_equal(ef_config_load_env(c, err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN"), "123456:ABC-token-from-a-file");
    assert_string_equal(ef_cfg_get_str(c, "EF_SECRET_KEY"), hexkey);
    assert_string_equal(ef_cfg_get_str(c, "WHATSAPP_APP_SECRET"), "s3cr3t-value");
    /* Both KEY and KEY_FILE: an error naming both. */
    setenv("TELEGRAM_BOT_TOKEN", "123456:from-env", 1);
    assert_int_equal(ef_config_load_env(c, err, sizeof(err)), EF_EINVAL);
    assert_string_equal(err,
                        "TELEGRAM_BOT_TOKEN and TELEGRAM_BOT_TOKEN_FILE are both set: keep one");
    clear_env();
    unsetenv("TELEGRAM_BOT_TOKEN_FILE");
    unsetenv("EF_SECRET_KEY_FILE");
    unsetenv("WHATSAPP_APP_SECRET_FILE");
    /* Only one newline goes: a second one is a control character. */
    assert_int_equal(ef_config_set(c, "WHATSAPP_VERIFY_TOKEN_FILE", two, err, sizeof(err)),
                     EF_EINVAL);
    assert_string_equal(err, "WHATSAPP_VERIFY_TOKEN: contains a control character");
    /* Empty, missing: clear errors naming the variable. */
    char want[512];
    assert_int_equal(ef_config_set(c, "TELEGRAM_SECRET_TOKEN_FILE", empty, err, sizeof(err)),
                     EF_EINVAL);
    snprintf(want, sizeof(want), "TELEGRAM_SECRET_TOKEN_FILE: %s is empty", empty);
    assert_string_equal(err, want);
    assert_int_equal(ef_config_set(c, "TELEGRAM_SECRET_TOKEN_FILE", only_nl, err, sizeof(err)),
                     EF_EINVAL);
    assert_int_equal(
        ef_config_set(c, "EF_SECRET_KEY_OLD_FILE", "/nonexistent/ef-key", err, sizeof(err)),
        EF_EIO);
    assert_string_equal(
        err, "EF_SECRET_KEY_OLD_FILE: cannot read /nonexistent/ef-key: No such file or directory");
    /* A bad secret read from a file: the value is never repeated. */
    assert_int_equal(ef_config_set(c, "EF_SECRET_KEY_FILE", tok, err, sizeof(err)), EF_EINVAL);
    assert_null(strstr(err, "ABC-token"));
    assert_string_equal(ef_cfg_get_str(c, "EF_SECRET_KEY"), hexkey);
    /* Only secret keys have a _FILE form. */
    assert_int_equal(ef_config_set(c, "EF_LISTEN_FILE", tok, err, sizeof(err)), EF_EINVAL);
    assert_string_equal(err, "unknown key \"EF_LISTEN_FILE\"");
    assert_true(ef_config_is_secret("TELEGRAM_BOT_TOKEN"));
    assert_true(ef_config_is_secret("EF_SECRET_KEY_OLD"));
    assert_false(ef_config_is_secret("EF_LISTEN"));
    assert_false(ef_config_is_secret("TELEGRAM_BOT_TOKEN_FILE"));
    /* In a config file. */
    char line[512];
    snprintf(line, sizeof(line), "WHATSAPP_ACCESS_TOKEN_FILE = %s\n", tok);
    char *cfg = write_tmp(line);
    assert_int_equal(ef_config_load_file(c, cfg, err, sizeof(err)), 0);
    assert_string_equal(ef_cfg_get_str(c, "WHATSAPP_ACCESS_TOKEN"), "123456:ABC-token-from-a-file");
    /* The read helper itself. */
    char *v = NULL;
    assert_int_equal(ef_config_read_secret_file("X_FILE", crlf, &v, err, sizeof(err)), 0);
    assert_string_equal(v, "s3cr3t-value");
    ef_free(v);
    const char *paths[] = {tok, crlf, two, empty, only_nl, hex, cfg};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        unlink(paths[i]);
        ef_free((char *)paths[i]);
    }
    ef_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_beats_file),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_log_debug_matches_logger),
        cmocka_unit_test(test_secrets_never_echoed),
        cmocka_unit_test(test_validate_cross_keys),
        cmocka_unit_test(test_print_masks_secrets),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_format),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_help_and_markdown),
        cmocka_unit_test(test_secret_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
