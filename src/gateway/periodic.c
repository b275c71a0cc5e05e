/*
 * periodic.c -- a task on its own thread every interval. See periodic.h.
 */
#include "gateway/periodic.h"

#include "base/ef.h"

#include <pthread.h>
#include <time.h>

struct ef_periodic {
    ef_periodic_opts o;
    char *pg_url;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
};

bool ef_periodic_stopping(const ef_periodic *p)
{
    ef_periodic *m = (ef_periodic *)p; /* the lock only */
    pthread_mutex_lock(&m->lock);
    bool s = m->stop;
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* Waits interval_s or until stopped; true when stopped. */
static bool wait_interval(ef_periodic *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += p->o.interval_s;
    pthread_mutex_lock(&p->lock);
    while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &until) == 0)
        ;
    bool s = p->stop;
    pthread_mutex_unlock(&p->lock);
    return s;
}

static void *periodic_main(void *arg)
{
    ef_periodic *p = arg;
    ef_store *st = ef_store_new(p->pg_url);
    do
        p->o.run(p->o.arg, st, p);
    while (!wait_interval(p));
    ef_store_free(st);
    return NULL;
}

static void destroy(ef_periodic *p)
{
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    ef_free(p->pg_url);
    ef_free(p);
}

ef_periodic *ef_periodic_start(const ef_periodic_opts *o)
{
    ef_periodic *p = ef_calloc(1, sizeof(*p));
    p->o = *o;
    p->pg_url = ef_strdup(o->pg_url);
    p->o.pg_url = NULL; /* borrowed strings are not kept, but the name */
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
        EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "%s: cannot start its thread", o->name);
        destroy(p);
        return NULL;
    }
    return p;
}

void ef_periodic_stop(ef_periodic *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    destroy(p);
}
