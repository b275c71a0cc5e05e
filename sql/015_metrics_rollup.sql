-- 015_metrics_rollup.sql -- hourly rollups into the seed's platform_metrics
-- (issue 10): per integration and hour, messages received and sent,
-- errors, API calls, escalations, the median first response and the order
-- sync's duration, computed from the stored rows by ef_metrics_rollup
-- (called by the gateway's rollup thread, src/gateway/metrics_rollup.c) and
-- read by GET /api/v1/metrics (ef_api_metrics); and the orders linked to a
-- conversation for the console (ef_api_conversation_orders).

-- The console's dashboard shows escalations per hour beside the seed's six
-- metrics. (Added in this transaction, used only by functions that run
-- after it commits.)
ALTER TYPE metric_type ADD VALUE IF NOT EXISTS 'escalations';

-- One row per (integration, metric, hour): the rollup's upsert target, so
-- that computing an hour again replaces its figures instead of adding rows.
-- period_start first: the same index serves the API's range of hours and
-- the rollup's rows of one hour.
ALTER TABLE platform_metrics ADD CONSTRAINT uq_platform_metrics_period
    UNIQUE (aggregation_period, period_start, integration_id, metric_type);

-- The rollup reads one hour of messages. No index of messages serves a time
-- range (006 dropped the seed's B-tree on created_at: every insert paid for
-- it). A BRIN index costs an insert almost nothing (rows are appended in
-- created_at order, one summary per 128 pages) and lets an hour's read skip
-- the older pages; created_at never changes, so updates stay HOT.
CREATE INDEX idx_messages_created_brin ON messages USING brin (created_at);
COMMENT ON INDEX idx_messages_created_brin IS
    'Serves ef_metrics_rollup: one hour of messages (received, sent, first responses).';

-- Escalations per hour. Only an escalation changes escalated_at, so the
-- conversation updates of every message stay HOT.
CREATE INDEX idx_conversations_escalated_at ON conversations(escalated_at)
    WHERE escalated_at IS NOT NULL;
COMMENT ON INDEX idx_conversations_escalated_at IS
    'Serves ef_metrics_rollup: conversations escalated in an hour.';

-- The first responses to the customers' turns that started in [h, e): an
-- inbound message whose previous message in its conversation is not
-- inbound starts a turn; its first response is the next outbound message
-- by the bot (assistant) or an operator, once sent. Seconds from the
-- customer's message to the response's sent_at.
CREATE FUNCTION ef_metrics_first_responses(h timestamptz, e timestamptz)
RETURNS TABLE (integration_id uuid, by_operator boolean, seconds numeric)
LANGUAGE sql STABLE AS $$
    SELECT m.integration_id, r.role = 'operator',
           extract(epoch FROM r.sent_at - m.created_at)::numeric
      FROM messages m
      LEFT JOIN LATERAL (SELECT p.direction FROM messages p
                          WHERE p.conversation_id = m.conversation_id
                            AND p.created_at < m.created_at
                          ORDER BY p.created_at DESC LIMIT 1) prev ON true
      JOIN LATERAL (SELECT o.role, o.sent_at FROM messages o
                     WHERE o.conversation_id = m.conversation_id
                       AND o.direction = 'outbound' AND o.created_at >= m.created_at
                       AND o.role IN ('assistant', 'operator')
                     ORDER BY o.created_at LIMIT 1) r ON true
     WHERE m.created_at >= h AND m.created_at < e AND m.direction = 'inbound'
       AND m.integration_id IS NOT NULL AND prev.direction IS DISTINCT FROM 'inbound'
       AND r.sent_at IS NOT NULL
$$;

CREATE FUNCTION ef_metrics_median(p_values numeric[]) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY v)::numeric, 3)
      FROM unnest(p_values) v
$$;

-- Every figure of one hour [h, h + 1 hour), one row per (integration,
-- metric): the integrations with any activity in the hour get every count
-- (zeros included); response_time and sync_duration only when there was
-- something to time.
--   messages_received  inbound messages stored
--   messages_sent      outbound messages the platform accepted (sent_at;
--                      rows queued within the day before)
--   errors             replies failed for good (failed_at) + dead letters
--   api_calls          platform requests the gateway can count: each sent
--                      or failed reply with its retries, and the order
--                      sync's answered requests (sync_logs metadata.pages)
--   escalations        conversations handed to operators (escalated_at)
--   response_time      median seconds to the first response of a turn
--                      (attributes: bot and operator medians, samples)
--   sync_duration      mean seconds of the order syncs that ended
CREATE FUNCTION ef_metrics_hour(p_hour timestamptz)
RETURNS TABLE (integration_id uuid, metric text, value numeric, unit text, attrs jsonb)
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT date_trunc('hour', p_hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS h
    ), w AS (SELECT h, h + interval '1 hour' AS e FROM b),
    inb AS (
        SELECT m.integration_id, count(*) AS n FROM messages m, w
         WHERE m.created_at >= w.h AND m.created_at < w.e AND m.direction = 'inbound'
           AND m.integration_id IS NOT NULL GROUP BY 1
    ), sent AS (
        SELECT m.integration_id, count(*) AS n, sum(1 + m.retry_count) AS calls
          FROM messages m, w
         WHERE m.created_at >= w.h - interval '1 day' AND m.created_at < w.e
           AND m.direction = 'outbound' AND m.sent_at >= w.h AND m.sent_at < w.e
           AND m.delivery_status IN ('sent', 'delivered', 'read')
           AND m.integration_id IS NOT NULL GROUP BY 1
    ), failed AS (
        SELECT m.integration_id, count(*) AS n, sum(1 + m.retry_count) AS calls
          FROM messages m, w
         WHERE m.direction = 'outbound' AND m.delivery_status = 'failed'
           AND m.failed_at >= w.h AND m.failed_at < w.e AND m.integration_id IS NOT NULL
         GROUP BY 1
    ), dead AS (
        SELECT d.integration_id, count(*) AS n FROM dead_letters d, w
         WHERE d.created_at >= w.h AND d.created_at < w.e AND d.integration_id IS NOT NULL
         GROUP BY 1
    ), esc AS (
        SELECT c.integration_id, count(*) AS n FROM conversations c, w
         WHERE c.escalated_at >= w.h AND c.escalated_at < w.e AND c.integration_id IS NOT NULL
         GROUP BY 1
    ), syn AS (
        SELECT s.integration_id, count(*) AS runs,
               round(avg(extract(epoch FROM s.completed_at - s.started_at))::numeric, 3) AS avg_s,
               round(max(extract(epoch FROM s.completed_at - s.started_at))::numeric, 3) AS max_s,
               count(*) FILTER (WHERE s.status = 'failed') AS failed,
               sum(CASE WHEN s.metadata->>'pages' ~ '^[0-9]{1,9}$'
                        THEN (s.metadata->>'pages')::bigint ELSE 0 END) AS pages
          FROM sync_logs s, w
         WHERE s.started_at >= w.h - interval '1 day' AND s.completed_at >= w.h
           AND s.completed_at < w.e AND s.status <> 'running' AND s.integration_id IS NOT NULL
         GROUP BY 1
    ), resp AS (
        SELECT f.integration_id,
               ef_metrics_median(array_agg(f.seconds)) AS med, count(*) AS n,
               ef_metrics_median(array_agg(f.seconds) FILTER (WHERE NOT f.by_operator)) AS bot,
               count(*) FILTER (WHERE NOT f.by_operator) AS bot_n,
               ef_metrics_median(array_agg(f.seconds) FILTER (WHERE f.by_operator)) AS op,
               count(*) FILTER (WHERE f.by_operator) AS op_n
          FROM w, ef_metrics_first_responses(w.h, w.e) f GROUP BY 1
    ), ids AS (
        SELECT inb.integration_id FROM inb UNION SELECT sent.integration_id FROM sent
        UNION SELECT failed.integration_id FROM failed UNION SELECT dead.integration_id FROM dead
        UNION SELECT esc.integration_id FROM esc UNION SELECT syn.integration_id FROM syn
    )
    SELECT ids.integration_id, v.metric, v.value, v.unit, v.attrs
      FROM ids
      JOIN integrations i ON i.id = ids.integration_id
      LEFT JOIN inb ON inb.integration_id = ids.integration_id
      LEFT JOIN sent ON sent.integration_id = ids.integration_id
      LEFT JOIN failed ON failed.integration_id = ids.integration_id
      LEFT JOIN dead ON dead.integration_id = ids.integration_id
      LEFT JOIN esc ON esc.integration_id = ids.integration_id
      LEFT JOIN syn ON syn.integration_id = ids.integration_id
      LEFT JOIN resp ON resp.integration_id = ids.integration_id
      CROSS JOIN LATERAL (VALUES
        ('messages_received', coalesce(inb.n, 0)::numeric, 'count', '{}'::jsonb),
        ('messages_sent', coalesce(sent.n, 0)::numeric, 'count', '{}'::jsonb),
        ('errors', (coalesce(failed.n, 0) + coalesce(dead.n, 0))::numeric, 'count',
         jsonb_build_object('failed_replies', coalesce(failed.n, 0),
                            'dead_letters', coalesce(dead.n, 0))),
        ('api_calls', (coalesce(sent.calls, 0) + coalesce(failed.calls, 0)
                       + coalesce(syn.pages, 0))::numeric, 'count',
         jsonb_build_object('replies', coalesce(sent.calls, 0) + coalesce(failed.calls, 0),
                            'sync_requests', coalesce(syn.pages, 0))),
        ('escalations', coalesce(esc.n, 0)::numeric, 'count', '{}'::jsonb),
        ('response_time', resp.med, 'seconds',
         jsonb_build_object('samples', resp.n, 'bot', resp.bot, 'bot_samples', resp.bot_n,
                            'operator', resp.op, 'operator_samples', resp.op_n)),
        ('sync_duration', syn.avg_s, 'seconds',
         jsonb_build_object('runs', syn.runs, 'max', syn.max_s, 'failed', syn.failed))
      ) AS v(metric, value, unit, attrs)
     WHERE v.value IS NOT NULL
$$;

-- Writes the hour's figures: an upsert per (integration, metric, hour)
-- that changes a row only when its figure changed, and deletes the hour's
-- rows no longer produced (a customer's messages forgotten). Computing an
-- hour twice over the same data writes nothing the second time. Returns the
-- rows inserted, changed or deleted.
CREATE FUNCTION ef_metrics_rollup(p_hour timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_h timestamptz := date_trunc('hour', p_hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    v_n integer;
BEGIN
    WITH f AS (
        SELECT x.integration_id, x.metric::metric_type AS metric, x.value, x.unit, x.attrs
          FROM ef_metrics_hour(v_h) x
    ), up AS (
        INSERT INTO platform_metrics AS t (integration_id, platform_id, user_id, metric_type,
                                           metric_value, metric_unit, aggregation_period,
                                           recorded_at, period_start, period_end, attributes)
        SELECT f.integration_id, i.platform_id, i.user_id, f.metric, f.value, f.unit, 'hour',
               now(), v_h, v_h + interval '1 hour', f.attrs
          FROM f JOIN integrations i ON i.id = f.integration_id
        ON CONFLICT ON CONSTRAINT uq_platform_metrics_period DO UPDATE
           SET metric_value = excluded.metric_value, metric_unit = excluded.metric_unit,
               attributes = excluded.attributes, platform_id = excluded.platform_id,
               user_id = excluded.user_id, recorded_at = now()
         WHERE (t.metric_value, t.metric_unit, t.attributes, t.platform_id)
               IS DISTINCT FROM (excluded.metric_value, excluded.metric_unit,
                                 excluded.attributes, excluded.platform_id)
        RETURNING 1
    ), gone AS (
        DELETE FROM platform_metrics t
         WHERE t.aggregation_period = 'hour' AND t.period_start = v_h
           AND NOT EXISTS (SELECT 1 FROM f WHERE f.integration_id = t.integration_id
                                             AND f.metric = t.metric_type)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) INTO v_n;
    RETURN v_n;
END $$;

-- GET /api/v1/metrics: the hourly rows of [p_from, p_to) (whole hours that
-- start in it), of one platform or all, oldest first.
-- {"from","to","platform","metrics":[{"integration_id","integration",
-- "platform","metric","period_start","value","unit","attributes"}]}.
CREATE FUNCTION ef_api_metrics(p_from timestamptz, p_to timestamptz, p_platform text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'from', p_from, 'to', p_to, 'platform', p_platform,
        'metrics', coalesce(jsonb_agg(jsonb_build_object(
            'integration_id', pm.integration_id, 'integration', i.name,
            'platform', pm.platform_id, 'metric', pm.metric_type,
            'period_start', pm.period_start, 'value', pm.metric_value,
            'unit', pm.metric_unit, 'attributes', pm.attributes)
            ORDER BY pm.period_start, pm.platform_id, i.name, pm.integration_id,
                     pm.metric_type::text), '[]'::jsonb))
      FROM platform_metrics pm
      LEFT JOIN integrations i ON i.id = pm.integration_id
     WHERE pm.aggregation_period = 'hour' AND pm.period_start >= p_from
       AND pm.period_start < p_to AND (p_platform IS NULL OR pm.platform_id = p_platform)
$$;

-- The orders linked to conversation p_id, for the console: those its
-- customer named in it -- the order a marketplace buyer chat was opened
-- from (messages' metadata order_ref) and the order numbers the matcher
-- found (messages' entities order_number) -- among the orders of the
-- conversation's business only (the integrations with the same owner as
-- the conversation's: never another shop's). Newest first, at most 20.
-- [{"number","ref","marketplace","scheme","status","status_raw","items",
-- "amount","currency","ordered_at","status_changed_at","updated_at"}].
CREATE FUNCTION ef_api_conversation_orders(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT id, integration_id FROM conversations WHERE id = p_id
    ), biz AS (
        SELECT b.id FROM c
          JOIN integrations a ON a.id = c.integration_id
          JOIN integrations b ON b.user_id IS NOT DISTINCT FROM a.user_id
    ), named AS (
        SELECT DISTINCT n.v FROM c
          JOIN messages m ON m.conversation_id = c.id AND m.direction = 'inbound'
          CROSS JOIN LATERAL (
              SELECT m.metadata->>'order_ref' AS v
              UNION ALL
              SELECT m.entities->>'order_number'
               WHERE jsonb_typeof(m.entities->'order_number') = 'string'
              UNION ALL
              SELECT x FROM jsonb_array_elements_text(
                  CASE WHEN jsonb_typeof(m.entities->'order_number') = 'array'
                       THEN m.entities->'order_number' ELSE '[]'::jsonb END) x
          ) n
         WHERE n.v IS NOT NULL AND n.v <> ''
    ), found AS (
        SELECT o.* FROM orders o
         WHERE o.integration_id IN (SELECT id FROM biz)
           AND (o.order_number IN (SELECT v FROM named) OR o.order_ref IN (SELECT v FROM named))
         ORDER BY o.ordered_at DESC NULLS LAST, o.order_number LIMIT 20
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'number', f.order_number, 'ref', f.order_ref, 'marketplace', f.marketplace,
               'scheme', f.scheme, 'status', f.status, 'status_raw', f.status_raw,
               'items', f.items, 'amount', f.amount, 'currency', f.currency,
               'ordered_at', f.ordered_at, 'status_changed_at', f.status_changed_at,
               'updated_at', f.updated_at)
               ORDER BY f.ordered_at DESC NULLS LAST, f.order_number), '[]'::jsonb)
      FROM found f
$$;
