-- pg_insert.sql -- the pgbench script of `make bench`'s PostgreSQL ceiling
-- (ceiling_pg_batched_inserts_per_s): one transaction inserts :batch inbound
-- rows into `messages` with the project's own schema, indexes and foreign
-- keys, each row of another conversation of :chats (table bench_conv, made
-- by tests/bench/bench.py), values shaped like what the gateway stores.
\set r random(0, :chats - 1)
\set k random(1, 1000000000000)
INSERT INTO messages (conversation_id, session_id, user_id, content, role, direction, platform,
                      platform_message_id, intent, entities, confidence, metadata, created_at)
SELECT c.id, c.session_id, c.user_id,
       'Здравствуйте! Где мой заказ А-' || g || '? Жду уже неделю', 'user', 'inbound',
       'telegram', 'ceiling:' || :client_id || ':' || :k || ':' || g, 'order_status',
       '{"order_id": "А-1042"}', 0.90, '{"date": 1700000000}', clock_timestamp()
  FROM generate_series(1, :batch) g
  JOIN bench_conv c ON c.n = (:r + g) % :chats;
