-- Who syncs a mailbox: one replica at a time holds a channel's lease, renewing it while it
-- works; a crashed holder's lease expires and another replica takes over.
CREATE TABLE sync_leases (
    channel_id   TEXT PRIMARY KEY REFERENCES channels(id),
    holder       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
