-- Audit trail of staff actions per conversation (replies, reads, assignments, status
-- changes), with the staff identity (API token name or JWT `sub`). Keep in step with
-- migrations/sqlite.
CREATE TABLE audit_log (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    actor            TEXT NOT NULL,
    action           TEXT NOT NULL,
    detail           JSONB NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX audit_log_conversation ON audit_log(conversation_id, created_at, id);
