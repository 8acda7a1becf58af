-- Email threading and mailbox sync. Keep in step with migrations/postgres.

-- The normalized subject (for same-contact, same-subject threading) and the reply token
-- outbound mail puts in its Reply-To (local+TOKEN@domain), which names the conversation.
ALTER TABLE conversations ADD COLUMN subject_key TEXT;
ALTER TABLE conversations ADD COLUMN reply_token TEXT;
CREATE UNIQUE INDEX conversations_reply_token ON conversations(reply_token);
CREATE INDEX conversations_subject ON conversations(channel_id, contact_id, subject_key, last_message_at);

-- Every provider id a message refers to (In-Reply-To, References, context), so that a
-- parent arriving after its replies can adopt them.
CREATE TABLE message_refs (
    message_id   TEXT NOT NULL REFERENCES messages(id),
    channel_id   TEXT NOT NULL,
    ref          TEXT NOT NULL,
    PRIMARY KEY (message_id, ref)
);
CREATE INDEX message_refs_ref ON message_refs(channel_id, ref);

-- Mailbox sync position per channel and folder, advanced in the same transaction as the
-- messages it covers.
CREATE TABLE sync_cursors (
    channel_id       TEXT NOT NULL REFERENCES channels(id),
    folder           TEXT NOT NULL,
    uidvalidity      INTEGER NOT NULL,
    last_uid         INTEGER NOT NULL,
    highestmodseq    INTEGER,
    last_run_at      INTEGER,
    last_success_at  INTEGER,
    last_error       TEXT,
    seen             INTEGER NOT NULL DEFAULT 0,
    stored           INTEGER NOT NULL DEFAULT 0,
    backlog_total    INTEGER NOT NULL DEFAULT 0,
    backlog_done     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, folder)
);
