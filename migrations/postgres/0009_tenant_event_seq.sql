-- Per-tenant event ids. Keep in step with migrations/sqlite (same version).
--
-- An event's id (`events.seq`: the SSE `id:`, `since`, `Last-Event-ID`, the outgoing webhook
-- event id and endpoint cursor) was a position in one sequence for the whole database, so a
-- tenant's ids had gaps that showed the volume of every other tenant. From this version each
-- tenant counts its own events 1, 2, 3... with no gaps: `tenant_event_counters.last_seq` is the
-- tenant's newest id, taken in the transaction that writes the event (on PostgreSQL the row
-- lock also makes a tenant's events commit in id order).
--
-- Existing events are numbered per tenant in their old order (1 for the oldest retained), and
-- the places that hold an id move with them: an endpoint's cursor becomes the new id of the
-- last event it covered (0 if that event was pruned before every retained one), so nothing is
-- delivered twice or skipped; the delivery log likewise. Clients' stored stream ids are not
-- translatable (see README, "Live events").
CREATE TABLE tenant_event_counters (
    tenant_id  TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL
);

-- Old id -> new id, for the translation below; dropped at the end.
CREATE TABLE event_renumbering (
    old_seq    BIGINT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    new_seq    BIGINT NOT NULL
);
INSERT INTO event_renumbering (old_seq, tenant_id, new_seq)
SELECT seq, tenant_id, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY seq) FROM events;
CREATE INDEX event_renumbering_tenant ON event_renumbering(tenant_id, old_seq);

-- The new id of the newest event at or before the old one (the event itself when retained).
UPDATE webhook_endpoints
   SET cursor_seq = COALESCE((SELECT r.new_seq FROM event_renumbering r
                               WHERE r.tenant_id = webhook_endpoints.tenant_id
                                 AND r.old_seq <= webhook_endpoints.cursor_seq
                               ORDER BY r.old_seq DESC LIMIT 1), 0);
UPDATE webhook_deliveries
   SET event_seq = COALESCE((SELECT r.new_seq FROM event_renumbering r
                              WHERE r.tenant_id = webhook_deliveries.tenant_id
                                AND r.old_seq <= webhook_deliveries.event_seq
                              ORDER BY r.old_seq DESC LIMIT 1), 0)
 WHERE kind = 'event';

CREATE TABLE events_per_tenant (
    tenant_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    type        TEXT NOT NULL,
    payload     JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
INSERT INTO events_per_tenant (tenant_id, seq, type, payload, created_at)
SELECT e.tenant_id, r.new_seq, e.type, e.payload, e.created_at
  FROM events e JOIN event_renumbering r ON r.old_seq = e.seq;
INSERT INTO tenant_event_counters (tenant_id, last_seq)
SELECT tenant_id, MAX(new_seq) FROM event_renumbering GROUP BY tenant_id;

DROP TABLE event_renumbering;
DROP TABLE events;
ALTER TABLE events_per_tenant RENAME TO events;
ALTER INDEX events_per_tenant_pkey RENAME TO events_pkey;
