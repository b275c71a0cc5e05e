/*
 * decide.c -- matcher + FSM for a batch, before its commit. See decide.h.
 */
#include "gateway/decide.h"

#include "gateway/orders_lookup.h"
#include "nlp/fsm.h"

#include <json-c/json.h>
#include <string.h>
#include <time.h>

/* A chat's session as the batch goes along. */
typedef struct chat_state {
    const char *scope;   /* the integration id ("-" for none) */
    const char *chat_id; /* borrowed from the batch's messages */
    char *state;
    ef_fsm_status status;
    json_object *context;
    int64_t last_message_at; /* Unix seconds; -1 = none */
    /* The session's conversation (NULL: none yet) and version, which the
     * commit checks; -1 when the session did not say (never matches). */
    char *conversation_id;
    int64_t version;
} chat_state;

/* A matcher scratch per bot (bots differ per channel), kept across batches:
 * a new one costs more than matching a small batch (its PCRE2 JIT stack,
 * ~200 KB of tables zeroed) and starts with cold word memos. A bot is known
 * by its address and serial: a channel may be replaced between batches and
 * its new bot loaded at the old one's address. The address of a bot that
 * is gone is never read; its scratch is freed once unused for a while. */
typedef struct bot_scratch {
    const ef_bot *bot;
    uint64_t serial;
    uint64_t used; /* the batch that last used it */
    ef_nlp_scratch *scratch;
} bot_scratch;

/* Batches a bot's scratch is kept without being used. */
#define SCRATCH_IDLE_BATCHES 1000
/* Scratches kept between batches, at most (the least recently used go
 * first): ~150 KB each once used, so a gateway serving many bots keeps a
 * few MB per worker, not one scratch per bot. */
#define SCRATCH_KEEP 32

struct ef_decider {
    bot_scratch *scratch; /* across batches */
    size_t n_scratch, cap_scratch;
    uint64_t batch; /* batches reset so far */
    /* Per batch. */
    chat_state *chats;
    size_t n_chats, cap_chats;
    char **owned;
    size_t n_owned, cap_owned;
    bool pg_only; /* sessions come from PostgreSQL, not Redis (a rerun) */
};

ef_decider *ef_decider_new(void)
{
    return ef_calloc(1, sizeof(ef_decider));
}

/* bot's scratch (bot is alive: a channel of the batch holds it). */
static ef_nlp_scratch *scratch_for(ef_decider *d, const ef_bot *bot)
{
    uint64_t serial = ef_bot_serial(bot);
    for (size_t i = 0; i < d->n_scratch; i++)
        if (d->scratch[i].bot == bot && d->scratch[i].serial == serial) {
            d->scratch[i].used = d->batch;
            return d->scratch[i].scratch;
        }
    if (d->n_scratch == d->cap_scratch) {
        d->cap_scratch = d->cap_scratch ? d->cap_scratch * 2 : 4;
        d->scratch = ef_realloc(d->scratch, d->cap_scratch * sizeof(*d->scratch));
    }
    bot_scratch *b = &d->scratch[d->n_scratch++];
    *b = (bot_scratch){
        .bot = bot, .serial = serial, .used = d->batch, .scratch = ef_nlp_scratch_new(bot)};
    return b->scratch;
}

/* Frees the scratches unused for SCRATCH_IDLE_BATCHES (those of bots
 * replaced or gone among them) and the least recently used beyond
 * SCRATCH_KEEP, or all of them. */
static void scratches_trim(ef_decider *d, bool all)
{
    size_t k = 0;
    for (size_t i = 0; i < d->n_scratch; i++) {
        if (all || d->batch - d->scratch[i].used > SCRATCH_IDLE_BATCHES)
            ef_nlp_scratch_free(d->scratch[i].scratch);
        else
            d->scratch[k++] = d->scratch[i];
    }
    d->n_scratch = k;
    while (d->n_scratch > SCRATCH_KEEP) {
        size_t lru = 0;
        for (size_t i = 1; i < d->n_scratch; i++)
            if (d->scratch[i].used < d->scratch[lru].used)
                lru = i;
        ef_nlp_scratch_free(d->scratch[lru].scratch);
        d->scratch[lru] = d->scratch[--d->n_scratch];
    }
}

static void chat_state_cleanup(chat_state *cs)
{
    ef_free(cs->state);
    json_object_put(cs->context);
    ef_free(cs->conversation_id);
    cs->state = NULL;
    cs->context = NULL;
    cs->conversation_id = NULL;
}

/* The chat starts over: a new conversation, nothing decided on it yet. */
static void chat_state_fresh(chat_state *cs)
{
    chat_state_cleanup(cs);
    cs->status = EF_FSM_ACTIVE;
    cs->last_message_at = -1;
    cs->version = 0;
}

void ef_decider_reset(ef_decider *d)
{
    for (size_t i = 0; i < d->n_chats; i++)
        chat_state_cleanup(&d->chats[i]);
    d->n_chats = 0;
    d->batch++;
    scratches_trim(d, false);
    for (size_t i = 0; i < d->n_owned; i++)
        ef_free(d->owned[i]);
    d->n_owned = 0;
}

void ef_decider_free(ef_decider *d)
{
    if (!d)
        return;
    ef_decider_reset(d);
    scratches_trim(d, true);
    ef_free(d->chats);
    ef_free(d->owned);
    ef_free(d->scratch);
    ef_free(d);
}

static const char *own(ef_decider *d, char *s)
{
    if (d->n_owned == d->cap_owned) {
        d->cap_owned = d->cap_owned ? d->cap_owned * 2 : 64;
        d->owned = ef_realloc(d->owned, d->cap_owned * sizeof(char *));
    }
    d->owned[d->n_owned++] = s;
    return s;
}

static bool eligible(const ef_msg *m)
{
    if (m->kind != EF_MSG_NEW && m->kind != EF_MSG_CALLBACK)
        return false;
    if (m->sender_is_bot || !m->chat_id)
        return false;
    /* The bot answers customers one to one, not groups and channels. */
    return !m->chat_type || strcmp(m->chat_type, "private") == 0;
}

static void session_from_json(chat_state *cs, const char *json)
{
    json_object *o = json ? json_tokener_parse(json) : NULL, *v;
    if (o && json_object_object_get_ex(o, "state", &v) && json_object_is_type(v, json_type_string))
        cs->state = ef_strdup(json_object_get_string(v));
    if (o && json_object_object_get_ex(o, "status", &v))
        ef_fsm_status_parse(json_object_get_string(v), &cs->status);
    if (o && json_object_object_get_ex(o, "context", &v) &&
        json_object_is_type(v, json_type_object))
        cs->context = json_object_get(v);
    if (o && json_object_object_get_ex(o, "last_message_at", &v))
        cs->last_message_at = json_object_get_int64(v);
    if (o && json_object_object_get_ex(o, "conversation_id", &v) &&
        json_object_is_type(v, json_type_string))
        cs->conversation_id = ef_strdup(json_object_get_string(v));
    /* A session without a version (written by an older gateway) cannot be
     * trusted: -1 never matches, so the commit sends us to PostgreSQL. */
    cs->version =
        o && json_object_object_get_ex(o, "version", &v) && json_object_is_type(v, json_type_int)
            ? json_object_get_int64(v)
            : -1;
    json_object_put(o);
}

static const char *scope_of(const ef_msg *m)
{
    return m->integration_id ? m->integration_id : "-";
}

/* The batch's state of m's chat, NULL when it was not loaded. */
static chat_state *chat_find(ef_decider *d, const ef_msg *m)
{
    const char *scope = scope_of(m);
    for (size_t i = 0; i < d->n_chats; i++)
        if (strcmp(d->chats[i].scope, scope) == 0 && strcmp(d->chats[i].chat_id, m->chat_id) == 0)
            return &d->chats[i];
    return NULL;
}

/* A new chat state of m's chat from its session JSON (NULL: none). */
static void chat_add(ef_decider *d, const ef_msg *m, const char *json)
{
    if (d->n_chats == d->cap_chats) {
        d->cap_chats = d->cap_chats ? d->cap_chats * 2 : 32;
        d->chats = ef_realloc(d->chats, d->cap_chats * sizeof(chat_state));
    }
    chat_state *cs = &d->chats[d->n_chats++];
    memset(cs, 0, sizeof(*cs));
    cs->scope = scope_of(m);
    cs->chat_id = m->chat_id;
    chat_state_fresh(cs);
    if (json)
        session_from_json(cs, json);
    if (cs->status == EF_FSM_CLOSED) /* the next message opens a new conversation */
        chat_state_fresh(cs);
}

/* The sessions of the chats of msgs[0..n) not loaded yet, in two round
 * trips to Redis (unless pg_only) and one statement to PostgreSQL for the
 * ones Redis did not have. EF_EDB when PostgreSQL cannot tell. */
static int load_sessions(ef_decider *d, ef_store *st, ef_kv *kv, const ef_msg **msgs, size_t n)
{
    const ef_msg **want = ef_calloc(n ? n : 1, sizeof(*want));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = chat_find(d, msgs[i]) != NULL;
        for (size_t j = 0; j < k && !dup; j++)
            dup = strcmp(scope_of(want[j]), scope_of(msgs[i])) == 0 &&
                  strcmp(want[j]->chat_id, msgs[i]->chat_id) == 0;
        if (!dup)
            want[k++] = msgs[i];
    }
    const char **scopes = ef_calloc(k ? k : 1, sizeof(char *));
    const char **ints = ef_calloc(k ? k : 1, sizeof(char *));
    const char **plats = ef_calloc(k ? k : 1, sizeof(char *));
    const char **chats = ef_calloc(k ? k : 1, sizeof(char *));
    char **json = ef_calloc(k ? k : 1, sizeof(char *));
    for (size_t i = 0; i < k; i++) {
        scopes[i] = scope_of(want[i]);
        chats[i] = want[i]->chat_id;
    }
    if (!d->pg_only && k > 0)
        (void)ef_kv_sessions_get(kv, k, scopes, chats, json); /* a miss reads PostgreSQL */
    size_t miss = 0;
    size_t *at = ef_calloc(k ? k : 1, sizeof(*at));
    for (size_t i = 0; i < k; i++) {
        if (json[i])
            continue;
        ints[miss] = want[i]->integration_id;
        plats[miss] = want[i]->platform;
        chats[miss] = want[i]->chat_id;
        at[miss++] = i;
    }
    char **pg = ef_calloc(miss ? miss : 1, sizeof(char *));
    int rc = miss > 0 && ef_store_chat_sessions(st, miss, ints, plats, chats, pg) != 0 ? EF_EDB : 0;
    for (size_t j = 0; j < miss; j++)
        json[at[j]] = pg[j];
    for (size_t i = 0; i < k; i++) {
        if (rc == 0)
            chat_add(d, want[i], json[i]);
        ef_free(json[i]);
    }
    ef_free(pg);
    ef_free(at);
    ef_free(json);
    ef_free(chats);
    ef_free(plats);
    ef_free(ints);
    ef_free(scopes);
    ef_free(want);
    return rc;
}

/* Drops what the decider knew of m's chat, so that the next chat_for()
 * loads it again. */
static void forget_chat(ef_decider *d, const ef_msg *m)
{
    const char *scope = scope_of(m);
    for (size_t i = 0; i < d->n_chats; i++) {
        chat_state *cs = &d->chats[i];
        if (strcmp(cs->scope, scope) != 0 || strcmp(cs->chat_id, m->chat_id) != 0)
            continue;
        chat_state_cleanup(cs);
        d->chats[i] = d->chats[--d->n_chats];
        return;
    }
}

/* The payload of a pressed button: a callback's data, or the reply id /
 * quick-reply payload an adapter put in the message's meta. */
static const char *button_of(ef_decider *d, const ef_msg *m)
{
    if (m->kind == EF_MSG_CALLBACK)
        return m->text;
    if (!m->meta_json ||
        (!strstr(m->meta_json, "\"payload\"") && !strstr(m->meta_json, "\"interactive\"")))
        return NULL;
    json_object *meta = json_tokener_parse(m->meta_json), *v, *id;
    const char *out = NULL;
    if (meta && json_object_object_get_ex(meta, "payload", &v) &&
        json_object_is_type(v, json_type_string))
        out = own(d, ef_strdup(json_object_get_string(v)));
    else if (meta && json_object_object_get_ex(meta, "interactive", &v) &&
             json_object_object_get_ex(v, "id", &id))
        out = own(d, ef_strdup(json_object_get_string(id)));
    json_object_put(meta);
    return out;
}

static void apply_patch(chat_state *cs, json_object *patch)
{
    if (!cs->context)
        cs->context = json_object_new_object();
    json_object_object_foreach(patch, key, val)
    {
        if (!val)
            json_object_object_del(cs->context, key);
        else
            json_object_object_add(cs->context, key, json_object_get(val));
    }
}

/* messages.entities: {"type": "value"} (a list when a type repeats). */
static char *entities_json(const ef_nlu_result *r)
{
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < r->n_entities; i++) {
        const ef_nlu_entity *e = &r->entities[i];
        json_object *prev;
        json_object *val = json_object_new_string(e->value);
        if (json_object_object_get_ex(o, e->type, &prev)) {
            if (!json_object_is_type(prev, json_type_array)) {
                json_object *arr = json_object_new_array();
                json_object_array_add(arr, json_object_get(prev));
                json_object_object_add(o, e->type, arr);
                prev = arr;
            }
            json_object_array_add(prev, val);
        } else {
            json_object_object_add(o, e->type, val);
        }
    }
    char *s = ef_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* The FSM's output plus what explains it, for the commit. */
static char *decision_json(const ef_fsm_output *out, const ef_nlu_result *nlu)
{
    char *fj = ef_fsm_output_json(out);
    json_object *o = fj ? json_tokener_parse(fj) : NULL;
    ef_free(fj);
    if (!o)
        o = json_object_new_object();
    if (out->why)
        json_object_object_add(o, "why", json_object_new_string(out->why));
    if (nlu) {
        json_object *ranked = json_object_new_array();
        for (size_t i = 0; i < nlu->n_ranked; i++) {
            json_object *r = json_object_new_object();
            json_object_object_add(r, "intent", json_object_new_string(nlu->ranked[i].intent));
            json_object_object_add(r, "confidence",
                                   json_object_new_double(nlu->ranked[i].confidence));
            json_object_array_add(ranked, r);
        }
        json_object_object_add(o, "ranked", ranked);
    }
    char *s = ef_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static int decide_one(ef_decider *d, ef_store *st, const ef_bot *bot, chat_state *cs,
                      ef_ingest_item *it, int64_t now)
{
    const ef_msg *m = it->msg;
    const ef_fsm_def *def = ef_bot_fsm(bot);
    const char *button = button_of(d, m);
    ef_nlu_result nlu;
    memset(&nlu, 0, sizeof(nlu));
    bool understood = false;
    if (m->kind != EF_MSG_CALLBACK && m->text && m->text_len > 0 &&
        ef_nlp_match(bot, scratch_for(d, bot), m->text, m->text_len, now, &nlu) == 0)
        understood = true;

    ef_fsm_entity ents[EF_NLU_MAX_ENTITIES];
    size_t n_ents = 0;
    for (size_t i = 0; understood && i < nlu.n_entities; i++) {
        ents[n_ents].type = nlu.entities[i].type;
        ents[n_ents].value = nlu.entities[i].value;
        n_ents++;
    }
    if (understood) {
        it->intent = nlu.intent;
        it->confidence = nlu.confidence;
        it->entities_json = own(d, entities_json(&nlu));
    }
    if (!def)
        return 0;
    /* The shop's real order the message or its chat names (orders_lookup.h). */
    ef_orders_lookup_context(st, m, understood ? &nlu : NULL,
                             understood && nlu.lang ? nlu.lang : m->sender_lang, &cs->context);
    ef_fsm_input in = {
        .state = cs->state,
        .status = cs->status,
        .context = cs->context,
        /* The language the message is written in, when the matcher could
         * tell, beats the language of the customer's app. */
        .lang = understood && nlu.lang ? nlu.lang : m->sender_lang,
        .intent = understood ? nlu.intent : NULL,
        .confidence = understood ? nlu.confidence : 0,
        .entities = n_ents ? ents : NULL,
        .n_entities = n_ents,
        .button = button,
        .idle_seconds = cs->last_message_at >= 0 ? now - cs->last_message_at : -1,
    };
    ef_fsm_output out;
    memset(&out, 0, sizeof(out));
    int rc = ef_fsm_step(def, &in, &out);
    if (rc) {
        EF_LOG(EF_LOG_WARN, EF_C_FSM, "chat=%s message=%s no decision: %s", m->chat_id,
               m->message_id ? m->message_id : "-", ef_strerror(rc));
        return 0;
    }
    EF_LOG(EF_LOG_DEBUG, EF_C_FSM, "chat=%s intent=%s confidence=%.2f replies=%zu why=\"%s\"",
           m->chat_id, in.intent ? in.intent : "-", in.confidence, out.n_replies,
           out.why ? out.why : "");
    it->fsm_json = own(d, decision_json(&out, understood ? &nlu : NULL));
    /* The commit checks that the conversation is still what we decided
     * from; each stored decision moves its version on by one. */
    it->has_base = true;
    it->base_conversation_id = cs->conversation_id ? own(d, ef_strdup(cs->conversation_id)) : NULL;
    it->base_version = cs->version;

    /* The next message of this chat in the batch starts from here. */
    ef_free(cs->state);
    cs->state = ef_strdup(out.state);
    if (out.status_changed)
        cs->status = out.status;
    apply_patch(cs, out.context_patch);
    cs->last_message_at = now;
    cs->version = cs->version >= 0 ? cs->version + 1 : -1;
    if (cs->status == EF_FSM_CLOSED)
        chat_state_fresh(cs);
    ef_fsm_output_cleanup(&out);
    return 0;
}

static bool same_scope(const ef_msg *a, const ef_msg *b)
{
    return a->integration_id && b->integration_id
               ? strcmp(a->integration_id, b->integration_id) == 0
               : a->integration_id == b->integration_id;
}

/* Whether items[i] repeats an earlier message of the batch: only the
 * first counts. (A message stored by an earlier batch is found by the
 * commit, which says duplicate and writes nothing; a later message of its
 * chat decided on top of it then comes back stale and is decided again.) */
static bool repeated(const ef_ingest_item *items, size_t i)
{
    const ef_msg *m = items[i].msg;
    for (size_t p = 0; p < i; p++)
        if (items[p].msg->message_id && m->message_id &&
            strcmp(items[p].msg->message_id, m->message_id) == 0 &&
            strcmp(items[p].msg->platform, m->platform) == 0 && same_scope(items[p].msg, m))
            return true;
    return false;
}

static int run_items(ef_decider *d, ef_store *st, ef_kv *kv, ef_ingest_item *items,
                     const ef_bot *const *bots, size_t n)
{
    const ef_msg **msgs = ef_calloc(n ? n : 1, sizeof(*msgs));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (bots[i] && eligible(items[i].msg))
            msgs[k++] = items[i].msg;
    int rc = load_sessions(d, st, kv, msgs, k);
    ef_free(msgs);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const ef_msg *m = items[i].msg;
        if (!bots[i] || !eligible(m) || repeated(items, i))
            continue;
        chat_state *cs = chat_find(d, m);
        if (cs)
            rc = decide_one(d, st, bots[i], cs, &items[i], now);
    }
    return rc;
}

int ef_decider_run(ef_decider *d, ef_store *st, ef_kv *kv, ef_ingest_item *items,
                   const ef_bot *const *bots, size_t n)
{
    if (n == 0)
        return 0;
    d->pg_only = false;
    return run_items(d, st, kv, items, bots, n);
}

int ef_decider_rerun(ef_decider *d, ef_store *st, ef_ingest_item *items, const ef_bot *const *bots,
                     size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        ef_ingest_item *it = &items[i];
        it->intent = NULL;
        it->entities_json = NULL;
        it->confidence = 0;
        it->fsm_json = NULL;
        it->has_base = false;
        it->base_conversation_id = NULL;
        it->base_version = 0;
        if (it->msg->chat_id)
            forget_chat(d, it->msg);
    }
    d->pg_only = true;
    int rc = run_items(d, st, NULL, items, bots, n);
    d->pg_only = false;
    return rc;
}
