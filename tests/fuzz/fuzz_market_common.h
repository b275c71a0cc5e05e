/*
 * fuzz_market_common.h -- the order checks the marketplace targets share
 * (fuzz_wb_orders.c, fuzz_oz_orders.c). Header-only.
 */
#ifndef EF_FUZZ_MARKET_COMMON_H
#define EF_FUZZ_MARKET_COMMON_H

#include "fuzz_common.h"

#include "platforms/market.h"

/* One order as the store writes it: a number, a known status and scheme,
 * valid UTF-8 in every text column, strict JSON where JSON is kept. */
static inline void fz_check_order(const ef_order *o, bool status_only_allowed)
{
    if (!o->number || !*o->number || ef_order_rank(o->status) < 0 || !o->scheme ||
        (strcmp(o->scheme, "fbs") != 0 && strcmp(o->scheme, "fbo") != 0))
        abort();
    fz_check_text(o->number);
    fz_check_text(o->order_ref);
    fz_check_text(o->status_raw);
    fz_check_cstr(o->currency, sizeof(o->currency));
    fz_check_text(o->currency);
    if (!o->items_json && !status_only_allowed)
        abort();
    if (o->items_json)
        fz_check_json(o->items_json);
    if (o->raw_json)
        fz_check_json(o->raw_json);
    if (o->amount_minor < -1)
        abort();
}

/* What a fault must leave alone: the state as it was. */
typedef struct fz_state_copy {
    int stage;
    char cursor[256];
    int64_t offset;
    size_t check_pos, requested, pending;
} fz_state_copy;

static inline void fz_state_save(const ef_sync_state *st, fz_state_copy *c)
{
    c->stage = st->stage;
    memcpy(c->cursor, st->cursor, sizeof(c->cursor));
    c->offset = st->offset;
    c->check_pos = st->check_pos;
    c->requested = st->requested;
    c->pending = st->pending ? json_object_array_length(st->pending) : 0;
}

static inline bool fz_state_same(const ef_sync_state *st, const fz_state_copy *c)
{
    fz_state_copy now;
    fz_state_save(st, &now);
    return now.stage == c->stage && strcmp(now.cursor, c->cursor) == 0 && now.offset == c->offset &&
           now.check_pos == c->check_pos && now.requested == c->requested &&
           now.pending == c->pending;
}

static inline void fz_check_result(const ef_mkt_result *r)
{
    fz_check_cstr(r->reason, sizeof(r->reason));
    if (r->fault != 0 && r->fault != EF_EAUTH && r->fault != EF_ELIMIT && r->fault != EF_EIO &&
        r->fault != EF_EPROTO)
        abort();
    if (r->retry_after_ms < 0)
        abort();
}

/* Drives the run on after an answer: every request it builds is complete
 * (a URL, a body that is strict JSON when there is one), and the run ends. */
static inline void fz_drain(const ef_market_ops *ops, const void *cfg, ef_sync_state *st)
{
    for (int i = 0; i < 4; i++) {
        ef_mkt_req rq;
        if (!ops->sync_request(cfg, st, &rq))
            return;
        if (!rq.url || !rq.headers[0])
            abort();
        fz_check_text(rq.url);
        if (rq.body)
            fz_check_json(rq.body);
        ef_mkt_req_cleanup(&rq);
        /* an empty page ends every stage */
        ef_order_list out;
        ef_mkt_result res;
        ef_order_list_init(&out);
        static const char empty[] = "{\"orders\":[],\"next\":0,\"postings\":[]}";
        ops->sync_response(cfg, st, 200, empty, strlen(empty), &out, &res);
        ef_order_list_cleanup(&out);
    }
}

/* A credential check's answer (check_response): the result's contract, and
 * a fault exactly when the status is not 200. */
static inline void fz_check_check_answer(const ef_market_ops *m, const fz_input *in)
{
    ef_mkt_result res;
    m->check_response(in->status, in->body, in->len, &res);
    fz_check_result(&res);
    if ((res.fault == 0) != (in->status == 200))
        abort();
}

#endif /* EF_FUZZ_MARKET_COMMON_H */
