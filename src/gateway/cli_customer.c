/*
 * cli_customer.c -- `easyflow customer forget`. See cli_customer.h.
 *
 * PostgreSQL first (the truth, one transaction); then the Redis keys of
 * the erased conversations. Redis is a cache with TTLs: when it cannot be
 * reached the erasure stands and the keys expire by themselves.
 */
#include "gateway/cli_customer.h"

#include "base/ef.h"
#include "store/store.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PG "postgresql://127.0.0.1:5432/easyflow"
#define DEFAULT_REDIS "redis://127.0.0.1:6379/0"

static int usage(void)
{
    fprintf(stderr, "usage: easyflow customer forget PLATFORM USER_ID [--integration ID]\n"
                    "       erases the customer's messages, conversations and identity\n");
    return 2;
}

static const char *env(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

static void print_counts(json_object *erased)
{
    printf("erased in PostgreSQL:");
    json_object_object_foreach(erased, k, v)
    {
        if (strcmp(k, "user_kept") != 0)
            printf(" %s=%s", k, json_object_get_string(v));
    }
    printf("\n");
    json_object *kept;
    if (json_object_object_get_ex(erased, "user_kept", &kept) && json_object_get_boolean(kept))
        printf("identity kept: the customer still has conversations in other integrations\n");
}

/* Deletes session:{id} and chat:{scope}:{chat} of the erased
 * conversations; returns how many keys were asked to go, -1 when Redis did
 * not answer. */
static int forget_redis(json_object *res)
{
    const char *url = env("EF_REDIS_URL");
    ef_kv_set_tls_files(env("EF_REDIS_TLS_CA_FILE"), env("EF_REDIS_TLS_CERT_FILE"),
                        env("EF_REDIS_TLS_KEY_FILE"));
    ef_kv *kv = ef_kv_new(url ? url : DEFAULT_REDIS);
    json_object *sessions, *chats;
    int n = 0;
    bool down = !kv || ef_kv_ping(kv) != 0;
    if (!down && json_object_object_get_ex(res, "sessions", &sessions))
        for (size_t i = 0; !down && i < json_object_array_length(sessions); i++) {
            const char *sid = json_object_get_string(json_object_array_get_idx(sessions, i));
            down = ef_kv_session_del(kv, sid) != 0;
            n++;
        }
    if (!down && json_object_object_get_ex(res, "chats", &chats))
        for (size_t i = 0; !down && i < json_object_array_length(chats); i++) {
            json_object *pair = json_object_array_get_idx(chats, i);
            down = ef_kv_chat_session_del(
                       kv, json_object_get_string(json_object_array_get_idx(pair, 0)),
                       json_object_get_string(json_object_array_get_idx(pair, 1))) != 0;
            n++;
        }
    if (down)
        fprintf(stderr,
                "easyflow customer forget: Redis did not answer (%s): its session keys expire "
                "by their TTL (EF_SESSION_TTL)\n",
                kv ? ef_kv_errmsg(kv) : "bad EF_REDIS_URL");
    ef_kv_free(kv);
    return down ? -1 : n;
}

static int report(const char *js)
{
    json_object *res = json_tokener_parse(js);
    json_object *erased;
    if (!res || !json_object_object_get_ex(res, "erased", &erased)) {
        fprintf(stderr, "easyflow customer forget: unexpected answer from PostgreSQL\n");
        json_object_put(res);
        return 1;
    }
    print_counts(erased);
    int n = forget_redis(res);
    if (n >= 0)
        printf("erased in Redis: %d session and chat keys\n", n);
    printf("recorded in data_erasures (the user id as its SHA-256 only)\n");
    json_object_put(res);
    return 0;
}

static int forget(const char *platform, const char *uid, const char *integration)
{
    const char *url = env("EF_DATABASE_URL");
    ef_store *st = ef_store_new(url ? url : DEFAULT_PG);
    char *js = NULL;
    int rc = ef_store_customer_forget(st, platform, uid, integration, &js);
    int code = 1;
    if (rc == EF_ENOTFOUND)
        fprintf(stderr, "easyflow customer forget: no customer %.60s on %.40s: nothing erased\n",
                uid, platform);
    else if (rc == EF_EINVAL)
        fprintf(stderr, "easyflow customer forget: refused: %s\n", ef_store_errmsg(st));
    else if (rc) {
        char *r = ef_redact_url(url ? url : DEFAULT_PG);
        fprintf(stderr, "easyflow customer forget: PostgreSQL at %s: %s; nothing erased\n", r,
                ef_store_errmsg(st));
        ef_free(r);
    } else
        code = report(js);
    ef_free(js);
    ef_store_free(st);
    return code;
}

int ef_customer_cli(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[0], "forget") != 0)
        return usage();
    const char *integration = NULL;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--integration") == 0 && i + 1 < argc)
            integration = argv[++i];
        else
            return usage();
    }
    if (!*argv[1] || !*argv[2])
        return usage();
    return forget(argv[1], argv[2], integration);
}
