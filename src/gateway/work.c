/*
 * work.c -- the API's worker pool. See work.h for the contract.
 *
 * One mutex-protected FIFO of tasks; each thread owns one ef_store and one
 * ef_kv for its whole life (store.h: a connection belongs to one thread).
 */
#include "gateway/work.h"

#include <pthread.h>
#include <string.h>

#define MAX_THREADS 16

typedef struct task task;
struct task {
    ef_work_run_fn run;
    ef_work_done_fn done;
    void *ud;
    task *next;
};

struct ef_work {
    ef_work_opts opts;
    char *pg_url, *redis_url;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    task *head, *tail;
    size_t queued;
    bool stopping, stopped;
    pthread_t threads[MAX_THREADS];
    int nthreads;
};

static task *take(ef_work *w)
{
    task *t = w->head;
    if (t) {
        w->head = t->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
    }
    return t;
}

static void *worker_main(void *arg)
{
    ef_work *w = arg;
    ef_work_conn c = {.st = ef_store_new(w->pg_url), .kv = ef_kv_new(w->redis_url)};
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        task *t = take(w);
        if (!t)
            break; /* stopping and nothing left */
        bool cancelled = w->stopping;
        pthread_mutex_unlock(&w->lock);
        t->run(cancelled ? NULL : &c, t->ud);
        if (t->done)
            t->done(t->ud);
        ef_free(t);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    ef_kv_free(c.kv);
    ef_store_free(c.st);
    return NULL;
}

ef_work *ef_work_new(const ef_work_opts *opts)
{
    ef_work *w = ef_calloc(1, sizeof(*w));
    w->opts = *opts;
    w->pg_url = ef_strdup(opts->pg_url ? opts->pg_url : "");
    w->redis_url = ef_strdup(opts->redis_url ? opts->redis_url : "");
    if (w->opts.max_queue == 0)
        w->opts.max_queue = 1024;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int n = opts->threads < 1 ? 1 : opts->threads > MAX_THREADS ? MAX_THREADS : opts->threads;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0)
            EF_PANIC("cannot start an API worker thread");
        w->nthreads++;
    }
    return w;
}

int ef_work_submit(ef_work *w, ef_work_run_fn run, ef_work_done_fn done, void *ud)
{
    pthread_mutex_lock(&w->lock);
    int rc = w->stopping ? EF_EINVAL : w->queued >= w->opts.max_queue ? EF_ELIMIT : 0;
    if (rc == 0) {
        task *t = ef_calloc(1, sizeof(*t));
        t->run = run;
        t->done = done;
        t->ud = ud;
        if (w->tail)
            w->tail->next = t;
        else
            w->head = t;
        w->tail = t;
        w->queued++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void ef_work_stop(ef_work *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    bool already = w->stopped;
    w->stopping = true;
    w->stopped = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    if (already)
        return;
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
}

void ef_work_free(ef_work *w)
{
    if (!w)
        return;
    ef_work_stop(w);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    ef_free(w->pg_url);
    ef_free(w->redis_url);
    ef_free(w);
}
