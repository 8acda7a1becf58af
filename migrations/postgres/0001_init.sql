-- Switchboard schema, PostgreSQL dialect. Keep in step with migrations/sqlite (same versions).
-- Timestamps are Unix milliseconds (BIGINT); ids are UUIDv7 text; JSON is JSONB.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    address     TEXT,
    status      TEXT NOT NULL DEFAULT 'active',
    last_error  TEXT,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE contact_identities (
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    contact_id    TEXT NOT NULL REFERENCES contacts(id),
    opted_out_at  BIGINT,
    PRIMARY KEY (tenant_id, kind, value)
);
CREATE INDEX contact_identities_contact ON contact_identities(contact_id);

CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    channel_id       TEXT NOT NULL REFERENCES channels(id),
    contact_id       TEXT NOT NULL REFERENCES contacts(id),
    -- the identity the conversation runs on (a contact may have several)
    contact_kind     TEXT NOT NULL,
    contact_address  TEXT NOT NULL,
    subject          TEXT,
    status           TEXT NOT NULL,
    assignee         TEXT,
    message_count    BIGINT NOT NULL DEFAULT 0,
    unread_count     BIGINT NOT NULL DEFAULT 0,
    last_message_at  BIGINT NOT NULL,
    last_inbound_at  BIGINT,
    external         JSONB NOT NULL DEFAULT '{}',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX conversations_list ON conversations(tenant_id, last_message_at DESC, id DESC);
CREATE INDEX conversations_contact ON conversations(channel_id, contact_id, status, last_message_at);

CREATE TABLE participants (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    ref_id           TEXT NOT NULL,
    unread_count     BIGINT NOT NULL DEFAULT 0,
    last_read_at     BIGINT,
    joined_at        BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, kind, ref_id)
);
CREATE INDEX participants_ref ON participants(tenant_id, kind, ref_id);

CREATE TABLE messages (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    channel_id           TEXT NOT NULL REFERENCES channels(id),
    conversation_id      TEXT NOT NULL REFERENCES conversations(id),
    direction            TEXT NOT NULL,
    sender_kind          TEXT NOT NULL,
    sender               TEXT NOT NULL,
    recipients           JSONB NOT NULL DEFAULT '{}',
    subject              TEXT,
    text_body            TEXT,
    html_body            TEXT,
    external             JSONB NOT NULL DEFAULT '{}',
    provider_message_id  TEXT,
    delivery_status      TEXT NOT NULL,
    status_rank          BIGINT NOT NULL,
    error_code           TEXT,
    error_message        TEXT,
    flags                JSONB NOT NULL DEFAULT '[]',
    spam                 BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key      TEXT,
    in_reply_to          TEXT,
    sent_at              BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (channel_id, provider_message_id),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX messages_conversation ON messages(conversation_id, created_at, id);

CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    message_id   TEXT NOT NULL REFERENCES messages(id),
    filename     TEXT,
    content_type TEXT,
    size         BIGINT,
    sha256       TEXT,
    content_id   TEXT,
    storage_key  TEXT,
    source       TEXT,
    state        TEXT NOT NULL,
    error        TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);

CREATE TABLE inbound_events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    payload          BYTEA NOT NULL,
    received_at      BIGINT NOT NULL,
    UNIQUE (channel_id, idempotency_key)
);

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    payload     JSONB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_tenant ON events(tenant_id, seq);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    ref_id           TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(next_attempt_at) WHERE state = 'pending';
CREATE INDEX jobs_ref ON jobs(ref_id);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_tokens_name ON api_tokens(tenant_id, name);

-- Status reports that arrived before the send recorded the provider's id (a provider may
-- call back before its API response reaches us); applied when the id is recorded.
CREATE TABLE pending_statuses (
    channel_id           TEXT NOT NULL,
    provider_message_id  TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_rank          BIGINT NOT NULL,
    error_code           TEXT,
    error_message        TEXT,
    received_at          BIGINT NOT NULL
);
CREATE INDEX pending_statuses_key ON pending_statuses(channel_id, provider_message_id);
