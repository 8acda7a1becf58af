-- How a journal payload is stored: 'identity' (as received) or 'zstd' (a zstd frame of the
-- bytes as received; raw mail). Rows written before this migration are 'identity'.
ALTER TABLE inbound_events ADD COLUMN payload_encoding TEXT NOT NULL DEFAULT 'identity';
