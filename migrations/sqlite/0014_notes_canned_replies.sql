-- Staff-only notes on a conversation (never sent; `mentions` are the staff identities named
-- with @name), and canned replies: a tenant's reusable texts with a shortcut code and
-- placeholders such as {{contact.name}}. Keep in step with the other database's migration.
CREATE TABLE conversation_notes (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    author           TEXT NOT NULL,
    body             TEXT NOT NULL,
    mentions         TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes(conversation_id, created_at, id);

CREATE TABLE canned_replies (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    shortcut    TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, shortcut)
);
