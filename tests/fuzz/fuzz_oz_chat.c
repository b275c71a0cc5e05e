/*
 * fuzz_oz_chat.c -- libFuzzer target: Ozon buyer-chat answers -> the
 * adapter's poll_response (POST /v3/chat/list, POST /v3/chat/history) and
 * parse_send (POST /v1/chat/send/message).
 *
 * Input (fuzz_common.h): an optional first line "<status> [<cursor>|send]",
 * then the answer's body. The cursor is the one the request was made with:
 * "" or "L:<chat>" reads a chat list, "H:<chat>:<from>" a chat's history
 * (default "H:<a chat>:1", so a bare history answer exercises the
 * messages); "send" reads the answer to a reply.
 *
 * Checked on every input: a known fault; on a fault no event and no
 * cursor; a list answer gives no event and a cursor "H:<chat>:<id>" (or
 * none and the idle wait); a history answer gives "H:<chat>:<id>" or
 * "L:<chat>" for the same chat, at most one event per message, each the
 * buyer's, in that chat, with its keys and valid UTF-8, meta strict JSON;
 * every cursor fits the poll request again, and that request is strict
 * JSON. Send: a known outcome, no platform id, NUL-terminated reason.
 */
#include "fuzz_common.h"

#include "platforms/market.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHAT "a4b2f9de-5c1e-4a8e-9f6b-2d7c3e8a1b0f"

static void *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg = fz_open(&ef_platform_ozon,
                  "{\"client_id\":\"836492\",\"api_key\":"
                  "\"5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c\"}",
                  "{}", NULL, "fuzz_oz_chat");
    return 0;
}

/* Messages in a history answer (an upper bound of the events). */
static size_t messages_in(const fz_input *in)
{
    struct json_object *root = NULL, *m;
    char err[64];
    size_t n = 0;
    if (ef_json_parse(in->body, in->len, 64, &root, err, sizeof(err)) == 0 &&
        json_object_object_get_ex(root, "messages", &m) && json_object_is_type(m, json_type_array))
        n = json_object_array_length(m);
    json_object_put(root);
    return n;
}

/* The next poll from this cursor builds a complete request. */
static void next_request(const char *cursor)
{
    ef_out_req rq;
    if (ef_platform_ozon.poll_request(cfg, cursor, 0, &rq) != 0 || !rq.url || !rq.header ||
        !rq.header2)
        abort();
    fz_check_json(rq.body);
    ef_out_req_cleanup(&rq);
}

static void poll(const fz_input *in)
{
    /* The cursor is one the adapter made (or ""): valid UTF-8. */
    bool sane = in->word[0] && ef_utf8_valid(in->word, strlen(in->word));
    const char *cursor = sane ? in->word : "H:" CHAT ":1";
    /* A history cursor as the adapter reads it: "H:", a chat of 1..40
     * bytes, ':', a message id of 1..23 bytes. */
    const char *sep = strncmp(cursor, "H:", 2) == 0 ? strrchr(cursor + 2, ':') : NULL;
    char chat[96] = "";
    if (sep)
        snprintf(chat, sizeof(chat), "%.*s", (int)(sep - cursor - 2), cursor + 2);
    bool history = sep && chat[0] && strlen(chat) <= 40 && sep[1] && strlen(sep + 1) < 24;
    ef_msg_list out;
    ef_poll_result res;
    ef_msg_list_init(&out);
    ef_platform_ozon.poll_response(cfg, cursor, in->status, in->body, in->len, 64, &out, &res);
    fz_check_poll(&res, &out, "ozon");
    const char *nc = res.next_cursor;
    if (!res.fault && history) {
        if (out.n > messages_in(in))
            abort();
        char h[100], l[100];
        snprintf(h, sizeof(h), "H:%s:", chat);
        snprintf(l, sizeof(l), "L:%s", chat);
        if (strncmp(nc, h, strlen(h)) != 0 && strcmp(nc, l) != 0)
            abort();
        for (size_t i = 0; i < out.n; i++)
            if (strcmp(out.items[i]->chat_id, chat) != 0 || out.items[i]->kind != EF_MSG_NEW)
                abort();
    } else if (!res.fault) {
        if (out.n)
            abort(); /* a chat list carries no messages */
        if (nc[0] && strncmp(nc, "H:", 2) != 0 && strncmp(nc, "L:", 2) != 0)
            abort();
    }
    if (nc[0])
        next_request(nc);
    ef_msg_list_cleanup(&out);
}

static void send_answer(const fz_input *in)
{
    ef_out_msg m = {.row_id = "5b0c1f9e-0000-4000-8000-000000000002",
                    .chat_id = CHAT,
                    .text = "Здравствуйте!",
                    .meta_json = "{}"};
    ef_send_result res;
    ef_platform_ozon.parse_send(cfg, &m, in->status, in->body, in->len, &res);
    fz_check_send(&res);
    if (res.platform_message_id || (res.outcome == EF_SEND_OK) != (in->status == 200))
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
