/*
 * test_pg.c -- the store against a real PostgreSQL (pg.c, integrations.c,
 * sql/004_integrations.sql).
 *
 * With EF_TEST_DATABASE_URL (scripts/run-unit.sh points it at a fresh
 * database); skipped without. Each test migrates sql/ into a schema of its
 * own, so tests never see each other's rows and can run again.
 *
 * Covers: events scoped by integration (the same chat id under two bots is
 * two conversations, duplicates per integration, seen, chat sessions, read
 * receipts), a batch with one value too long (only that item rejected, the
 * store stays up, the reason carries no data), outages (EF_EDB), cursors,
 * the outbox's data errors, integrations (add, conflicts, list, get,
 * enable, status, reseal), the default's adoption of legacy rows,
 * LISTEN/NOTIFY, and issue 8's ingest rules (sql/005_dead_letters.sql):
 * rejected items in dead_letters, no bot replies to a conversation that is
 * not active, stale sessions refused, undeliverable cleared by the
 * customer's next message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/events.h"
#include "store/store.h"
#include "store/store_int.h"

#include "../pg_fixture.h"

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static char *add_integration(fixture *fx, const char *name, const char *external_id)
{
    ef_integration_in in = {
        .platform = "telegram", .name = name, .external_id = external_id, .source = "cli"};
    char *id = NULL;
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id), 0);
    assert_non_null(id);
    return id;
}

static ef_msg *new_msg(const char *integration_id, const char *chat_id, const char *message_id)
{
    ef_msg *m = ef_msg_new(EF_MSG_NEW, "telegram");
    m->integration_id = integration_id ? ef_strdup(integration_id) : NULL;
    m->chat_id = ef_strdup(chat_id);
    m->chat_type = ef_strdup("private");
    m->message_id = ef_strdup(message_id);
    m->sender_id = ef_strdup("42");
    m->sender_name = ef_strdup("Ann");
    m->text = ef_strdup("hello");
    m->text_len = 5;
    m->date = 1700000000;
    return m;
}

/* An event's text field set to a copy of v (the old one freed). */
static void set_field(char **field, const char *v)
{
    ef_free(*field);
    *field = v ? ef_strdup(v) : NULL;
}

static void items_cleanup(ef_ingest_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ef_ingest_item_cleanup(&items[i]);
        ef_msg_free((ef_msg *)items[i].msg);
    }
}

/* ---- ingest ------------------------------------------------------------- */

static void same_chat_in_two_integrations_is_two_conversations(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    char *b = add_integration(fx, "b", "1002");
    ef_msg *ma = new_msg(a, "42", "42:1");
    ma->read_receipt = true;
    ef_ingest_item items[3] = {
        {.msg = ma, .fsm_json = "{\"state\":\"s1\",\"replies\":[{\"text\":\"hi\"}]}"},
        {.msg = new_msg(b, "42", "42:1")},
        {.msg = new_msg(a, "42", "42:1")},
    };
    assert_int_equal(ef_store_ingest(fx->st, items, 3), 0);
    assert_int_equal(items[0].status, EF_ING_STORED);
    assert_int_equal(items[1].status, EF_ING_STORED);
    assert_int_equal(items[2].status, EF_ING_DUPLICATE);
    assert_string_not_equal(items[0].conversation_id, items[1].conversation_id);
    assert_string_equal(items[0].conversation_id, items[2].conversation_id);
    assert_true(items[0].replies_queued);

    /* Every row records its integration; the read receipt is queued
     * because the event asked for it, not because of the platform. */
    assert_int_equal(admin_count(fx, "SELECT count(DISTINCT integration_id) FROM conversations "
                                     "WHERE chat_id = '42'"),
                     2);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE integration_id IS NULL"),
                     0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages "
                                     "WHERE metadata->>'method' = 'markRead'"),
                     1);

    /* Sessions, per integration. */
    char *json = NULL;
    assert_int_equal(ef_store_chat_session(fx->st, b, "telegram", "42", &json), 0);
    assert_non_null(strstr(json, b));
    ef_free(json);
    assert_int_equal(ef_store_chat_session(fx->st, a, "telegram", "43", &json), EF_ENOTFOUND);
    assert_int_equal(ef_store_chat_session(fx->st, "not-a-uuid", "telegram", "42", &json),
                     EF_EINVAL);
    assert_true(ef_store_ok(fx->st));

    /* Many chats' sessions in one statement: each its own integration's. */
    char *c = add_integration(fx, "c", "1003");
    const char *ints[4] = {b, a, c, a};
    const char *plats[4] = {"telegram", "telegram", "telegram", "telegram"};
    const char *chats[4] = {"42", "43", "42", "42"};
    char *many[4];
    assert_int_equal(ef_store_chat_sessions(fx->st, 4, ints, plats, chats, many), 0);
    assert_non_null(many[0]);
    assert_non_null(strstr(many[0], b));
    assert_null(many[1]);
    assert_null(many[2]);
    assert_non_null(many[3]);
    assert_non_null(strstr(many[3], a));
    assert_null(strstr(many[3], b));
    for (int i = 0; i < 4; i++)
        ef_free(many[i]);

    /* The outbox knows which integration sends each row. */
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(ef_store_outbox_fetch(fx->st, 10, &rows, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(rows[i].integration_id, a);
    ef_outbox_rows_free(rows, n);

    items_cleanup(items, 3);
    ef_free(a);
    ef_free(b);
    ef_free(c);
}

/* messages.conversation_id has no foreign key (sql/017: no per-row check
 * on the ingest path); deleting conversations still deletes their
 * messages, and only theirs. */
static void deleting_a_conversation_deletes_its_messages(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_ingest_item items[2] = {
        {.msg = new_msg(a, "1", "1:1"),
         .fsm_json = "{\"state\":\"s\",\"replies\":[{\"text\":\"hi\"}]}"},
        {.msg = new_msg(a, "2", "2:1"),
         .fsm_json = "{\"state\":\"s\",\"replies\":[{\"text\":\"hi\"}]}"},
    };
    assert_int_equal(ef_store_ingest(fx->st, items, 2), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 4);
    admin_exec(fx, "DELETE FROM conversations WHERE chat_id = '1'");
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages m WHERE NOT EXISTS "
                                     "(SELECT 1 FROM conversations c "
                                     "WHERE c.id = m.conversation_id)"),
                     0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 2);
    items_cleanup(items, 2);
    ef_free(a);
}

/* The SQLSTATE of a statement expected to fail ("" if it succeeded). */
static void admin_sqlstate(fixture *fx, const char *sql, char *out, size_t n)
{
    PGresult *r = PQexec(fx->admin, sql);
    const char *st =
        PQresultStatus(r) == PGRES_FATAL_ERROR ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(out, n, "%s", st ? st : "");
    PQclear(r);
}

/* conversations.integration_id and users.platform have no per-row foreign
 * key (sql/019: the check locked the one row every new chat shares), yet
 * deleting an integration with conversations, or a platform with users,
 * is still refused with 23503; one without is deleted. */
static void references_are_refused_on_delete(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    char *b = add_integration(fx, "b", "1002");
    ef_ingest_item items[1] = {{.msg = new_msg(a, "1", "1:1")}};
    assert_int_equal(ef_store_ingest(fx->st, items, 1), 0);
    char *sql = ef_asprintf("DELETE FROM integrations WHERE id = '%s'", a);
    char state_buf[8];
    admin_sqlstate(fx, sql, state_buf, sizeof(state_buf));
    assert_string_equal(state_buf, "23503");
    ef_free(sql);
    sql = ef_asprintf("DELETE FROM integrations WHERE id = '%s'", b);
    admin_sqlstate(fx, sql, state_buf, sizeof(state_buf));
    assert_string_equal(state_buf, "");
    ef_free(sql);
    admin_sqlstate(fx, "DELETE FROM platforms WHERE id = 'telegram'", state_buf, sizeof(state_buf));
    assert_string_equal(state_buf, "23503");
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM integrations"), 1);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM platforms WHERE id = 'telegram'"), 1);
    items_cleanup(items, 1);
    ef_free(a);
    ef_free(b);
}

static void a_value_too_long_rejects_only_its_item(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    char long_chat[300];
    memset(long_chat, '7', sizeof(long_chat) - 1);
    long_chat[sizeof(long_chat) - 1] = '\0';
    ef_ingest_item items[4] = {
        {.msg = new_msg(a, "1", "1:1")},
        {.msg = new_msg(a, long_chat, "x:1")},
        {.msg = new_msg(a, "2", "2:1")},
        {.msg = new_msg(a, "1", "1:1")},
    };
    assert_int_equal(ef_store_ingest(fx->st, items, 4), 0);
    assert_int_equal(items[0].status, EF_ING_STORED);
    assert_int_equal(items[1].status, EF_ING_REJECTED);
    assert_int_equal(items[2].status, EF_ING_STORED);
    assert_int_equal(items[3].status, EF_ING_DUPLICATE);
    assert_non_null(strstr(items[1].error, "22001"));
    assert_null(strstr(items[1].error, "777"));
    assert_null(strchr(items[1].error, '\n'));
    assert_true(ef_store_ok(fx->st));
    assert_int_equal(ef_store_ping(fx->st), 0);

    /* A lone event without a chat id: a NULL key, rejected (23502). */
    ef_msg *m = new_msg(a, "3", "3:1");
    set_field(&m->chat_id, NULL);
    ef_ingest_item one = {.msg = m};
    assert_int_equal(ef_store_ingest(fx->st, &one, 1), 0);
    assert_int_equal(one.status, EF_ING_REJECTED);
    assert_non_null(strstr(one.error, "23502"));
    items_cleanup(&one, 1);

    /* Invalid input syntax quotes the value: the reason does not. */
    ef_msg *bad = new_msg("not-a-uuid-but-customer-text", "4", "4:1");
    ef_ingest_item two = {.msg = bad};
    assert_int_equal(ef_store_ingest(fx->st, &two, 1), 0);
    assert_int_equal(two.status, EF_ING_REJECTED);
    assert_null(strstr(two.error, "customer"));
    assert_null(strstr(ef_store_errmsg(fx->st), "customer"));
    items_cleanup(&two, 1);

    items_cleanup(items, 4);
    ef_free(a);
}

static void rejected_items_are_dead_letters(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    char long_state[160];
    memset(long_state, 's', sizeof(long_state) - 1);
    long_state[sizeof(long_state) - 1] = '\0';
    char *fsm = ef_asprintf("{\"state\":\"%s\",\"replies\":[{\"text\":\"r\"}]}", long_state);
    char long_chat[300];
    memset(long_chat, '7', sizeof(long_chat) - 1);
    long_chat[sizeof(long_chat) - 1] = '\0';
    ef_ingest_item items[4] = {
        {.msg = new_msg(a, "1", "1:1")},
        {.msg = new_msg(a, "2", "2:1"), .fsm_json = fsm}, /* a state name too long */
        {.msg = new_msg(a, long_chat, "x:1")},            /* a chat id too long */
        {.msg = new_msg("not-a-uuid", "3", "3:1")},       /* an integration id no UUID */
    };
    assert_int_equal(ef_store_ingest(fx->st, items, 4), 0);
    assert_int_equal(items[0].status, EF_ING_STORED);
    assert_false(items[0].dead_lettered);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(items[i].status, EF_ING_REJECTED);
        assert_true(items[i].dead_lettered);
    }
    assert_true(ef_store_ok(fx->st));
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM dead_letters"), 3);
    /* The payload is the event; the reason carries no data. */
    char *sql = ef_asprintf("SELECT count(*) FROM dead_letters WHERE integration_id = '%s' AND "
                            "platform = 'telegram' AND error LIKE '%%22001%%' AND "
                            "error NOT LIKE '%%sss%%' AND error NOT LIKE '%%777%%' AND "
                            "payload->>'message_id' IN ('2:1', 'x:1') AND "
                            "payload->'sender'->>'id' = '42'",
                            a);
    assert_int_equal(admin_count(fx, sql), 2);
    ef_free(sql);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM dead_letters WHERE integration_id IS "
                                     "NULL AND payload->>'integration_id' = 'not-a-uuid'"),
                     1);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM dead_letters WHERE "
                                     "payload->'fsm'->>'state' LIKE 'sss%'"),
                     1);
    /* Nothing of the rejected items was stored; the good one was. */
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 1);
    /* A lone rejected item is a dead letter too. */
    ef_ingest_item one = {.msg = new_msg(a, long_chat, "x:2")};
    assert_int_equal(ef_store_ingest(fx->st, &one, 1), 0);
    assert_int_equal(one.status, EF_ING_REJECTED);
    assert_true(one.dead_lettered);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM dead_letters"), 4);
    items_cleanup(&one, 1);
    items_cleanup(items, 4);
    ef_free(fsm);
    ef_free(a);
}

/* A customer is stored once; a message with the same profile writes nothing
 * to users, one with a changed profile updates it (the batch's latest wins). */
static void a_customers_profile_is_written_only_when_it_changes(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_ingest_item first = {.msg = new_msg(a, "1", "1:1")};
    assert_int_equal(ef_store_ingest(fx->st, &first, 1), 0);
    admin_exec(fx, "UPDATE users SET updated_at = '2000-01-01' WHERE platform_user_id = '42'");

    ef_ingest_item same = {.msg = new_msg(a, "1", "1:2")};
    assert_int_equal(ef_store_ingest(fx->st, &same, 1), 0);
    assert_int_equal(same.status, EF_ING_STORED);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM users WHERE platform_user_id = '42' "
                                     "AND name = 'Ann' AND updated_at = '2000-01-01'"),
                     1);

    ef_ingest_item two[2] = {{.msg = new_msg(a, "1", "1:3")}, {.msg = new_msg(a, "2", "2:1")}};
    ef_msg *m0 = (ef_msg *)two[0].msg, *m1 = (ef_msg *)two[1].msg;
    set_field(&m0->sender_name, "Anna");
    set_field(&m1->sender_name, "Анна Иванова");
    set_field(&m1->sender_username, "anna_i");
    assert_int_equal(ef_store_ingest(fx->st, two, 2), 0);
    assert_int_equal(two[0].status, EF_ING_STORED);
    assert_int_equal(two[1].status, EF_ING_STORED);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM users WHERE platform_user_id = '42' "
                                     "AND name = 'Анна Иванова' AND username = 'anna_i' "
                                     "AND updated_at > '2000-01-01'"),
                     1);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM users"), 1);
    items_cleanup(&first, 1);
    items_cleanup(&same, 1);
    items_cleanup(two, 2);
    ef_free(a);
}

/* In a group chat the conversation belongs to whoever wrote first; another
 * member's messages carry their own user_id, the bot's replies the
 * conversation's (sql/027). Forgetting the member erases their messages
 * only; forgetting the owner erases the conversation with everything in
 * it. */
static void forgetting_a_group_member_erases_their_messages_only(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    const char *reply = "{\"state\":\"s\",\"replies\":[{\"text\":\"r\"}]}";
    /* The owner's message, then two of the member's in one batch (the
     * second takes the per-event path). */
    ef_ingest_item items[3] = {{.msg = new_msg(a, "-100", "-100:1"), .fsm_json = reply},
                               {.msg = new_msg(a, "-100", "-100:2"), .fsm_json = reply},
                               {.msg = new_msg(a, "-100", "-100:3")}};
    for (int i = 0; i < 3; i++) {
        ef_msg *m = (ef_msg *)items[i].msg;
        set_field(&m->chat_type, "supergroup");
        if (i > 0) {
            set_field(&m->sender_id, "43");
            set_field(&m->sender_name, "Boris");
        }
    }
    assert_int_equal(ef_store_ingest(fx->st, &items[0], 1), 0);
    assert_int_equal(ef_store_ingest(fx->st, &items[1], 2), 0);
    assert_int_equal(items[1].status, EF_ING_STORED);
    assert_int_equal(items[2].status, EF_ING_STORED);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 5);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages m JOIN users u ON "
                                     "u.id = m.user_id WHERE u.platform_user_id = '43'"),
                     2);

    char *out = NULL;
    assert_int_equal(ef_store_customer_forget(fx->st, "telegram", "43", NULL, &out), 0);
    ef_free(out);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM users WHERE platform_user_id = '43'"),
                     0);
    /* The owner's message and both replies stay (they are the owner's). */
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 3);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE direction = 'outbound'"),
                     2);

    assert_int_equal(ef_store_customer_forget(fx->st, "telegram", "42", NULL, &out), 0);
    ef_free(out);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM users WHERE role = 'customer'"), 0);
    items_cleanup(items, 3);
    ef_free(a);
}

/* PostgreSQL is the truth: a decision reaches only an active conversation,
 * whatever the session said. */
static void a_conversation_not_active_gets_no_bot_replies(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    const char *fsm = "{\"state\":\"next\",\"status\":\"closed\",\"why\":\"w\","
                      "\"context_patch\":{\"k\":\"v\"},\"replies\":[{\"text\":\"bot\"}]}";
    ef_ingest_item first = {.msg = new_msg(a, "1", "1:1"),
                            .intent = "greeting",
                            .fsm_json = "{\"state\":\"s1\",\"replies\":[{\"text\":\"hi\"}]}"};
    assert_int_equal(ef_store_ingest(fx->st, &first, 1), 0);
    assert_int_equal(first.version, 1);
    admin_exec(fx, "UPDATE conversations SET status = 'escalated'"); /* an operator has it */
    assert_int_equal(admin_count(fx, "SELECT version FROM conversations"), 2);

    ef_ingest_item it = {.msg = new_msg(a, "1", "1:2"), .intent = "order_status", .fsm_json = fsm};
    assert_int_equal(ef_store_ingest(fx->st, &it, 1), 0);
    assert_int_equal(it.status, EF_ING_STORED);
    assert_false(it.replies_queued);
    assert_string_equal(it.conv_status, "escalated");
    assert_string_equal(it.state, "s1");
    assert_int_equal(it.version, 3);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE role = 'assistant'"), 1);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE platform_message_id = "
                                     "'1:2' AND intent = 'order_status' AND "
                                     "metadata->'decision'->>'skipped' = "
                                     "'conversation escalated'"),
                     1);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM conversations WHERE status = "
                                     "'escalated' AND NOT context_data ? 'k'"),
                     1);
    /* Handed back in PostgreSQL: the next decision applies. */
    admin_exec(fx, "UPDATE conversations SET status = 'active'");
    ef_ingest_item back = {.msg = new_msg(a, "1", "1:3"),
                           .fsm_json = "{\"state\":\"s2\",\"replies\":[{\"text\":\"ok\"}]}"};
    assert_int_equal(ef_store_ingest(fx->st, &back, 1), 0);
    assert_true(back.replies_queued);
    assert_string_equal(back.state, "s2");
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE role = 'assistant'"), 2);
    items_cleanup(&first, 1);
    items_cleanup(&it, 1);
    items_cleanup(&back, 1);
    ef_free(a);
}

/* A decision made from a stale session is refused with nothing written,
 * and so is every later event of its chat in the call. */
static void a_stale_session_is_refused(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    const char *fsm = "{\"state\":\"s\",\"replies\":[{\"text\":\"r\"}]}";
    ef_ingest_item first = {.msg = new_msg(a, "1", "1:1"), .fsm_json = fsm, .has_base = true};
    assert_int_equal(ef_store_ingest(fx->st, &first, 1), 0); /* a new chat: (NULL, 0) */
    assert_int_equal(first.status, EF_ING_STORED);
    assert_int_equal(first.version, 1);
    char *conv = ef_strdup(first.conversation_id);

    char *json = NULL;
    assert_int_equal(ef_store_chat_session(fx->st, a, "telegram", "1", &json), 0);
    assert_non_null(strstr(json, "\"version\": 1"));
    ef_free(json);

    /* Two messages decided from version 0 (Redis missed the write-back),
     * another chat's in between, and one more of chat 1 without a decision. */
    ef_ingest_item items[4] = {
        {.msg = new_msg(a, "1", "1:2"),
         .fsm_json = fsm,
         .has_base = true,
         .base_conversation_id = conv,
         .base_version = 0},
        {.msg = new_msg(a, "2", "2:1"), .fsm_json = fsm, .has_base = true},
        {.msg = new_msg(a, "1", "1:3"),
         .fsm_json = fsm,
         .has_base = true,
         .base_conversation_id = conv,
         .base_version = 1}, /* would match alone: stale after a stale one */
        {.msg = new_msg(a, "1", "1:4")},
    };
    assert_int_equal(ef_store_ingest(fx->st, items, 4), 0);
    assert_int_equal(items[0].status, EF_ING_STALE);
    assert_int_equal(items[1].status, EF_ING_STORED);
    assert_int_equal(items[2].status, EF_ING_STALE);
    assert_int_equal(items[3].status, EF_ING_STALE);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE direction = 'inbound'"),
                     2);
    /* Decided again from the right version: stored. */
    items[0].base_version = 1;
    items[2].base_version = 2;
    assert_int_equal(ef_store_ingest(fx->st, &items[0], 1), 0);
    assert_int_equal(items[0].status, EF_ING_STORED);
    assert_int_equal(ef_store_ingest(fx->st, &items[2], 2), 0);
    assert_int_equal(items[2].status, EF_ING_STORED);
    assert_int_equal(items[3].status, EF_ING_STORED);
    assert_int_equal(items[3].version, 3);

    /* Another conversation than the session's (closed meanwhile): stale. */
    admin_exec(fx, "UPDATE conversations SET status = 'closed' WHERE chat_id = '1'");
    ef_ingest_item old = {.msg = new_msg(a, "1", "1:5"),
                          .fsm_json = fsm,
                          .has_base = true,
                          .base_conversation_id = conv,
                          .base_version = 4};
    assert_int_equal(ef_store_ingest(fx->st, &old, 1), 0);
    assert_int_equal(old.status, EF_ING_STALE);
    assert_string_not_equal(old.conversation_id, conv);
    assert_int_equal(old.version, 0);

    /* In the item-by-item retry (a bad item in the batch) the rule holds. */
    char long_chat[300];
    memset(long_chat, '7', sizeof(long_chat) - 1);
    long_chat[sizeof(long_chat) - 1] = '\0';
    ef_ingest_item mixed[3] = {
        {.msg = new_msg(a, "1", "1:6"),
         .fsm_json = fsm,
         .has_base = true,
         .base_conversation_id = conv,
         .base_version = 4},
        {.msg = new_msg(a, long_chat, "x:1")},
        {.msg = new_msg(a, "1", "1:7"), .fsm_json = fsm, .has_base = true, .base_version = 0},
    };
    assert_int_equal(ef_store_ingest(fx->st, mixed, 3), 0);
    assert_int_equal(mixed[0].status, EF_ING_STALE);
    assert_int_equal(mixed[1].status, EF_ING_REJECTED);
    assert_int_equal(mixed[2].status, EF_ING_STALE);
    items_cleanup(mixed, 3);
    items_cleanup(&old, 1);
    items_cleanup(items, 4);
    items_cleanup(&first, 1);
    ef_free(conv);
    ef_free(a);
}

static void a_customer_who_writes_is_deliverable_again(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_ingest_item first = {.msg = new_msg(a, "1", "1:1")};
    assert_int_equal(ef_store_ingest(fx->st, &first, 1), 0);
    admin_exec(fx, "UPDATE conversations SET undeliverable = true, "
                   "undeliverable_reason = 'blocked'");
    /* Another bot in the chat is not the customer. */
    ef_msg *bot = new_msg(a, "1", "1:2");
    bot->sender_is_bot = true;
    ef_ingest_item by_bot = {.msg = bot};
    assert_int_equal(ef_store_ingest(fx->st, &by_bot, 1), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM conversations WHERE undeliverable"), 1);
    ef_ingest_item again = {.msg = new_msg(a, "1", "1:3")};
    assert_int_equal(ef_store_ingest(fx->st, &again, 1), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM conversations WHERE NOT undeliverable "
                                     "AND undeliverable_reason IS NULL"),
                     1);
    items_cleanup(&first, 1);
    items_cleanup(&by_bot, 1);
    items_cleanup(&again, 1);
    ef_free(a);
}

static void an_outage_fails_every_item(void **state)
{
    NEED_DB(fx);
    ef_store *down = ef_store_new("postgresql://127.0.0.1:1/nothing");
    ef_ingest_item items[2] = {{.msg = new_msg(NULL, "1", "1:1")},
                               {.msg = new_msg(NULL, "2", "2:1")}};
    assert_int_equal(ef_store_ingest(down, items, 2), EF_EDB);
    assert_int_equal(items[0].status, EF_ING_FAILED);
    assert_int_equal(items[1].status, EF_ING_FAILED);
    assert_false(ef_store_ok(down));
    assert_int_equal(
        ef_store_outbox_failed(down, "00000000-0000-0000-0000-000000000000", "x", false), EF_EDB);
    items_cleanup(items, 2);
    ef_store_free(down);
}

/* ---- cursors and the outbox ------------------------------------------- */

static void cursors_per_integration(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    char *b = add_integration(fx, "b", "1002");
    char *cur = NULL;
    assert_int_equal(ef_store_cursor_get(fx->st, a, &cur), EF_ENOTFOUND);
    assert_int_equal(ef_store_cursor_set(fx->st, a, "17"), 0);
    assert_int_equal(ef_store_cursor_set(fx->st, b, "5"), 0);
    assert_int_equal(ef_store_cursor_set(fx->st, a, "18"), 0);
    assert_int_equal(ef_store_cursor_get(fx->st, a, &cur), 0);
    assert_string_equal(cur, "18");
    ef_free(cur);
    assert_int_equal(ef_store_cursor_get(fx->st, b, &cur), 0);
    assert_string_equal(cur, "5");
    ef_free(cur);
    assert_int_equal(ef_store_cursor_set(fx->st, "nope", "1"), EF_EINVAL);
    assert_true(ef_store_ok(fx->st));
    ef_free(a);
    ef_free(b);
}

static void outbox_data_errors_are_einval(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_ingest_item it = {.msg = new_msg(a, "1", "1:1"),
                         .fsm_json = "{\"replies\":[{\"text\":\"r1\"},{\"text\":\"r2\"}]}"};
    assert_int_equal(ef_store_ingest(fx->st, &it, 1), 0);
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(ef_store_outbox_fetch(fx->st, 10, &rows, &n), 0);
    assert_int_equal(n, 2);

    /* An id longer than the column: the data's fault, the store stays up. */
    char long_id[400];
    memset(long_id, 'w', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(ef_store_outbox_sent(fx->st, rows[0].row_id, long_id, false), EF_EINVAL);
    assert_true(ef_store_ok(fx->st));
    assert_int_equal(ef_store_outbox_retry(fx->st, "not-a-uuid", 10, "x", true), EF_EINVAL);

    /* failed cannot fail on its reason: invalid UTF-8 and any length. */
    char *reason = ef_calloc(1, 5001);
    memset(reason, 'e', 5000);
    memcpy(reason, "\xff\xfe bad \xe2\x82", 10);
    memcpy(reason + 996, "\xd0\xb6\xd0\xb6", 4); /* a 2-byte char across the cut */
    assert_int_equal(ef_store_outbox_failed(fx->st, rows[0].row_id, reason, true), 0);
    ef_free(reason);
    char *stored = admin_value(fx, "SELECT failed_reason FROM messages WHERE "
                                   "delivery_status = 'failed'");
    assert_true(strlen(stored) <= 1000);
    assert_int_equal(strncmp(stored, "?? bad ??", 9), 0);
    ef_free(stored);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM conversations WHERE undeliverable"), 1);
    ef_outbox_rows_free(rows, n);
    ef_ingest_item_cleanup(&it);
    ef_msg_free((ef_msg *)it.msg);
    ef_free(a);
}

/* Many sent outcomes in one statement: every queued row named is sent with
 * its own id; a row no longer queued is left as it is; one refused value
 * records none of them (the dispatcher then records them one at a time). */
static void outbox_sent_many_records_a_run(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_ingest_item it = {.msg = new_msg(a, "1", "1:1"),
                         .fsm_json = "{\"replies\":[{\"text\":\"r1\"},{\"text\":\"r2\"},"
                                     "{\"text\":\"r3\"}]}"};
    assert_int_equal(ef_store_ingest(fx->st, &it, 1), 0);
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(ef_store_outbox_fetch(fx->st, 10, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ef_store_outbox_failed(fx->st, rows[2].row_id, "gone", false), 0);

    char long_id[400];
    memset(long_id, 'w', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    ef_outbox_sent bad[2] = {{rows[0].row_id, "1:10", false}, {rows[1].row_id, long_id, false}};
    assert_int_equal(ef_store_outbox_sent_many(fx->st, bad, 2), EF_EINVAL);
    assert_true(ef_store_ok(fx->st));
    assert_int_equal(
        admin_count(fx, "SELECT count(*) FROM messages WHERE delivery_status = 'sent'"), 0);

    ef_outbox_sent ok[3] = {{rows[0].row_id, "1:10", false},
                            {rows[1].row_id, "1:11", true},
                            {rows[2].row_id, "1:12", false}};
    assert_int_equal(ef_store_outbox_sent_many(fx->st, ok, 3), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE delivery_status = 'sent' "
                                     "AND sent_at IS NOT NULL AND ((content = 'r1' AND "
                                     "platform_message_id = '1:10' AND NOT metadata ? 'sent_as') "
                                     "OR (content = 'r2' AND platform_message_id = '1:11' AND "
                                     "metadata->>'sent_as' = 'template'))"),
                     2);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE content = 'r3' AND "
                                     "delivery_status = 'failed' AND platform_message_id IS NULL"),
                     1);
    ef_outbox_rows_free(rows, n);
    ef_ingest_item_cleanup(&it);
    ef_msg_free((ef_msg *)it.msg);
    ef_free(a);
}

/* Recording replies sent is planned at each call, for the table as it is
 * then (outbox.c SENT_SQL: a prepared statement's generic plan, made while
 * messages was young, walked it once it had grown). After six calls on a
 * young table and 30,000 more rows, the store's session holds no prepared
 * plan, and the statement's plan on that session probes the primary key. */
static void outbox_sent_is_planned_for_the_table_as_it_is(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_ingest_item it = {.msg = new_msg(a, "1", "1:1"),
                         .fsm_json = "{\"replies\":[{\"text\":\"r1\"},{\"text\":\"r2\"},"
                                     "{\"text\":\"r3\"},{\"text\":\"r4\"},{\"text\":\"r5\"},"
                                     "{\"text\":\"r6\"},{\"text\":\"r7\"},{\"text\":\"r8\"}]}"};
    assert_int_equal(ef_store_ingest(fx->st, &it, 1), 0);
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(ef_store_outbox_fetch(fx->st, 10, &rows, &n), 0);
    assert_int_equal(n, 8);
    char pmid[16];
    for (size_t i = 0; i < 6; i++) {
        snprintf(pmid, sizeof(pmid), "1:%zu", 10 + i);
        assert_int_equal(ef_store_outbox_sent(fx->st, rows[i].row_id, pmid, false), 0);
    }
    admin_exec(fx, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                   "direction, platform, delivery_status, next_attempt_at) "
                   "SELECT gen_random_uuid(), 's', gen_random_uuid(), 'x', 'assistant', "
                   "'outbound', 'telegram', 'queued', now() FROM generate_series(1, 30000)");
    for (size_t i = 6; i < 8; i++) {
        snprintf(pmid, sizeof(pmid), "1:%zu", 10 + i);
        assert_int_equal(ef_store_outbox_sent(fx->st, rows[i].row_id, pmid, false), 0);
    }
    assert_int_equal(
        admin_count(fx, "SELECT count(*) FROM messages WHERE delivery_status = 'sent'"), 8);

    PGresult *r = ef_store__exec(fx->st, "SELECT count(*) FROM pg_prepared_statements", 0, NULL);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    char *sql = ef_asprintf("EXPLAIN (COSTS OFF) %s", ef_store_outbox_sent_sql());
    const char *vals[1] = {"[{\"id\":\"00000000-0000-0000-0000-000000000001\","
                           "\"pmid\":\"1:99\",\"tpl\":false}]"};
    r = ef_store__exec(fx->st, sql, 1, vals);
    assert_non_null(r);
    ef_buf plan;
    ef_buf_init(&plan, 1u << 16);
    for (int i = 0; i < PQntuples(r); i++)
        assert_int_equal(ef_buf_appendf(&plan, "%s\n", PQgetvalue(r, i, 0)), 0);
    PQclear(r);
    if (!strstr(plan.data, "messages_pkey"))
        fail_msg("the sent record does not probe the primary key:\n%s", plan.data);
    ef_buf_cleanup(&plan);
    ef_free(sql);
    ef_outbox_rows_free(rows, n);
    ef_ingest_item_cleanup(&it);
    ef_msg_free((ef_msg *)it.msg);
    ef_free(a);
}

/* The fetch's plan (EXPLAIN, COSTS OFF) on the admin connection, every
 * line in one owned string. */
static char *fetch_plan(fixture *fx)
{
    char *prep = ef_asprintf("PREPARE fetch_due(int, timestamptz, timestamptz, uuid[]) AS %s",
                             ef_store_outbox_fetch_sql());
    admin_exec(fx, prep);
    ef_free(prep);
    PGresult *r = PQexec(fx->admin, "EXPLAIN (COSTS OFF) EXECUTE fetch_due(500, NULL, NULL, NULL)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("EXPLAIN: %s", PQresultErrorMessage(r));
    ef_buf b;
    ef_buf_init(&b, 1u << 20);
    for (int i = 0; i < PQntuples(r); i++)
        assert_int_equal(ef_buf_appendf(&b, "%s\n", PQgetvalue(r, i, 0)), 0);
    PQclear(r);
    admin_exec(fx, "DEALLOCATE fetch_due");
    return ef_buf_steal(&b, NULL);
}

/* The generic plan (as ef_ingest_rows keeps them, sql/024) of one probe of
 * the ingest path on empty tables, as a fresh install's first batch plans
 * it: one owned string. */
static char *probe_plan(fixture *fx, const char *params, const char *sql, const char *args)
{
    admin_exec(fx, "SET plan_cache_mode = force_generic_plan");
    char *prep = ef_asprintf("PREPARE probe(%s) AS %s", params, sql);
    admin_exec(fx, prep);
    ef_free(prep);
    char *explain = ef_asprintf("EXPLAIN (COSTS OFF) EXECUTE probe(%s)", args);
    PGresult *r = PQexec(fx->admin, explain);
    ef_free(explain);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("EXPLAIN: %s", PQresultErrorMessage(r));
    ef_buf b;
    ef_buf_init(&b, 1u << 16);
    for (int i = 0; i < PQntuples(r); i++)
        assert_int_equal(ef_buf_appendf(&b, "%s\n", PQgetvalue(r, i, 0)), 0);
    PQclear(r);
    admin_exec(fx, "DEALLOCATE probe");
    admin_exec(fx, "RESET plan_cache_mode");
    return ef_buf_steal(&b, NULL);
}

/* Each key probe of the ingest path is served by its own key's index with
 * the key as its condition, even when planned on empty tables: a partial
 * index whose predicate the probe implies (sql/027's first form indexed
 * customers' messages WHERE direction = 'inbound') would otherwise be
 * taken for a walk of every inbound row, frozen in the generic plan (make
 * bench: 362 updates/s). */
static void ingest_probes_use_their_keys_on_empty_tables(void **state)
{
    NEED_DB(fx);
    static const struct {
        const char *params, *sql, *args, *index;
    } probes[] = {
        {"uuid, text, text",
         "SELECT 1 FROM messages m WHERE m.integration_id = $1 AND m.platform = $2 "
         "AND m.platform_message_id = $3 AND m.direction = 'inbound' LIMIT 1",
         "gen_random_uuid(), 'telegram', '1:1'", "uq_messages_inbound"},
        {"uuid, text, text",
         "SELECT 1 FROM conversations c WHERE c.integration_id = $1 AND c.platform = $2 "
         "AND c.chat_id = $3 AND c.status <> 'closed' LIMIT 1",
         "gen_random_uuid(), 'telegram', '1'", "uq_conversations_open_chat"},
        {"text, text",
         "SELECT u.id FROM users u WHERE u.platform = $1 AND u.platform_user_id = $2 LIMIT 1",
         "'telegram', '1'", "uq_users_platform_identity"},
    };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        char *plan = probe_plan(fx, probes[i].params, probes[i].sql, probes[i].args);
        if (!strstr(plan, probes[i].index) || !strstr(plan, "Index Cond"))
            fail_msg("probe %zu is not served by %s:\n%s", i, probes[i].index, plan);
        ef_free(plan);
    }
}

/* How many times the plan names idx_messages_outbox. */
static int outbox_index_uses(const char *plan)
{
    int n = 0;
    for (const char *p = plan; (p = strstr(p, "idx_messages_outbox")) != NULL; p++)
        n++;
    return n;
}

/* The plan's line that reads rel (e.g. "messages q"); fails without one. */
static char *plan_line(const char *plan, const char *rel)
{
    const char *at = strstr(plan, rel);
    if (!at)
        fail_msg("no scan of %s in:\n%s", rel, plan);
    const char *start = at, *end = strchr(at, '\n');
    while (start > plan && start[-1] != '\n')
        start--;
    return ef_strndup(start, (size_t)(end ? end - start : (ptrdiff_t)strlen(start)));
}

/* The fetch's look-up of a row's previous queued row in its chat is served
 * by the chat index with or without statistics, and idx_messages_outbox
 * (every queued row of every chat) cannot serve it at all: with autovacuum
 * off and no ANALYZE, the old look-up (naming direction = 'outbound') was
 * planned as a walk of that index, 9 s a fetch with 75,000 queued (sql/023).
 * And the look-up still finds a previous row that is not due. */
static void outbox_fetch_lookup_is_plan_proof(void **state)
{
    NEED_DB(fx);
    /* A fresh database filled faster than autovacuum's first ANALYZE: 300
     * chats, 10 inbound messages and 10 queued replies each, interleaved. */
    admin_exec(fx, "ALTER TABLE messages SET (autovacuum_enabled = false)");
    admin_exec(fx, "ALTER TABLE conversations SET (autovacuum_enabled = false)");
    admin_exec(fx, "INSERT INTO users (id, name, platform, platform_user_id) "
                   "SELECT md5('u' || g)::uuid, 'u' || g, 'telegram', g::text "
                   "FROM generate_series(1, 300) g");
    admin_exec(fx, "INSERT INTO conversations (id, session_id, user_id, platform, chat_id, "
                   "chat_type) SELECT md5('c' || g)::uuid, 's' || g, md5('u' || g)::uuid, "
                   "'telegram', g::text, 'private' FROM generate_series(1, 300) g");
    admin_exec(fx, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                   "direction, platform, platform_message_id, delivery_status, next_attempt_at, "
                   "created_at) SELECT md5('c' || ((i / 2) % 300 + 1))::uuid, 's', "
                   "md5('u' || ((i / 2) % 300 + 1))::uuid, 'r' || i, "
                   "CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END::message_role, "
                   "CASE WHEN i % 2 = 0 THEN 'inbound' ELSE 'outbound' END::message_direction, "
                   "'telegram', CASE WHEN i % 2 = 0 THEN i::text END, "
                   "CASE WHEN i % 2 = 1 THEN 'queued' END::delivery_status, "
                   "CASE WHEN i % 2 = 1 THEN now() - interval '1 hour' + i * interval '1 ms' END, "
                   "now() - interval '1 hour' + i * interval '1 ms' "
                   "FROM generate_series(1, 6000) i");
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM pg_stats WHERE tablename = 'messages' "
                                     "AND schemaname = current_schema()"),
                     0);

    for (int analyzed = 0; analyzed < 2; analyzed++) {
        char *plan = fetch_plan(fx);
        char *walk = plan_line(plan, "on messages m");
        char *look = plan_line(plan, "on messages q");
        assert_non_null(strstr(walk, "using idx_messages_outbox on"));
        assert_non_null(strstr(look, "using idx_messages_queued_chat on"));
        assert_int_equal(outbox_index_uses(plan), 1); /* the walk's, nothing else */
        ef_free(walk);
        ef_free(look);
        ef_free(plan);
        admin_exec(fx, "ANALYZE messages, conversations");
    }

    /* Even with the indexes it could use gone and scans by index forced, the
     * look-up cannot use idx_messages_outbox (the plan names it for the walk
     * only): its WHERE does not imply that index's predicate. */
    admin_exec(fx, "BEGIN");
    admin_exec(fx, "DROP INDEX idx_messages_queued_chat");
    admin_exec(fx, "DROP INDEX idx_messages_conversation_id");
    admin_exec(fx, "DROP INDEX idx_messages_created_brin");
    admin_exec(fx, "SET LOCAL enable_seqscan = off");
    char *plan = fetch_plan(fx);
    assert_int_equal(outbox_index_uses(plan), 1);
    ef_free(plan);
    admin_exec(fx, "ROLLBACK");

    /* A chat's first reply backs off an hour (its later ones move with
     * it); a reply queued after that is due at once: fetched, with the
     * previous queued row of its chat, which is not due. */
    char *first = admin_value(fx, "SELECT id FROM messages WHERE conversation_id = md5('c1')::uuid "
                                  "AND delivery_status = 'queued' ORDER BY created_at LIMIT 1");
    assert_int_equal(ef_store_outbox_retry(fx->st, first, 3600 * 1000, "429", false), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE conversation_id = "
                                     "md5('c1')::uuid AND delivery_status = 'queued' AND "
                                     "next_attempt_at <= now()"),
                     0);
    admin_exec(fx, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                   "direction, platform, delivery_status, next_attempt_at) "
                   "VALUES (md5('c1')::uuid, 's', md5('u1')::uuid, 'late', 'assistant', "
                   "'outbound', 'telegram', 'queued', now())");
    char *prev = admin_value(fx, "SELECT id FROM messages WHERE conversation_id = md5('c1')::uuid "
                                 "AND delivery_status = 'queued' AND content <> 'late' "
                                 "ORDER BY created_at DESC LIMIT 1");
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(ef_store_outbox_fetch(fx->st, 5000, &rows, &n), 0);
    assert_int_equal(n, 3000 - 10 + 1);
    size_t late = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].text, "late") == 0)
            late = i;
    assert_true(late < n);
    assert_non_null(rows[late].prev_row_id);
    assert_string_equal(rows[late].prev_row_id, prev);
    assert_false(rows[late].prev_due);
    ef_outbox_rows_free(rows, n);
    ef_free(prev);
    ef_free(first);
}

/* ---- integrations ------------------------------------------------------- */

static void integrations_add_list_get_change(void **state)
{
    NEED_DB(fx);
    const uint8_t sealed[4] = {0x00, 0xff, 0x10, 0x5c};
    ef_integration_in in = {.platform = "telegram",
                            .name = "shop",
                            .external_id = "555",
                            .settings_json = "{\"mode\":\"poll\"}",
                            .source = "cli",
                            .sealed = sealed,
                            .sealed_len = sizeof(sealed),
                            .key_id = "k1"};
    char *id = NULL;
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id), 0);
    char *id2 = NULL;
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id2), EF_ECONFLICT); /* name */
    in.name = "shop2";
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id2), EF_ECONFLICT); /* external */
    in.external_id = NULL;
    in.source = "elsewhere";
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id2), EF_EINVAL); /* CHECK */
    in.source = "api";
    in.platform = "no-such-platform";
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id2), EF_EINVAL); /* FK */
    in.platform = "webchat";
    in.sealed = NULL;
    assert_int_equal(ef_store_integration_add(fx->st, &in, &id2), 0);
    assert_true(ef_store_ok(fx->st));

    ef_integration_row row;
    assert_int_equal(ef_store_integration_get(fx->st, id, &row), 0);
    assert_string_equal(row.platform, "telegram");
    assert_string_equal(row.name, "shop");
    assert_string_equal(row.external_id, "555");
    assert_string_equal(row.status, "pending");
    assert_string_equal(row.source, "cli");
    assert_non_null(strstr(row.settings_json, "poll"));
    assert_true(row.enabled);
    assert_false(row.is_default);
    assert_int_equal(row.sealed_len, sizeof(sealed));
    assert_memory_equal(row.sealed, sealed, sizeof(sealed));
    assert_string_equal(row.key_id, "k1");
    ef_integration_row_cleanup(&row);
    assert_int_equal(ef_store_integration_get(fx->st, "nope", &row), EF_EINVAL);
    assert_int_equal(ef_store_integration_get(fx->st, "00000000-0000-0000-0000-000000000000", &row),
                     EF_ENOTFOUND);

    assert_int_equal(ef_store_integration_set_enabled(fx->st, id2, false), 0);
    assert_int_equal(
        ef_store_integration_set_enabled(fx->st, "00000000-0000-0000-0000-000000000000", true),
        EF_ENOTFOUND);
    ef_integration_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(ef_store_integrations_list(fx->st, false, &rows, &n), 0);
    assert_int_equal(n, 1);
    ef_integration_rows_free(rows, n);
    assert_int_equal(ef_store_integrations_list(fx->st, true, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[1].status, "disconnected");
    assert_null(rows[1].sealed);
    ef_integration_rows_free(rows, n);

    assert_int_equal(ef_store_integration_set_status(fx->st, id, "error", "401 Unauthorized"), 0);
    assert_int_equal(ef_store_integration_set_status(fx->st, id, "nonsense", NULL), EF_EINVAL);
    const uint8_t resealed[2] = {1, 2};
    assert_int_equal(ef_store_integration_reseal(fx->st, id, resealed, 2, "k2"), 0);
    assert_int_equal(ef_store_integration_get(fx->st, id, &row), 0);
    assert_string_equal(row.status, "error");
    assert_string_equal(row.status_message, "401 Unauthorized");
    assert_int_equal(row.sealed_len, 2);
    assert_string_equal(row.key_id, "k2");
    ef_integration_row_cleanup(&row);
    ef_free(id);
    ef_free(id2);
}

static void default_adopts_legacy_rows_once(void **state)
{
    NEED_DB(fx);
    /* Stored before integrations existed: no integration_id. */
    ef_ingest_item it = {.msg = new_msg(NULL, "9", "9:1")};
    assert_int_equal(ef_store_ingest(fx->st, &it, 1), 0);
    assert_int_equal(it.status, EF_ING_STORED);
    items_cleanup(&it, 1);
    admin_exec(fx, "INSERT INTO poll_offsets (platform, bot_id, next_offset) "
                   "VALUES ('telegram', '123456', 777)");

    ef_integration_in in = {.platform = "telegram",
                            .name = "default",
                            .external_id = "123456",
                            .settings_json = "{\"mode\":\"poll\"}",
                            .source = "config",
                            .is_default = true};
    char *id = NULL;
    assert_int_equal(ef_store_integration_upsert_default(fx->st, &in, &id), 0);
    assert_int_equal(
        admin_count(fx, "SELECT count(*) FROM conversations WHERE integration_id IS NULL"), 0);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages WHERE integration_id IS NULL"),
                     0);
    char *cur = NULL;
    assert_int_equal(ef_store_cursor_get(fx->st, id, &cur), 0);
    assert_string_equal(cur, "777");
    ef_free(cur);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM poll_offsets"), 0);

    /* The old chat continues in the adopted conversation. */
    ef_ingest_item next = {.msg = new_msg(id, "9", "9:2")};
    assert_int_equal(ef_store_ingest(fx->st, &next, 1), 0);
    assert_int_equal(next.messages_count, 2);
    items_cleanup(&next, 1);

    /* Again (a restart): the same row, updated in place. */
    in.settings_json = "{\"mode\":\"webhook\"}";
    char *again = NULL;
    assert_int_equal(ef_store_integration_upsert_default(fx->st, &in, &again), 0);
    assert_string_equal(again, id);
    assert_int_equal(ef_store_cursor_get(fx->st, id, &cur), 0);
    ef_free(cur);
    /* Another bot behind the default: its old cursor is dropped. */
    in.external_id = "654321";
    assert_int_equal(ef_store_integration_set_status(fx->st, id, "connected", NULL), 0);
    ef_free(again);
    assert_int_equal(ef_store_integration_upsert_default(fx->st, &in, &again), 0);
    assert_string_equal(again, id);
    assert_int_equal(ef_store_cursor_get(fx->st, id, &cur), EF_ENOTFOUND);
    ef_integration_row row;
    assert_int_equal(ef_store_integration_get(fx->st, id, &row), 0);
    assert_true(row.is_default);
    assert_string_equal(row.status, "pending");
    assert_string_equal(row.external_id, "654321");
    assert_non_null(strstr(row.settings_json, "webhook"));
    ef_integration_row_cleanup(&row);
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM integrations WHERE is_default"), 1);
    ef_free(again);
    ef_free(id);
}

typedef struct events_seen {
    int notifications;
    int events;
    char order[64]; /* 'i' inbound, 'o' outbound, in the order received */
} events_seen;

static void count_events(const char *payload, void *ud)
{
    events_seen *e = ud;
    e->notifications++;
    json_object *v = json_tokener_parse(payload);
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *d = NULL;
        json_object_object_get_ex(json_object_array_get_idx(v, i), "d", &d);
        size_t k = strlen(e->order);
        if (k + 1 < sizeof(e->order))
            e->order[k] = strcmp(json_object_get_string(d), "inbound") == 0 ? 'i' : 'o';
        e->events++;
    }
    json_object_put(v);
}

/* The live events of a batch's new messages (the web chat's here) reach
 * listeners as arrays of events (sql/022), every message once, a chat's
 * inbound message before its reply. */
static void new_messages_notify_in_arrays(void **state)
{
    NEED_DB(fx);
    char *a = add_integration(fx, "a", "1001");
    ef_store *ls = ef_store_new(fx->url);
    assert_int_equal(ef_store_events_listen(ls), 0);
    ef_ingest_item items[3];
    const char *chats[3] = {"1", "2", "3"};
    char ids[3][8];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s:1", chats[i]);
        ef_msg *m = new_msg(a, chats[i], ids[i]);
        m->platform = "webchat"; /* a name, not owned (ef_msg_new) */
        items[i] = (ef_ingest_item){
            .msg = m, .fsm_json = "{\"state\":\"s\",\"replies\":[{\"text\":\"hi\"}]}"};
    }
    assert_int_equal(ef_store_ingest(fx->st, items, 3), 0);
    events_seen seen = {0};
    for (int k = 0; k < 10 && seen.events < 6; k++)
        assert_true(ef_store_events_wait(ls, 1000, count_events, &seen) >= 0);
    assert_int_equal(seen.events, 6);
    assert_true(seen.notifications <= 2); /* one per INSERT of the statement at most */
    assert_int_equal(admin_count(fx, "SELECT count(*) FROM messages"), 6);
    assert_non_null(strchr(seen.order, 'i'));
    assert_true(strchr(seen.order, 'i') < strchr(seen.order, 'o'));
    ef_store_free(ls);
    items_cleanup(items, 3);
    ef_free(a);
}

static void changes_notify_listeners(void **state)
{
    NEED_DB(fx);
    ef_store *ls = ef_store_new(fx->url);
    assert_int_equal(ef_store_wait_notify(ls, 0), EF_EDB); /* not listening yet */
    assert_int_equal(ef_store_integrations_listen(ls), 0);
    assert_int_equal(ef_store_wait_notify(ls, 0), 0);

    char *id = add_integration(fx, "a", "1001");
    assert_int_equal(ef_store_wait_notify(ls, 2000), 1);
    assert_int_equal(ef_store_wait_notify(ls, 50), 0);

    /* A status that is already so: no notification. */
    assert_int_equal(ef_store_integration_set_status(fx->st, id, "connected", NULL), 0);
    assert_int_equal(ef_store_wait_notify(ls, 2000), 1);
    assert_int_equal(ef_store_integration_set_status(fx->st, id, "connected", NULL), 0);
    assert_int_equal(ef_store_wait_notify(ls, 100), 0);

    /* Several changes: one wake-up consumes them all. */
    assert_int_equal(ef_store_integration_set_enabled(fx->st, id, false), 0);
    assert_int_equal(ef_store_integration_set_enabled(fx->st, id, true), 0);
    usleep(100 * 1000);
    assert_int_equal(ef_store_wait_notify(ls, 2000), 1);
    assert_int_equal(ef_store_wait_notify(ls, 50), 0);

    /* The listening session is killed: EF_EDB, then LISTEN again. */
    char *sql = ef_asprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                            "query LIKE 'LISTEN%%' AND pid <> pg_backend_pid() AND "
                            "datname = current_database()");
    admin_exec(fx, sql);
    ef_free(sql);
    int rc = ef_store_wait_notify(ls, 2000);
    assert_int_equal(rc, EF_EDB);
    assert_int_equal(ef_store_integrations_listen(ls), 0);
    assert_int_equal(ef_store_integration_set_enabled(fx->st, id, false), 0);
    assert_int_equal(ef_store_wait_notify(ls, 2000), 1);
    ef_store_free(ls);
    ef_free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(same_chat_in_two_integrations_is_two_conversations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_value_too_long_rejects_only_its_item, setup, teardown),
        cmocka_unit_test_setup_teardown(deleting_a_conversation_deletes_its_messages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rejected_items_are_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(references_are_refused_on_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(a_conversation_not_active_gets_no_bot_replies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_stale_session_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_customers_profile_is_written_only_when_it_changes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(forgetting_a_group_member_erases_their_messages_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_customer_who_writes_is_deliverable_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_outage_fails_every_item, setup, teardown),
        cmocka_unit_test_setup_teardown(cursors_per_integration, setup, teardown),
        cmocka_unit_test_setup_teardown(outbox_data_errors_are_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(outbox_sent_many_records_a_run, setup, teardown),
        cmocka_unit_test_setup_teardown(outbox_sent_is_planned_for_the_table_as_it_is, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(outbox_fetch_lookup_is_plan_proof, setup, teardown),
        cmocka_unit_test_setup_teardown(ingest_probes_use_their_keys_on_empty_tables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(integrations_add_list_get_change, setup, teardown),
        cmocka_unit_test_setup_teardown(default_adopts_legacy_rows_once, setup, teardown),
        cmocka_unit_test_setup_teardown(changes_notify_listeners, setup, teardown),
        cmocka_unit_test_setup_teardown(new_messages_notify_in_arrays, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
