-- Switchboard schema, SQLite dialect. Keep in step with migrations/postgres (same versions).
-- Timestamps are Unix milliseconds (INTEGER); ids are UUIDv7 text; JSON is TEXT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    address     TEXT,
    status      TEXT NOT NULL DEFAULT 'active',
    last_error  TEXT,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE contact_identities (
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    contact_id    TEXT NOT NULL REFERENCES contacts(id),
    opted_out_at  INTEGER,
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
    message_count    INTEGER NOT NULL DEFAULT 0,
    unread_count     INTEGER NOT NULL DEFAULT 0,
    last_message_at  INTEGER NOT NULL,
    last_inbound_at  INTEGER,
    external         TEXT NOT NULL DEFAULT '{}',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX conversations_list ON conversations(tenant_id, last_message_at DESC, id DESC);
CREATE INDEX conversations_contact ON conversations(channel_id, contact_id, status, last_message_at);

CREATE TABLE participants (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    ref_id           TEXT NOT NULL,
    unread_count     INTEGER NOT NULL DEFAULT 0,
    last_read_at     INTEGER,
    joined_at        INTEGER NOT NULL,
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
    recipients           TEXT NOT NULL DEFAULT '{}',
    subject              TEXT,
    text_body            TEXT,
    html_body            TEXT,
    external             TEXT NOT NULL DEFAULT '{}',
    provider_message_id  TEXT,
    delivery_status      TEXT NOT NULL,
    status_rank          INTEGER NOT NULL,
    error_code           TEXT,
    error_message        TEXT,
    flags                TEXT NOT NULL DEFAULT '[]',
    spam                 INTEGER NOT NULL DEFAULT 0,
    idempotency_key      TEXT,
    in_reply_to          TEXT,
    sent_at              INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
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
    size         INTEGER,
    sha256       TEXT,
    content_id   TEXT,
    storage_key  TEXT,
    source       TEXT,
    state        TEXT NOT NULL,
    error        TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);

CREATE TABLE inbound_events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    payload          BLOB NOT NULL,
    received_at      INTEGER NOT NULL,
    UNIQUE (channel_id, idempotency_key)
);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX events_tenant ON events(tenant_id, seq);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    ref_id           TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    locked_until     INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(state, next_attempt_at);
CREATE INDEX jobs_ref ON jobs(ref_id);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX api_tokens_name ON api_tokens(tenant_id, name);

-- Status reports that arrived before the send recorded the provider's id (a provider may
-- call back before its API response reaches us); applied when the id is recorded.
CREATE TABLE pending_statuses (
    channel_id           TEXT NOT NULL,
    provider_message_id  TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_rank          INTEGER NOT NULL,
    error_code           TEXT,
    error_message        TEXT,
    received_at          INTEGER NOT NULL
);
CREATE INDEX pending_statuses_key ON pending_statuses(channel_id, provider_message_id);
