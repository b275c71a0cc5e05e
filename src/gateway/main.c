/*
 * main.c -- the easyflow command line: serve, migrate, help, version.
 *
 * `serve` wires the parts together: configuration -> pipeline (worker
 * threads with their PostgreSQL/Redis connections) -> optional Telegram
 * poller -> HTTP server on the main thread. SIGTERM/SIGINT only set a flag;
 * the server loop sees it, drains what is in flight and returns.
 */
#include "base/ef.h"
#include "gateway/cli_nlp.h"
#include "gateway/cli_operator.h"
#include "gateway/config.h"
#include "gateway/dispatch.h"
#include "gateway/http.h"
#include "gateway/pipeline.h"
#include "gateway/poll.h"
#include "nlp/nlp.h"
#include "platforms/platform.h"
#include "store/store.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_flag = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void wake_dispatcher(void *ud)
{
    ef_dispatch_wake(ud);
}

static void usage(FILE *out)
{
    fprintf(out,
            "easyflow %s -- messaging bot gateway (Telegram, WhatsApp, web chat)\n"
            "\n"
            "usage:\n"
            "  easyflow serve [--config FILE] [--print-config] [--KEY value ...]\n"
            "                                  serve webhooks, long polling, /healthz, /metrics\n"
            "  easyflow migrate [--config FILE] [--sql-dir DIR] [--status]\n"
            "                                  apply pending sql/NNN_*.sql migrations\n"
            "  easyflow nlu --bot FILE [--now ISO8601] TEXT\n"
            "                                  what the bot understands of TEXT, as JSON\n"
            "  easyflow bot check FILE         validate a bot definition and run its examples\n"
            "  easyflow operator add EMAIL --name NAME [--role operator|admin]\n"
            "                                  create or update an operator (password on stdin)\n"
            "  easyflow help config            the configuration keys as a Markdown table\n"
            "  easyflow --help | --version\n"
            "\n"
            "configuration (environment variables; a --config file and --KEY value set the "
            "same keys):\n",
            EF_VERSION);
    ef_config_help(out);
}

/* defaults < --config file < environment < --KEY value */
static ef_config *load_config(int argc, char **argv, bool *print_only)
{
    char err[512];
    ef_config *c = ef_config_new();
    const char *file = NULL;
    *print_only = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "easyflow: --config needs a file\n");
                goto fail;
            }
            file = argv[++i];
        }
    }
    if (file && ef_config_load_file(c, file, err, sizeof(err))) {
        fprintf(stderr, "easyflow: %s\n", err);
        goto fail;
    }
    if (ef_config_load_env(c, err, sizeof(err))) {
        fprintf(stderr, "easyflow: %s\n", err);
        goto fail;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
        } else if (strcmp(argv[i], "--print-config") == 0) {
            *print_only = true;
        } else if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc) {
            if (ef_config_set(c, argv[i] + 2, argv[i + 1], err, sizeof(err))) {
                fprintf(stderr, "easyflow: %s\n", err);
                goto fail;
            }
            i++;
        } else {
            fprintf(stderr, "easyflow serve: unexpected argument \"%s\" (see easyflow --help)\n",
                    argv[i]);
            goto fail;
        }
    }
    if (ef_config_validate(c, err, sizeof(err))) {
        fprintf(stderr, "easyflow: %s\n", err);
        goto fail;
    }
    return c;
fail:
    ef_config_free(c);
    return NULL;
}

static int apply_logging(const ef_config *c)
{
    ef_log_level lvl = EF_LOG_INFO;
    const char *s = ef_cfg_get_str(c, "EF_LOG_LEVEL");
    if (s && ef_log_parse_level(s, &lvl) == 0)
        ef_log_set_level(lvl);
    s = ef_cfg_get_str(c, "EF_LOG_DEBUG");
    if (s && ef_log_set_debug(s) != 0)
        return EF_EINVAL;
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    bool print_only;
    ef_config *c = load_config(argc, argv, &print_only);
    if (!c)
        return 1;
    if (print_only) {
        ef_config_print(c, stdout);
        ef_config_free(c);
        return 0;
    }
    apply_logging(c);

    char err[512];
    for (const ef_platform_ops *const *p = ef_platforms; *p; p++) {
        if (ef_platform_check(*p, err, sizeof(err))) {
            EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "platform adapter refused: %s", err);
            ef_config_free(c);
            return 1;
        }
    }

    const char *pg_url = ef_cfg_get_str(c, "EF_DATABASE_URL");
    const char *mode = ef_cfg_get_str(c, "TELEGRAM_MODE");
    bool poll_mode = mode && strcmp(mode, "poll") == 0;

    /* Refuse to serve an outdated schema; a server that is down is fine
     * (we answer 503 until it is back). */
    char *sql_dir = ef_migrate_default_dir();
    const char *cfg_dir = ef_cfg_get_str(c, "EF_SQL_DIR");
    int pending = 0;
    if (ef_migrate_pending(pg_url, cfg_dir ? cfg_dir : sql_dir, &pending, err, sizeof(err)) == 0) {
        if (pending > 0) {
            EF_LOG(EF_LOG_ERROR, EF_C_MAIN,
                   "the database schema is %d migration(s) behind: run `easyflow migrate` first",
                   pending);
            ef_free(sql_dir);
            ef_config_free(c);
            return 1;
        }
    } else {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "schema not checked (%s); serving 503 until it answers", err);
    }
    ef_free(sql_dir);

    /* The bot: refused at start with file:line:column when it is wrong. */
    ef_bot *bot = NULL;
    const char *bot_file = ef_cfg_get_str(c, "EF_BOT_FILE");
    if (bot_file) {
        if (ef_bot_load(bot_file, &bot, err, sizeof(err)) != 0) {
            EF_LOG(EF_LOG_ERROR, EF_C_NLP, "bot definition refused: %s", err);
            ef_config_free(c);
            return 1;
        }
        EF_LOG(EF_LOG_INFO, EF_C_NLP, "bot \"%s\" loaded from %s: %zu intents", ef_bot_name(bot),
               bot_file, ef_bot_intent_count(bot));
    } else {
        EF_LOG(EF_LOG_WARN, EF_C_NLP, "EF_BOT_FILE is not set: messages are stored, no replies");
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    ef_dispatch_opts dop = {
        .pg_url = pg_url,
        .tg_api_url = ef_cfg_get_str(c, "TELEGRAM_API_URL"),
        .tg_token = ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN"),
        .wa_api_url = ef_cfg_get_str(c, "WHATSAPP_API_URL"),
        .wa_token = ef_cfg_get_str(c, "WHATSAPP_ACCESS_TOKEN"),
        .wa_rate_per_sec = (int)ef_cfg_get_int(c, "WHATSAPP_RATE_LIMIT"),
        .wa_template = ef_cfg_get_str(c, "WHATSAPP_TEMPLATE"),
    };
    ef_dispatcher *disp = ef_dispatch_start(&dop);
    ef_pipeline_opts po = {
        .pg_url = pg_url,
        .redis_url = ef_cfg_get_str(c, "EF_REDIS_URL"),
        .workers = (int)ef_cfg_get_int(c, "EF_STORE_WORKERS"),
        .batch_max = (int)ef_cfg_get_int(c, "EF_BATCH_MAX"),
        .session_ttl = (int)ef_cfg_get_int(c, "EF_SESSION_TTL"),
        .bot = bot,
        .on_replies = wake_dispatcher,
        .on_replies_ud = disp,
    };
    ef_pipeline *pipe = ef_pipeline_new(&po);
    ef_pipeline_start(pipe);

    const char *secret = ef_cfg_get_str(c, "TELEGRAM_SECRET_TOKEN");
    ef_server_opts so = {
        .listen = ef_cfg_get_str(c, "EF_LISTEN"),
        .max_body = (size_t)ef_cfg_get_int(c, "EF_MAX_BODY"),
        .json_max_depth = (int)ef_cfg_get_int(c, "EF_JSON_MAX_DEPTH"),
        .request_timeout_ms = (int)ef_cfg_get_int(c, "EF_REQUEST_TIMEOUT_MS"),
        .tg_secret = secret,
        .tg_webhook = !poll_mode,
        .wa_app_secret = ef_cfg_get_str(c, "WHATSAPP_APP_SECRET"),
        .wa_verify_token = ef_cfg_get_str(c, "WHATSAPP_VERIFY_TOKEN"),
        .wa_numbers = ef_cfg_get_str(c, "WHATSAPP_PHONE_NUMBER_ID"),
        .pipe = pipe,
    };
    ef_server *srv = ef_server_new(&so, err, sizeof(err));
    if (!srv) {
        EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "%s", err);
        ef_pipeline_free(pipe);
        ef_dispatch_stop(disp);
        ef_bot_free(bot);
        ef_config_free(c);
        curl_global_cleanup();
        return 1;
    }
    if (!poll_mode && !secret)
        EF_LOG(EF_LOG_WARN, EF_C_MAIN,
               "TELEGRAM_SECRET_TOKEN is not set: anyone who knows the URL can post updates");

    ef_poller *poller = NULL;
    if (poll_mode) {
        ef_poller_opts pl = {
            .api_url = ef_cfg_get_str(c, "TELEGRAM_API_URL"),
            .token = ef_cfg_get_str(c, "TELEGRAM_BOT_TOKEN"),
            .pg_url = pg_url,
            .timeout_s = (int)ef_cfg_get_int(c, "TELEGRAM_POLL_TIMEOUT"),
            .json_max_depth = (int)ef_cfg_get_int(c, "EF_JSON_MAX_DEPTH"),
            .max_body = (size_t)ef_cfg_get_int(c, "EF_MAX_BODY"),
            .pipe = pipe,
        };
        poller = ef_poller_start(&pl, err, sizeof(err));
        if (!poller) {
            EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "%s", err);
            ef_server_free(srv);
            ef_pipeline_free(pipe);
            ef_dispatch_stop(disp);
            ef_bot_free(bot);
            ef_config_free(c);
            curl_global_cleanup();
            return 1;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *redacted = ef_redact_url(pg_url);
    EF_LOG(EF_LOG_INFO, EF_C_MAIN,
           "easyflow %s listening on http://%s telegram=%s workers=%d batch_max=%d db=%s",
           EF_VERSION, so.listen, poll_mode ? "poll" : "webhook", po.workers, po.batch_max,
           redacted);
    ef_free(redacted);

    ef_server_run(srv, &stop_flag, (int)ef_cfg_get_int(c, "EF_DRAIN_TIMEOUT_MS"));
    ef_poller_stop(poller);
    ef_pipeline_stop(pipe);
    ef_server_free(srv);
    ef_pipeline_free(pipe);
    ef_dispatch_stop(disp);
    ef_bot_free(bot);
    ef_config_free(c);
    curl_global_cleanup();
    EF_LOG(EF_LOG_INFO, EF_C_MAIN, "stopped");
    return 0;
}

/*
 * `migrate` and `operator` take their settings from the environment. A
 * `--config FILE` among their arguments is honoured the same way as for
 * serve (file < environment): the keys they use are exported, and the two
 * arguments are removed before the subcommand sees its argv.
 */
static int apply_config_file(int *argc, char **argv)
{
    int out = 0;
    const char *file = NULL;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "easyflow: --config needs a file\n");
                return EF_EINVAL;
            }
            file = argv[++i];
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    if (!file)
        return 0;
    char err[512];
    ef_config *c = ef_config_new();
    int rc = ef_config_load_file(c, file, err, sizeof(err));
    if (rc == 0)
        rc = ef_config_load_env(c, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "easyflow: %s\n", err);
        ef_config_free(c);
        return rc;
    }
    static const char *const keys[] = {"EF_DATABASE_URL", "EF_SQL_DIR"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = ef_cfg_get_str(c, keys[i]);
        if (v)
            setenv(keys[i], v, 1);
    }
    ef_config_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("easyflow %s\n", EF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 && argc > 2 && strcmp(argv[2], "config") == 0) {
        ef_config_markdown(stdout); /* the README's configuration table */
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "migrate") == 0 || strcmp(cmd, "operator") == 0) {
        int sub_argc = argc - 2;
        if (apply_config_file(&sub_argc, argv + 2) != 0)
            return 1;
        return cmd[0] == 'm' ? ef_migrate_cli(sub_argc, argv + 2)
                             : ef_operator_cli(sub_argc, argv + 2);
    }
    if (strcmp(cmd, "nlu") == 0)
        return ef_nlu_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "bot") == 0 && argc > 2 && strcmp(argv[2], "check") == 0)
        return ef_bot_check_cli(argc - 3, argv + 3);
    fprintf(stderr, "easyflow: unknown command \"%s\" (see easyflow --help)\n", cmd);
    return 2;
}
