/*
 * cli_integration.c -- `easyflow integration ...`: connected bots, numbers
 * and shops as rows. See cli_integration.h.
 */
#include "gateway/cli_integration.h"

#include "base/crypto.h"
#include "base/ef.h"
#include "gateway/sync.h"
#include "nlp/nlp.h"
#include "platforms/platform.h"
#include "store/store.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CREDS_MAX 16384
#define DEFAULT_PG "postgresql://127.0.0.1:5432/easyflow"

static int usage(void)
{
    fprintf(stderr, "usage: easyflow integration add PLATFORM --name NAME [--bot FILE] "
                    "[--setting KEY=VALUE ...]\n"
                    "                                  (credentials JSON on standard input)\n"
                    "       easyflow integration list\n"
                    "       easyflow integration enable|disable ID\n"
                    "       easyflow integration rotate-key\n"
                    "       easyflow integration sync ID\n");
    return 2;
}

static const char *env(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

static ef_store *connect(void)
{
    const char *url = env("EF_DATABASE_URL");
    ef_store *st = ef_store_new(url ? url : DEFAULT_PG);
    if (ef_store_ping(st) != 0) {
        char *r = ef_redact_url(url ? url : DEFAULT_PG);
        fprintf(stderr, "easyflow integration: PostgreSQL at %s does not answer: %s\n", r,
                ef_store_errmsg(st));
        ef_free(r);
        ef_store_free(st);
        return NULL;
    }
    return st;
}

static int keyring(ef_keyring *kr)
{
    char err[200];
    if (ef_keyring_parse(kr, env("EF_SECRET_KEY"), env("EF_SECRET_KEY_OLD"), err, sizeof(err))) {
        fprintf(stderr, "easyflow integration: %s\n", err);
        return EF_EINVAL;
    }
    return 0;
}

/* ---- add ------------------------------------------------------------------ */

typedef struct add_args {
    const ef_platform_ops *ops;
    const char *name;
    const char *bot;
    json_object *settings;
} add_args;

static int parse_setting(json_object *settings, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fprintf(stderr, "easyflow integration add: --setting wants KEY=VALUE, not \"%.60s\"\n", kv);
        return EF_EINVAL;
    }
    char *key = ef_strndup(kv, (size_t)(eq - kv));
    json_object_object_add(settings, key, json_object_new_string(eq + 1));
    ef_free(key);
    return 0;
}

static int parse_add(int argc, char **argv, add_args *a)
{
    if (argc < 2)
        return usage();
    a->ops = ef_platform_find(argv[1]);
    if (!a->ops) {
        fprintf(stderr, "easyflow integration add: unknown platform \"%.40s\" (known:", argv[1]);
        for (const ef_platform_ops *const *p = ef_platforms; *p; p++)
            fprintf(stderr, " %s", (*p)->name);
        fprintf(stderr, ")\n");
        return 2;
    }
    a->settings = json_object_new_object();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            a->name = argv[++i];
        else if (strcmp(argv[i], "--bot") == 0 && i + 1 < argc)
            a->bot = argv[++i];
        else if (strcmp(argv[i], "--setting") == 0 && i + 1 < argc) {
            if (parse_setting(a->settings, argv[++i]))
                return 2;
        } else
            return usage();
    }
    if (!a->name || !*a->name || strlen(a->name) > 255) {
        fprintf(stderr, "easyflow integration add: --name NAME is required (1-255 bytes)\n");
        return 2;
    }
    return 0;
}

/* The bot file must load now (file:line:col on error); stored absolute. */
static int check_bot(add_args *a)
{
    if (!a->bot)
        return 0;
    ef_bot *bot = NULL;
    char err[512];
    if (ef_bot_load(a->bot, &bot, err, sizeof(err)) != 0) {
        fprintf(stderr, "easyflow integration add: bot definition refused: %s\n", err);
        return EF_EINVAL;
    }
    ef_bot_free(bot);
    char abs[PATH_MAX];
    json_object_object_add(a->settings, "bot_file",
                           json_object_new_string(realpath(a->bot, abs) ? abs : a->bot));
    return 0;
}

static char *read_stdin(void)
{
    ef_buf b;
    ef_buf_init(&b, CREDS_MAX);
    char chunk[1024];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (ef_buf_append(&b, chunk, n) != 0) {
            ef_buf_cleanup(&b);
            return NULL;
        }
    }
    return ef_buf_steal(&b, NULL);
}

static void print_added(const add_args *a, const char *id, const ef_platform_policy *pol)
{
    printf("%s\n", id);
    const char *listen = env("EF_LISTEN");
    if (!(a->ops->supports & EF_PLAT_WEBHOOK))
        return;
    if (pol->receive_poll)
        printf("mode: long polling (no webhook to register)\n");
    else if (pol->route_by_key)
        printf("webhook: POST http://%s%s (shared by every %s number of the app)\n",
               listen ? listen : "127.0.0.1:8080", a->ops->webhook_path, a->ops->name);
    else
        printf("webhook: POST http://%s%s/%s\n", listen ? listen : "127.0.0.1:8080",
               a->ops->webhook_path, id);
}

/* Checks the credentials with the adapter, seals them, inserts the row. */
static int store_new(const add_args *a, const char *creds, const ef_keyring *kr)
{
    const char *settings = json_object_to_json_string_ext(
        a->settings, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    void *cfg = NULL;
    ef_platform_policy pol;
    char err[400];
    if (a->ops->open(creds, settings, &cfg, &pol, err, sizeof(err)) != 0) {
        fprintf(stderr, "easyflow integration add: %s\n", err);
        return 1;
    }
    if (pol.receive_only) {
        a->ops->close(cfg);
        fprintf(stderr, "easyflow integration add: credentials: no API token to answer with "
                        "(the bot token / access token is missing)\n");
        return 1;
    }
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    char uuid[37];
    if (ef_uuid_v4(uuid) != 0 ||
        ef_cred_seal(kr, uuid, creds, strlen(creds), &sealed, &sealed_len) != 0) {
        a->ops->close(cfg);
        fprintf(stderr, "easyflow integration add: the credentials cannot be sealed\n");
        return 1;
    }
    const char *key = a->ops->channel_key(cfg);
    ef_integration_in in = {.id = uuid,
                            .platform = a->ops->name,
                            .name = a->name,
                            .external_id = key && *key ? key : NULL,
                            .settings_json = settings,
                            .source = "cli",
                            .sealed = sealed,
                            .sealed_len = sealed_len,
                            .key_id = kr->ids[0]};
    int rc = 1;
    ef_store *st = connect();
    char *id = NULL;
    int src = st ? ef_store_integration_add(st, &in, &id) : EF_EDB;
    if (src == 0) {
        print_added(a, id, &pol);
        rc = 0;
    } else if (src == EF_ECONFLICT) {
        fprintf(stderr,
                "easyflow integration add: %s already has an integration named \"%s\" or with "
                "key %s\n",
                a->ops->name, a->name, in.external_id);
    } else if (st) {
        fprintf(stderr, "easyflow integration add: not stored: %s\n", ef_store_errmsg(st));
    }
    ef_free(id);
    ef_store_free(st);
    ef_free(sealed);
    a->ops->close(cfg);
    return rc;
}

static int cmd_add(int argc, char **argv)
{
    add_args a = {0};
    int rc = parse_add(argc, argv, &a);
    ef_keyring kr;
    if (!rc && keyring(&kr) != 0)
        rc = 1;
    else if (!rc && kr.n == 0) {
        fprintf(stderr, "easyflow integration add: EF_SECRET_KEY is not set: credentials are "
                        "stored only encrypted (64 hex digits; e.g. openssl rand -hex 32)\n");
        rc = 1;
    }
    if (!rc && check_bot(&a) != 0)
        rc = 1;
    char *creds = rc ? NULL : read_stdin();
    if (!rc && (!creds || !*creds)) {
        fprintf(stderr,
                "easyflow integration add: the credentials JSON is read from standard "
                "input (at most %d bytes)\n",
                CREDS_MAX);
        rc = 1;
    }
    if (!rc)
        rc = store_new(&a, creds, &kr);
    if (creds) {
        memset(creds, 0, strlen(creds));
        ef_free(creds);
    }
    if (!rc || kr.n)
        ef_keyring_cleanup(&kr);
    json_object_put(a.settings);
    return rc;
}

/* ---- list, enable, disable ------------------------------------------------- */

/* One line per row; tabs and line breaks inside a field become spaces. */
static void print_field(const char *s, bool last)
{
    for (const char *p = s ? s : ""; *p; p++)
        putchar(*p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p);
    putchar(last ? '\n' : '\t');
}

static int cmd_list(void)
{
    ef_store *st = connect();
    if (!st)
        return 1;
    ef_integration_row *rows = NULL;
    size_t n = 0;
    int rc = ef_store_integrations_list(st, true, &rows, &n);
    if (rc) {
        fprintf(stderr, "easyflow integration list: %s\n", ef_store_errmsg(st));
        ef_store_free(st);
        return 1;
    }
    printf("ID\tPLATFORM\tNAME\tSTATUS\tMESSAGE\n");
    for (size_t i = 0; i < n; i++) {
        print_field(rows[i].id, false);
        print_field(rows[i].platform, false);
        print_field(rows[i].name, false);
        print_field(rows[i].enabled ? rows[i].status : "disconnected", false);
        print_field(rows[i].status_message ? rows[i].status_message
                    : rows[i].enabled      ? ""
                                           : "disabled",
                    true);
    }
    ef_integration_rows_free(rows, n);
    ef_store_free(st);
    return 0;
}

static int cmd_enable(const char *id, bool enabled)
{
    ef_store *st = connect();
    if (!st)
        return 1;
    int rc = ef_store_integration_set_enabled(st, id, enabled);
    if (rc == EF_ENOTFOUND || rc == EF_EINVAL)
        fprintf(stderr, "easyflow integration %s: no integration %.60s\n",
                enabled ? "enable" : "disable", id);
    else if (rc)
        fprintf(stderr, "easyflow integration: %s\n", ef_store_errmsg(st));
    else
        printf("%s %s\n", id, enabled ? "enabled" : "disabled");
    ef_store_free(st);
    return rc ? 1 : 0;
}

/* ---- rotate-key ------------------------------------------------------------ */

/* Whether the blob is in the older format (not bound to its row). */
static bool is_legacy(const ef_integration_row *r)
{
    return r->sealed_len < 3 || memcmp(r->sealed, "EF2", 3) != 0;
}

/* Re-seals one row under keys[0], bound to its id: 1 rewritten, 0 already
 * current, <0 error. */
static int reseal_one(ef_store *st, const ef_keyring *kr, const ef_integration_row *r)
{
    if (!r->sealed || (r->key_id && strcmp(r->key_id, kr->ids[0]) == 0 && !is_legacy(r)))
        return 0;
    char *plain = NULL;
    size_t plen = 0;
    if (ef_keyring_open(kr, r->key_id, r->id, r->sealed, r->sealed_len, &plain, &plen, NULL) != 0) {
        fprintf(stderr,
                "easyflow integration rotate-key: %s (%s \"%s\") does not open with "
                "EF_SECRET_KEY or EF_SECRET_KEY_OLD (sealed with %s)\n",
                r->id, r->platform, r->name, r->key_id ? r->key_id : "?");
        return EF_EAUTH;
    }
    uint8_t *sealed = NULL;
    size_t n = 0;
    int rc = ef_cred_seal(kr, r->id, plain, plen, &sealed, &n);
    memset(plain, 0, plen);
    ef_free(plain);
    if (!rc)
        rc = ef_store_integration_reseal(st, r->id, sealed, n, kr->ids[0]);
    ef_free(sealed);
    if (rc)
        fprintf(stderr, "easyflow integration rotate-key: %s not rewritten: %s\n", r->id,
                ef_store_errmsg(st));
    return rc ? rc : 1;
}

static int cmd_rotate(void)
{
    ef_keyring kr;
    if (keyring(&kr) != 0)
        return 1;
    if (kr.n == 0) {
        fprintf(stderr, "easyflow integration rotate-key: set the new key in EF_SECRET_KEY and "
                        "the previous one(s) in EF_SECRET_KEY_OLD\n");
        return 1;
    }
    ef_store *st = connect();
    ef_integration_row *rows = NULL;
    size_t n = 0;
    int rc = st ? ef_store_integrations_list(st, true, &rows, &n) : EF_EDB;
    size_t done = 0, failed = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int r = reseal_one(st, &kr, &rows[i]);
        done += r == 1;
        failed += r < 0;
    }
    if (rc == 0)
        printf("rotate-key: re-encrypted %zu of %zu integrations under key %s%s\n", done, n,
               kr.ids[0], failed ? " (some failed, see above)" : "");
    else if (st)
        fprintf(stderr, "easyflow integration rotate-key: %s\n", ef_store_errmsg(st));
    ef_integration_rows_free(rows, n);
    ef_store_free(st);
    ef_keyring_cleanup(&kr);
    return rc || failed ? 1 : 0;
}

/* ---- sync (gateway/sync.c) ---------------------------------------------------- */

static int cmd_sync(const char *id)
{
    ef_keyring kr;
    if (keyring(&kr) != 0)
        return 1;
    ef_store *st = connect();
    int rc = st ? ef_sync_cli(st, &kr, id) : 1;
    ef_store_free(st);
    ef_keyring_cleanup(&kr);
    return rc;
}

int ef_integration_cli(int argc, char **argv)
{
    if (argc < 1)
        return usage();
    const char *sub = argv[0];
    if (strcmp(sub, "add") == 0)
        return cmd_add(argc, argv);
    if (strcmp(sub, "list") == 0 && argc == 1)
        return cmd_list();
    if ((strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) && argc == 2)
        return cmd_enable(argv[1], sub[0] == 'e');
    if (strcmp(sub, "rotate-key") == 0 && argc == 1)
        return cmd_rotate();
    if (strcmp(sub, "sync") == 0 && argc == 2)
        return cmd_sync(argv[1]);
    return usage();
}
