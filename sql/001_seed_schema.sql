-- 001_seed_schema.sql -- the seed schema (shared/SEED-SCHEMA.md), as given.
--
-- Tables, enum types and indexes exactly as the originator designed them.
-- Everything easyflow needs beyond this lives in later migrations, each
-- change explained where it is made, so this file stays comparable with
-- the design document.

CREATE EXTENSION IF NOT EXISTS pgcrypto; -- gen_random_uuid() (built in since PG 13; kept for older servers)

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(255) UNIQUE NOT NULL,
    name VARCHAR(255) NOT NULL,
    phone VARCHAR(50),
    language_code VARCHAR(10) DEFAULT 'ru',
    timezone VARCHAR(50) DEFAULT 'Europe/Moscow',
    is_active BOOLEAN DEFAULT true,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_is_active ON users(is_active);
CREATE INDEX idx_users_created_at ON users(created_at);

CREATE TYPE platform_type AS ENUM ('ecommerce', 'messaging', 'voice', 'analytics');
CREATE TYPE platform_region AS ENUM ('russia', 'international', 'global');

CREATE TABLE platforms (
    id VARCHAR(50) PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    display_name VARCHAR(255) NOT NULL,
    type platform_type NOT NULL,
    region platform_region NOT NULL,
    capabilities TEXT[] DEFAULT '{}',
    required_credentials TEXT[] DEFAULT '{}',
    is_active BOOLEAN DEFAULT true,
    configuration JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

INSERT INTO platforms VALUES
('wildberries', 'Wildberries', 'Wildberries', 'ecommerce', 'russia',
 '{"orders", "products", "analytics"}', '{"api_key", "supplier_id"}', true),
('ozon', 'Ozon', 'Ozon', 'ecommerce', 'russia',
 '{"orders", "products", "inventory"}', '{"client_id", "api_key"}', true),
('telegram', 'Telegram', 'Telegram Bot API', 'messaging', 'global',
 '{"text", "inline_keyboard", "media", "files", "voice"}', '{"bot_token"}', true),
('whatsapp', 'WhatsApp', 'WhatsApp Business', 'messaging', 'global',
 '{"text", "media", "templates", "interactive_buttons"}', '{"access_token", "phone_number_id"}', true);

CREATE TYPE integration_status AS ENUM ('pending', 'connected', 'error', 'disconnected');

CREATE TABLE integrations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform_id VARCHAR(50) NOT NULL REFERENCES platforms(id),
    credentials_encrypted BYTEA,
    encryption_key_id VARCHAR(255),
    settings JSONB DEFAULT '{}',
    status integration_status DEFAULT 'pending',
    status_message TEXT,
    last_sync_at TIMESTAMP WITH TIME ZONE,
    next_sync_at TIMESTAMP WITH TIME ZONE,
    sync_interval_minutes INTEGER DEFAULT 60,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE(user_id, platform_id)
);

CREATE INDEX idx_integrations_user_id ON integrations(user_id);
CREATE INDEX idx_integrations_platform_id ON integrations(platform_id);
CREATE INDEX idx_integrations_status ON integrations(status);
CREATE INDEX idx_integrations_next_sync ON integrations(next_sync_at)
    WHERE status = 'connected';

CREATE TYPE conversation_status AS ENUM ('active', 'paused', 'closed', 'escalated');

CREATE TABLE conversations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id VARCHAR(255) UNIQUE NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform VARCHAR(50) NOT NULL,
    chat_id VARCHAR(255),
    status conversation_status DEFAULT 'active',
    current_state VARCHAR(100) DEFAULT 'initial',
    context_data JSONB DEFAULT '{}',
    messages_count INTEGER DEFAULT 0,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    closed_at TIMESTAMP WITH TIME ZONE
);

CREATE INDEX idx_conversations_session_id ON conversations(session_id);
CREATE INDEX idx_conversations_user_id ON conversations(user_id);
CREATE INDEX idx_conversations_platform_chat ON conversations(platform, chat_id);
CREATE INDEX idx_conversations_status ON conversations(status);
CREATE INDEX idx_conversations_updated_at ON conversations(updated_at);

CREATE TYPE message_role AS ENUM ('user', 'assistant', 'system');
CREATE TYPE message_direction AS ENUM ('inbound', 'outbound');

CREATE TABLE messages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id UUID REFERENCES conversations(id) ON DELETE CASCADE,
    session_id VARCHAR(255) NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    role message_role NOT NULL,
    direction message_direction,
    platform VARCHAR(50) NOT NULL,
    platform_message_id VARCHAR(255),
    intent VARCHAR(100),
    entities JSONB DEFAULT '{}',
    confidence DECIMAL(3,2),
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE INDEX idx_messages_conversation_id ON messages(conversation_id);
CREATE INDEX idx_messages_session_id ON messages(session_id);
CREATE INDEX idx_messages_user_id ON messages(user_id);
CREATE INDEX idx_messages_platform_message ON messages(platform, platform_message_id);
CREATE INDEX idx_messages_intent ON messages(intent);
CREATE INDEX idx_messages_created_at ON messages(created_at);

CREATE TYPE sync_status AS ENUM ('running', 'success', 'partial', 'failed');
CREATE TYPE sync_type AS ENUM ('full', 'incremental', 'orders', 'products');

CREATE TABLE sync_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id UUID NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    sync_type sync_type NOT NULL,
    status sync_status NOT NULL,
    records_requested INTEGER,
    records_synced INTEGER DEFAULT 0,
    records_failed INTEGER DEFAULT 0,
    errors JSONB DEFAULT '[]',
    error_message TEXT,
    started_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_seconds INTEGER,
    metadata JSONB DEFAULT '{}'
);

CREATE INDEX idx_sync_logs_integration_id ON sync_logs(integration_id);
CREATE INDEX idx_sync_logs_status ON sync_logs(status);
CREATE INDEX idx_sync_logs_started_at ON sync_logs(started_at);

CREATE TYPE metric_type AS ENUM (
    'messages_sent', 'messages_received', 'api_calls',
    'errors', 'response_time', 'sync_duration'
);

CREATE TABLE platform_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id UUID REFERENCES integrations(id) ON DELETE CASCADE,
    platform_id VARCHAR(50) NOT NULL REFERENCES platforms(id),
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    metric_type metric_type NOT NULL,
    metric_value DECIMAL(15,4) NOT NULL,
    metric_unit VARCHAR(50),
    aggregation_period VARCHAR(20) DEFAULT 'hour',
    recorded_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    period_start TIMESTAMP WITH TIME ZONE,
    period_end TIMESTAMP WITH TIME ZONE,
    attributes JSONB DEFAULT '{}'
);

CREATE INDEX idx_platform_metrics_integration ON platform_metrics(integration_id);
CREATE INDEX idx_platform_metrics_platform ON platform_metrics(platform_id);
CREATE INDEX idx_platform_metrics_type_time ON platform_metrics(metric_type, recorded_at);
CREATE INDEX idx_platform_metrics_user_time ON platform_metrics(user_id, recorded_at);
