-- Triage fields a staff inbox lists and filters by: a conversation's priority (NULL: none;
-- else low, normal, high or urgent) and its tags (free labels, per tenant). Keep in step
-- with the other database's migration of the same number.
ALTER TABLE conversations ADD COLUMN priority TEXT;

CREATE TABLE conversation_tags (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL,
    tag              TEXT NOT NULL,
    PRIMARY KEY (conversation_id, tag)
);
CREATE INDEX conversation_tags_tag ON conversation_tags(tenant_id, tag, conversation_id);
CREATE INDEX conversations_updated ON conversations(tenant_id, updated_at);
