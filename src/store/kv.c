/*
 * kv.c -- Redis through hiredis (0.14 API): live sessions, chat -> session
 * lookups and realtime counters.
 *
 * Redis is a cache here, never the only copy: PostgreSQL holds every
 * conversation, so a Redis that lost its data or is down costs latency, not
 * correctness. One ef_kv is one connection owned by one thread; connects
 * and commands block for at most the timeout (EF_REDIS_TIMEOUT_MS, 200 ms by
 * default), and after any failure the kv stays down for a backoff (1 s,
 * doubling to 4 s while failures go on) during which calls fail at once:
 * a hung Redis that still accepts connections costs one timeout per
 * backoff, not one per call.
 *
 * rediss:// is Redis over TLS: hiredis 0.14 has no TLS, so the connection
 * goes through a tls_tunnel (OpenSSL, the server's certificate verified)
 * and hiredis gets the tunnel's plaintext socket with redisConnectFd; the
 * timeouts, AUTH/SELECT and the backoff work over it unchanged.
 */
#include "store/store.h"

#include "store/tls_tunnel.h"

#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KV_TIMEOUT_MS_DEFAULT 200
#define KV_RETRY_MS 1000
#define KV_RETRY_MAX_MS 4000

static atomic_int kv_timeout_ms = KV_TIMEOUT_MS_DEFAULT;
/* The TLS client files of every rediss:// kv (ef_kv_set_tls_files). */
static pthread_mutex_t kv_tls_lock = PTHREAD_MUTEX_INITIALIZER;
static char *kv_tls_files[3]; /* CA, client certificate, client key */
#define KV_METRICS_TTL (8 * 24 * 3600)

struct ef_kv {
    char host[256];
    int port;
    int db;
    bool tls; /* rediss:// */
    char *password;
    redisContext *c;
    ef_tls_tunnel *tun; /* under c when tls */
    int64_t next_connect_ms;
    int64_t backoff_ms; /* the next failure's backoff; reset by a success */
    char errmsg[640];
};

static int parse_url(ef_kv *kv, const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0) {
        p += 8;
    } else if (strncmp(p, "rediss://", 9) == 0) {
        kv->tls = true;
        p += 9;
    } else {
        return EF_EINVAL;
    }
    const char *at = strchr(p, '@');
    const char *slash = strchr(p, '/');
    if (at && (!slash || at < slash)) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (at > pw)
            kv->password = ef_strndup(pw, (size_t)(at - pw));
        p = at + 1;
    }
    const char *end = p + strcspn(p, "/");
    const char *colon = memchr(p, ':', (size_t)(end - p));
    size_t hlen = (size_t)((colon ? colon : end) - p);
    if (hlen == 0 || hlen >= sizeof(kv->host))
        return EF_EINVAL;
    memcpy(kv->host, p, hlen);
    kv->host[hlen] = '\0';
    kv->port = 6379;
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port < 1 || port > 65535)
            return EF_EINVAL;
        kv->port = (int)port;
    }
    kv->db = 0;
    if (*end == '/' && end[1]) {
        char *e;
        long db = strtol(end + 1, &e, 10);
        if (*e || db < 0 || db > 100000)
            return EF_EINVAL;
        kv->db = (int)db;
    }
    return 0;
}

ef_kv *ef_kv_new(const char *redis_url)
{
    ef_kv *kv = ef_calloc(1, sizeof(*kv));
    if (!redis_url || parse_url(kv, redis_url) != 0) {
        snprintf(kv->errmsg, sizeof(kv->errmsg), "bad Redis URL (want redis[s]://host:port/db)");
        kv->port = -1;
    }
    return kv;
}

/* Closes the connection: hiredis's socket first, which ends the tunnel's
 * pump, then the tunnel. When the TLS side had ended it, its reason
 * replaces hiredis's ("Server closed the connection", "Broken pipe"). */
static void close_conn(ef_kv *kv)
{
    if (kv->c) {
        redisFree(kv->c);
        kv->c = NULL;
    }
    if (kv->tun) {
        char why[256];
        ef_tls_tunnel_free(kv->tun, why, sizeof(why));
        kv->tun = NULL;
        if (why[0])
            snprintf(kv->errmsg, sizeof(kv->errmsg), "Redis TLS: %s", why);
    }
}

void ef_kv_free(ef_kv *kv)
{
    if (!kv)
        return;
    close_conn(kv);
    ef_free(kv->password);
    ef_free(kv);
}

const char *ef_kv_errmsg(const ef_kv *kv)
{
    return kv->errmsg;
}

void ef_kv_set_timeout_ms(int ms)
{
    atomic_store(&kv_timeout_ms, ms > 0 ? ms : KV_TIMEOUT_MS_DEFAULT);
}

void ef_kv_set_tls_files(const char *ca_file, const char *cert_file, const char *key_file)
{
    const char *v[3] = {ca_file, cert_file, key_file};
    pthread_mutex_lock(&kv_tls_lock);
    for (int i = 0; i < 3; i++) {
        ef_free(kv_tls_files[i]);
        kv_tls_files[i] = v[i] && *v[i] ? ef_strdup(v[i]) : NULL;
    }
    pthread_mutex_unlock(&kv_tls_lock);
}

/* Down until the backoff ends: calls fail fast until then. */
static void back_off(ef_kv *kv)
{
    if (kv->backoff_ms < KV_RETRY_MS)
        kv->backoff_ms = KV_RETRY_MS;
    kv->next_connect_ms = ef_now_ms() + kv->backoff_ms;
    kv->backoff_ms = kv->backoff_ms * 2 > KV_RETRY_MAX_MS ? KV_RETRY_MAX_MS : kv->backoff_ms * 2;
}

static void drop(ef_kv *kv, const char *why)
{
    snprintf(kv->errmsg, sizeof(kv->errmsg), "%s", why);
    close_conn(kv);
    back_off(kv);
}

/* Runs a command; on success returns the reply (caller frees), else NULL
 * with the connection dropped when it broke. */
static redisReply *command(ef_kv *kv, int argc, const char **argv, const size_t *lens);

/* AUTH and SELECT on a new connection; a refusal drops it (never a
 * connection left in the wrong database or unauthenticated). */
static int handshake(ef_kv *kv)
{
    const char *argv[2] = {"AUTH", kv->password};
    char db[16];
    for (int step = 0; step < 2; step++) {
        if (step == 0 && !kv->password)
            continue;
        if (step == 1) {
            if (!kv->db)
                continue;
            snprintf(db, sizeof(db), "%d", kv->db);
            argv[0] = "SELECT";
            argv[1] = db;
        }
        redisReply *r = command(kv, 2, argv, NULL);
        if (!r) {
            if (kv->c) {
                char why[sizeof(kv->errmsg)];
                snprintf(why, sizeof(why), "%s", kv->errmsg);
                drop(kv, why);
            }
            return EF_EIO;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* rediss://: a TLS tunnel, and hiredis on its plaintext end. NULL with
 * kv->errmsg set when the tunnel could not be opened. */
static redisContext *connect_tls(ef_kv *kv, int ms)
{
    char files[3][1024];
    pthread_mutex_lock(&kv_tls_lock);
    for (int i = 0; i < 3; i++)
        snprintf(files[i], sizeof(files[i]), "%s", kv_tls_files[i] ? kv_tls_files[i] : "");
    pthread_mutex_unlock(&kv_tls_lock);
    ef_tls_opts o = {.ca_file = files[0], .cert_file = files[1], .key_file = files[2]};
    int fd = -1;
    if (ef_tls_tunnel_open(kv->host, kv->port, ms, &o, &kv->tun, &fd, kv->errmsg,
                           sizeof(kv->errmsg)) != 0)
        return NULL;
    redisContext *c = redisConnectFd(fd);
    if (!c) {
        close(fd); /* ends the pump */
        ef_tls_tunnel_free(kv->tun, NULL, 0);
        kv->tun = NULL;
        snprintf(kv->errmsg, sizeof(kv->errmsg), "Redis TLS: out of memory");
    }
    return c;
}

static int ensure_conn(ef_kv *kv)
{
    if (kv->c)
        return 0;
    if (kv->port < 0)
        return EF_EINVAL;
    if (ef_now_ms() < kv->next_connect_ms)
        return EF_EIO;
    int ms = atomic_load(&kv_timeout_ms);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (kv->tls) {
        kv->c = connect_tls(kv, ms);
        if (!kv->c) {
            back_off(kv);
            return EF_EIO;
        }
        redisSetTimeout(kv->c, tv);
        return handshake(kv);
    }
    redisContext *c = redisConnectWithTimeout(kv->host, kv->port, tv);
    if (!c || c->err) {
        snprintf(kv->errmsg, sizeof(kv->errmsg), "connect %.255s:%d: %.300s", kv->host, kv->port,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        back_off(kv);
        return EF_EIO;
    }
    redisSetTimeout(c, tv);
    kv->c = c;
    return handshake(kv);
}

static redisReply *command(ef_kv *kv, int argc, const char **argv, const size_t *lens)
{
    if (ensure_conn(kv))
        return NULL;
    redisReply *r = redisCommandArgv(kv->c, argc, argv, lens);
    if (!r) {
        drop(kv, kv->c->errstr[0] ? kv->c->errstr : "connection lost");
        return NULL;
    }
    kv->backoff_ms = 0; /* Redis answered: the next failure starts a short backoff */
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(kv->errmsg, sizeof(kv->errmsg), "%.32s: %.500s", argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int ef_kv_ping(ef_kv *kv)
{
    const char *argv[1] = {"PING"};
    redisReply *r = command(kv, 1, argv, NULL);
    if (!r)
        return EF_EIO;
    freeReplyObject(r);
    return 0;
}

static int set_ex(ef_kv *kv, const char *key, const char *val, int ttl)
{
    char ttls[16];
    snprintf(ttls, sizeof(ttls), "%d", ttl > 0 ? ttl : 1);
    const char *argv[5] = {"SET", key, val, "EX", ttls};
    redisReply *r = command(kv, 5, argv, NULL);
    if (!r)
        return EF_EIO;
    freeReplyObject(r);
    return 0;
}

static int get(ef_kv *kv, const char *key, char **out)
{
    const char *argv[2] = {"GET", key};
    redisReply *r = command(kv, 2, argv, NULL);
    if (!r)
        return EF_EIO;
    int rc = EF_ENOTFOUND;
    if (r->type == REDIS_REPLY_STRING) {
        *out = ef_strndup(r->str, r->len);
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

int ef_kv_session_put(ef_kv *kv, const char *session_id, const char *json, int ttl)
{
    char *key = ef_asprintf("session:%s", session_id);
    int rc = set_ex(kv, key, json, ttl);
    ef_free(key);
    return rc;
}

int ef_kv_session_get(ef_kv *kv, const char *session_id, char **out)
{
    char *key = ef_asprintf("session:%s", session_id);
    int rc = get(kv, key, out);
    ef_free(key);
    return rc;
}

int ef_kv_session_del(ef_kv *kv, const char *session_id)
{
    char *key = ef_asprintf("session:%s", session_id);
    const char *argv[2] = {"DEL", key};
    redisReply *r = command(kv, 2, argv, NULL);
    ef_free(key);
    if (!r)
        return EF_EIO;
    freeReplyObject(r);
    return 0;
}

int ef_kv_chat_session_put(ef_kv *kv, const char *scope, const char *chat_id,
                           const char *session_id, int ttl)
{
    char *key = ef_asprintf("chat:%s:%s", scope, chat_id);
    int rc = set_ex(kv, key, session_id, ttl);
    ef_free(key);
    return rc;
}

int ef_kv_chat_session_get(ef_kv *kv, const char *scope, const char *chat_id, char **out)
{
    char *key = ef_asprintf("chat:%s:%s", scope, chat_id);
    int rc = get(kv, key, out);
    ef_free(key);
    return rc;
}

int ef_kv_chat_session_del(ef_kv *kv, const char *scope, const char *chat_id)
{
    char *key = ef_asprintf("chat:%s:%s", scope, chat_id);
    const char *argv[2] = {"DEL", key};
    redisReply *r = command(kv, 2, argv, NULL);
    ef_free(key);
    if (!r)
        return EF_EIO;
    freeReplyObject(r);
    return 0;
}

/* The counter's key of this hour and its two commands (HINCRBY, EXPIRE):
 * the buffers are the caller's, the argument vectors point into them. */
typedef struct metric_cmds {
    char key[128], by[32], ttl[16];
    const char *incr[4], *expire[3];
} metric_cmds;

static void metric_cmds_init(metric_cmds *m, const char *platform, const char *field, long long by)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(m->key, sizeof(m->key), "metrics:%s:%04d-%02d-%02d:%02d", platform, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
    snprintf(m->by, sizeof(m->by), "%lld", by);
    snprintf(m->ttl, sizeof(m->ttl), "%d", KV_METRICS_TTL);
    const char *incr[4] = {"HINCRBY", m->key, field, m->by};
    const char *expire[3] = {"EXPIRE", m->key, m->ttl};
    memcpy(m->incr, incr, sizeof(incr));
    memcpy(m->expire, expire, sizeof(expire));
}

/* ---- a batch's sessions in one round trip each way ----------------------- */

/* Sends argv[0..n) pipelined and reads the n replies into replies[]
 * (caller frees each). A reply that is an error is kept (the caller reads
 * it as a miss); a broken connection drops it and fails the whole call. */
static int pipeline(ef_kv *kv, size_t n, const char *const *const *argv, const int *argc,
                    redisReply **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (ensure_conn(kv))
        return EF_EIO;
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(kv->c, argc[i], (const char **)argv[i], NULL) != REDIS_OK) {
            drop(kv, kv->c->errstr[0] ? kv->c->errstr : "out of memory");
            return EF_EIO;
        }
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(kv->c, &r) != REDIS_OK || !r) {
            drop(kv, kv->c->errstr[0] ? kv->c->errstr : "connection lost");
            for (size_t k = 0; k < i; k++) {
                freeReplyObject(replies[k]);
                replies[k] = NULL;
            }
            return EF_EIO;
        }
        replies[i] = r;
    }
    kv->backoff_ms = 0;
    return 0;
}

/* MGET of keys[0..n): out[i] owned by the caller, NULL when absent. */
static int mget(ef_kv *kv, size_t n, char **keys, char **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return 0;
    const char **argv = ef_calloc(n + 1, sizeof(*argv));
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = keys[i];
    redisReply *r = command(kv, (int)(n + 1), argv, NULL);
    ef_free(argv);
    if (!r)
        return EF_EIO;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < n && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            out[i] = ef_strndup(r->element[i]->str, r->element[i]->len);
    freeReplyObject(r);
    return 0;
}

int ef_kv_sessions_get(ef_kv *kv, size_t n, const char *const *scopes, const char *const *chat_ids,
                       char **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return 0;
    char **keys = ef_calloc(n, sizeof(*keys));
    char **sids = ef_calloc(n, sizeof(*sids));
    for (size_t i = 0; i < n; i++)
        keys[i] = ef_asprintf("chat:%s:%s", scopes[i], chat_ids[i]);
    int rc = mget(kv, n, keys, sids);
    size_t k = 0; /* the chats that have a session id, compacted */
    size_t *at = ef_calloc(n, sizeof(*at));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!sids[i])
            continue;
        ef_free(keys[k]);
        keys[k] = ef_asprintf("session:%s", sids[i]);
        at[k++] = i;
    }
    char **vals = ef_calloc(k ? k : 1, sizeof(*vals));
    if (rc == 0 && k > 0)
        rc = mget(kv, k, keys, vals);
    for (size_t j = 0; rc == 0 && j < k; j++)
        out[at[j]] = vals[j];
    for (size_t i = 0; i < n; i++) {
        ef_free(keys[i]);
        ef_free(sids[i]);
    }
    ef_free(keys);
    ef_free(sids);
    ef_free(vals);
    ef_free(at);
    return rc;
}

/* The SETs of s[0..n) into argv (two per session with a chat), their keys
 * into keys (the caller frees them); returns how many. */
static size_t session_cmds(size_t n, const ef_kv_session *s, const char *ttls,
                           const char *(*argv)[5], char **keys)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        keys[m] = ef_asprintf("session:%s", s[i].session_id);
        const char *a[5] = {"SET", keys[m], s[i].json, "EX", ttls};
        memcpy(argv[m], a, sizeof(a));
        m++;
        if (!s[i].chat_id)
            continue;
        keys[m] = ef_asprintf("chat:%s:%s", s[i].scope, s[i].chat_id);
        const char *b[5] = {"SET", keys[m], s[i].session_id, "EX", ttls};
        memcpy(argv[m], b, sizeof(b));
        m++;
    }
    return m;
}

int ef_kv_write_back(ef_kv *kv, size_t n, const ef_kv_session *s, int ttl, const ef_kv_count *count)
{
    bool counted = count && count->platform && count->by > 0;
    if (n == 0 && !counted)
        return 0;
    char ttls[16];
    snprintf(ttls, sizeof(ttls), "%d", ttl > 0 ? ttl : 1);
    const char *(*argv)[5] = ef_calloc(2 * n + 1, sizeof(*argv));
    char **keys = ef_calloc(2 * n + 1, sizeof(*keys));
    size_t m = session_cmds(n, s, ttls, argv, keys);
    size_t total = m + (counted ? 2 : 0);
    const char *const **cmds = ef_calloc(total, sizeof(*cmds));
    int *argc = ef_calloc(total, sizeof(*argc));
    for (size_t i = 0; i < m; i++) {
        cmds[i] = argv[i];
        argc[i] = 5;
    }
    metric_cmds mc;
    if (counted) {
        metric_cmds_init(&mc, count->platform, count->field, count->by);
        cmds[m] = mc.incr;
        argc[m] = 4;
        cmds[m + 1] = mc.expire;
        argc[m + 1] = 3;
    }
    redisReply **replies = ef_calloc(total, sizeof(*replies));
    int rc = pipeline(kv, total, cmds, argc, replies);
    for (size_t i = 0; i < total; i++) {
        /* A SET refused fails the write-back; the counter's answer does not. */
        if (rc == 0 && i < m && replies[i]->type == REDIS_REPLY_ERROR) {
            snprintf(kv->errmsg, sizeof(kv->errmsg), "SET: %.500s", replies[i]->str);
            rc = EF_EIO;
        }
        if (replies[i])
            freeReplyObject(replies[i]);
        if (i < m)
            ef_free(keys[i]);
    }
    ef_free(replies);
    ef_free(keys);
    ef_free(argc);
    ef_free(cmds);
    ef_free(argv);
    return rc;
}
