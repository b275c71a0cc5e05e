/*
 * pg.c -- PostgreSQL through libpq: the connection, error classification,
 * the batch commit, session rebuild and long-poll cursors (the outbox is in
 * outbox.c, integrations in integrations.c).
 *
 * One ef_store is one connection owned by one thread (a pipeline worker or
 * the poller). The batch commit is a single statement, ef_ingest_rows($1)
 * (sql/026, on 009's set-based path), which applies every event in order
 * inside one transaction and answers one row per event: one round trip per
 * batch whatever its size.
 *
 * Every failed statement is classified by its SQLSTATE (ef_store_classify):
 * an outage (EF_EDB) marks the store down and the caller answers 503, so
 * nothing acknowledged is lost; an error in the data (EF_EINVAL) is that
 * data's fault, leaves the store up, and is reported without the data
 * (PostgreSQL's DETAIL line and quoted values may carry customer text).
 */
#include "store/store_int.h"

#include "base/utf8.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(ef_store *st, const char *what, const char *detail)
{
    snprintf(st->errmsg, sizeof(st->errmsg), "%s: %s", what, detail ? detail : "");
    /* libpq messages end with a newline; one log line wants none. */
    size_t n = strlen(st->errmsg);
    while (n && (st->errmsg[n - 1] == '\n' || st->errmsg[n - 1] == ' '))
        st->errmsg[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (st->errmsg[i] == '\n' || st->errmsg[i] == '\t')
            st->errmsg[i] = ' ';
}

static void reason_without_data(const char *msg, char *out, size_t outlen);

/* errmsg from a libpq message that may hold a server error (the
 * connection's last error, a result without its fields): only what
 * reason_without_data() keeps of its first line. DETAIL, HINT and CONTEXT
 * come on later lines and may quote customer data; they never reach
 * errmsg, reason or the log. */
static void set_err_libpq(ef_store *st, const char *what, const char *msg)
{
    char clean[200];
    reason_without_data(msg ? msg : "", clean, sizeof(clean));
    set_err(st, what, clean);
}

/* The first line of a server NOTICE only: its DETAIL may carry data. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    EF_LOG(EF_LOG_DEBUG, EF_C_PG, "notice msg=\"%.*s\"", (int)strcspn(message, "\n"), message);
}

int ef_store__connect(ef_store *st)
{
    if (st->conn && PQstatus(st->conn) == CONNECTION_OK)
        return 0;
    int64_t now = ef_now_ms();
    if (now < st->next_connect_ms) {
        st->ok = false;
        return EF_EDB;
    }
    if (st->conn) {
        PQfinish(st->conn);
        st->conn = NULL;
    }
    st->listening = false; /* a new session listens to nothing */
    const char *keys[] = {
        "dbname",          "connect_timeout",     "application_name", "keepalives",
        "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
    const char *vals[] = {st->url, "3", "easyflow", "1", "10", "5", "3", NULL};
    st->conn = PQconnectdbParams(keys, vals, 1);
    if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        /* connection errors carry no data; the first line says it all */
        const char *msg = st->conn ? PQerrorMessage(st->conn) : "out of memory";
        char first[200];
        snprintf(first, sizeof(first), "%.*s", (int)strcspn(msg, "\n"), msg);
        set_err(st, "connect", first);
        if (st->conn) {
            PQfinish(st->conn);
            st->conn = NULL;
        }
        st->ok = false;
        st->next_connect_ms = now + 250;
        return EF_EDB;
    }
    PQsetNoticeProcessor(st->conn, notice_to_log, NULL);
    PGresult *r = PQexec(st->conn, "SET statement_timeout = '15s'; SET lock_timeout = '10s'");
    PQclear(r);
    st->ok = true;
    return 0;
}

ef_store *ef_store_new(const char *pg_url)
{
    ef_store *st = ef_calloc(1, sizeof(*st));
    st->url = ef_strdup(pg_url ? pg_url : "");
    return st;
}

void ef_store_free(ef_store *st)
{
    if (!st)
        return;
    if (st->conn)
        PQfinish(st->conn);
    ef_free(st->url);
    ef_free(st);
}

const char *ef_store_errmsg(const ef_store *st)
{
    return st->errmsg;
}

bool ef_store_ok(const ef_store *st)
{
    return st->ok;
}

int ef_store_classify(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return EF_EDB; /* no result at all: the connection is gone */
    /* Within classes otherwise about the statement: a read-only session (a
     * standby after failover) and a lock or object that is busy pass. */
    if (strcmp(sqlstate, "25006") == 0 || strcmp(sqlstate, "55P03") == 0 ||
        strcmp(sqlstate, "55006") == 0)
        return EF_EDB;
    static const char *const outage[] = {"08", "40", "53", "57", "58", "72", "F0", "XX"};
    for (size_t i = 0; i < sizeof(outage) / sizeof(outage[0]); i++)
        if (strncmp(sqlstate, outage[i], 2) == 0)
            return EF_EDB;
    /* 00 success, 01 warning, 02 no data: not failures. */
    if (sqlstate[0] == '0' && (sqlstate[1] == '0' || sqlstate[1] == '1' || sqlstate[1] == '2'))
        return 0;
    return EF_EINVAL;
}

/* PostgreSQL's primary message without the values it quotes: whatever
 * follows `: "` (invalid input syntax for type uuid: "...") is cut, and a
 * quoted span that is not an SQL identifier (value "..." is out of range)
 * becomes "...". Identifiers (column, constraint and type names) stay. */
static void reason_without_data(const char *msg, char *out, size_t outlen)
{
    size_t n = strcspn(msg, "\n");
    const char *cut = strstr(msg, ": \"");
    if (cut && (size_t)(cut - msg) < n)
        n = (size_t)(cut - msg);
    size_t o = 0;
    size_t i = 0;
    while (i < n && o + 1 < outlen) {
        if (msg[i] != '"') {
            out[o++] = msg[i] == '\t' ? ' ' : msg[i];
            i++;
            continue;
        }
        size_t j = i + 1; /* the quoted span is msg[i+1 .. j) */
        bool ident = j < n && (msg[j] == '_' || (msg[j] >= 'a' && msg[j] <= 'z'));
        for (; j < n && msg[j] != '"'; j++) {
            char c = msg[j];
            if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                ident = false;
        }
        if (j >= n) /* no closing quote: drop the rest */
            break;
        const char *span = ident ? msg + i : "\"...\"";
        size_t len = ident ? j + 1 - i : 5;
        for (size_t k = 0; k < len && o + 1 < outlen; k++)
            out[o++] = span[k];
        i = j + 1;
    }
    out[o] = '\0';
}

/* dst gets as much of src as fits, never cutting a UTF-8 character. */
static void copy_clipped(char *dst, size_t dstlen, const char *src)
{
    char *c = ef_store__clip_utf8(src, dstlen - 1);
    memcpy(dst, c, strlen(c) + 1);
    ef_free(c);
}

/* Fills last_error, sqlstate, reason and errmsg from a failed result (NULL
 * or without SQLSTATE: the connection is gone). */
static void record_failure(ef_store *st, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    st->last_error = ef_store_classify(state);
    if (st->last_error == 0)
        st->last_error = EF_EINVAL; /* a failure nonetheless */
    if (state && primary) {
        snprintf(st->sqlstate, sizeof(st->sqlstate), "%s", state);
        char clean[160];
        reason_without_data(primary, clean, sizeof(clean));
        char full[sizeof(clean) + 32];
        snprintf(full, sizeof(full), "SQLSTATE %s: %s", state, clean);
        copy_clipped(st->reason, sizeof(st->reason), full);
        set_err(st, "query", st->reason);
        return;
    }
    st->sqlstate[0] = '\0';
    /* libpq's own message (connection lost, out of memory), or with no
     * result the connection's last error, which may be a server error with
     * its DETAIL: the first line without data only. */
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (!msg[0] && st->conn)
        msg = PQerrorMessage(st->conn);
    set_err_libpq(st, "query", msg[0] ? msg : "no result");
    copy_clipped(st->reason, sizeof(st->reason), st->errmsg);
}

PGresult *ef_store__exec(ef_store *st, const char *sql, int n, const char *const *vals)
{
    if (ef_store__connect(st)) {
        st->last_error = EF_EDB;
        st->sqlstate[0] = '\0';
        copy_clipped(st->reason, sizeof(st->reason), st->errmsg);
        return NULL;
    }
    PGresult *r = NULL;
    for (int attempt = 0;; attempt++) {
        r = PQexecParams(st->conn, sql, n, NULL, vals, NULL, NULL, 0);
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
            st->ok = true;
            return r;
        }
        /* A deadlock or serialization failure rolled the statement back:
         * run it again (every statement here is idempotent). */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (attempt < 3 && state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)) {
            EF_LOG(EF_LOG_DEBUG, EF_C_PG, "sqlstate=%s, retrying", state);
            PQclear(r);
            continue;
        }
        break;
    }
    record_failure(st, r);
    PQclear(r);
    if (PQstatus(st->conn) != CONNECTION_OK) {
        st->last_error = EF_EDB;
        PQfinish(st->conn);
        st->conn = NULL;
        st->listening = false;
    }
    /* Only an outage takes the store down: a refused value is the data's
     * fault, and the server answered. */
    st->ok = st->last_error != EF_EDB;
    return NULL;
}

int ef_store__exec_simple(ef_store *st, const char *sql, int n, const char *const *vals)
{
    PGresult *r = ef_store__exec(st, sql, n, vals);
    if (!r)
        return st->last_error;
    PQclear(r);
    return 0;
}

void ef_store__lost(ef_store *st, const char *what)
{
    set_err_libpq(st, what, st->conn ? PQerrorMessage(st->conn) : "not connected");
    if (st->conn)
        PQfinish(st->conn);
    st->conn = NULL;
    st->listening = false;
    st->ok = false;
}

char *ef_store__clip_utf8(const char *s, size_t max)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = ef_malloc((n < max ? n : max) + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        for (size_t k = 1; k <= 4 && i + k <= n; k++)
            if (ef_utf8_valid(s + i, k)) {
                len = k;
                break;
            }
        if (o + (len ? len : 1) > max)
            break;
        if (len) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            out[o++] = '?';
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

char *ef_store__col_str(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : ef_strdup(PQgetvalue(r, row, col));
}

int ef_store_ping(ef_store *st)
{
    return ef_store__exec_simple(st, "SELECT 1", 0, NULL);
}

void ef_ingest_item_cleanup(ef_ingest_item *it)
{
    ef_free(it->conversation_id);
    ef_free(it->session_id);
    ef_free(it->user_id);
    ef_free(it->row_id);
    ef_free(it->state);
    ef_free(it->conv_status);
    ef_free(it->context_json);
    ef_free(it->created_at);
    it->conversation_id = it->session_id = it->user_id = it->row_id = NULL;
    it->state = it->conv_status = it->context_json = it->created_at = NULL;
}

static void add_str(json_object *o, const char *key, const char *val)
{
    if (val)
        json_object_object_add(o, key, json_object_new_string(val));
}

/* Parses a JSON text produced by our own code; a NULL or broken one is an
 * empty object rather than a lost message. */
static json_object *parse_obj(const char *text)
{
    json_object *o = text ? json_tokener_parse(text) : NULL;
    if (!o)
        o = json_object_new_object();
    return o;
}

/* A JSON object text produced by our own code (the matcher's entities, the
 * FSM's decision), put into the batch as it is: parsing it into a tree only
 * to print it again was a tenth of the gateway's CPU under load. The text
 * is borrowed: it must outlive the batch's serialization. Anything that
 * does not look like an object goes through parse_obj. */
static json_object *raw_obj(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n < 2 || text[0] != '{' || text[n - 1] != '}')
        return parse_obj(text);
    json_object *o = json_object_new_object();
    json_object_set_serializer(o, json_object_userdata_to_json_string, (void *)text, NULL);
    return o;
}

static json_object *event_json(const ef_ingest_item *it)
{
    const ef_msg *m = it->msg;
    json_object *ev = json_object_new_object();
    add_str(ev, "kind", ef_msg_kind_name(m->kind));
    add_str(ev, "integration_id", m->integration_id);
    if (m->read_receipt)
        json_object_object_add(ev, "read_receipt", json_object_new_boolean(true));
    add_str(ev, "platform", m->platform);
    add_str(ev, "chat_id", m->chat_id);
    add_str(ev, "chat_type", m->chat_type);
    add_str(ev, "message_id", m->message_id);
    add_str(ev, "target_id", m->target_id);
    add_str(ev, "thread_id", m->thread_id);
    add_str(ev, "callback_id", m->callback_id);
    if (m->status) {
        /* Reactions carry a JSON array; statuses a word. */
        json_object *st = m->kind == EF_MSG_REACTION ? json_tokener_parse(m->status) : NULL;
        json_object_object_add(ev, "status", st ? st : json_object_new_string(m->status));
    }
    json_object *s = json_object_new_object();
    add_str(s, "id", m->sender_id);
    add_str(s, "name", m->sender_name);
    add_str(s, "username", m->sender_username);
    add_str(s, "lang", m->sender_lang);
    json_object_object_add(s, "is_bot", json_object_new_boolean(m->sender_is_bot));
    json_object_object_add(ev, "sender", s);
    if (m->text)
        json_object_object_add(ev, "text", json_object_new_string_len(m->text, (int)m->text_len));
    json_object_object_add(ev, "date", json_object_new_int64(m->date));
    json_object *meta = parse_obj(m->meta_json);
    if (m->content_type)
        json_object_object_add(meta, "content_type", json_object_new_string(m->content_type));
    json_object_object_add(ev, "meta", meta);
    if (it->intent) {
        json_object *n = json_object_new_object();
        add_str(n, "intent", it->intent);
        json_object_object_add(n, "entities", raw_obj(it->entities_json));
        json_object_object_add(n, "confidence", json_object_new_double(it->confidence));
        json_object_object_add(ev, "nlp", n);
    }
    if (it->fsm_json)
        json_object_object_add(ev, "fsm", raw_obj(it->fsm_json));
    if (it->fsm_json && it->has_base) {
        json_object *b = json_object_new_object();
        json_object_object_add(
            b, "conversation_id",
            it->base_conversation_id ? json_object_new_string(it->base_conversation_id) : NULL);
        json_object_object_add(b, "version", json_object_new_int64(it->base_version));
        json_object_object_add(ev, "base", b);
    }
    return ev;
}

/* ef_ingest_rows()'s columns (sql/026 ef_ingest_result), in order. */
enum {
    RES_POS,
    RES_RESULT,
    RES_CONVERSATION_ID,
    RES_SESSION_ID,
    RES_USER_ID,
    RES_MESSAGE_ROW_ID,
    RES_STATE,
    RES_STATUS,
    RES_CONTEXT,
    RES_MESSAGES_COUNT,
    RES_CREATED_AT,
    RES_VERSION,
    RES_LAST_MESSAGE_AT,
    RES_SKIPPED,
    RES_COLUMNS
};

static char *dup_col(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : ef_strdup(PQgetvalue(r, row, col));
}

static int64_t int_col(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void apply_result(ef_ingest_item *it, const PGresult *r, int row)
{
    const char *res = PQgetvalue(r, row, RES_RESULT);
    if (strcmp(res, "stored") == 0)
        it->status = EF_ING_STORED;
    else if (strcmp(res, "duplicate") == 0)
        it->status = EF_ING_DUPLICATE;
    else if (strcmp(res, "stale") == 0)
        it->status = EF_ING_STALE;
    else
        it->status = EF_ING_IGNORED;
    ef_ingest_item_cleanup(it);
    it->conversation_id = dup_col(r, row, RES_CONVERSATION_ID);
    it->session_id = dup_col(r, row, RES_SESSION_ID);
    it->user_id = dup_col(r, row, RES_USER_ID);
    it->row_id = dup_col(r, row, RES_MESSAGE_ROW_ID);
    it->state = dup_col(r, row, RES_STATE);
    it->conv_status = dup_col(r, row, RES_STATUS);
    it->context_json = dup_col(r, row, RES_CONTEXT);
    it->created_at = dup_col(r, row, RES_CREATED_AT);
    it->messages_count = int_col(r, row, RES_MESSAGES_COUNT);
    it->last_message_at = int_col(r, row, RES_LAST_MESSAGE_AT);
    it->version = int_col(r, row, RES_VERSION);
    bool skipped = strcmp(PQgetvalue(r, row, RES_SKIPPED), "t") == 0;
    it->replies_queued = it->status == EF_ING_STORED && !skipped && it->fsm_json &&
                         strstr(it->fsm_json, "\"text\"") != NULL;
}

/* The row of r that answers each of n events (rows[i] for the event at
 * position i + 1): NULL unless r has the columns of ef_ingest_result and
 * every position 1..n exactly once. Owned by the caller. */
static int *result_rows(const PGresult *r, size_t n)
{
    if (PQnfields(r) != RES_COLUMNS || (size_t)PQntuples(r) != n)
        return NULL;
    int *rows = ef_malloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++)
        rows[i] = -1;
    for (int row = 0; row < PQntuples(r); row++) {
        long pos = PQgetisnull(r, row, RES_POS) ? 0 : strtol(PQgetvalue(r, row, RES_POS), NULL, 10);
        if (pos < 1 || (size_t)pos > n || rows[pos - 1] >= 0 || PQgetisnull(r, row, RES_RESULT)) {
            ef_free(rows);
            return NULL;
        }
        rows[pos - 1] = row;
    }
    return rows;
}

/* One ef_ingest_rows() statement over items[0..n): 0 with every item's
 * result applied, else st->last_error (items untouched). */
static int ingest_once(ef_store *st, ef_ingest_item *items, size_t n)
{
    static const char sql[] = "SELECT * FROM ef_ingest_rows($1::jsonb)";
    json_object *batch = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(batch, event_json(&items[i]));
    const char *text = json_object_to_json_string_ext(batch, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    const char *vals[1] = {text};
    bool had_conn = st->conn != NULL;
    PGresult *r = ef_store__exec(st, sql, 1, vals);
    if (!r && had_conn && !st->conn) {
        /* The connection went stale (e.g. the server restarted since the
         * last batch): reconnect once at once. Safe to repeat: ef_ingest()
         * deduplicates, and the failed attempt committed nothing. */
        st->next_connect_ms = 0;
        r = ef_store__exec(st, sql, 1, vals);
    }
    json_object_put(batch);
    if (!r)
        return st->last_error;
    int *rows = result_rows(r, n);
    if (!rows) {
        PQclear(r);
        set_err(st, "ingest", "unexpected result shape from ef_ingest_rows()");
        st->last_error = EF_EDB;
        return EF_EDB;
    }
    for (size_t i = 0; i < n; i++)
        apply_result(&items[i], r, rows[i]);
    ef_free(rows);
    PQclear(r);
    return 0;
}

/* A refusal that is the item's fault (its data), not the statement's or
 * the schema's: class 42 (syntax, undefined function or table, privilege)
 * means the database is not what this code expects, e.g. migrations not
 * applied, and no event is to blame. */
static bool item_fault(const ef_store *st)
{
    return st->last_error == EF_EINVAL && strncmp(st->sqlstate, "42", 2) != 0;
}

static void reject(ef_store *st, ef_ingest_item *it)
{
    ef_ingest_item_cleanup(it);
    it->status = EF_ING_REJECTED;
    snprintf(it->error, sizeof(it->error), "%s", st->reason);
}

static void fail_from(ef_ingest_item *items, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++)
        items[i].status = EF_ING_FAILED;
}

static bool same_str(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Whether a and b are events of one chat (as ef_ingest() keys them). */
static bool same_chat(const ef_msg *a, const ef_msg *b)
{
    return same_str(a->integration_id, b->integration_id) && same_str(a->platform, b->platform) &&
           same_str(a->chat_id, b->chat_id);
}

/* Whether an earlier item of it's chat came back stale: then it is stale
 * too, as ef_ingest() has it within one call. */
static bool after_stale(const ef_ingest_item *items, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (items[k].status == EF_ING_STALE && same_chat(items[k].msg, items[i].msg))
            return true;
    return false;
}

/* The batch was refused for its data: each item in its own transaction,
 * in order, so only the bad ones are rejected. An outage on the way stops
 * there: what committed keeps its status (a retry finds it duplicate). */
static int ingest_one_by_one(ef_store *st, ef_ingest_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (after_stale(items, i)) {
            ef_ingest_item_cleanup(&items[i]);
            items[i].status = EF_ING_STALE;
            continue;
        }
        int rc = ingest_once(st, &items[i], 1);
        if (rc == 0)
            continue;
        if (!item_fault(st)) {
            fail_from(items, i, n);
            return EF_EDB;
        }
        reject(st, &items[i]);
    }
    return 0;
}

/* The rejected items into dead_letters, in one statement (one
 * transaction); each written one gets dead_lettered. A failure leaves them
 * all false: the caller logs them as lost. */
static void write_dead_letters(ef_store *st, ef_ingest_item *items, size_t n)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        ef_ingest_item *it = &items[i];
        if (it->status != EF_ING_REJECTED)
            continue;
        json_object *ev = event_json(it);
        json_object *d = json_object_new_object();
        add_str(d, "integration_id", it->msg->integration_id);
        add_str(d, "platform", it->msg->platform);
        json_object_object_add(d, "payload",
                               json_object_new_string(json_object_to_json_string_ext(
                                   ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)));
        add_str(d, "error", it->error);
        json_object_array_add(arr, d);
        json_object_put(ev);
    }
    const char *vals[1] = {json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN)};
    PGresult *r = json_object_array_length(arr) > 0
                      ? ef_store__exec(st, "SELECT ef_dead_letters_add($1::jsonb)", 1, vals)
                      : NULL;
    json_object_put(arr);
    if (!r)
        return;
    PQclear(r);
    for (size_t i = 0; i < n; i++)
        if (items[i].status == EF_ING_REJECTED)
            items[i].dead_lettered = true;
}

static int ingest_items(ef_store *st, ef_ingest_item *items, size_t n)
{
    int rc = ingest_once(st, items, n);
    if (rc == 0)
        return 0;
    if (!item_fault(st)) {
        fail_from(items, 0, n);
        return EF_EDB;
    }
    if (n == 1) {
        reject(st, &items[0]);
        return 0;
    }
    return ingest_one_by_one(st, items, n);
}

int ef_store_ingest(ef_store *st, ef_ingest_item *items, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        items[i].dead_lettered = false;
    int rc = ingest_items(st, items, n);
    bool rejected = false;
    for (size_t i = 0; i < n && !rejected; i++)
        rejected = items[i].status == EF_ING_REJECTED;
    if (rejected)
        write_dead_letters(st, items, n);
    return rc;
}

int ef_store__value(ef_store *st, const char *sql, int n, const char *const *vals, char **out)
{
    PGresult *r = ef_store__exec(st, sql, n, vals);
    if (!r)
        return st->last_error;
    int rc = EF_ENOTFOUND;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        *out = ef_strdup(PQgetvalue(r, 0, 0));
        rc = 0;
    }
    PQclear(r);
    return rc;
}

int ef_store_session_load(ef_store *st, const char *session_id, char **out_json)
{
    const char *vals[1] = {session_id};
    return ef_store__value(st, "SELECT ef_session($1)", 1, vals, out_json);
}

int ef_store_chat_session(ef_store *st, const char *integration_id, const char *platform,
                          const char *chat_id, char **out_json)
{
    const char *vals[3] = {integration_id, platform, chat_id};
    return ef_store__value(st, "SELECT ef_chat_session($1, $2, $3)", 3, vals, out_json);
}

int ef_store_chat_sessions(ef_store *st, size_t n, const char *const *integration_ids,
                           const char *const *platforms, const char *const *chat_ids, char **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    json_object *arr = json_object_new_array();
    size_t batched = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!integration_ids[i]) { /* no index condition without it: one by one */
            int r = ef_store_chat_session(st, NULL, platforms[i], chat_ids[i], &out[i]);
            rc = r == EF_ENOTFOUND ? 0 : r;
            continue;
        }
        json_object *e = json_object_new_object();
        json_object_object_add(e, "i", json_object_new_int64((int64_t)i));
        add_str(e, "g", integration_ids[i]);
        add_str(e, "p", platforms[i]);
        add_str(e, "c", chat_ids[i]);
        json_object_array_add(arr, e);
        batched++;
    }
    char *res = NULL;
    if (rc == 0 && batched > 0) {
        const char *vals[1] = {json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN)};
        rc = ef_store__value(st, "SELECT ef_chat_sessions($1::jsonb)", 1, vals, &res);
    }
    json_object_put(arr);
    json_object *o = res ? json_tokener_parse(res) : NULL;
    ef_free(res);
    if (rc == 0 && batched > 0 && !json_object_is_type(o, json_type_object)) {
        set_err(st, "sessions", "unexpected result shape from ef_chat_sessions()");
        rc = st->last_error = EF_EDB;
    }
    json_object_object_foreach(o, key, val)
    {
        long i = strtol(key, NULL, 10);
        if (i >= 0 && (size_t)i < n && !out[i])
            out[i] = ef_strdup(json_object_to_json_string_ext(
                val, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(o);
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            ef_free(out[i]);
            out[i] = NULL;
        }
    return rc;
}

int ef_store_cursor_get(ef_store *st, const char *integration_id, char **cursor)
{
    const char *vals[1] = {integration_id};
    return ef_store__value(st, "SELECT cursor FROM poll_cursors WHERE integration_id = $1::uuid", 1,
                           vals, cursor);
}

int ef_store_cursor_set(ef_store *st, const char *integration_id, const char *cursor)
{
    const char *vals[2] = {integration_id, cursor};
    return ef_store__exec_simple(st,
                                 "INSERT INTO poll_cursors (integration_id, cursor) "
                                 "VALUES ($1::uuid, $2) ON CONFLICT (integration_id) DO UPDATE "
                                 "SET cursor = EXCLUDED.cursor, updated_at = now()",
                                 2, vals);
}

int ef_store_operator_upsert(ef_store *st, const char *email, const char *name, const char *role,
                             const char *password_hash, bool *created)
{
    const char *vals[4] = {email, name, role, password_hash};
    PGresult *r = ef_store__exec(st,
                                 "INSERT INTO users AS u (email, name, role, password_hash) "
                                 "VALUES (lower($1), $2, $3::user_role, $4) "
                                 "ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, "
                                 "role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, "
                                 "updated_at = now() "
                                 "RETURNING (xmax = 0)",
                                 4, vals);
    if (!r)
        return st->last_error;
    *created = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return 0;
}
