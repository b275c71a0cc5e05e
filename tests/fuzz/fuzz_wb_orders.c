/*
 * fuzz_wb_orders.c -- libFuzzer target: Wildberries Marketplace API answers
 * -> the order sync's sync_response (GET /api/v3/orders: a page of orders
 * with the next cursor; POST /api/v3/orders/status: their statuses) and
 * the credentials check (GET /ping).
 *
 * Input (fuzz_common.h): an optional first line "<status> [list|status|
 * joined|ping]" (default list), then the answer's body. For "status" the
 * run is first brought to its status stage by a fixed page of two listed
 * orders (13833711 and 13833712, the ids the e2e fake uses), so an answer
 * naming them is joined with them; for "joined" the body is the list page
 * and every id the run then asks about is answered confirm/sorted, so the
 * fuzzed orders themselves become rows.
 *
 * Checked on every input: a known fault; on a fault no order and the state
 * unchanged (the same request may be made again); every order with a
 * number, a known status, scheme fbs, valid UTF-8 in every text column,
 * items and raw JSON strict; a list answer never adds more pending orders
 * than it lists; the run goes on from any state with complete requests.
 */
#include "fuzz_market_common.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *cfg;

static const char LISTED[] =
    "{\"next\":13833712,\"orders\":[{\"id\":13833711,\"rid\":\"rid-13833711.0.0\","
    "\"createdAt\":\"2026-12-03T10:00:00Z\",\"nmId\":123456789,\"article\":\"shirt-blue-42\","
    "\"skus\":[\"2000013833711\"],\"price\":129900,\"convertedPrice\":129900,"
    "\"currencyCode\":643,\"convertedCurrencyCode\":643},{\"id\":13833712,\"rid\":"
    "\"rid-13833712.0.0\",\"createdAt\":\"2026-12-03T11:00:00+03:00\",\"price\":99000}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg = fz_open(&ef_platform_wildberries,
                  "{\"api_token\":\"eyJhbGciOiJFUzI1NiJ9.fuzz-token-0123456789\"}",
                  "{\"page_size\":\"100\"}", NULL, "fuzz_wb_orders");
    return 0;
}

static void sync_answer(const fz_input *in, bool status_stage)
{
    static const char *const check[] = {"13833711", "42", "not-a-number", ""};
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    st.since = 1764000000;
    st.until = 1764700000;
    st.check = check;
    st.n_check = 4;
    ef_order_list out;
    ef_mkt_result res;
    ef_order_list_init(&out);
    ef_mkt_req rq;
    if (!ef_market_wildberries.sync_request(cfg, &st, &rq))
        abort();
    ef_mkt_req_cleanup(&rq);
    if (status_stage) {
        ef_market_wildberries.sync_response(cfg, &st, 200, LISTED, strlen(LISTED), &out, &res);
        if (res.fault || out.n || !ef_market_wildberries.sync_request(cfg, &st, &rq))
            abort();
        ef_mkt_req_cleanup(&rq);
    }
    fz_state_copy before;
    fz_state_save(&st, &before);
    ef_market_wildberries.sync_response(cfg, &st, in->status, in->body, in->len, &out, &res);
    fz_check_result(&res);
    if (res.fault && (out.n || !fz_state_same(&st, &before)))
        abort();
    if (!status_stage && out.n)
        abort(); /* a page of the list has no status: orders wait in pending */
    if (!res.fault && !status_stage) {
        size_t now = st.pending ? json_object_array_length(st.pending) : 0;
        if (now - before.pending + res.skipped != st.requested - before.requested)
            abort();
    }
    for (size_t i = 0; i < out.n; i++)
        fz_check_order(&out.items[i], true);
    fz_drain(&ef_market_wildberries, cfg, &st);
    ef_order_list_cleanup(&out);
    ef_sync_state_cleanup(&st);
}

/* "joined": the body is a page of the list; the status request the run
 * then makes is answered for every id it asks about, so each listed order
 * is joined with a status (fill_listed reads what the fuzzer wrote). */
static void joined(const fz_input *in)
{
    ef_sync_state st;
    memset(&st, 0, sizeof(st));
    st.since = 1764000000;
    st.until = 1764700000;
    ef_order_list out;
    ef_mkt_result res;
    ef_order_list_init(&out);
    ef_mkt_req rq;
    if (!ef_market_wildberries.sync_request(cfg, &st, &rq))
        abort();
    ef_mkt_req_cleanup(&rq);
    ef_market_wildberries.sync_response(cfg, &st, in->status, in->body, in->len, &out, &res);
    fz_check_result(&res);
    for (int round = 0; round < 3 && ef_market_wildberries.sync_request(cfg, &st, &rq); round++) {
        struct json_object *req = NULL, *ids, *ans;
        char err[64];
        if (!rq.body) { /* the list again (a fault, or more pages): not this mode's */
            ef_mkt_req_cleanup(&rq);
            break;
        }
        if (ef_json_parse(rq.body, strlen(rq.body), 8, &req, err, sizeof(err)) != 0 ||
            !json_object_object_get_ex(req, "orders", &ids))
            abort();
        ans = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(ids); i++) {
            struct json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_get(json_object_array_get_idx(ids, i)));
            json_object_object_add(o, "supplierStatus", json_object_new_string("confirm"));
            json_object_object_add(o, "wbStatus", json_object_new_string("sorted"));
            json_object_array_add(ans, o);
        }
        struct json_object *body = json_object_new_object();
        json_object_object_add(body, "orders", ans);
        const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
        ef_market_wildberries.sync_response(cfg, &st, 200, text, strlen(text), &out, &res);
        if (res.fault)
            abort();
        json_object_put(body);
        json_object_put(req);
        ef_mkt_req_cleanup(&rq);
    }
    for (size_t i = 0; i < out.n; i++)
        fz_check_order(&out.items[i], true);
    ef_order_list_cleanup(&out);
    ef_sync_state_cleanup(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in;
    fz_split(data, size, &in);
    if (strcmp(in.word, "ping") == 0)
        fz_check_check_answer(&ef_market_wildberries, &in);
    else if (strcmp(in.word, "joined") == 0)
        joined(&in);
    else
        sync_answer(&in, strcmp(in.word, "status") == 0);
    fz_free(&in);
    return 0;
}
