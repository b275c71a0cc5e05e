/*
 * retention.h -- the retention task (EF_RETENTION_DAYS): its own thread
 * and PostgreSQL connection; at start and then every interval it deletes
 * conversations closed or idle for longer than the retention, with their
 * messages, customers left without any, and old dead letters, in batches
 * (one short transaction each, lock waits bounded) so it never holds long
 * locks. One INFO line per run with the counts.
 */
#ifndef EF_RETENTION_H
#define EF_RETENTION_H

typedef struct ef_retention ef_retention;

typedef struct {
    const char *pg_url;
    int days;       /* 0: no task (start returns NULL) */
    int interval_s; /* between runs */
} ef_retention_opts;

/* NULL when days is 0 or the thread cannot start. */
ef_retention *ef_retention_start(const ef_retention_opts *o);
/* Stops (a batch in flight finishes) and frees; NULL is fine. */
void ef_retention_stop(ef_retention *r);

#endif /* EF_RETENTION_H */
