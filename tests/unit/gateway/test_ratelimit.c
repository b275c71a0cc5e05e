/*
 * test_ratelimit.c -- the dispatcher's sliding windows (gateway/ratelimit.c)
 * on a fake clock: the policies of platform.h (30 per second per bot, 20 per
 * minute per group) never let more requests arrive within one span than
 * the limit, even when every request in flight lands at its last moment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/ratelimit.h"

/* Runs a greedy sender for total_ms with each request taking flight_ms;
 * records answer times; returns the most answers seen in any span. */
static int max_in_span(int cap, int64_t span, int64_t flight, int64_t total, int *sent)
{
    ef_window w;
    ef_window_init(&w, cap, span);
    int64_t answers[4096];
    int n = 0;
    int64_t in_flight_until[64];
    int nf = 0;
    for (int64_t now = 0; now < total; now++) {
        for (int i = 0; i < nf;) {
            if (in_flight_until[i] <= now) {
                ef_window_done(&w, now);
                answers[n++] = now;
                in_flight_until[i] = in_flight_until[--nf];
            } else {
                i++;
            }
        }
        while (nf < 64 && ef_window_ready_at(&w, now) <= now) {
            ef_window_start(&w);
            in_flight_until[nf++] = now + flight;
        }
    }
    ef_window_cleanup(&w);
    int worst = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = i; j < n && answers[j] < answers[i] + span; j++)
            k++;
        worst = k > worst ? k : worst;
    }
    *sent = n;
    return worst;
}

static void test_never_more_than_the_cap_in_a_span(void **state)
{
    (void)state;
    int sent;
    /* Telegram per bot: 30/s, requests taking 40 ms. */
    assert_true(max_in_span(30, 1000, 40, 5000, &sent) <= 30);
    assert_true(sent >= 120); /* and the limit is used, not starved */
    /* a group: 20/min, slow requests. */
    assert_true(max_in_span(20, 60000, 900, 180000, &sent) <= 20);
    assert_true(sent >= 40);
}

static void test_in_flight_requests_count(void **state)
{
    (void)state;
    ef_window w;
    ef_window_init(&w, 2, 1000);
    assert_int_equal(ef_window_ready_at(&w, 0), 0);
    ef_window_start(&w);
    ef_window_start(&w);
    /* two in flight, none answered: only an answer frees a place */
    assert_true(ef_window_ready_at(&w, 10) == INT64_MAX);
    ef_window_done(&w, 500);
    /* one answered at 500 (the whole ms clock: up to 501) counts until
     * 1501; one still in flight */
    assert_int_equal(ef_window_ready_at(&w, 600), 1501);
    ef_window_done(&w, 700);
    assert_int_equal(ef_window_ready_at(&w, 800), 1501);
    assert_int_equal(ef_window_ready_at(&w, 1600), 1600);
    ef_window_cleanup(&w);
}

static void test_zeroed_window_is_no_limit(void **state)
{
    (void)state;
    ef_window w = {0};
    for (int i = 0; i < 1000; i++)
        ef_window_start(&w);
    assert_int_equal(ef_window_ready_at(&w, 42), 42);
    ef_window_done(&w, 43);
    ef_window_cleanup(&w);
}

/* A window is idle (its chat may be forgotten) only when nothing is in
 * flight and its newest answer has left the span. */
static void test_idle_only_after_the_span(void **state)
{
    (void)state;
    ef_window w;
    ef_window_init(&w, 20, 60000);
    assert_true(ef_window_idle(&w, 0));
    ef_window_start(&w);
    assert_false(ef_window_idle(&w, 1000));
    ef_window_done(&w, 1000);
    ef_window_start(&w);
    ef_window_done(&w, 5000);
    assert_false(ef_window_idle(&w, 60999)); /* the answer at 5000 still counts */
    assert_false(ef_window_idle(&w, 65000)); /* answered up to 5001 */
    assert_true(ef_window_idle(&w, 65001));
    ef_window_cleanup(&w);
    ef_window z = {0};
    assert_true(ef_window_idle(&z, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_more_than_the_cap_in_a_span),
        cmocka_unit_test(test_in_flight_requests_count),
        cmocka_unit_test(test_zeroed_window_is_no_limit),
        cmocka_unit_test(test_idle_only_after_the_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
