-- 026_ingest_rows.sql -- a batch's results come back as rows, not as one
-- JSON document (issue 8, speed).
--
-- ef_ingest() answered a batch with a JSON array of objects of twelve keys
-- each: built by jsonb_build_object per event (a type look-up per value,
-- the keys sorted), gathered by jsonb_object_agg, taken apart again in
-- ef_ingest's loop, put together by to_jsonb, printed, and parsed by the
-- gateway with json-c. callgrind (tests/bench/ingest_cost.py, 16 messages
-- of 16 known chats, every call from the same database): 944,000
-- instructions an event with the JSON answer, 818,000 with the same fields
-- as rows, 800,000 with no fields at all. The gateway reads the rows'
-- columns by number (src/store/pg.c).
--
-- Two smaller cuts for a known chat's message, the common case: the
-- customers are written only when one is missing or changed
-- (ef_customers_batch), and a chat's conversation is probed once before
-- the customer and redelivery look-ups that only a new chat needs
-- (ef_ingest_first). With all three, instructions a call (callgrind, same
-- database each run): 16 known chats 15.10 M -> 12.55 M, 4 known chats
-- -> 4.48 M, 1 known chat 2.52 M; 16 new chats 19.45 M -> 17.64 M, 1 new
-- chat 3.09 M -> 3.21 M (one probe more when the customer is new).
--
-- And an inbound row's user_id is its sender (looked up outside private
-- chats), no longer always the conversation's customer: a group member's
-- messages in a conversation someone else opened are theirs, so that
-- forgetting them erases them (027 indexes inbound rows by customer).
--
-- ef_ingest_rows(batch) is the call: one ef_ingest_result row per event,
-- pos its 1-based place in the batch, in no particular order. ef_ingest()
-- stays, the same JSON array as before built from those rows, for anything
-- that still calls it.

CREATE TYPE ef_ingest_result AS (
    pos int,
    result text,             -- stored | duplicate | stale | ignored
    conversation_id uuid,
    session_id text,
    user_id uuid,
    message_row_id uuid,
    state text,
    status text,
    context jsonb,
    messages_count int,
    created_at text,         -- as JSON writes a timestamptz (the session's form)
    version bigint,
    last_message_at bigint,  -- Unix seconds
    skipped boolean);

-- ef_result (005) as a row.
CREATE FUNCTION ef_result_row(p_pos bigint, p_result text, c conversations, p_row uuid,
                              p_skipped boolean) RETURNS ef_ingest_result
LANGUAGE sql STABLE AS $$
    SELECT ROW(p_pos::int, p_result, c.id, c.session_id, c.user_id, p_row, c.current_state,
               c.status, c.context_data, c.messages_count, to_jsonb(c.created_at) #>> '{}',
               c.version, floor(extract(epoch FROM c.updated_at))::bigint,
               p_skipped)::ef_ingest_result
$$;

-- As in 009, the results as rows, and a known chat's event probes for its
-- conversation once before the missing ones are opened.
DROP FUNCTION ef_ingest_first(jsonb, int[]);
CREATE FUNCTION ef_ingest_first(batch jsonb, p_pos int[]) RETURNS SETOF ef_ingest_result
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
    -- (make bench: 513 us per update).
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
        -- The row's customer is who wrote it: in a group chat another
        -- member than the conversation's (its first writer); in a private
        -- chat always the conversation's, without a look-up.
        SELECT w.row_id, (w.cv).id, (w.cv).session_id,
               CASE WHEN w.e->>'chat_type' = 'private' THEN (w.cv).user_id
                    ELSE coalesce((SELECT u.id FROM users u
                                    WHERE u.platform = w.e->>'platform'
                                      AND u.platform_user_id = w.e->'sender'->>'id' LIMIT 1),
                                  (w.cv).user_id) END,
               (w.cv).integration_id,
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
    RETURN QUERY SELECT * FROM unnest(res);
END $$;

-- As in 009, but a batch whose customers are all stored as they are now
-- writes nothing and skips the statement that would (two ModifyTable nodes
-- and a sort set up for nothing: ~150,000 instructions a call).
CREATE OR REPLACE FUNCTION ef_customers_batch(batch jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Every customer of the batch stored with the profile it has now (a
    -- known customer's next message, the common case): nothing to write.
    IF NOT EXISTS (
        SELECT 1
          FROM jsonb_array_elements(batch) AS t(e)
          LEFT JOIN LATERAL (SELECT u.name, u.username, u.language_code FROM users u
                              WHERE u.platform = e->>'platform'
                                AND u.platform_user_id = e->'sender'->>'id' LIMIT 1) u ON true
         WHERE e->>'kind' IN ('new', 'callback', 'edit') AND e->'sender'->>'id' IS NOT NULL
           AND e->>'platform' IS NOT NULL
           AND (u.name IS NULL
                OR (u.name, u.username, u.language_code)
                   IS DISTINCT FROM
                   (left(coalesce(nullif(e->'sender'->>'name', ''), e->'sender'->>'id'), 255),
                    coalesce(left(e->'sender'->>'username', 255), u.username),
                    coalesce(left(e->'sender'->>'lang', 10), u.language_code)))) THEN
        RETURN;
    END IF;
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

-- The chat an event belongs to, as a key.
CREATE FUNCTION ef_event_chat(ev jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(ev->>'integration_id', '-') || ' ' || coalesce(ev->>'platform', '') || ' '
           || coalesce(ev->>'chat_id', '')
$$;

-- The batch as in 009's ef_ingest: customers set-based, each chat's first
-- new message set-based, the rest event by event in batch order; a chat
-- whose first event came back stale has every later event stale too. The
-- per-event functions (004/005) answer with ef_result's JSON, read into a
-- row by name.
CREATE FUNCTION ef_ingest_rows(batch jsonb) RETURNS SETOF ef_ingest_result
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ev jsonb;
    i int := 0;
    r jsonb;
    f ef_ingest_result;
    v_kind text;
    v_key text;
    v_stale text[] := '{}';
    v_pos int[];
    v_done int[] := '{}';
BEGIN
    PERFORM ef_customers_batch(batch);
    v_pos := ef_ingest_first_positions(batch);
    IF cardinality(v_pos) > 0 THEN
        FOR f IN SELECT * FROM ef_ingest_first(batch, v_pos) LOOP
            v_done := v_done || f.pos;
            IF f.result = 'stale' THEN
                v_stale := v_stale || ef_event_chat(batch->(f.pos - 1));
            END IF;
            RETURN NEXT f;
        END LOOP;
    END IF;
    IF cardinality(v_done) = jsonb_array_length(batch) THEN
        RETURN;
    END IF;
    FOR ev IN SELECT * FROM jsonb_array_elements(batch) LOOP
        i := i + 1;
        CONTINUE WHEN i = ANY (v_done);
        v_kind := ev->>'kind';
        v_key := ef_event_chat(ev);
        IF v_key = ANY (v_stale) THEN
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
        f := jsonb_populate_record(NULL::ef_ingest_result, r);
        f.pos := i;
        RETURN NEXT f;
    END LOOP;
    RETURN;
END $$;

-- The JSON answer of 009, from the rows.
CREATE OR REPLACE FUNCTION ef_ingest(batch jsonb) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(to_jsonb(r) - 'pos' ORDER BY r.pos), '[]'::jsonb)
      FROM ef_ingest_rows(batch) r
$$;
