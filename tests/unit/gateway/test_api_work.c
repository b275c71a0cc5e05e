/*
 * test_api_work.c -- the API's work pool (gateway/work.c): every task runs
 * and gets its done call exactly once, on a worker thread with that
 * worker's connections; a full queue and a stopped pool refuse (and then
 * nothing runs); tasks still queued at stop run with no connection.
 * No database: the store URL points at a closed port (connections are
 * only tried when used).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/work.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

typedef struct counter {
    pthread_mutex_t lock;
    int ran, done, cancelled;
    int wait_ms; /* each run sleeps this long */
} counter;

static void run(ef_work_conn *c, void *ud)
{
    counter *k = ud;
    if (k->wait_ms)
        usleep((useconds_t)k->wait_ms * 1000);
    pthread_mutex_lock(&k->lock);
    if (c) {
        assert_non_null(c->st);
        assert_non_null(c->kv);
        k->ran++;
    } else {
        k->cancelled++;
    }
    pthread_mutex_unlock(&k->lock);
}

static void done(void *ud)
{
    counter *k = ud;
    pthread_mutex_lock(&k->lock);
    k->done++;
    pthread_mutex_unlock(&k->lock);
}

static ef_work *pool(int threads, size_t max_queue)
{
    ef_work_opts o = {.pg_url = "postgresql://127.0.0.1:1/none?connect_timeout=1",
                      .redis_url = "redis://127.0.0.1:1/0",
                      .threads = threads,
                      .max_queue = max_queue};
    return ef_work_new(&o);
}

static void test_every_task_runs_and_is_done_once(void **state)
{
    (void)state;
    counter k = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ef_work *w = pool(3, 1000);
    for (int i = 0; i < 500; i++)
        assert_int_equal(ef_work_submit(w, run, done, &k), 0);
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&k.lock);
        int d = k.done;
        pthread_mutex_unlock(&k.lock);
        if (d == 500)
            break;
        usleep(10000);
    }
    ef_work_free(w);
    assert_int_equal(k.ran + k.cancelled, 500);
    assert_int_equal(k.done, 500);
    assert_int_equal(k.ran, 500);
}

static void test_full_queue_and_stopped_pool_refuse(void **state)
{
    (void)state;
    counter k = {.lock = PTHREAD_MUTEX_INITIALIZER, .wait_ms = 50};
    ef_work *w = pool(1, 2);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 10; i++) {
        int rc = ef_work_submit(w, run, done, &k);
        if (rc == 0)
            accepted++;
        else if (rc == EF_ELIMIT)
            refused++;
    }
    assert_true(refused > 0);
    assert_true(accepted >= 2 && accepted <= 3);
    ef_work_stop(w);
    assert_int_equal(ef_work_submit(w, run, done, &k), EF_EINVAL);
    ef_work_free(w);
    /* Each accepted task ran or was cancelled, and got its done. */
    assert_int_equal(k.ran + k.cancelled, accepted);
    assert_int_equal(k.done, accepted);
    assert_true(k.cancelled >= 1); /* queued behind the slow one when stop came */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_runs_and_is_done_once),
        cmocka_unit_test(test_full_queue_and_stopped_pool_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
