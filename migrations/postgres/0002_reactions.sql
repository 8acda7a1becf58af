-- Reactions (WhatsApp), attached to the message they react to: one per sender and message;
-- a removed reaction is deleted. Keep in step with migrations/sqlite.
CREATE TABLE reactions (
    message_id           TEXT NOT NULL REFERENCES messages(id),
    tenant_id            TEXT NOT NULL,
    sender               TEXT NOT NULL,
    emoji                TEXT NOT NULL,
    provider_message_id  TEXT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (message_id, sender)
);
