/*
 * decide.h -- understanding and answering inside the pipeline.
 *
 * For each customer message of a batch, before the commit: skip it if it
 * was stored before (a redelivery never reaches the bot twice), load the
 * conversation's session (Redis, else PostgreSQL), run the matcher and the
 * FSM, and attach the decision (intent, entities, confidence, new state,
 * context patch, replies) to the ingest item, so that the inbound row, the
 * conversation's new state and the replies are committed together
 * (invariant 5). Messages of one chat in one batch see each other's state.
 *
 * PostgreSQL is the truth: each decision carries the session it was made
 * from (conversation id and version, kept in the Redis session), the commit
 * refuses it when the row moved on (a failed write-back, an operator's
 * change) and the pipeline decides those items again from PostgreSQL
 * (ef_decider_rerun).
 *
 * Must never: reply in group chats or channels (the bot answers customers
 * in private chats), reply to bots, or let a message be committed without
 * its decision (when the session cannot be loaded the batch fails and the
 * platform redelivers).
 *
 * Thread model: one ef_decider per pipeline worker; bots are shared and
 * immutable (the pipeline holds their channels for the batch).
 */
#ifndef EF_DECIDE_H
#define EF_DECIDE_H

#include "base/ef.h"
#include "nlp/nlp.h"
#include "store/store.h"

typedef struct ef_decider ef_decider;

ef_decider *ef_decider_new(void);
void ef_decider_free(ef_decider *d);

/* Decides for every eligible item with its channel's bot (bots[i]; NULL:
 * nothing is decided, the event is only stored). Strings written into
 * items are owned by the decider until ef_decider_reset(). Returns 0, or
 * EF_EDB when a session could not be loaded (nothing should be committed
 * then). */
int ef_decider_run(ef_decider *d, ef_store *st, ef_kv *kv, ef_ingest_item *items,
                   const ef_bot *const *bots, size_t n);
/* The commit refused these items' decisions as made from a stale session
 * (EF_ING_STALE; items[] holds only those, in their batch order): decides
 * them again from their chats' sessions in PostgreSQL, never Redis, and
 * replaces each item's decision (an item no longer eligible, e.g. stored
 * meanwhile, is left without one). Chats of the batch not named here keep
 * what the decider knew. Returns 0 or EF_EDB like ef_decider_run(). */
int ef_decider_rerun(ef_decider *d, ef_store *st, ef_ingest_item *items, const ef_bot *const *bots,
                     size_t n);
void ef_decider_reset(ef_decider *d);

#endif /* EF_DECIDE_H */
