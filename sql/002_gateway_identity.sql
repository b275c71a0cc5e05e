-- 002_gateway_identity.sql -- what the gateway needs beyond the seed schema:
-- messenger identities, the operator role, one row per platform message,
-- one open conversation per chat, delivery tracking, long-poll offsets.

-- Customers who arrive from a messenger have no e-mail: their identity is
-- (platform, platform user id) with the name, username and language they
-- gave. E-mail stays UNIQUE (NULLs do not collide) and is required for
-- operators and admins, who log in with it.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ADD COLUMN platform VARCHAR(50) REFERENCES platforms(id);
ALTER TABLE users ADD COLUMN platform_user_id VARCHAR(255);
ALTER TABLE users ADD COLUMN username VARCHAR(255);

-- The operator role (model: the second design's users.role). Customers are
-- the people who write to the business; operators answer escalated
-- conversations in the console; admins also manage operators.
CREATE TYPE user_role AS ENUM ('customer', 'operator', 'admin');
ALTER TABLE users ADD COLUMN role user_role NOT NULL DEFAULT 'customer';
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE users ADD CONSTRAINT users_identity_present CHECK (
    (role = 'customer' AND platform IS NOT NULL AND platform_user_id IS NOT NULL)
    OR (role <> 'customer' AND email IS NOT NULL));

-- Serves the customer upsert on every inbound message.
CREATE UNIQUE INDEX uq_users_platform_identity ON users(platform, platform_user_id)
    WHERE platform_user_id IS NOT NULL;

-- Operators' replies are stored as role 'operator' (DESIGN.md, stored data).
-- Added in its own migration step: a new enum value cannot be used in the
-- transaction that adds it, and nothing here uses it.
ALTER TYPE message_role ADD VALUE IF NOT EXISTS 'operator';

-- Conversations: at most one non-closed conversation per (platform, chat).
-- The partial unique index is what makes concurrent first messages of a
-- chat converge on one conversation (INSERT .. ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX uq_conversations_open_chat ON conversations(platform, chat_id)
    WHERE status <> 'closed';
-- The customer blocked the bot (Telegram my_chat_member "kicked") or the
-- platform reported the chat unreachable: the dispatcher sends nothing.
ALTER TABLE conversations ADD COLUMN undeliverable BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE conversations ADD COLUMN undeliverable_reason TEXT;
ALTER TABLE conversations ADD COLUMN chat_type VARCHAR(32);
-- The customer's last inbound message (WhatsApp's 24-hour window).
ALTER TABLE conversations ADD COLUMN last_inbound_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE conversations ADD COLUMN escalated_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE conversations ADD COLUMN assigned_operator_id UUID REFERENCES users(id) ON DELETE SET NULL;

-- Messages: one stored row per platform message, whatever the retries
-- (DESIGN invariant 2). Only inbound rows are keyed: outbound rows get their
-- platform id when the platform accepts them. The seed's
-- idx_messages_platform_message still serves outbound lookups (WhatsApp
-- statuses arrive keyed by our own wamid).
CREATE UNIQUE INDEX uq_messages_inbound ON messages(platform, platform_message_id)
    WHERE direction = 'inbound';

-- Delivery of outbound messages (model: the second design's failure
-- tracking): queued -> sent -> delivered -> read, or failed with a reason.
CREATE TYPE delivery_status AS ENUM ('queued', 'sent', 'delivered', 'read', 'failed');
ALTER TABLE messages ADD COLUMN delivery_status delivery_status;
ALTER TABLE messages ADD COLUMN retry_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN failed_reason TEXT;
ALTER TABLE messages ADD COLUMN failed_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE messages ADD COLUMN next_attempt_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE messages ADD COLUMN sent_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE messages ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE messages ADD CONSTRAINT messages_delivery_only_outbound CHECK (
    delivery_status IS NULL OR direction = 'outbound');
-- The dispatcher's work list: queued outbound rows due now.
CREATE INDEX idx_messages_outbox ON messages(next_attempt_at, created_at)
    WHERE direction = 'outbound' AND delivery_status = 'queued';

-- Long polling (TELEGRAM_MODE=poll): the next update_id to ask for, advanced
-- only after the batch it follows was committed, so a restart neither loses
-- nor repeats updates. bot_id is the numeric part of the bot token (not secret).
CREATE TABLE poll_offsets (
    platform VARCHAR(50) NOT NULL REFERENCES platforms(id),
    bot_id VARCHAR(64) NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    PRIMARY KEY (platform, bot_id)
);
