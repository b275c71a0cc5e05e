-- 012_orders.sql -- a shop's marketplace orders (issue 10): what the order
-- sync (src/gateway/sync.c, src/store/orders.c) writes and the bot's order
-- lookup reads, and the bookkeeping of each sync run in the seed's
-- sync_logs and integrations columns.
--
-- Nothing here names a marketplace: the adapters normalize every status
-- into the six below.

-- ---- orders ---------------------------------------------------------------

-- status: normalized, and it only moves forward (status_rank: new 0,
-- assembling 1, shipped 2, delivered 3, cancelled 4, returned 5);
-- status_raw: the marketplace's own words. order_number: the marketplace's
-- key (Wildberries' assembly task id, Ozon's posting number); order_ref:
-- what the buyer and the buyer chat name (Wildberries' rid/srid, Ozon's
-- order number).
CREATE TABLE orders (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id UUID NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    marketplace VARCHAR(50) NOT NULL REFERENCES platforms(id),
    order_number VARCHAR(100) NOT NULL,
    order_ref VARCHAR(100),
    scheme VARCHAR(8) NOT NULL CONSTRAINT orders_scheme_known CHECK (scheme IN ('fbs', 'fbo')),
    status VARCHAR(16) NOT NULL CONSTRAINT orders_status_known CHECK (
        status IN ('new', 'assembling', 'shipped', 'delivered', 'cancelled', 'returned')),
    status_rank SMALLINT NOT NULL,
    status_raw VARCHAR(100) NOT NULL,
    items JSONB NOT NULL DEFAULT '[]',
    amount NUMERIC(14, 2),
    currency VARCHAR(8),
    ordered_at TIMESTAMP WITH TIME ZONE,
    status_changed_at TIMESTAMP WITH TIME ZONE,
    raw JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    -- Serves ef_orders_upsert's ON CONFLICT (integration_id, order_number)
    -- and the lookup of an order by the number a customer gave.
    CONSTRAINT uq_orders_integration_number UNIQUE (integration_id, order_number)
);

-- Serves the lookup by the buyer's order number / a buyer chat's order
-- (ef_store_order_lookup: integration_id = ANY(..) AND order_ref = $n).
CREATE INDEX idx_orders_integration_ref ON orders(integration_id, order_ref)
    WHERE order_ref IS NOT NULL;
-- Serves ef_store_orders_open (the stored orders not yet final whose status
-- the next sync asks about again): a handful of rows per shop.
CREATE INDEX idx_orders_open ON orders(integration_id, updated_at) WHERE status_rank < 3;

-- Upserts one page of orders of one integration; p_orders is a JSON array
-- of {number, ref, scheme, status, rank, raw_status, items, amount_minor,
-- currency, ordered_at, status_at (Unix seconds), raw}. An item without
-- "items" only updates the status of a stored order. A row changes only
-- when its status moves forward (a higher rank), or its marketplace status
-- changed within the same rank; syncing the same page twice changes
-- nothing. Returns how many rows were inserted or changed.
CREATE FUNCTION ef_orders_upsert(p_integration uuid, p_marketplace text, p_orders jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_ins integer := 0;
    v_upd integer := 0;
BEGIN
    WITH src AS (
        SELECT DISTINCT ON (o->>'number') o
          FROM jsonb_array_elements(p_orders) o
         WHERE o ? 'items'
         ORDER BY o->>'number', (o->>'rank')::int DESC
    ), up AS (
        INSERT INTO orders AS t (integration_id, marketplace, order_number, order_ref, scheme,
                                 status, status_rank, status_raw, items, amount, currency,
                                 ordered_at, status_changed_at, raw)
        SELECT p_integration, p_marketplace, o->>'number', o->>'ref', o->>'scheme',
               o->>'status', (o->>'rank')::smallint, o->>'raw_status', o->'items',
               (o->>'amount_minor')::numeric / 100, nullif(o->>'currency', ''),
               to_timestamp((o->>'ordered_at')::bigint), to_timestamp((o->>'status_at')::bigint),
               coalesce(o->'raw', '{}'::jsonb)
          FROM src
        ON CONFLICT (integration_id, order_number) DO UPDATE
           SET status = excluded.status,
               status_rank = excluded.status_rank,
               status_raw = excluded.status_raw,
               order_ref = coalesce(excluded.order_ref, t.order_ref),
               items = excluded.items,
               amount = coalesce(excluded.amount, t.amount),
               currency = coalesce(excluded.currency, t.currency),
               ordered_at = coalesce(excluded.ordered_at, t.ordered_at),
               status_changed_at = coalesce(excluded.status_changed_at, now()),
               raw = excluded.raw,
               updated_at = now()
         WHERE excluded.status_rank > t.status_rank
            OR (excluded.status_rank = t.status_rank AND excluded.status_raw <> t.status_raw)
        RETURNING 1
    )
    SELECT count(*) INTO v_ins FROM up;

    WITH src AS (
        SELECT DISTINCT ON (o->>'number') o
          FROM jsonb_array_elements(p_orders) o
         WHERE NOT o ? 'items'
         ORDER BY o->>'number', (o->>'rank')::int DESC
    ), up AS (
        UPDATE orders t
           SET status = o->>'status', status_rank = (o->>'rank')::smallint,
               status_raw = o->>'raw_status',
               status_changed_at = coalesce(to_timestamp((o->>'status_at')::bigint), now()),
               updated_at = now()
          FROM src
         WHERE t.integration_id = p_integration AND t.order_number = o->>'number'
           AND ((o->>'rank')::int > t.status_rank
                OR ((o->>'rank')::int = t.status_rank AND o->>'raw_status' <> t.status_raw))
        RETURNING 1
    )
    SELECT count(*) INTO v_upd FROM up;
    RETURN v_ins + v_upd;
END $$;

-- ---- sync runs ----------------------------------------------------------------

-- Serves ef_store_sync_since: the start of an integration's last successful
-- orders sync (the next run reads from there).
CREATE INDEX idx_sync_logs_last_success ON sync_logs(integration_id, started_at)
    WHERE status = 'success';

-- Ends a sync run: its sync_logs row, and the integration's status,
-- last_sync_at, next_sync_at (the interval after a success; after a
-- failure a backoff of 30 s doubling per failure in a row, at most the
-- interval) and metadata.sync_failures. The interval is settings'
-- sync_interval_minutes, else the seed column.
CREATE FUNCTION ef_sync_finish(p_log uuid, p_status text, p_requested integer,
                               p_synced integer, p_failed integer, p_errors jsonb,
                               p_message text, p_metadata jsonb, p_fault text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_int uuid;
    v_started timestamptz;
    v_every interval;
    v_fails integer;
BEGIN
    UPDATE sync_logs
       SET status = p_status::sync_status, records_requested = p_requested,
           records_synced = p_synced, records_failed = p_failed,
           errors = coalesce(p_errors, '[]'::jsonb), error_message = p_message,
           completed_at = clock_timestamp(),
           duration_seconds = ceil(extract(epoch FROM clock_timestamp() - started_at))::integer,
           metadata = coalesce(p_metadata, '{}'::jsonb)
     WHERE id = p_log
    RETURNING integration_id, started_at INTO v_int, v_started;
    IF v_int IS NULL THEN
        RETURN;
    END IF;
    SELECT make_interval(mins => greatest(1, coalesce(
               CASE WHEN settings->>'sync_interval_minutes' ~ '^[0-9]{1,6}$'
                    THEN (settings->>'sync_interval_minutes')::integer END,
               sync_interval_minutes, 60))),
           coalesce((metadata->>'sync_failures')::integer, 0)
      INTO v_every, v_fails
      FROM integrations WHERE id = v_int;
    IF p_status IN ('success', 'partial') THEN
        UPDATE integrations
           SET last_sync_at = v_started, next_sync_at = now() + v_every,
               status = 'connected', status_message = NULL,
               metadata = coalesce(metadata, '{}'::jsonb) - 'sync_failures', updated_at = now()
         WHERE id = v_int;
    ELSE
        UPDATE integrations
           SET next_sync_at = now() + least(v_every,
                                            make_interval(secs => 30 * 2 ^ least(v_fails, 12))),
               status = 'error', status_message = left(coalesce(p_fault, p_message), 500),
               metadata = coalesce(metadata, '{}'::jsonb)
                          || jsonb_build_object('sync_failures', v_fails + 1),
               updated_at = now()
         WHERE id = v_int;
    END IF;
END $$;
