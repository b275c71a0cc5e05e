/*
 * channels.c -- the live set of channels. See channels.h.
 *
 * The set is an array of referenced channels swapped whole under one
 * mutex; readers take a reference and drop the lock at once. The watch
 * thread owns one PostgreSQL connection for LISTEN and rebuilds.
 */
#include "gateway/channels.h"

#include "base/hash.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SAFETY_RELOAD_MS 30000
#define WAIT_SLICE_MS 500

typedef struct mem_creds {
    char *id;
    char *json;
    struct mem_creds *next;
} mem_creds;

struct ef_channels {
    char *pg_url;
    char *default_bot_file;
    ef_keyring keys;
    void (*on_change)(void *ud);
    void *on_change_ud;
    char *(*settings_defaults)(void *ud, const ef_platform_ops *ops);
    void *settings_ud;

    pthread_mutex_t lock; /* guards set, n, mem */
    ef_channel **set;
    size_t n;
    mem_creds *mem;

    pthread_mutex_t reload_lock; /* one rebuild at a time */
    ef_store *st;                /* the watch thread's (and reload's) connection */
    pthread_t thread;
    bool watching;
    atomic_bool stop;
    atomic_bool want_reload;
    atomic_bool ready;
    int (*bootstrap)(void *ud); /* NULL once done */
    void *bootstrap_ud;
    struct ef_bot_share *kept; /* ef_channels_keep_bot's, released last */
};

/* ---- bots shared by the channels that name one file ------------------------ */

/* A loaded bot is immutable and may be shared by any number of threads
 * (nlp/nlp.h), and most deployments serve one bot through several channels
 * (Telegram, the web chat, a marketplace): each channel loading its own
 * copy doubled the gateway's memory (the demo bot is ~40 MB: its hunspell
 * dictionaries, patterns and model). A channel built from the same file,
 * unchanged on disk (device, inode, size, modification time), takes a
 * reference to the bot already loaded; the last channel to let go frees it.
 * Process-wide: every ef_channels of the process shares the list. */
struct ef_bot_share {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    ef_bot *bot;
    int refs; /* under bots_lock */
    struct ef_bot_share *next;
};

static pthread_mutex_t bots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ef_bot_share *bots;

static bool same_file(const struct ef_bot_share *b, const char *path, const struct stat *st)
{
    return strcmp(b->path, path) == 0 && b->dev == st->st_dev && b->ino == st->st_ino &&
           b->size == st->st_size && b->mtime.tv_sec == st->st_mtim.tv_sec &&
           b->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The bot of file, loaded once while any channel holds it: 0 and *out
 * referenced, else the loader's error in err. Loads under bots_lock (a
 * rebuild is one at a time anyway). */
static int bot_share_get(const char *file, struct ef_bot_share **out, char *err, size_t errlen)
{
    *out = NULL;
    struct stat st;
    bool have_st = stat(file, &st) == 0;
    pthread_mutex_lock(&bots_lock);
    for (struct ef_bot_share *b = bots; b && have_st; b = b->next) {
        if (same_file(b, file, &st)) {
            b->refs++;
            *out = b;
            pthread_mutex_unlock(&bots_lock);
            return 0;
        }
    }
    ef_bot *bot = NULL;
    int rc = ef_bot_load(file, &bot, err, errlen);
    if (rc == 0) {
        struct ef_bot_share *b = ef_calloc(1, sizeof(*b));
        b->path = ef_strdup(file);
        if (have_st) {
            b->dev = st.st_dev;
            b->ino = st.st_ino;
            b->size = st.st_size;
            b->mtime = st.st_mtim;
        } else {
            b->size = -1; /* never matches a file: not shared */
        }
        b->bot = bot;
        b->refs = 1;
        b->next = bots;
        bots = b;
        *out = b;
    }
    pthread_mutex_unlock(&bots_lock);
    return rc;
}

static void bot_share_put(struct ef_bot_share *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&bots_lock);
    bool last = --b->refs == 0;
    if (last) {
        struct ef_bot_share **p = &bots;
        while (*p && *p != b)
            p = &(*p)->next;
        if (*p)
            *p = b->next;
    }
    pthread_mutex_unlock(&bots_lock);
    if (last) {
        ef_bot_free(b->bot);
        ef_free(b->path);
        ef_free(b);
    }
}

/* ---- one channel --------------------------------------------------------- */

ef_channel *ef_channel_ref(ef_channel *ch)
{
    if (ch)
        atomic_fetch_add(&ch->refs, 1);
    return ch;
}

void ef_channel_unref(ef_channel *ch)
{
    if (!ch || atomic_fetch_sub(&ch->refs, 1) != 1)
        return;
    if (ch->cfg)
        ch->ops->close(ch->cfg);
    bot_share_put(ch->bot_share);
    ef_free(ch->id);
    ef_free(ch->name);
    ef_free(ch->key);
    ef_free(ch);
}

bool ef_channel_failed(const ef_channel *ch)
{
    return atomic_load(&((ef_channel *)ch)->failed);
}

void ef_channels_fail(ef_channel *ch, ef_store *st, const char *reason)
{
    if (!atomic_exchange(&ch->failed, true))
        EF_LOG(EF_LOG_ERROR, EF_C_MAIN,
               "integration=%s name=\"%s\" %s: %s; its sends and polls "
               "stop until `easyflow integration enable %s`",
               ch->id, ch->name, ch->ops->name, reason, ch->id);
    if (ef_store_integration_set_status(st, ch->id, "error", reason) != 0)
        EF_LOG(EF_LOG_WARN, EF_C_PG, "integration=%s status not recorded: %s", ch->id,
               ef_store_errmsg(st));
}

/* What a row builds: a change in any of it rebuilds the channel. */
static uint64_t row_version(const ef_integration_row *r, const char *mem)
{
    uint64_t h = EF_FNV1A64_INIT;
    h = ef_fnv1a64(r->platform, h);
    h = ef_fnv1a64(r->name, h);
    h = ef_fnv1a64(r->settings_json, h);
    h = ef_fnv1a64(r->key_id, h);
    h = ef_fnv1a64(r->is_default ? "d" : "-", h);
    h = ef_fnv1a64(mem, h);
    for (size_t i = 0; i < r->sealed_len; i++)
        h = (h ^ r->sealed[i]) * 1099511628211ULL;
    return h;
}

static const char *mem_creds_of(ef_channels *cs, const char *id)
{
    for (mem_creds *m = cs->mem; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m->json;
    return NULL;
}

/* A blob in the older format (raw key, not bound to the row) is re-sealed
 * bound to the integration's id; failing that it still works as it is. */
static void upgrade_seal(ef_channels *cs, const ef_integration_row *r, const char *plain,
                         size_t len)
{
    uint8_t *sealed = NULL;
    size_t n = 0;
    int rc = ef_cred_seal(&cs->keys, r->id, plain, len, &sealed, &n);
    if (rc == 0)
        rc = ef_store_integration_upgrade_seal(cs->st, r->id, r->sealed, r->sealed_len, sealed, n,
                                               cs->keys.ids[0]);
    ef_free(sealed);
    if (rc)
        EF_LOG(EF_LOG_WARN, EF_C_CFG, "integration=%s credentials not re-sealed: %s", r->id,
               ef_store_errmsg(cs->st));
    else
        EF_LOG(EF_LOG_INFO, EF_C_CFG,
               "integration=%s credentials re-sealed bound to the integration", r->id);
}

/* The row's credentials in clear (owned), from its sealed blob or memory. */
static int open_creds(ef_channels *cs, const ef_integration_row *r, const char *mem, char **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    if (!r->sealed) {
        if (mem) {
            *out = ef_strdup(mem);
            return 0;
        }
        ef_errf(err, errlen, "no credentials stored");
        return EF_EINVAL;
    }
    if (cs->keys.n == 0) {
        ef_errf(err, errlen, "credentials are sealed but EF_SECRET_KEY is not set");
        return EF_EAUTH;
    }
    size_t len = 0;
    bool legacy = false;
    if (ef_keyring_open(&cs->keys, r->key_id, r->id, r->sealed, r->sealed_len, out, &len,
                        &legacy) != 0) {
        ef_errf(err, errlen,
                "credentials do not open for this integration: sealed for another integration "
                "(copied from another row), altered, or under another key (key %s; set the key "
                "that sealed them in EF_SECRET_KEY_OLD and run `easyflow integration rotate-key`)",
                r->key_id ? r->key_id : "?");
        return EF_EAUTH;
    }
    if (legacy)
        upgrade_seal(cs, r, *out, len);
    return 0;
}

/* settings.bot_file, else EF_BOT_FILE; NULL: no bot. */
static int load_bot(ef_channels *cs, const ef_integration_row *r, struct ef_bot_share **bot,
                    char *err, size_t errlen)
{
    *bot = NULL;
    json_object *settings = NULL;
    char why[160];
    const char *file = cs->default_bot_file;
    if (r->settings_json && ef_json_parse(r->settings_json, strlen(r->settings_json), 16, &settings,
                                          why, sizeof(why)) == 0) {
        json_object *v;
        if (json_object_object_get_ex(settings, "bot_file", &v) &&
            json_object_is_type(v, json_type_string) && *json_object_get_string(v))
            file = json_object_get_string(v);
    }
    int rc = 0;
    if (file && *file) {
        char berr[400];
        rc = bot_share_get(file, bot, berr, sizeof(berr));
        if (rc)
            ef_errf(err, errlen, "bot definition refused: %s", berr);
    }
    json_object_put(settings);
    return rc;
}

/* The platform's defaults with the row's own settings over them (owned). */
static char *merged_settings(ef_channels *cs, const ef_integration_row *r,
                             const ef_platform_ops *ops)
{
    char *defaults = cs->settings_defaults ? cs->settings_defaults(cs->settings_ud, ops) : NULL;
    json_object *d = NULL, *own = NULL;
    char why[160];
    if (!defaults || ef_json_parse(defaults, strlen(defaults), 16, &d, why, sizeof(why)) != 0 ||
        !r->settings_json ||
        ef_json_parse(r->settings_json, strlen(r->settings_json), 16, &own, why, sizeof(why)) !=
            0 ||
        !json_object_is_type(own, json_type_object)) {
        json_object_put(d);
        json_object_put(own);
        char *s = ef_strdup(r->settings_json ? r->settings_json : (defaults ? defaults : "{}"));
        ef_free(defaults);
        return s;
    }
    json_object_object_foreach(own, key, val)
    {
        json_object_object_add(d, key, json_object_get(val));
    }
    char *s = ef_strdup(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
    json_object_put(d);
    json_object_put(own);
    ef_free(defaults);
    return s;
}

static ef_channel *build(ef_channels *cs, const ef_integration_row *r, const ef_platform_ops *ops,
                         const char *mem, char *err, size_t errlen)
{
    char *creds = NULL;
    if (open_creds(cs, r, mem, &creds, err, errlen) != 0)
        return NULL;
    ef_channel *ch = ef_calloc(1, sizeof(*ch));
    ch->ops = ops;
    char *settings = merged_settings(cs, r, ops);
    int rc = ops->open(creds, settings, &ch->cfg, &ch->policy, err, errlen);
    ef_free(settings);
    if (creds) {
        memset(creds, 0, strlen(creds));
        ef_free(creds);
    }
    if (rc == 0)
        rc = load_bot(cs, r, &ch->bot_share, err, errlen);
    ch->bot = ch->bot_share ? ch->bot_share->bot : NULL;
    ch->id = ef_strdup(r->id);
    ch->name = ef_strdup(r->name);
    atomic_init(&ch->refs, 1);
    atomic_init(&ch->failed, strcmp(r->status, "error") == 0);
    if (rc) {
        ef_channel_unref(ch);
        return NULL;
    }
    ch->key = ef_strdup(ops->channel_key(ch->cfg));
    ch->is_default = r->is_default;
    ch->version = row_version(r, mem);
    return ch;
}

/* ---- the set ------------------------------------------------------------- */

static ef_channel *find_in(ef_channel **set, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i]->id, id) == 0)
            return set[i];
    return NULL;
}

/* The channel for one row: the current one when nothing changed, else a
 * new one (NULL when it cannot be built: its row gets the reason). */
static ef_channel *channel_for_row(ef_channels *cs, ef_channel **old, size_t n_old,
                                   const ef_integration_row *r, bool *changed)
{
    const ef_platform_ops *ops = ef_platform_find(r->platform);
    if (!ops)
        return NULL; /* a platform this build has no adapter for */
    pthread_mutex_lock(&cs->lock);
    const char *m = mem_creds_of(cs, r->id);
    char *mem = m ? ef_strdup(m) : NULL;
    pthread_mutex_unlock(&cs->lock);
    ef_channel *cur = find_in(old, n_old, r->id);
    uint64_t v = row_version(r, mem);
    if (cur && cur->version == v) {
        atomic_store(&cur->failed, strcmp(r->status, "error") == 0);
        ef_free(mem);
        return ef_channel_ref(cur);
    }
    *changed = true;
    char err[512] = "";
    ef_channel *ch = build(cs, r, ops, mem, err, sizeof(err));
    ef_free(mem);
    if (!ch) {
        /* A changed row that does not build (credentials sealed under a key
         * this process lacks, settings the adapter refuses) does not take a
         * working channel away: the one built before goes on serving. */
        EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "integration=%s name=\"%s\" %s %s: %s", r->id, r->name,
               r->platform, cur ? "change not applied, the previous one goes on" : "not served",
               err);
        if (ef_store_integration_set_status(cs->st, r->id, "error", err) != 0)
            EF_LOG(EF_LOG_WARN, EF_C_PG, "integration=%s status not recorded", r->id);
        return ef_channel_ref(cur);
    }
    if (strcmp(r->status, "pending") == 0 &&
        ef_store_integration_set_status(cs->st, r->id, "connected", NULL) != 0)
        EF_LOG(EF_LOG_WARN, EF_C_PG, "integration=%s status not recorded", r->id);
    EF_LOG(EF_LOG_INFO, EF_C_MAIN, "integration=%s name=\"%s\" %s key=%s serving%s%s", ch->id,
           ch->name, ops->name, ch->key[0] ? ch->key : "-",
           ch->policy.receive_poll   ? " (long polling)"
           : ch->policy.receive_only ? " (receive only: no API token to reply with)"
                                     : "",
           ch->bot ? "" : " (no bot: store only)");
    return ch;
}

/* Swaps in the new set; the old one's references are dropped. */
static void swap_set(ef_channels *cs, ef_channel **set, size_t n)
{
    pthread_mutex_lock(&cs->lock);
    ef_channel **old = cs->set;
    size_t n_old = cs->n;
    cs->set = set;
    cs->n = n;
    pthread_mutex_unlock(&cs->lock);
    ef_channels_list_free(old, n_old);
}

void ef_channels_set_bootstrap(ef_channels *cs, int (*fn)(void *ud), void *ud)
{
    pthread_mutex_lock(&cs->reload_lock);
    cs->bootstrap = fn;
    cs->bootstrap_ud = ud;
    pthread_mutex_unlock(&cs->reload_lock);
}

bool ef_channels_ready(ef_channels *cs)
{
    return atomic_load(&cs->ready);
}

int ef_channels_reload(ef_channels *cs)
{
    pthread_mutex_lock(&cs->reload_lock);
    if (cs->bootstrap) {
        if (cs->bootstrap(cs->bootstrap_ud) == EF_EDB) {
            pthread_mutex_unlock(&cs->reload_lock);
            return EF_EDB;
        }
        cs->bootstrap = NULL;
    }
    ef_integration_row *rows = NULL;
    size_t n = 0;
    if (ef_store_integrations_list(cs->st, false, &rows, &n) != 0) {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "integrations not reloaded: %s", ef_store_errmsg(cs->st));
        pthread_mutex_unlock(&cs->reload_lock);
        return EF_EDB;
    }
    ef_channel **old = NULL;
    size_t n_old = ef_channels_list(cs, NULL, &old);
    ef_channel **set = ef_calloc(n + 1, sizeof(*set));
    size_t k = 0;
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        ef_channel *ch = channel_for_row(cs, old, n_old, &rows[i], &changed);
        if (ch)
            set[k++] = ch;
    }
    for (size_t i = 0; i < n_old && !changed; i++)
        changed = !find_in(set, k, old[i]->id);
    ef_channels_list_free(old, n_old);
    ef_integration_rows_free(rows, n);
    swap_set(cs, set, k);
    atomic_store(&cs->ready, true);
    pthread_mutex_unlock(&cs->reload_lock);
    if (changed && cs->on_change)
        cs->on_change(cs->on_change_ud);
    return 0;
}

/* ---- lookups ------------------------------------------------------------- */

ef_channel *ef_channels_get(ef_channels *cs, const char *id)
{
    if (!id)
        return NULL;
    pthread_mutex_lock(&cs->lock);
    ef_channel *ch = ef_channel_ref(find_in(cs->set, cs->n, id));
    pthread_mutex_unlock(&cs->lock);
    return ch;
}

ef_channel *ef_channels_route(ef_channels *cs, const ef_platform_ops *ops, const char *sub)
{
    const char *id = sub && *sub == '/' ? sub + 1 : sub;
    ef_channel *ch = NULL;
    pthread_mutex_lock(&cs->lock);
    for (size_t i = 0; i < cs->n && !ch; i++) {
        ef_channel *c = cs->set[i];
        if (c->ops != ops)
            continue;
        if (id && *id ? strcmp(c->id, id) == 0 : c->is_default)
            ch = ef_channel_ref(c);
    }
    pthread_mutex_unlock(&cs->lock);
    return ch;
}

ef_channel *ef_channels_by_key(ef_channels *cs, const ef_platform_ops *ops, const char *key)
{
    if (!key)
        return NULL;
    ef_channel *ch = NULL;
    pthread_mutex_lock(&cs->lock);
    for (size_t i = 0; i < cs->n && !ch; i++)
        if (cs->set[i]->ops == ops && strcmp(cs->set[i]->key, key) == 0)
            ch = ef_channel_ref(cs->set[i]);
    pthread_mutex_unlock(&cs->lock);
    return ch;
}

size_t ef_channels_list(ef_channels *cs, const ef_platform_ops *ops, ef_channel ***out)
{
    pthread_mutex_lock(&cs->lock);
    ef_channel **list = ef_calloc(cs->n + 1, sizeof(*list));
    size_t k = 0;
    for (size_t i = 0; i < cs->n; i++)
        if (!ops || cs->set[i]->ops == ops)
            list[k++] = ef_channel_ref(cs->set[i]);
    pthread_mutex_unlock(&cs->lock);
    *out = list;
    return k;
}

void ef_channels_list_free(ef_channel **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ef_channel_unref(list[i]);
    ef_free(list);
}

/* ---- the watch thread ---------------------------------------------------- */

static void *watch_main(void *arg)
{
    ef_channels *cs = arg;
    bool listening = false;
    int64_t next_reload = ef_now_ms() + SAFETY_RELOAD_MS;
    while (!atomic_load(&cs->stop)) {
        if (!listening) {
            listening = ef_store_integrations_listen(cs->st) == 0;
            if (listening)
                atomic_store(&cs->want_reload, true); /* changes missed while away */
        }
        int rc = listening ? ef_store_wait_notify(cs->st, WAIT_SLICE_MS) : 0;
        if (rc < 0)
            listening = false;
        if (!listening && !atomic_load(&cs->stop)) {
            struct timespec ts = {0, WAIT_SLICE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        int64_t now = ef_now_ms();
        if (rc == 1 || atomic_exchange(&cs->want_reload, false) || now >= next_reload) {
            if (ef_channels_reload(cs) != 0)
                listening = false;
            next_reload = now + SAFETY_RELOAD_MS;
        }
    }
    return NULL;
}

void ef_channels_watch(ef_channels *cs)
{
    if (cs->watching)
        return;
    if (pthread_create(&cs->thread, NULL, watch_main, cs) != 0)
        EF_PANIC("cannot start the integrations watch thread");
    cs->watching = true;
}

void ef_channels_request_reload(ef_channels *cs)
{
    atomic_store(&cs->want_reload, true);
}

/* ---- lifecycle ----------------------------------------------------------- */

ef_channels *ef_channels_new(const ef_channels_opts *opts)
{
    ef_channels *cs = ef_calloc(1, sizeof(*cs));
    cs->pg_url = ef_strdup(opts->pg_url);
    cs->default_bot_file = opts->default_bot_file && *opts->default_bot_file
                               ? ef_strdup(opts->default_bot_file)
                               : NULL;
    if (opts->keys)
        cs->keys = *opts->keys;
    cs->on_change = opts->on_change;
    cs->on_change_ud = opts->on_change_ud;
    cs->settings_defaults = opts->settings_defaults;
    cs->settings_ud = opts->settings_ud;
    pthread_mutex_init(&cs->lock, NULL);
    pthread_mutex_init(&cs->reload_lock, NULL);
    cs->st = ef_store_new(cs->pg_url);
    atomic_init(&cs->stop, false);
    atomic_init(&cs->want_reload, false);
    atomic_init(&cs->ready, false);
    return cs;
}

int ef_channels_keep_bot(ef_channels *cs, const char *file, const ef_bot **bot, char *err,
                         size_t errlen)
{
    struct ef_bot_share *b = NULL;
    int rc = bot_share_get(file, &b, err, errlen);
    if (rc != 0)
        return rc;
    bot_share_put(cs->kept);
    cs->kept = b;
    *bot = b->bot;
    return 0;
}

void ef_channels_set_memory_creds(ef_channels *cs, const char *id, const char *creds_json)
{
    mem_creds *m = ef_calloc(1, sizeof(*m));
    m->id = ef_strdup(id);
    m->json = ef_strdup(creds_json);
    pthread_mutex_lock(&cs->lock);
    m->next = cs->mem;
    cs->mem = m;
    pthread_mutex_unlock(&cs->lock);
}

void ef_channels_free(ef_channels *cs)
{
    if (!cs)
        return;
    atomic_store(&cs->stop, true);
    if (cs->watching)
        pthread_join(cs->thread, NULL);
    swap_set(cs, NULL, 0);
    bot_share_put(cs->kept);
    while (cs->mem) {
        mem_creds *m = cs->mem;
        cs->mem = m->next;
        memset(m->json, 0, strlen(m->json));
        ef_free(m->id);
        ef_free(m->json);
        ef_free(m);
    }
    ef_store_free(cs->st);
    ef_keyring_cleanup(&cs->keys);
    pthread_mutex_destroy(&cs->lock);
    pthread_mutex_destroy(&cs->reload_lock);
    ef_free(cs->pg_url);
    ef_free(cs->default_bot_file);
    ef_free(cs);
}
