/*
 * fuzz_wb_chat.c -- libFuzzer target: Wildberries buyer-chat answers ->
 * the adapter's poll_response (GET /api/v1/seller/events: events with the
 * next cursor) or parse_send (POST /api/v1/seller/message).
 *
 * Input (fuzz_common.h): an optional first line "<status> [send]", then
 * the answer's body; "send" reads it as the answer to a reply.
 *
 * Checked on every input, besides "no crash, no leak, no sanitizer report":
 *  - poll: a known fault or none; on a fault no event and no cursor; the
 *    cursor is the answer's "next" in decimal (a positive number, only with
 *    events); a wait of chat_busy_ms or chat_idle_ms (10 s on 429); every
 *    event a buyer's message with its keys, valid UTF-8 everywhere, meta
 *    strict JSON; never more events than the answer's "events" array;
 *  - send: a known outcome (200 OK, 401 AUTH, 429 RATE with 10 s, 5xx and
 *    network RETRY, else FAIL), no platform id, NUL-terminated reason.
 */
#include "fuzz_common.h"

#include "platforms/market.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *cfg;
static ef_platform_policy policy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg = fz_open(&ef_platform_wildberries,
                  "{\"api_token\":\"eyJhbGciOiJFUzI1NiJ9.fuzz-token-0123456789\"}",
                  "{\"chat_poll_ms\":\"2000\"}", &policy, "fuzz_wb_chat");
    return 0;
}

/* How many events the answer lists (an upper bound of what may come out). */
static size_t events_in(const fz_input *in)
{
    struct json_object *root = NULL, *res, *ev;
    char err[64];
    size_t n = 0;
    if (ef_json_parse(in->body, in->len, 64, &root, err, sizeof(err)) == 0 &&
        json_object_object_get_ex(root, "result", &res) &&
        json_object_object_get_ex(res, "events", &ev) && json_object_is_type(ev, json_type_array))
        n = json_object_array_length(ev);
    json_object_put(root);
    return n;
}

static void poll(const fz_input *in)
{
    ef_msg_list out;
    ef_poll_result res;
    ef_msg_list_init(&out);
    ef_platform_wildberries.poll_response(cfg, "1700000000000", in->status, in->body, in->len, 64,
                                          &out, &res);
    fz_check_poll(&res, &out, "wildberries");
    if (out.n > events_in(in))
        abort();
    if (res.next_cursor[0]) {
        char *end = NULL;
        long long v = strtoll(res.next_cursor, &end, 10);
        if (*end || v <= 0)
            abort();
    }
    if (!res.fault && res.retry_after_ms != 1000 && res.retry_after_ms != 2000)
        abort();
    if (res.fault && res.retry_after_ms != 0 && res.retry_after_ms != 10000)
        abort();
    for (size_t i = 0; i < out.n; i++) {
        const ef_msg *m = out.items[i];
        if (m->kind != EF_MSG_NEW || strcmp(m->chat_type, "private") != 0)
            abort();
    }
    ef_msg_list_cleanup(&out);
}

static void send_answer(const fz_input *in)
{
    ef_out_msg m = {.row_id = "5b0c1f9e-0000-4000-8000-000000000001",
                    .chat_id = "1:1e265a58-a120-b178-008c-60af2460207c",
                    .text = "Здравствуйте!",
                    .meta_json = "{}"};
    ef_send_result res;
    ef_platform_wildberries.parse_send(cfg, &m, in->status, in->body, in->len, &res);
    fz_check_send(&res);
    if (res.platform_message_id)
        abort();
    ef_send_outcome want = in->status == 200                      ? EF_SEND_OK
                           : in->status == 401                    ? EF_SEND_AUTH
                           : in->status == 429                    ? EF_SEND_RATE
                           : in->status == 0 || in->status >= 500 ? EF_SEND_RETRY
                                                                  : EF_SEND_FAIL;
    if (res.outcome != want)
        abort();
    ef_send_result_cleanup(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in;
    fz_split(data, size, &in);
    if (strcmp(in.word, "send") == 0)
        send_answer(&in);
    else
        poll(&in);
    fz_free(&in);
    return 0;
}
