/*
 * fuzz_send_answer.c -- libFuzzer target: the platforms' answers to a
 * reply -> parse_send of Telegram (sendMessage, Bot API JSON) and WhatsApp
 * (Cloud API /messages, Graph error bodies).
 *
 * Input (fuzz_common.h): an optional first line "<status> [tg|wa]"
 * (default: both read the body as a 200), then the answer's body.
 *
 * Checked on every input: a known outcome; a platform message id only when
 * sent (Telegram: "<chat>:<message_id>"), valid UTF-8 (the store writes
 * it); a new chat id exactly when MIGRATED; a wait of 0..1 day; a
 * NUL-terminated reason; Telegram's 401 is AUTH (the token, not the row),
 * a 200 is OK unless its body is a JSON object without "ok": true (a
 * cut-off or non-JSON body was surely delivered); WhatsApp's 2xx without
 * "error" is OK.
 */
#include "fuzz_common.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *tg, *wa;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    ef_platform_policy policy;
    if (ef_platform_telegram.open("{\"bot_token\":\"123456789:AAFuzz-fuzz-fuzz-fuzz-fuzz\"}",
                                  "{\"mode\":\"poll\"}", &tg, &policy, err, sizeof(err)) != 0 ||
        ef_platform_whatsapp.open("{\"access_token\":\"EAAGfuzzfuzzfuzzfuzzfuzz\","
                                  "\"app_secret\":\"fuzz-app-secret-0123456789abcdef\","
                                  "\"phone_number_id\":\"106540352242922\"}",
                                  "{}", &wa, &policy, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_send_answer: %s\n", err);
        abort();
    }
    return 0;
}

/* A 200 whose body is a JSON object without "ok": true is the Bot API
 * saying no; any other 200 (cut off, not JSON) was surely delivered. */
static bool refused(const fz_input *in)
{
    struct json_object *root = NULL, *ok;
    if (in->len) {
        json_tokener *tok = json_tokener_new_ex(32);
        root = json_tokener_parse_ex(tok, in->body, (int)in->len);
        json_tokener_free(tok);
    }
    bool no = json_object_is_type(root, json_type_object) &&
              !(json_object_object_get_ex(root, "ok", &ok) && json_object_get_boolean(ok));
    json_object_put(root);
    return no;
}

static void telegram(const fz_input *in)
{
    ef_out_msg m = {.row_id = "5b0c1f9e-0000-4000-8000-000000000003",
                    .chat_id = "-1001234567890",
                    .chat_type = "supergroup",
                    .text = "Здравствуйте!",
                    .meta_json = "{}"};
    ef_send_result res;
    ef_platform_telegram.parse_send(tg, &m, in->status, in->body, in->len, &res);
    fz_check_send(&res);
    if (in->status == 200 && res.outcome != EF_SEND_OK && !refused(in))
        abort();
    if (in->status == 401 && res.outcome != EF_SEND_AUTH)
        abort();
    if (res.platform_message_id && strncmp(res.platform_message_id, "-1001234567890:", 15) != 0)
        abort();
    ef_send_result_cleanup(&res);
}

static void whatsapp(const fz_input *in)
{
    ef_out_msg m = {.row_id = "5b0c1f9e-0000-4000-8000-000000000004",
                    .chat_id = "79161234567",
                    .channel_id = "106540352242922",
                    .text = "Здравствуйте!",
                    .meta_json = "{}"};
    ef_send_result res;
    ef_platform_whatsapp.parse_send(wa, &m, in->status, in->body, in->len, &res);
    fz_check_send(&res);
    if (in->status < 200 || in->status >= 300) {
        if (res.outcome == EF_SEND_OK)
            abort();
    }
    ef_send_result_cleanup(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in;
    fz_split(data, size, &in);
    if (strcmp(in.word, "wa") != 0)
        telegram(&in);
    if (strcmp(in.word, "tg") != 0)
        whatsapp(&in);
    fz_free(&in);
    return 0;
}
