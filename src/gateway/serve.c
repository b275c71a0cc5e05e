/*
 * serve.c -- `easyflow serve`: configuration -> integrations (bootstrap from
 * the environment, then the live channel set) -> dispatcher -> pipeline
 * (worker threads with their PostgreSQL/Redis connections) -> pollers for
 * the channels that long-poll -> the operator API's work pool -> HTTP
 * server on the main thread.
 * SIGTERM/SIGINT only set a flag; the server loop sees it, drains what is
 * in flight and returns. SIGHUP reloads the integrations.
 */
#include "gateway/serve.h"

#include "gateway/api.h"
#include "gateway/bootstrap.h"
#include "gateway/channels.h"
#include "gateway/config.h"
#include "gateway/dispatch.h"
#include "gateway/http.h"
#include "gateway/metrics.h"
#include "gateway/metrics_rollup.h"
#include "gateway/pipeline.h"
#include "gateway/poll.h"
#include "gateway/retention.h"
#include "gateway/static.h"
#include "gateway/sync.h"
#include "gateway/work.h"
#include "gateway/ws.h"
#include "nlp/nlp.h"
#include "platforms/platform.h"
#include "store/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag = 0;
static ef_channels *reload_target; /* for SIGHUP */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    if (reload_target)
        ef_channels_request_reload(reload_target);
}

static void wake_dispatcher(void *ud)
{
    ef_dispatch_wake(ud);
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
        } else if (strncmp(argv[i], "--", 2) == 0 && ef_config_is_secret(argv[i] + 2)) {
            fprintf(stderr,
                    "easyflow: %s is a secret: not on the command line (it shows in ps); set "
                    "%s_FILE=path or the environment variable %s\n",
                    argv[i] + 2, argv[i] + 2, argv[i] + 2);
            goto fail;
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

/* ---- pollers: one per channel that long-polls ----------------------------- */

typedef struct pollers {
    pthread_mutex_t lock;
    ef_poller **list;
    size_t n;
    ef_poller_opts opts;
    ef_channels *channels;
    bool stopped;
} pollers;

static bool wants_poller(const ef_channel *ch)
{
    return ch->policy.receive_poll && (ch->ops->supports & EF_PLAT_POLL) && !ef_channel_failed(ch);
}

/* Starts a poller for each channel that polls and has none; stops those
 * whose channel was replaced, removed or failed. Runs on the watch thread
 * (after a reload) and once at start. */
static void reconcile(void *ud)
{
    pollers *ps = ud;
    ef_channel **chs = NULL;
    size_t n = ef_channels_list(ps->channels, NULL, &chs);
    pthread_mutex_lock(&ps->lock);
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const ef_channel *pc = ef_poller_channel(ps->list[i]);
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = chs[j] == pc;
        if (found && !ps->stopped && !ef_poller_done(ps->list[i]) && wants_poller(pc))
            ps->list[k++] = ps->list[i];
        else
            ef_poller_stop(ps->list[i]);
    }
    ps->n = k;
    for (size_t j = 0; j < n && !ps->stopped; j++) {
        bool has = false;
        for (size_t i = 0; i < ps->n && !has; i++)
            has = ef_poller_channel(ps->list[i]) == chs[j];
        if (has || !wants_poller(chs[j]))
            continue;
        ps->list = ef_realloc(ps->list, (ps->n + 1) * sizeof(*ps->list));
        ps->list[ps->n++] = ef_poller_start(chs[j], &ps->opts);
    }
    pthread_mutex_unlock(&ps->lock);
    ef_channels_list_free(chs, n);
}

static void pollers_stop(pollers *ps)
{
    pthread_mutex_lock(&ps->lock);
    ps->stopped = true;
    for (size_t i = 0; i < ps->n; i++)
        ef_poller_stop(ps->list[i]);
    ef_free(ps->list);
    ps->list = NULL;
    ps->n = 0;
    pthread_mutex_unlock(&ps->lock);
}

/* ---- start-up steps ---------------------------------------------------- */

static int check_adapters(void)
{
    char err[512];
    for (const ef_platform_ops *const *p = ef_platforms; *p; p++) {
        if (ef_platform_check(*p, err, sizeof(err))) {
            EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "platform adapter refused: %s", err);
            return EF_EINVAL;
        }
    }
    return 0;
}

/* Refuses to serve an outdated schema; a server that is down is fine (we
 * answer 503 until it is back). */
static int check_schema(const ef_config *c)
{
    char err[512];
    char *sql_dir = ef_migrate_default_dir();
    const char *cfg_dir = ef_cfg_get_str(c, "EF_SQL_DIR");
    int pending = 0, rc = 0;
    if (ef_migrate_pending(ef_cfg_get_str(c, "EF_DATABASE_URL"), cfg_dir ? cfg_dir : sql_dir,
                           &pending, err, sizeof(err)) == 0) {
        if (pending > 0) {
            EF_LOG(EF_LOG_ERROR, EF_C_MAIN,
                   "the database schema is %d migration(s) behind: run `easyflow migrate` first",
                   pending);
            rc = EF_EINVAL;
        }
    } else {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "schema not checked (%s); serving 503 until it answers", err);
    }
    ef_free(sql_dir);
    return rc;
}

/* The default bot, loaded once for every channel that serves it (cs keeps
 * it): refused at start with file:line:column when wrong. */
static int keep_default_bot(const ef_config *c, ef_channels *cs)
{
    const char *file = ef_cfg_get_str(c, "EF_BOT_FILE");
    if (!file || !*file) {
        EF_LOG(EF_LOG_WARN, EF_C_NLP,
               "EF_BOT_FILE is not set: messages are stored, no replies "
               "(unless an integration names its own --bot)");
        return 0;
    }
    const ef_bot *bot = NULL;
    char err[512];
    if (ef_channels_keep_bot(cs, file, &bot, err, sizeof(err)) != 0) {
        EF_LOG(EF_LOG_ERROR, EF_C_NLP, "bot definition refused: %s", err);
        return EF_EINVAL;
    }
    EF_LOG(EF_LOG_INFO, EF_C_NLP, "bot \"%s\" loaded from %s: %zu intents", ef_bot_name(bot), file,
           ef_bot_intent_count(bot));
    if (!ef_bot_fsm(bot))
        EF_LOG(EF_LOG_WARN, EF_C_NLP,
               "bot \"%s\" has no fsm: section: messages are understood and stored, but the bot "
               "answers nothing (add one: docs/fsm.md)",
               ef_bot_name(bot));
    return 0;
}

/* Whether EF_LISTEN can be bound, before anything starts: a port in use
 * (another easyflow?) or an address not of this machine is said plainly,
 * with the variable to change, instead of libwebsockets' bind error. The
 * server binds again for real (a port taken in between still fails). */
static int check_listen(const ef_config *c)
{
    const char *listen = ef_cfg_get_str(c, "EF_LISTEN");
    char host[128], service[16];
    int port = 0;
    if (ef_config_parse_listen(listen, host, sizeof(host), &port) != 0)
        return 0; /* the server names the syntax error */
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host[0] ? host : NULL, service, &hints, &ai) != 0 || !ai)
        return 0;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    int err = 0, one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
            err = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    const char *why = err == EADDRINUSE      ? "the port is in use (another easyflow running?)"
                      : err == EADDRNOTAVAIL ? "the address is not one of this machine's"
                      : err == EACCES        ? "a port below 1024 needs privileges"
                      : err                  ? strerror(err)
                                             : NULL;
    if (!why)
        return 0;
    EF_LOG(EF_LOG_ERROR, EF_C_MAIN,
           "cannot listen on %s: %s; choose another address with EF_LISTEN "
           "(e.g. EF_LISTEN=127.0.0.1:%d)",
           listen, why, err == EADDRINUSE && port > 0 && port < 65535 ? port + 1 : 8080);
    return EF_EINVAL;
}

static char *settings_defaults(void *ud, const ef_platform_ops *ops)
{
    return ef_bootstrap_platform_defaults(ud, ops);
}

/* The environment's default integrations. A PostgreSQL that does not
 * answer yet is no reason to wait: the channel set retries before its
 * rebuilds (webhooks get 503 until then). EF_EINVAL: refuse to start. */
typedef struct boot {
    const ef_config *cfg;
    const ef_keyring *keys;
    ef_channels *channels;
} boot;

static int bootstrap_once(void *ud)
{
    boot *b = ud;
    ef_store *st = ef_store_new(ef_cfg_get_str(b->cfg, "EF_DATABASE_URL"));
    ef_bootstrap_ctx bc = {.cfg = b->cfg, .st = st, .keys = b->keys, .channels = b->channels};
    char err[512] = "";
    int rc = ef_bootstrap_defaults(&bc, err, sizeof(err));
    if (rc == EF_EDB)
        EF_LOG(EF_LOG_WARN, EF_C_PG, "integrations not bootstrapped yet: %s", err);
    else if (rc)
        EF_LOG(EF_LOG_ERROR, EF_C_CFG, "%s", err);
    ef_store_free(st);
    return rc;
}

/* ---- the parts, started and stopped in order ---------------------------- */

typedef struct serve_parts {
    ef_keyring keys;
    boot boot;
    ef_channels *channels;
    ef_dispatcher *disp;
    ef_pipeline *pipe;
    ef_work *work; /* the API's blocking work */
    ef_api *api;
    ef_static *web; /* the console's files; NULL: not served */
    ef_server *srv;
    ef_ws *ws; /* /ws/console, /ws/chat */
    pollers polls;
    ef_retention *retention;   /* NULL: EF_RETENTION_DAYS=0 */
    ef_metrics_rollup *rollup; /* NULL: EF_METRICS_ROLLUP_S=0 */
    ef_outbox_sampler *outbox; /* the outbox figures of /metrics */
    ef_sync *sync;             /* marketplace order sync; NULL: no marketplace adapter */
} serve_parts;

/* The operator API: API_WORKERS threads with their own connections. */
#define API_WORKERS 2
static void start_api(const ef_config *c, serve_parts *sp)
{
    ef_work_opts wo = {.pg_url = ef_cfg_get_str(c, "EF_DATABASE_URL"),
                       .redis_url = ef_cfg_get_str(c, "EF_REDIS_URL"),
                       .threads = API_WORKERS,
                       .max_queue = 1024};
    sp->work = ef_work_new(&wo);
    ef_api_opts ao = {.keys = &sp->keys,
                      .work = sp->work,
                      .channels = sp->channels,
                      .wake = wake_dispatcher,
                      .wake_ud = sp->disp};
    sp->api = ef_api_new(&ao);
    sp->outbox = ef_outbox_sampler_start(wo.pg_url, 5000);
}

/* The console's files (static.h), read once; without them /console is 404
 * and the gateway still serves everything else. */
static void start_web(const ef_config *c, serve_parts *sp)
{
    char *dir = ef_static_default_dir(ef_cfg_get_str(c, "EF_WEB_DIR"));
    char err[512];
    sp->web = ef_static_load(dir, err, sizeof(err));
    if (sp->web)
        EF_LOG(EF_LOG_INFO, EF_C_MAIN, "console: %zu files from %s at /console",
               ef_static_count(sp->web), dir);
    else
        EF_LOG(EF_LOG_WARN, EF_C_MAIN, "console not served: %s (set EF_WEB_DIR)", err);
    ef_free(dir);
}

static int start_channels(const ef_config *c, serve_parts *sp)
{
    char err[300];
    if (ef_keyring_parse(&sp->keys, ef_cfg_get_str(c, "EF_SECRET_KEY"),
                         ef_cfg_get_str(c, "EF_SECRET_KEY_OLD"), err, sizeof(err)) != 0) {
        EF_LOG(EF_LOG_ERROR, EF_C_CFG, "%s", err);
        return EF_EINVAL;
    }
    pthread_mutex_init(&sp->polls.lock, NULL);
    ef_channels_opts co = {.pg_url = ef_cfg_get_str(c, "EF_DATABASE_URL"),
                           .keys = &sp->keys,
                           .default_bot_file = ef_cfg_get_str(c, "EF_BOT_FILE"),
                           .settings_defaults = settings_defaults,
                           .settings_ud = (void *)c,
                           .on_change = reconcile,
                           .on_change_ud = &sp->polls};
    sp->channels = ef_channels_new(&co);
    sp->polls.channels = sp->channels;
    if (keep_default_bot(c, sp->channels) != 0)
        return EF_EINVAL;
    sp->boot = (boot){.cfg = c, .keys = &sp->keys, .channels = sp->channels};
    int rc = bootstrap_once(&sp->boot);
    if (rc == EF_EDB)
        ef_channels_set_bootstrap(sp->channels, bootstrap_once, &sp->boot);
    return rc == EF_EDB ? 0 : rc;
}

static int start_parts(const ef_config *c, serve_parts *sp)
{
    const char *pg_url = ef_cfg_get_str(c, "EF_DATABASE_URL");
    ef_kv_set_timeout_ms((int)ef_cfg_get_int(c, "EF_REDIS_TIMEOUT_MS"));
    ef_kv_set_tls_files(ef_cfg_get_str(c, "EF_REDIS_TLS_CA_FILE"),
                        ef_cfg_get_str(c, "EF_REDIS_TLS_CERT_FILE"),
                        ef_cfg_get_str(c, "EF_REDIS_TLS_KEY_FILE"));
    ef_dispatch_opts dop = {.pg_url = pg_url,
                            .channels = sp->channels,
                            .reply_ttl_s = (int)ef_cfg_get_int(c, "EF_REPLY_TTL_S")};
    sp->disp = ef_dispatch_start(&dop);
    ef_pipeline_opts po = {
        .pg_url = pg_url,
        .redis_url = ef_cfg_get_str(c, "EF_REDIS_URL"),
        .workers = (int)ef_cfg_get_int(c, "EF_STORE_WORKERS"),
        .batch_max = (int)ef_cfg_get_int(c, "EF_BATCH_MAX"),
        .session_ttl = (int)ef_cfg_get_int(c, "EF_SESSION_TTL"),
        .queue_max = (size_t)ef_cfg_get_int(c, "EF_QUEUE_MAX"),
        .channels = sp->channels,
        .on_replies = wake_dispatcher,
        .on_replies_ud = sp->disp,
        .log_replies = ef_cfg_get_bool(c, "EF_LOG_REPLIES"),
    };
    sp->pipe = ef_pipeline_new(&po);
    ef_pipeline_start(sp->pipe);
    sp->polls.opts = (ef_poller_opts){
        .pg_url = pg_url,
        .json_max_depth = (int)ef_cfg_get_int(c, "EF_JSON_MAX_DEPTH"),
        .max_body = (size_t)ef_cfg_get_int(c, "EF_MAX_BODY"),
        .pipe = sp->pipe,
    };
    sp->retention = ef_retention_start(
        &(ef_retention_opts){.pg_url = pg_url,
                             .days = (int)ef_cfg_get_int(c, "EF_RETENTION_DAYS"),
                             .interval_s = (int)ef_cfg_get_int(c, "EF_RETENTION_INTERVAL_S")});
    sp->rollup = ef_metrics_rollup_start(&(ef_metrics_rollup_opts){
        .pg_url = pg_url, .interval_s = (int)ef_cfg_get_int(c, "EF_METRICS_ROLLUP_S")});
    start_api(c, sp);
    start_web(c, sp);
    sp->ws = ef_ws_new(
        &(ef_ws_opts){.pg_url = pg_url,
                      .redis_url = ef_cfg_get_str(c, "EF_REDIS_URL"),
                      .channels = sp->channels,
                      .pipe = sp->pipe,
                      .keys = &sp->keys,
                      .chat_rate_per_min = (int)ef_cfg_get_int(c, "EF_WEBCHAT_RATE_PER_MIN")});
    ef_server_opts so = {
        .listen = ef_cfg_get_str(c, "EF_LISTEN"),
        .max_body = (size_t)ef_cfg_get_int(c, "EF_MAX_BODY"),
        .json = {.max_depth = (int)ef_cfg_get_int(c, "EF_JSON_MAX_DEPTH"),
                 .max_string = (size_t)ef_cfg_get_int(c, "EF_JSON_MAX_STRING"),
                 .max_array = (size_t)ef_cfg_get_int(c, "EF_JSON_MAX_ARRAY"),
                 .max_keys = (size_t)ef_cfg_get_int(c, "EF_JSON_MAX_KEYS")},
        .request_timeout_ms = (int)ef_cfg_get_int(c, "EF_REQUEST_TIMEOUT_MS"),
        .request_deadline_ms = (int)ef_cfg_get_int(c, "EF_REQUEST_DEADLINE_MS"),
        .max_conns = (size_t)ef_cfg_get_int(c, "EF_MAX_CONNECTIONS"),
        .max_conns_per_ip = (size_t)ef_cfg_get_int(c, "EF_MAX_CONNECTIONS_PER_IP"),
        .channels = sp->channels,
        .pipe = sp->pipe,
        .api = sp->api,
        .web = sp->web,
        .ws = sp->ws,
    };
    char err[512];
    sp->srv = ef_server_new(&so, err, sizeof(err));
    if (!sp->srv) {
        EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "%s", err);
        return EF_EINVAL;
    }
    ef_channels_reload(sp->channels);
    reconcile(&sp->polls);
    ef_channels_watch(sp->channels);
    sp->sync = ef_sync_start(&(ef_sync_opts){.pg_url = pg_url, .channels = sp->channels});
    return 0;
}

static void stop_parts(serve_parts *sp)
{
    ef_sync_stop(sp->sync);
    if (sp->polls.channels)
        pollers_stop(&sp->polls);
    if (sp->pipe)
        ef_pipeline_stop(sp->pipe);
    ef_retention_stop(sp->retention);
    ef_metrics_rollup_stop(sp->rollup);
    ef_outbox_sampler_stop(sp->outbox);
    ef_work_stop(sp->work); /* before the server: its tasks end on its done list */
    ef_ws_stop(sp->ws);
    ef_server_free(sp->srv);
    ef_ws_free(sp->ws);
    ef_work_free(sp->work);
    ef_api_free(sp->api);
    ef_static_free(sp->web);
    ef_pipeline_free(sp->pipe);
    ef_dispatch_stop(sp->disp);
    reload_target = NULL;
    ef_channels_free(sp->channels);
    if (sp->polls.channels)
        pthread_mutex_destroy(&sp->polls.lock);
    ef_keyring_cleanup(&sp->keys);
}

static void install_signals(ef_channels *cs)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    reload_target = cs;
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int ef_serve_cli(int argc, char **argv)
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
    if (check_adapters() || check_listen(c) || check_schema(c)) {
        ef_config_free(c);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    serve_parts sp;
    memset(&sp, 0, sizeof(sp));
    int rc = start_channels(c, &sp);
    if (!rc)
        rc = start_parts(c, &sp);
    if (!rc) {
        install_signals(sp.channels);
        char *redacted = ef_redact_url(ef_cfg_get_str(c, "EF_DATABASE_URL"));
        EF_LOG(EF_LOG_INFO, EF_C_MAIN,
               "easyflow %s listening on http://%s workers=%d batch_max=%d db=%s", EF_VERSION,
               ef_cfg_get_str(c, "EF_LISTEN"), (int)ef_cfg_get_int(c, "EF_STORE_WORKERS"),
               (int)ef_cfg_get_int(c, "EF_BATCH_MAX"), redacted);
        ef_free(redacted);
        ef_server_run(sp.srv, &stop_flag, (int)ef_cfg_get_int(c, "EF_DRAIN_TIMEOUT_MS"));
    }
    stop_parts(&sp);
    ef_config_free(c);
    curl_global_cleanup();
    if (!rc)
        EF_LOG(EF_LOG_INFO, EF_C_MAIN, "stopped");
    return rc ? 1 : 0;
}
