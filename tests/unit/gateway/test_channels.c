/*
 * test_channels.c -- integrations rows as live channels (gateway/channels.c)
 * against a real PostgreSQL (skipped without EF_TEST_DATABASE_URL): which
 * channel a webhook path or a channel key routes to, each channel verifying
 * with its own secret, disabled and broken rows not served (a broken one
 * gets status 'error' with the reason), a reload keeping unchanged channels
 * and rebuilding changed ones, a refused token failing only its channel,
 * and credentials kept in memory for configuration-sourced rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/channels.h"
#include "nlp/nlp.h"

#include "../pg_fixture.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define SECRET_A "secret-A-0123456789"
#define SECRET_B "secret-B-0123456789"

static ef_keyring ring(void)
{
    ef_keyring kr;
    char err[100];
    assert_int_equal(ef_keyring_parse(&kr, KEY_HEX, NULL, err, sizeof(err)), 0);
    return kr;
}

/* A telegram row with sealed credentials; returns its id (owned). */
static char *add_bot(fixture *fx, const char *name, const char *token, const char *secret,
                     const char *settings)
{
    ef_keyring kr = ring();
    char creds[300];
    snprintf(creds, sizeof(creds), "{\"bot_token\":\"%s\",\"secret_token\":\"%s\"}", token, secret);
    uint8_t *sealed = NULL;
    size_t n = 0;
    char uuid[37];
    assert_int_equal(ef_uuid_v4(uuid), 0);
    assert_int_equal(ef_cred_seal(&kr, uuid, creds, strlen(creds), &sealed, &n), 0);
    char key[32];
    snprintf(key, sizeof(key), "%.*s", (int)strcspn(token, ":"), token);
    ef_integration_in in = {.id = uuid,
                            .platform = "telegram",
                            .name = name,
                            .external_id = key,
                            .settings_json = settings,
                            .source = "cli",
                            .sealed = sealed,
                            .sealed_len = n,
                            .key_id = kr.ids[0]};
    char *id = NULL;
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id), 0);
    ef_free(sealed);
    return id;
}

static ef_channels *channels(fixture *fx, ef_keyring *kr)
{
    *kr = ring();
    ef_channels_opts o = {.pg_url = fx->url, .keys = kr};
    ef_channels *cs = ef_channels_new(&o);
    assert_int_equal(ef_channels_reload(cs), 0);
    assert_true(ef_channels_ready(cs));
    return cs;
}

static int verify(const ef_channel *ch, const char *secret)
{
    ef_http_req rq = {.post = true, .auth = secret};
    return ef_platform_verify(ch->ops, ch->cfg, &rq);
}

static void test_routes_and_secrets_per_channel(void **state)
{
    NEED_DB(fx);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, NULL);
    char *b = add_bot(fx, "b", "1002:BBB", SECRET_B, "{\"mode\":\"poll\"}");
    ef_keyring kr;
    ef_channels *cs = channels(fx, &kr);
    char sub[64];
    snprintf(sub, sizeof(sub), "/%s", a);
    ef_channel *ca = ef_channels_route(cs, &ef_platform_telegram, sub);
    assert_non_null(ca);
    assert_string_equal(ca->id, a);
    assert_string_equal(ca->key, "1001");
    assert_true(ca->policy.receive_webhook);
    assert_int_equal(verify(ca, SECRET_A), 0);
    assert_int_equal(verify(ca, SECRET_B), EF_EAUTH); /* the other bot's secret */
    assert_int_equal(verify(ca, NULL), EF_EAUTH);
    /* no default among CLI rows: the bare path routes nowhere */
    assert_null(ef_channels_route(cs, &ef_platform_telegram, ""));
    assert_null(ef_channels_route(cs, &ef_platform_whatsapp, sub));
    ef_channel *cb = ef_channels_by_key(cs, &ef_platform_telegram, "1002");
    assert_non_null(cb);
    assert_string_equal(cb->id, b);
    assert_true(cb->policy.receive_poll);
    ef_channel **list = NULL;
    assert_int_equal(ef_channels_list(cs, &ef_platform_telegram, &list), 2);
    ef_channels_list_free(list, 2);
    ef_channel_unref(ca);
    ef_channel_unref(cb);
    ef_channels_free(cs);
    ef_free(a);
    ef_free(b);
}

static void test_disabled_and_broken_rows_are_not_served(void **state)
{
    NEED_DB(fx);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, NULL);
    char *weak = add_bot(fx, "weak", "1003:CCC", "short", NULL); /* secret < 16 */
    char *off = add_bot(fx, "off", "1004:DDD", SECRET_B, NULL);
    assert_int_equal(ef_store_integration_set_enabled(fx->st, off, false), 0);
    ef_keyring kr;
    ef_channels *cs = channels(fx, &kr);
    ef_channel **list = NULL;
    size_t n = ef_channels_list(cs, NULL, &list);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->id, a);
    ef_channels_list_free(list, n);
    ef_integration_row row;
    assert_int_equal(ef_store_integration_get(fx->st, weak, &row), 0);
    assert_string_equal(row.status, "error");
    assert_non_null(strstr(row.status_message, "secret_token"));
    ef_integration_row_cleanup(&row);
    assert_int_equal(ef_store_integration_get(fx->st, a, &row), 0);
    assert_string_equal(row.status, "connected");
    ef_integration_row_cleanup(&row);
    ef_channels_free(cs);
    ef_free(a);
    ef_free(weak);
    ef_free(off);
}

static void test_reload_keeps_unchanged_and_rebuilds_changed(void **state)
{
    NEED_DB(fx);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, NULL);
    char *b = add_bot(fx, "b", "1002:BBB", SECRET_B, NULL);
    ef_keyring kr;
    ef_channels *cs = channels(fx, &kr);
    ef_channel *a1 = ef_channels_get(cs, a), *b1 = ef_channels_get(cs, b);
    char *sql = ef_asprintf("UPDATE integrations SET settings = '{\"rate_per_sec\":5}' "
                            "WHERE id = '%s'",
                            b);
    admin_exec(fx, sql);
    ef_free(sql);
    assert_int_equal(ef_channels_reload(cs), 0);
    ef_channel *a2 = ef_channels_get(cs, a), *b2 = ef_channels_get(cs, b);
    assert_ptr_equal(a1, a2);     /* same object: nothing rebuilt */
    assert_ptr_not_equal(b1, b2); /* new settings: a new channel */
    assert_int_equal(b2->policy.per_account.n, 5);
    assert_int_equal(b1->policy.per_account.n, 30); /* the old one lives while referenced */
    /* disabled: gone from lookups at the next reload */
    assert_int_equal(ef_store_integration_set_enabled(fx->st, a, false), 0);
    assert_int_equal(ef_channels_reload(cs), 0);
    assert_null(ef_channels_get(cs, a));
    ef_channel_unref(a1);
    ef_channel_unref(a2);
    ef_channel_unref(b1);
    ef_channel_unref(b2);
    ef_channels_free(cs);
    ef_free(a);
    ef_free(b);
}

static void test_a_change_that_does_not_open_keeps_the_running_channel(void **state)
{
    NEED_DB(fx);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, NULL);
    ef_keyring kr;
    ef_channels *cs = channels(fx, &kr);
    ef_channel *a1 = ef_channels_get(cs, a);
    /* re-sealed under a key this process does not have (a rotation done
     * before the gateway got the new key) */
    char *sql = ef_asprintf("UPDATE integrations SET credentials_encrypted = "
                            "'\\x454631000000000000000000000000'::bytea, encryption_key_id = "
                            "'k1:ffffffffffffffff' WHERE id = '%s'",
                            a);
    admin_exec(fx, sql);
    ef_free(sql);
    assert_int_equal(ef_channels_reload(cs), 0);
    ef_channel *a2 = ef_channels_get(cs, a);
    assert_ptr_equal(a1, a2); /* still served by the channel it had */
    assert_int_equal(verify(a2, SECRET_A), 0);
    ef_integration_row row;
    assert_int_equal(ef_store_integration_get(fx->st, a, &row), 0);
    assert_string_equal(row.status, "error");
    assert_non_null(strstr(row.status_message, "EF_SECRET_KEY"));
    ef_integration_row_cleanup(&row);
    ef_channel_unref(a1);
    ef_channel_unref(a2);
    ef_channels_free(cs);
    ef_free(a);
}

/* A blob sealed before credentials were bound to their row (raw key, no
 * associated data) is served, and re-sealed bound to the row's id; the
 * re-sealed blob copied to another row does not open there. */
static void test_legacy_blob_is_resealed_and_bound(void **state)
{
    NEED_DB(fx);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, NULL);
    char *b = add_bot(fx, "b", "1002:BBB", SECRET_B, NULL);
    ef_keyring kr = ring();
    const char *creds = "{\"bot_token\":\"1001:AAA\",\"secret_token\":\"" SECRET_A "\"}";
    uint8_t *old = NULL;
    size_t n = 0;
    assert_int_equal(ef_secret_seal(kr.keys[0], creds, strlen(creds), &old, &n), 0);
    assert_int_equal(ef_store_integration_reseal(fx->st, a, old, n, kr.ids[0]), 0);
    ef_free(old);
    ef_channels *cs = channels(fx, &kr);
    ef_channel *ca = ef_channels_get(cs, a);
    assert_non_null(ca);
    assert_int_equal(verify(ca, SECRET_A), 0);
    ef_integration_row row;
    assert_int_equal(ef_store_integration_get(fx->st, a, &row), 0);
    assert_memory_equal(row.sealed, "EF2", 3);
    ef_integration_row_cleanup(&row);
    char *sql = ef_asprintf("UPDATE integrations SET credentials_encrypted = "
                            "(SELECT credentials_encrypted FROM integrations WHERE id = '%s') "
                            "WHERE id = '%s'",
                            a, b);
    admin_exec(fx, sql);
    ef_free(sql);
    ef_channels_free(cs);
    cs = channels(fx, &kr);
    ef_channel *cb = ef_channels_get(cs, b);
    assert_null(cb);
    assert_int_equal(ef_store_integration_get(fx->st, b, &row), 0);
    assert_string_equal(row.status, "error");
    assert_non_null(strstr(row.status_message, "another integration"));
    ef_integration_row_cleanup(&row);
    ef_channel_unref(ca);
    ef_channels_free(cs);
    ef_free(a);
    ef_free(b);
}

static void test_refused_token_fails_only_its_channel(void **state)
{
    NEED_DB(fx);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, NULL);
    char *b = add_bot(fx, "b", "1002:BBB", SECRET_B, NULL);
    ef_keyring kr;
    ef_channels *cs = channels(fx, &kr);
    ef_channel *ca = ef_channels_get(cs, a);
    ef_channels_fail(ca, fx->st, "401 Unauthorized: the bot token is wrong or revoked");
    assert_true(ef_channel_failed(ca));
    assert_int_equal(ef_channels_reload(cs), 0);
    ef_channel *ca2 = ef_channels_get(cs, a), *cb = ef_channels_get(cs, b);
    assert_true(ef_channel_failed(ca2)); /* PostgreSQL says error: it stays so */
    assert_false(ef_channel_failed(cb));
    ef_integration_row row;
    assert_int_equal(ef_store_integration_get(fx->st, a, &row), 0);
    assert_string_equal(row.status, "error");
    assert_non_null(strstr(row.status_message, "401"));
    ef_integration_row_cleanup(&row);
    /* enable clears it */
    assert_int_equal(ef_store_integration_set_enabled(fx->st, a, true), 0);
    assert_int_equal(ef_channels_reload(cs), 0);
    ef_channel *ca3 = ef_channels_get(cs, a);
    assert_false(ef_channel_failed(ca3));
    ef_channel_unref(ca);
    ef_channel_unref(ca2);
    ef_channel_unref(ca3);
    ef_channel_unref(cb);
    ef_channels_free(cs);
    ef_free(a);
    ef_free(b);
}

static void test_memory_credentials_of_a_default(void **state)
{
    NEED_DB(fx);
    ef_integration_in in = {.platform = "telegram",
                            .name = "default",
                            .external_id = "1005",
                            .source = "config",
                            .is_default = true};
    char *id = NULL;
    assert_int_equal(ef_store_integration_upsert_default(fx->st, &in, &id), 0);
    ef_keyring kr = ring();
    ef_channels_opts o = {.pg_url = fx->url, .keys = &kr};
    ef_channels *cs = ef_channels_new(&o);
    assert_int_equal(ef_channels_reload(cs), 0);
    assert_null(ef_channels_get(cs, id)); /* no credentials anywhere: not served */
    ef_channels_set_memory_creds(cs, id,
                                 "{\"bot_token\":\"1005:EEE\",\"secret_token\":\"" SECRET_A "\"}");
    assert_int_equal(ef_channels_reload(cs), 0);
    ef_channel *ch = ef_channels_route(cs, &ef_platform_telegram, "");
    assert_non_null(ch); /* the default: the bare webhook path */
    assert_string_equal(ch->id, id);
    assert_int_equal(verify(ch, SECRET_A), 0);
    ef_channel_unref(ch);
    ef_channels_free(cs);
    ef_free(id);
}

/* A small bot file at path (its content names it: a rewrite changes the
 * file's size, so the loader sees a new version). */
static void write_bot(const char *path, const char *name)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "bot:\n  name: %s\nintents:\n  greeting:\n    patterns: ['\\bпривет~']\n"
            "fsm:\n  fallback: {ru: \"?\"}\n  repeated_fallback: {ru: \"??\"}\n  states:\n    "
            "initial:\n      transitions:\n"
            "        - intent: greeting\n          reply: \"Здравствуйте!\"\n",
            name);
    fclose(f);
}

/* Channels naming one bot file share one loaded bot (the demo bot is ~40
 * MB: a copy per channel doubled the gateway's memory); a channel rebuilt
 * after the file changed loads the new version, while the others keep
 * theirs until they are rebuilt. */
static void test_channels_of_one_bot_file_share_it(void **state)
{
    NEED_DB(fx);
    char dir[] = "/tmp/ef-test-bots-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *file = ef_asprintf("%s/shop.yaml", dir);
    write_bot(file, "shop");
    char *settings = ef_asprintf("{\"bot_file\":\"%s\"}", file);
    char *a = add_bot(fx, "a", "1001:AAA", SECRET_A, settings);
    char *b = add_bot(fx, "b", "1002:BBB", SECRET_B, settings);
    ef_keyring kr;
    ef_channels *cs = channels(fx, &kr);
    ef_channel *ca = ef_channels_get(cs, a), *cb = ef_channels_get(cs, b);
    assert_non_null(ca->bot);
    assert_ptr_equal(ca->bot, cb->bot);
    assert_string_equal(ef_bot_name(ca->bot), "shop");

    write_bot(file, "shop-v2");
    char *sql = ef_asprintf("UPDATE integrations SET settings = '{\"bot_file\":\"%s\","
                            "\"rate_per_sec\":5}' WHERE id = '%s'",
                            file, b);
    admin_exec(fx, sql);
    ef_free(sql);
    assert_int_equal(ef_channels_reload(cs), 0);
    ef_channel *a2 = ef_channels_get(cs, a), *b2 = ef_channels_get(cs, b);
    assert_ptr_equal(a2, ca); /* unchanged row: the same channel, the bot it had */
    assert_string_equal(ef_bot_name(a2->bot), "shop");
    assert_ptr_not_equal(b2->bot, ca->bot);
    assert_string_equal(ef_bot_name(b2->bot), "shop-v2");
    assert_string_equal(ef_bot_name(cb->bot), "shop"); /* the old one lives while referenced */

    ef_channel_unref(ca);
    ef_channel_unref(cb);
    ef_channel_unref(a2);
    ef_channel_unref(b2);
    ef_channels_free(cs);
    unlink(file);
    rmdir(dir);
    ef_free(file);
    ef_free(settings);
    ef_free(a);
    ef_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes_and_secrets_per_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_broken_rows_are_not_served, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_unchanged_and_rebuilds_changed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_change_that_does_not_open_keeps_the_running_channel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_blob_is_resealed_and_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_token_fails_only_its_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_credentials_of_a_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_of_one_bot_file_share_it, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
