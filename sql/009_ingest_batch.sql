-- 009_ingest_batch.sql -- the write path made set-based, and the indexes
-- and checks every message paid for cut to what a query needs (issue 8,
-- speed).
--
-- Measured before (make bench, docs/performance.md): ~2,200 us of
-- PostgreSQL CPU per update, of which half was ef_ingest() running ~19
-- statements per event in a plpgsql loop (the customer upserted twice, the
-- duplicate checked three times, the conversation read again, five
-- foreign-key trigger queries), and a third the dispatcher's fetch, whose
-- "queued row before this one in its chat" lookup walked idx_messages_outbox
-- once per fetched row.
--
-- Now a batch's common case -- the first new message (or button press) of
-- each chat in the batch -- is written by ef_ingest_first() in four
-- statements whatever the batch's size: missing customers, missing
-- conversations, then one statement that locks the chats' conversations,
-- inserts the inbound rows and their replies and moves each conversation
-- on once. Everything else (a chat's later events in the same batch,
-- edits, reactions, statuses, events without an integration) goes through
-- the per-event functions of 004/005 afterwards, in batch order, so a
-- chat's events are still applied in order. Results are the same as before
-- event by event (sql/005 ef_result + "skipped").
--
-- Nothing here names a platform.

-- ---- customers: written only when missing or changed ----------------------

-- As in 003, but an existing customer whose profile did not change is read,
-- not upserted: ON CONFLICT DO UPDATE .. WHERE false still locks the row and
-- writes WAL for it, once per message.
CREATE OR REPLACE FUNCTION ef_upsert_customer(ev jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    s jsonb := ev->'sender';
    v_id uuid;
    v_same boolean;
    v_name text := left(coalesce(nullif(s->>'name', ''), s->>'id'), 255);
BEGIN
    SELECT u.id, (u.name, u.username, u.language_code)
                 IS NOT DISTINCT FROM (v_name, coalesce(left(s->>'username', 255), u.username),
                                       coalesce(left(s->>'lang', 10), u.language_code))
      INTO v_id, v_same
      FROM users u
     WHERE u.platform = ev->>'platform' AND u.platform_user_id = s->>'id';
    IF v_id IS NOT NULL AND v_same THEN
        RETURN v_id;
    END IF;
    INSERT INTO users AS u (platform, platform_user_id, name, username, language_code, role)
    VALUES (ev->>'platform', s->>'id', v_name, left(s->>'username', 255),
            coalesce(left(s->>'lang', 10), 'ru'), 'customer')
    ON CONFLICT (platform, platform_user_id) WHERE platform_user_id IS NOT NULL
    DO UPDATE SET name = EXCLUDED.name,
                  username = coalesce(EXCLUDED.username, u.username),
                  language_code = coalesce(left(s->>'lang', 10), u.language_code),
                  updated_at = now()
        WHERE (u.name, u.username, u.language_code)
              IS DISTINCT FROM (EXCLUDED.name, coalesce(EXCLUDED.username, u.username),
                                coalesce(left(s->>'lang', 10), u.language_code))
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT id INTO v_id FROM users
         WHERE platform = ev->>'platform' AND platform_user_id = s->>'id';
    END IF;
    RETURN v_id;
END $$;

-- The customers of a batch's message events, set-based: the missing ones
-- inserted, the changed ones updated (the latest event's profile wins), in
-- one global key order so that two batches cannot deadlock on them.
CREATE FUNCTION ef_customers_batch(batch jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Every lookup is a LATERAL subquery: an index probe per customer
    -- whatever the table's size or statistics (a hash join would read the
    -- whole table once per batch).
    WITH s AS (
        SELECT DISTINCT ON (e->>'platform', e->'sender'->>'id')
               e->>'platform' AS platform, e->'sender'->>'id' AS uid,
               left(coalesce(nullif(e->'sender'->>'name', ''), e->'sender'->>'id'), 255) AS name,
               left(e->'sender'->>'username', 255) AS username,
               left(e->'sender'->>'lang', 10) AS lang
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, i)
         WHERE e->>'kind' IN ('new', 'callback', 'edit') AND e->'sender'->>'id' IS NOT NULL
           AND e->>'platform' IS NOT NULL
         ORDER BY e->>'platform', e->'sender'->>'id', i DESC
    ), cur AS (
        SELECT s.*, u.id,
               (u.name, u.username, u.language_code)
               IS DISTINCT FROM (s.name, coalesce(s.username, u.username),
                                 coalesce(s.lang, u.language_code)) AS changed
          FROM s
          LEFT JOIN LATERAL (SELECT u.id, u.name, u.username, u.language_code
                               FROM users u
                              WHERE u.platform = s.platform AND u.platform_user_id = s.uid
                              LIMIT 1) u ON true
    ), upd AS (
        UPDATE users u
           SET name = c.name, username = coalesce(c.username, u.username),
               language_code = coalesce(c.lang, u.language_code), updated_at = now()
          FROM (SELECT * FROM cur WHERE cur.id IS NOT NULL AND cur.changed) c
         WHERE u.id = c.id
        RETURNING 1
    )
    INSERT INTO users (platform, platform_user_id, name, username, language_code, role)
    SELECT cur.platform, cur.uid, cur.name, cur.username, coalesce(cur.lang, 'ru'), 'customer'
      FROM cur
     WHERE cur.id IS NULL
     ORDER BY cur.platform, cur.uid
    ON CONFLICT (platform, platform_user_id) WHERE platform_user_id IS NOT NULL DO NOTHING;
END $$;

-- ---- the first message of each chat, set-based -----------------------------

-- Which events of the batch (1-based positions) ef_ingest_first() takes:
-- a new message or button press with an integration and a chat, that is
-- the first event of its chat in the batch. The others keep the
-- per-event path.
CREATE FUNCTION ef_ingest_first_positions(batch jsonb) RETURNS int[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(i ORDER BY i), '{}')
      FROM (SELECT i, e,
                   row_number() OVER (PARTITION BY coalesce(e->>'integration_id', '-'),
                                                   coalesce(e->>'platform', ''),
                                                   coalesce(e->>'chat_id', '')
                                      ORDER BY i) AS nth
              FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, i)) x
     WHERE nth = 1 AND e->>'kind' IN ('new', 'callback')
       AND e->>'integration_id' IS NOT NULL AND e->>'platform' IS NOT NULL
       AND e->>'chat_id' IS NOT NULL AND e->>'message_id' IS NOT NULL
       AND e->'sender'->>'id' IS NOT NULL
$$;

-- The events at p_pos (each the first of its own chat, see above): their
-- conversations opened when missing, then in one statement the
-- conversations locked (in key order: concurrent batches cannot deadlock),
-- each decision checked against the locked row (005: a stale base writes
-- nothing and says "stale"), the inbound rows inserted (a redelivery is
-- "duplicate"), the replies queued in the same transaction (invariant 5),
-- and each conversation moved on once. Returns {"<position>": result}.
-- created_at is clock_timestamp() per row, as the per-event path has it:
-- a chat's outbound rows sort in the order they were made.
CREATE FUNCTION ef_ingest_first(batch jsonb, p_pos int[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    res jsonb;
    v_ins bigint;
    v_w bigint;
BEGIN
    INSERT INTO conversations (session_id, user_id, integration_id, platform, chat_id,
                               chat_type, context_data)
    SELECT gen_random_uuid()::text, u.id, (e->>'integration_id')::uuid, e->>'platform',
           e->>'chat_id', e->>'chat_type',
           CASE WHEN e->'sender'->>'lang' IS NOT NULL
                THEN jsonb_build_object('lang', left(e->'sender'->>'lang', 2))
                ELSE '{}'::jsonb END
      FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, i)
      CROSS JOIN LATERAL (SELECT u.id FROM users u
                           WHERE u.platform = e->>'platform'
                             AND u.platform_user_id = e->'sender'->>'id' LIMIT 1) u
      LEFT JOIN LATERAL (SELECT 1 AS found FROM conversations c
                          WHERE c.integration_id = (e->>'integration_id')::uuid
                            AND c.platform = e->>'platform' AND c.chat_id = e->>'chat_id'
                            AND c.status <> 'closed' LIMIT 1) c ON true
      -- A redelivery opens nothing (its conversation may have been closed
      -- or moved since): ef_ingest answers it on the per-event path.
      LEFT JOIN LATERAL (SELECT 1 AS found FROM messages m
                          WHERE m.integration_id = (e->>'integration_id')::uuid
                            AND m.platform = e->>'platform'
                            AND m.platform_message_id = e->>'message_id'
                            AND m.direction = 'inbound' LIMIT 1) d ON true
     WHERE i = ANY (p_pos) AND c.found IS NULL AND d.found IS NULL
     ORDER BY e->>'integration_id', e->>'platform', e->>'chat_id'
    ON CONFLICT (integration_id, platform, chat_id) WHERE status <> 'closed' DO NOTHING;

    -- No step joins two of its own intermediate results (the planner
    -- estimates one row for each and would loop over one per row of the
    -- other): every write is driven by w, one row per event, and the
    -- results come from the UPDATE's RETURNING and from j.
    WITH ev AS (
        SELECT i, e, (e->>'integration_id')::uuid AS integration_id, e->'fsm' AS f
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, i)
         WHERE i = ANY (p_pos)
    ), lk AS (
        -- Locked in the order of the chat's unique key: two batches that
        -- share chats lock them in the same order and cannot deadlock. An
        -- index probe per chat (LATERAL), whatever the statistics say.
        SELECT x.cv
          FROM (SELECT * FROM ev ORDER BY integration_id, e->>'platform', e->>'chat_id') k
          CROSS JOIN LATERAL (SELECT c AS cv FROM conversations c
                               WHERE c.integration_id = k.integration_id
                                 AND c.platform = k.e->>'platform'
                                 AND c.chat_id = k.e->>'chat_id' AND c.status <> 'closed'
                                 FOR UPDATE) x
    ), j AS (
        -- ok: the decision's base matches the locked row (005
        -- ef_base_matches); applied: its effects are written (active);
        -- dup: the message is stored already (a redelivery).
        SELECT ev.i, ev.e, ev.f, lk.cv,
               (ev.f IS NULL OR jsonb_typeof(ev.e->'base') IS DISTINCT FROM 'object'
                OR ((ev.e->'base'->>'conversation_id' IS NULL
                     OR ev.e->'base'->>'conversation_id' = (lk.cv).id::text)
                    AND (ev.e->'base'->>'version')::bigint = (lk.cv).version)) AS ok,
               EXISTS (SELECT 1 FROM messages m
                        WHERE m.integration_id = ev.integration_id
                          AND m.platform = ev.e->>'platform'
                          AND m.platform_message_id = ev.e->>'message_id'
                          AND m.direction = 'inbound') AS dup,
               ev.f IS NOT NULL AND (lk.cv).status = 'active' AS applied,
               CASE WHEN ev.f IS NOT NULL AND (lk.cv).status IS DISTINCT FROM 'active'
                    THEN 'conversation ' || (lk.cv).status::text END AS skip,
               gen_random_uuid() AS row_id
          FROM ev
          JOIN lk ON (lk.cv).integration_id = ev.integration_id
                 AND (lk.cv).platform = ev.e->>'platform' AND (lk.cv).chat_id = ev.e->>'chat_id'
    ), w AS (
        SELECT j.*,
               CASE WHEN j.applied AND jsonb_typeof(j.f->'replies') = 'array'
                    THEN jsonb_array_length(j.f->'replies') ELSE 0 END AS n_replies
          FROM j
         WHERE j.ok AND NOT j.dup
    ), ins AS (
        INSERT INTO messages (id, conversation_id, session_id, user_id, integration_id, content,
                              role, direction, platform, platform_message_id, intent,
                              entities, confidence, metadata, created_at)
        SELECT w.row_id, (w.cv).id, (w.cv).session_id, (w.cv).user_id, (w.cv).integration_id,
               coalesce(w.e->>'text', ''), 'user', 'inbound', w.e->>'platform',
               w.e->>'message_id', w.e->'nlp'->>'intent',
               coalesce(w.e->'nlp'->'entities', '{}'::jsonb),
               (w.e->'nlp'->>'confidence')::numeric(3,2),
               coalesce(w.e->'meta', '{}'::jsonb)
               || jsonb_build_object('date', (w.e->>'date')::bigint)
               || CASE WHEN w.f IS NOT NULL
                       THEN jsonb_build_object('decision', jsonb_strip_nulls(jsonb_build_object(
                                'state', w.f->'state', 'why', w.f->'why',
                                'ranked', w.f->'ranked', 'actions', w.f->'actions',
                                'skipped', w.skip)))
                       ELSE '{}'::jsonb END,
               clock_timestamp()
          FROM w
        ON CONFLICT (integration_id, platform, platform_message_id) WHERE direction = 'inbound'
        DO NOTHING
        RETURNING 1
    ), outq AS (
        -- Per stored event, in this order: the button press answered
        -- (whatever the status), the read receipt, the replies.
        INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content,
                              role, direction, platform, metadata, delivery_status,
                              next_attempt_at, created_at)
        SELECT (w.cv).id, (w.cv).session_id, (w.cv).user_id, (w.cv).integration_id, o.content,
               o.role::message_role, 'outbound', (w.cv).platform, o.meta, 'queued', now(),
               clock_timestamp()
          FROM w
          CROSS JOIN LATERAL (
              SELECT 1 AS k, '' AS content, 'system' AS role,
                     jsonb_build_object('method', 'answerCallbackQuery',
                                        'callback_query_id', w.e->>'callback_id') AS meta
               WHERE w.e->>'callback_id' IS NOT NULL
              UNION ALL
              SELECT 2, '', 'system',
                     jsonb_build_object('method', 'markRead', 'message_id', w.e->>'message_id')
               WHERE coalesce((w.e->>'read_receipt')::boolean, false) AND w.f IS NOT NULL
              UNION ALL
              SELECT 2 + r.n, coalesce(r.r->>'text', ''), 'assistant',
                     (r.r - 'text') || jsonb_build_object('reply_to', w.e->>'message_id',
                                                          'thread_id', w.e->>'thread_id')
                FROM jsonb_array_elements(CASE WHEN w.n_replies > 0 THEN w.f->'replies'
                                               ELSE '[]'::jsonb END)
                     WITH ORDINALITY AS r(r, n)
              ORDER BY 1
          ) o
        RETURNING 1
    ), upd AS (
        UPDATE conversations c
           SET messages_count = c.messages_count + 1 + w.n_replies,
               updated_at = now(),
               last_inbound_at = now(),
               version = c.version + CASE WHEN w.f IS NOT NULL THEN 1 ELSE 0 END,
               undeliverable = CASE WHEN coalesce((w.e->'sender'->>'is_bot')::boolean, false)
                                    THEN c.undeliverable ELSE false END,
               undeliverable_reason = CASE WHEN coalesce((w.e->'sender'->>'is_bot')::boolean,
                                                         false)
                                           THEN c.undeliverable_reason END,
               current_state = CASE WHEN w.applied THEN coalesce(w.f->>'state', c.current_state)
                                    ELSE c.current_state END,
               status = CASE WHEN w.applied
                             THEN coalesce((w.f->>'status')::conversation_status, c.status)
                             ELSE c.status END,
               escalated_at = CASE WHEN w.applied AND w.f->>'status' = 'escalated' THEN now()
                                   ELSE c.escalated_at END,
               closed_at = CASE WHEN w.applied AND w.f->>'status' = 'closed' THEN now()
                                ELSE c.closed_at END,
               -- The patch sets keys; a JSON null in it deletes the key.
               context_data = CASE WHEN w.applied
                                        AND jsonb_typeof(w.f->'context_patch') = 'object'
                                   THEN (coalesce(c.context_data, '{}'::jsonb)
                                         || (w.f->'context_patch'))
                                        - ARRAY(SELECT key FROM jsonb_each(w.f->'context_patch')
                                                 WHERE value = 'null'::jsonb)
                                   ELSE c.context_data END
          FROM w
         WHERE c.id = (w.cv).id
        RETURNING w.i, c AS cv, w.row_id, w.f IS NOT NULL AND NOT w.applied AS skipped
    )
    SELECT (SELECT jsonb_object_agg(x.i::text, x.r) FROM (
                SELECT u.i, ef_result('stored', u.cv, u.row_id)
                            || jsonb_build_object('skipped', u.skipped) AS r
                  FROM upd u
                UNION ALL
                SELECT j.i, CASE WHEN NOT j.ok THEN ef_result('stale', j.cv, NULL)
                                 ELSE ef_result('duplicate', j.cv, (
                                     SELECT m.id FROM messages m
                                      WHERE m.integration_id = (j.cv).integration_id
                                        AND m.platform = j.e->>'platform'
                                        AND m.platform_message_id = j.e->>'message_id'
                                        AND m.direction = 'inbound')) END
                  FROM j
                 WHERE NOT j.ok OR j.dup) x),
           (SELECT count(*) FROM ins), (SELECT count(*) FROM w)
      INTO res, v_ins, v_w;
    -- A redelivery committed by another transaction while this one waited
    -- for the conversation's lock is invisible to dup (the statement's
    -- snapshot) and was skipped by ON CONFLICT: then the counts differ and
    -- the batch is run again (SQLSTATE 40001, which src/store/pg.c
    -- retries), when dup sees it.
    IF v_ins <> v_w THEN
        RAISE EXCEPTION 'a message of the batch was stored concurrently'
              USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN coalesce(res, '{}'::jsonb);
END $$;

-- The batch: customers set-based, each chat's first new message set-based,
-- the rest event by event in batch order (as in 005), with a first message
-- that ef_ingest_first left out (a redelivery whose conversation is closed
-- or gone). A chat whose first event came back stale has every later event
-- stale too.
CREATE OR REPLACE FUNCTION ef_ingest(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    ev jsonb;
    i int := 0;
    res jsonb[] := '{}';
    r jsonb;
    v_kind text;
    v_key text;
    v_stale text[] := '{}';
    v_pos int[];
    v_first jsonb := '{}'::jsonb;
BEGIN
    PERFORM ef_customers_batch(batch);
    v_pos := ef_ingest_first_positions(batch);
    IF cardinality(v_pos) > 0 THEN
        v_first := ef_ingest_first(batch, v_pos);
    END IF;
    FOR ev IN SELECT * FROM jsonb_array_elements(batch) LOOP
        i := i + 1;
        v_kind := ev->>'kind';
        v_key := coalesce(ev->>'integration_id', '-') || ' ' || coalesce(ev->>'platform', '')
                 || ' ' || coalesce(ev->>'chat_id', '');
        IF i = ANY (v_pos) AND v_first ? (i::text) THEN
            r := v_first->(i::text);
        ELSIF v_key = ANY (v_stale) THEN
            r := jsonb_build_object('result', 'stale');
        ELSE
            r := CASE
                WHEN v_kind IN ('new', 'callback', 'edit') THEN ef_ingest_message(ev)
                WHEN v_kind = 'status' THEN ef_ingest_status(ev)
                ELSE ef_ingest_change(ev) END;
        END IF;
        IF r->>'result' = 'stale' THEN
            v_stale := v_stale || v_key;
        END IF;
        res := array_append(res, r);
    END LOOP;
    RETURN to_jsonb(res);
END $$;

-- ---- sessions of many chats in one statement --------------------------------

-- The open conversations' sessions (005 ef_session_json) of the chats in
-- p_chats, a JSON array of {"i", "g" (integration id or null), "p", "c"};
-- returns {"<i>": session} for the chats that have one. Serves the
-- gateway's session load for a whole batch on a cache miss.
CREATE FUNCTION ef_chat_sessions(p_chats jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(k->>'i', ef_session_json(x.c)), '{}'::jsonb)
      FROM jsonb_array_elements(p_chats) k
     CROSS JOIN LATERAL (SELECT c FROM conversations c
                          WHERE c.integration_id = (k->>'g')::uuid AND c.platform = k->>'p'
                            AND c.chat_id = k->>'c' AND c.status <> 'closed' LIMIT 1) x
$$;

-- ---- indexes: each serves a named query, the rest are gone --------------------

-- The dispatcher's fetch (src/store/outbox.c FETCH_DUE_SQL) asks, per due
-- row, for the queued row before it in its conversation. Without an index
-- of its own the planner walked idx_messages_outbox from the start for
-- every fetched row (50-70 ms per fetch of 500 under load). Rows leave it
-- once sent.
CREATE INDEX idx_messages_outbox_chat ON messages(conversation_id, created_at)
    WHERE direction = 'outbound' AND delivery_status = 'queued';
COMMENT ON INDEX idx_messages_outbox_chat IS
    'Serves FETCH_DUE_SQL''s LATERAL: the queued outbound row before m in its conversation.';

COMMENT ON INDEX idx_messages_conversation_id IS
    'Serves conversation histories (ef_api_conversation, events.c) and ef_customer_forget.';
COMMENT ON INDEX idx_messages_user_id IS
    'Serves ef_customer_forget and ef_retention_batch (NOT EXISTS per customer).';
COMMENT ON INDEX idx_messages_platform_message IS
    'Serves ef_find_message for outbound rows (delivery statuses, reactions by platform id).';
COMMENT ON INDEX uq_messages_inbound IS
    'One row per platform message (invariant 2); ef_ingest_first duplicate detection.';

-- Never read by a query of the gateway or the console; every insert paid
-- for them.
DROP INDEX IF EXISTS idx_messages_session_id;
DROP INDEX IF EXISTS idx_messages_intent;

-- Every message updates its conversation's updated_at: an index on it made
-- each of those updates non-HOT (a new entry in every index of the table).
-- The console's list (ef_api_conversations: status filter, newest activity
-- first, a page) reads the escalated ones through idx_conversations_status
-- and sorts the page's top-N in memory; read replicas serve larger consoles
-- (docs/scaling.md).
DROP INDEX IF EXISTS idx_conversations_updated_at;
DROP INDEX IF EXISTS idx_conversations_activity;
-- Room on each page for the new versions of its rows (HOT updates).
ALTER TABLE conversations SET (fillfactor = 70);

COMMENT ON INDEX idx_conversations_session_id IS 'Serves ef_session (session by id).';
COMMENT ON INDEX idx_conversations_user_id IS
    'Serves ef_customer_forget and ef_retention_batch.';
COMMENT ON INDEX idx_conversations_platform_chat IS
    'Serves the per-event functions'' IS NOT DISTINCT FROM lookups (no index condition on '
    'integration_id there) and chats without an integration.';
COMMENT ON INDEX idx_conversations_status IS 'Serves the console''s escalation queue.';

-- ---- foreign keys checked per message row ---------------------------------

-- messages.user_id and messages.integration_id are copied by the ingest
-- functions from the conversation row they hold locked, whose own foreign
-- keys check them; the per-row trigger query (and the KEY SHARE lock it
-- takes on the customer's and the integration's rows, WAL included) cost
-- two queries per message row. Customers are removed by ef_customer_forget
-- and ef_retention_batch (008), which delete their messages first; an
-- integration with history is never deleted (004: disabled instead).
-- messages.conversation_id keeps its foreign key and its cascade.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_user_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_integration_id_fkey;
