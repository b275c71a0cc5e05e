/*
 * fuzz_oz_orders.c -- libFuzzer target: Ozon Seller API answers -> the
 * order sync's sync_response (POST /v4/posting/fbs/list: postings with a
 * cursor and has_next; POST /v3/posting/fbo/list: "result" postings by
 * offset) and the credentials check (POST /v1/warehouse/list).
 *
 * Input (fuzz_common.h): an optional first line "<status> [fbs|fbo|check]"
 * (default fbs), then the answer's body. For "fbo" the run is first
 * brought to its FBO stage by an empty FBS page.
 *
 * Checked on every input: a known fault; on a fault no order and the state
 * unchanged; at most one order per listed posting, each with a number, a
 * known status, the stage's scheme, valid UTF-8 in every text column
 * (currency included), items and raw JSON strict; the run goes on from any
 * state with complete requests.
 */
#include "fuzz_market_common.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg = fz_open(&ef_platform_ozon,
                  "{\"client_id\":\"836492\",\"api_key\":"
                  "\"5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c\"}",
                  "{\"page_size\":\"50\"}", NULL, "fuzz_oz_orders");
    return 0;
}

/* Postings the answer lists, wherever the adapter looks for them. */
static size_t postings_in(const fz_input *in)
{
    struct json_object *root = NULL, *r = NULL, *p = NULL;
    char err[64];
    size_t n = 0;
    if (ef_json_parse(in->body, in->len, 32, &root, err, sizeof(err)) != 0)
        return 0;
    if (json_object_object_get_ex(root, "result", &r) && json_object_is_type(r, json_type_array))
        n = json_object_array_length(r);
    else if (json_object_object_get_ex(json_object_is_type(r, json_type_object) ? r : root,
                                       "postings", &p) &&
             json_object_is_type(p, json_type_array))
        n = json_object_array_length(p);
    json_object_put(root);
    return n;
}

static void sync_answer(const fz_input *in, bool fbo)
{
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    st.since = 1764000000;
    st.until = 1764700000;
    ef_order_list out;
    ef_mkt_result res;
    ef_order_list_init(&out);
    ef_mkt_req rq;
    if (fbo) {
        static const char empty[] = "{\"postings\":[],\"cursor\":\"\",\"has_next\":false}";
        ef_market_ozon.sync_response(cfg, &st, 200, empty, strlen(empty), &out, &res);
        if (res.fault || out.n)
            abort();
    }
    if (!ef_market_ozon.sync_request(cfg, &st, &rq))
        abort();
    ef_mkt_req_cleanup(&rq);
    fz_state_copy before;
    fz_state_save(&st, &before);
    ef_market_ozon.sync_response(cfg, &st, in->status, in->body, in->len, &out, &res);
    fz_check_result(&res);
    if (res.fault && (out.n || !fz_state_same(&st, &before)))
        abort();
    if (!res.fault && out.n + res.skipped != postings_in(in))
        abort();
    for (size_t i = 0; i < out.n; i++) {
        fz_check_order(&out.items[i], false);
        if (strcmp(out.items[i].scheme, fbo ? "fbo" : "fbs") != 0)
            abort();
    }
    fz_drain(&ef_market_ozon, cfg, &st);
    ef_order_list_cleanup(&out);
    ef_sync_state_cleanup(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in;
    fz_split(data, size, &in);
    if (strcmp(in.word, "check") == 0)
        fz_check_check_answer(&ef_market_ozon, &in);
    else
        sync_answer(&in, strcmp(in.word, "fbo") == 0);
    fz_free(&in);
    return 0;
}
