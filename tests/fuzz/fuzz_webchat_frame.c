/*
 * fuzz_webchat_frame.c -- libFuzzer target: any bytes as one text frame a
 * visitor sends on /ws/chat -> what ws.c does with it (strict JSON with the
 * socket's limits, "visitor" and "date" set from the socket) -> the web
 * chat adapter's parse; and the same bytes as a visitor id -> verify.
 *
 * Checked on every input: at most one event, none on error; a message or
 * button press in the visitor's chat (the id's random part), sent by the
 * visitor, its platform id "<chat>:<client id>", text of 1..4096 valid
 * UTF-8 bytes, meta strict JSON; a "seen" frame a STATUS of "web:<row id>"
 * delivered or read; verify accepts the id the handshake issued and
 * refuses any other bytes (one byte changed, the input itself unless it is
 * that id).
 */
#include "fuzz_common.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *cfg;
static char visitor[96];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg = fz_open(&ef_platform_webchat,
                  "{\"visitor_key\":\"000102030405060708090a0b0c0d0e0f"
                  "101112131415161718191a1b1c1d1e1f\"}",
                  "{}", NULL, "fuzz_webchat_frame");
    ef_buf b;
    ef_buf_init(&b, sizeof(visitor) - 1);
    ef_http_req rq = {0};
    if (ef_platform_webchat.handshake(cfg, &rq, &b) != 0 || b.len >= sizeof(visitor))
        abort();
    snprintf(visitor, sizeof(visitor), "%.*s", (int)b.len, b.data);
    ef_buf_cleanup(&b);
    return 0;
}

static void check_verify(const uint8_t *data, size_t size)
{
    ef_http_req rq = {.auth = visitor};
    if (ef_platform_verify(&ef_platform_webchat, cfg, &rq) != 0)
        abort();
    char *id = ef_strndup((const char *)data, size);
    rq.auth = id;
    int rc = ef_platform_verify(&ef_platform_webchat, cfg, &rq);
    if (rc != (strcmp(id, visitor) == 0 ? 0 : EF_EAUTH))
        abort();
    char bad[96];
    snprintf(bad, sizeof(bad), "%s", visitor);
    size_t at = size % strlen(bad);
    bad[at] = bad[at] == 'a' ? 'b' : 'a';
    rq.auth = bad;
    if (ef_platform_verify(&ef_platform_webchat, cfg, &rq) != EF_EAUTH)
        abort();
    ef_free(id);
}

static void check_event(const ef_msg *m, const char *type)
{
    fz_check_msg(m, "webchat");
    char chat[40];
    snprintf(chat, sizeof(chat), "%.32s", visitor + 3);
    if (strcmp(m->chat_id, chat) != 0 || strcmp(m->sender_id, chat) != 0 || m->date != 1764700000)
        abort();
    if (strcmp(type, "seen") == 0) {
        if (m->kind != EF_MSG_STATUS || strncmp(m->target_id, "web:", 4) != 0 ||
            strlen(m->target_id) != 40 ||
            (strcmp(m->status, "delivered") != 0 && strcmp(m->status, "read") != 0))
            abort();
        return;
    }
    if (m->kind != (strcmp(type, "button") == 0 ? EF_MSG_CALLBACK : EF_MSG_NEW))
        abort();
    if (strncmp(m->message_id, chat, 32) != 0 || m->message_id[32] != ':' || !m->message_id[33] ||
        m->text_len == 0 || m->text_len > 4096)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_verify(data, size);
    struct json_object *root = NULL, *t;
    char err[160];
    /* ws.c's limits for one frame */
    ef_json_limits lim = {.max_depth = 8, .max_string = 8192, .max_array = 64, .max_keys = 32};
    char *frame = ef_malloc(size ? size : 1);
    if (size)
        memcpy(frame, data, size);
    int rc = ef_json_parse_limits(frame, size, &lim, &root, err, sizeof(err));
    ef_free(frame);
    if (rc != 0 || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return 0;
    }
    json_object_object_add(root, "visitor", json_object_new_string(visitor));
    json_object_object_add(root, "date", json_object_new_int64(1764700000));
    const char *type =
        json_object_object_get_ex(root, "type", &t) && json_object_is_type(t, json_type_string)
            ? json_object_get_string(t)
            : "";
    ef_msg_list out;
    ef_parse_info info;
    memset(&info, 0, sizeof(info));
    ef_msg_list_init(&out);
    rc = ef_platform_parse(&ef_platform_webchat, root, &out, &info);
    fz_check_cstr(info.note, sizeof(info.note));
    if ((rc != 0 && out.n != 0) || (rc == 0 && out.n != 1) || (rc != 0 && rc != EF_EPROTO))
        abort();
    if (rc != 0 && !info.note[0])
        abort();
    for (size_t i = 0; i < out.n; i++)
        check_event(out.items[i], type);
    ef_msg_list_cleanup(&out);
    json_object_put(root);
    return 0;
}
