-- 028_ingest_one_insert.sql -- a batch's messages in one INSERT, and no
-- INSERT of conversations when every chat has one (issue 8, speed).
--
-- ef_ingest_first (026) ran three statements that set up a table for
-- writing on every call, whatever the batch held: an INSERT of the
-- conversations of new chats (conversations' indexes, the arbiter, a
-- sort), then one statement with two INSERTs into messages (the inbound
-- rows, then the rows they queue: each INSERT opening the nine indexes of
-- messages, preparing their predicates and firing the live-event trigger)
-- and the conversations' UPDATE. Now:
--   * the inbound rows and the rows they queue are one INSERT (a UNION ALL
--     in the same order as before: every inbound row of the batch, then
--     per event the button press answered, the read receipt, the replies).
--     An outbound row is outside the arbiter index (its predicate is
--     direction = 'inbound'), so ON CONFLICT still skips only a
--     redelivered inbound row, and the check that every inbound row was
--     written counts the inbound rows the INSERT returns;
--   * the INSERT of new chats' conversations runs only when the probe it
--     starts with finds a chat without one.
-- callgrind (tests/bench/ingest_cost.py, instructions a call, every run from
-- the same database): 1 known chat 2.57 M -> 2.34 M, 4 known chats (a batch
-- at a steady 2,000/s) 4.46 M -> 4.25 M, 16 known chats 12.4 M -> 12.2 M,
-- 1 new chat 3.22 M -> 3.17 M, 16 new chats 17.48 M -> 17.60 M (+0.7 %: the
-- probe asked twice), 8 chats with two messages each 21.44 M -> 21.26 M.

CREATE OR REPLACE FUNCTION ef_ingest_first(batch jsonb, p_pos int[]) RETURNS SETOF ef_ingest_result
LANGUAGE plpgsql AS $$
DECLARE
    res ef_ingest_result[];
    v_ins bigint;
    v_w bigint;
BEGIN
    -- Only the chats without an open conversation go on to the customer
    -- and redelivery look-ups: one probe for a known chat, not three. The
    -- probe is a LATERAL subquery with LIMIT 1, which the planner cannot
    -- turn into a join: as NOT EXISTS it became a hash anti-join reading
    -- every conversation once per batch on a database without statistics
    -- (make bench: 513 us per update). A batch of known chats only (the
    -- common case) asks the probe alone and skips the INSERT.
    IF EXISTS (
        SELECT 1
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS b(e, i)
          LEFT JOIN LATERAL (SELECT 1 AS found FROM conversations c
                              WHERE c.integration_id = (b.e->>'integration_id')::uuid
                                AND c.platform = b.e->>'platform'
                                AND c.chat_id = b.e->>'chat_id'
                                AND c.status <> 'closed' LIMIT 1) c ON true
         WHERE b.i = ANY (p_pos) AND c.found IS NULL) THEN
        WITH missing AS MATERIALIZED (
            SELECT b.i, b.e
              FROM jsonb_array_elements(batch) WITH ORDINALITY AS b(e, i)
              LEFT JOIN LATERAL (SELECT 1 AS found FROM conversations c
                                  WHERE c.integration_id = (b.e->>'integration_id')::uuid
                                    AND c.platform = b.e->>'platform'
                                    AND c.chat_id = b.e->>'chat_id'
                                    AND c.status <> 'closed' LIMIT 1) c ON true
             WHERE b.i = ANY (p_pos) AND c.found IS NULL
        )
        INSERT INTO conversations (session_id, user_id, integration_id, platform, chat_id,
                                   chat_type, context_data)
        SELECT gen_random_uuid()::text, u.id, (e->>'integration_id')::uuid, e->>'platform',
               e->>'chat_id', e->>'chat_type',
               CASE WHEN e->'sender'->>'lang' IS NOT NULL
                    THEN jsonb_build_object('lang', left(e->'sender'->>'lang', 2))
                    ELSE '{}'::jsonb END
          FROM missing
          CROSS JOIN LATERAL (SELECT u.id FROM users u
                               WHERE u.platform = e->>'platform'
                                 AND u.platform_user_id = e->'sender'->>'id' LIMIT 1) u
          -- A redelivery opens nothing (its conversation may have been closed
          -- or moved since): ef_ingest answers it on the per-event path.
          LEFT JOIN LATERAL (SELECT 1 AS found FROM messages m
                              WHERE m.integration_id = (e->>'integration_id')::uuid
                                AND m.platform = e->>'platform'
                                AND m.platform_message_id = e->>'message_id'
                                AND m.direction = 'inbound' LIMIT 1) d ON true
         WHERE d.found IS NULL
         ORDER BY e->>'integration_id', e->>'platform', e->>'chat_id'
        ON CONFLICT (integration_id, platform, chat_id) WHERE status <> 'closed' DO NOTHING;
    END IF;

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
        -- One INSERT for the batch's inbound rows and, after them, the rows
        -- they queue (in this order per event: the button press answered
        -- whatever the status, the read receipt, the replies). Two INSERT
        -- statements into messages set up its nine indexes, their
        -- predicates and the live-event trigger twice a call. An outbound
        -- row is outside the arbiter index (direction = 'inbound'): ON
        -- CONFLICT skips only a redelivered inbound row.
        INSERT INTO messages (id, conversation_id, session_id, user_id, integration_id, content,
                              role, direction, platform, platform_message_id, intent,
                              entities, confidence, metadata, delivery_status, next_attempt_at,
                              created_at)
        SELECT r.id, r.conversation_id, r.session_id, r.user_id, r.integration_id, r.content,
               r.role, r.direction, r.platform, r.platform_message_id, r.intent, r.entities,
               r.confidence, r.metadata, r.delivery_status, r.next_attempt_at, clock_timestamp()
          FROM (
            -- The row's customer is who wrote it: in a group chat another
            -- member than the conversation's (its first writer); in a
            -- private chat always the conversation's, without a look-up.
            SELECT w.row_id AS id, (w.cv).id AS conversation_id, (w.cv).session_id,
                   CASE WHEN w.e->>'chat_type' = 'private' THEN (w.cv).user_id
                        ELSE coalesce((SELECT u.id FROM users u
                                        WHERE u.platform = w.e->>'platform'
                                          AND u.platform_user_id = w.e->'sender'->>'id' LIMIT 1),
                                      (w.cv).user_id) END AS user_id,
                   (w.cv).integration_id, coalesce(w.e->>'text', '') AS content,
                   'user'::message_role AS role, 'inbound'::message_direction AS direction,
                   (w.e->>'platform')::varchar AS platform,
                   (w.e->>'message_id')::varchar AS platform_message_id,
                   (w.e->'nlp'->>'intent')::varchar AS intent,
                   coalesce(w.e->'nlp'->'entities', '{}'::jsonb) AS entities,
                   (w.e->'nlp'->>'confidence')::numeric(3,2) AS confidence,
                   coalesce(w.e->'meta', '{}'::jsonb)
                   || jsonb_build_object('date', (w.e->>'date')::bigint)
                   || CASE WHEN w.f IS NOT NULL
                           THEN jsonb_build_object('decision', jsonb_strip_nulls(jsonb_build_object(
                                    'state', w.f->'state', 'why', w.f->'why',
                                    'ranked', w.f->'ranked', 'actions', w.f->'actions',
                                    'skipped', w.skip)))
                           ELSE '{}'::jsonb END AS metadata,
                   NULL::delivery_status AS delivery_status,
                   NULL::timestamptz AS next_attempt_at
              FROM w
            UNION ALL
            SELECT gen_random_uuid(), (w.cv).id, (w.cv).session_id, (w.cv).user_id,
                   (w.cv).integration_id, o.content, o.role::message_role, 'outbound',
                   (w.cv).platform, NULL, NULL, '{}'::jsonb, NULL, o.meta, 'queued', now()
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
          ) r
        ON CONFLICT (integration_id, platform, platform_message_id) WHERE direction = 'inbound'
        DO NOTHING
        RETURNING direction
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
    SELECT (SELECT array_agg(x.r) FROM (
                SELECT ef_result_row(u.i, 'stored', u.cv, u.row_id, u.skipped) AS r
                  FROM upd u
                UNION ALL
                SELECT ef_result_row(j.i, CASE WHEN j.ok THEN 'duplicate' ELSE 'stale' END, j.cv,
                                     CASE WHEN j.ok THEN (
                                         SELECT m.id FROM messages m
                                          WHERE m.integration_id = (j.cv).integration_id
                                            AND m.platform = j.e->>'platform'
                                            AND m.platform_message_id = j.e->>'message_id'
                                            AND m.direction = 'inbound') END, false)
                  FROM j
                 WHERE NOT j.ok OR j.dup) x),
           (SELECT count(*) FROM ins WHERE ins.direction = 'inbound'), (SELECT count(*) FROM w)
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
    RETURN QUERY SELECT * FROM unnest(res);
END $$;
