/*
 * fuzz_tg_poll.c -- libFuzzer target: Bot API getUpdates answers -> the
 * Telegram adapter's poll_response (one bad update skipped, never the
 * batch).
 *
 * Input (fuzz_common.h): an optional first line "<status>", then the
 * answer's body (default: a 200).
 *
 * Checked on every input: a known fault (401 AUTH, 409 CONFLICT, 429 EIO
 * with a wait of at most a day, a 200 that is not {"ok":true,"result":[..]}
 * EPROTO, else EIO) or none; on a fault no event and no cursor; without a
 * fault the cursor is one past the highest integer update_id below
 * INT64_MAX (none when no update has one); every update gives at most one event (events +
 * skipped <= updates), each with its keys, valid UTF-8, meta strict JSON.
 */
#include "fuzz_common.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg = fz_open(&ef_platform_telegram, "{\"bot_token\":\"123456789:AAFuzz-fuzz-fuzz-fuzz-fuzz\"}",
                  "{\"mode\":\"poll\"}", NULL, "fuzz_tg_poll");
    return 0;
}

/* The updates of a well-formed answer and their highest integer update_id
 * (-1 when none has one); false when the answer is not one. */
static bool updates_in(const fz_input *in, size_t *n, int64_t *max_id)
{
    struct json_object *root = NULL, *ok, *res;
    char err[64];
    bool well = false;
    *n = 0;
    *max_id = -1;
    if (ef_json_parse(in->body, in->len, 64, &root, err, sizeof(err)) == 0 &&
        json_object_object_get_ex(root, "ok", &ok) && json_object_get_boolean(ok) &&
        json_object_object_get_ex(root, "result", &res) &&
        json_object_is_type(res, json_type_array)) {
        well = true;
        *n = json_object_array_length(res);
        for (size_t i = 0; i < *n; i++) {
            struct json_object *id;
            if (json_object_object_get_ex(json_object_array_get_idx(res, i), "update_id", &id) &&
                json_object_is_type(id, json_type_int) && json_object_get_int64(id) > *max_id &&
                json_object_get_int64(id) < INT64_MAX)
                *max_id = json_object_get_int64(id);
        }
    }
    json_object_put(root);
    return well;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in;
    fz_split(data, size, &in);
    ef_msg_list out;
    ef_poll_result res;
    ef_msg_list_init(&out);
    ef_platform_telegram.poll_response(cfg, "", in.status, in.body, in.len, 64, &out, &res);
    fz_check_poll(&res, &out, "telegram");
    size_t n;
    int64_t max_id;
    bool well = updates_in(&in, &n, &max_id);
    if (in.status == 200 && well) {
        if (res.fault || out.n + res.skipped > n)
            abort();
        char want[64] = "";
        if (max_id >= 0)
            snprintf(want, sizeof(want), "%lld", (long long)max_id + 1);
        if (strcmp(res.next_cursor, want) != 0)
            abort();
    } else {
        int want = in.status == 401   ? EF_EAUTH
                   : in.status == 409 ? EF_ECONFLICT
                   : in.status == 200 ? EF_EPROTO
                                      : EF_EIO;
        if (res.fault != want || res.retry_after_ms > 86400LL * 1000)
            abort();
    }
    ef_msg_list_cleanup(&out);
    fz_free(&in);
    return 0;
}
