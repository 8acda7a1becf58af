-- Contacts for a staff inbox: notes and custom attributes, merging two contacts of one
-- person, and erasure (GDPR). Keep in step with migrations/sqlite (same version).

-- What staff keep about a person: free-text notes and a JSON object of custom attributes.
ALTER TABLE contacts ADD COLUMN notes TEXT;
ALTER TABLE contacts ADD COLUMN attributes JSONB NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN updated_at BIGINT;
-- Tombstones. A contact merged into another keeps its row with `merged_into` naming the
-- survivor (always the final one: merging the survivor later moves the pointer), so old
-- ids still resolve. An erased contact keeps its row, named 'erased', with `erased_at`:
-- its conversations still refer to it.
ALTER TABLE contacts ADD COLUMN merged_into TEXT;
ALTER TABLE contacts ADD COLUMN erased_at BIGINT;
CREATE INDEX contacts_list ON contacts(tenant_id, created_at, id);
CREATE INDEX conversations_by_contact ON conversations(contact_id, last_message_at, id);

-- A message whose content was erased with its contact (text, html, subject, addresses,
-- external data and attachments removed; the row stays in its conversation).
ALTER TABLE messages ADD COLUMN erased_at BIGINT;
-- Blobs are content-addressed and shared: an erased attachment's bytes are deleted only when
-- no other attachment names them.
CREATE INDEX attachments_storage_key ON attachments(storage_key);

-- The provider id of the message a journal entry is about: the message itself, or the one
-- a status report or reaction refers to (NULL for entries about no message). Erasure finds
-- a contact's raw deliveries by it. Rows written before this migration have NULL; erasure
-- matches those by their idempotency keys (see `store::sql_contact_erase`).
ALTER TABLE inbound_events ADD COLUMN provider_message_id TEXT;
CREATE INDEX inbound_events_message ON inbound_events(channel_id, provider_message_id);

-- Staff actions on contacts (updates, merges, erasures), with the staff identity. Details
-- hold ids and counts, never a person's data, so an entry can outlive the erasure it records.
CREATE TABLE contact_audit (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      JSONB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX contact_audit_contact ON contact_audit(contact_id, created_at, id);
