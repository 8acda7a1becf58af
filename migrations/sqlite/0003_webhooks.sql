-- Outgoing webhooks: the configured endpoints with their delivery state, and the delivery log.
-- Keep in step with migrations/postgres (same version).
--
-- An endpoint is identified by (tenant_id, id) from configuration; `uid` is a surrogate key
-- for claims. `cursor_seq` is the seq of the last event delivered (or skipped by the
-- endpoint's filter): everything of the tenant after it is still owed. A claim holds a lease
-- (`locked_until`) so one worker (one replica) delivers to an endpoint at a time, in order.
-- Secrets stay in configuration, never here.
CREATE TABLE webhook_endpoints (
    uid                   TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    id                    TEXT NOT NULL,
    url                   TEXT NOT NULL,
    -- JSON array of event types and prefixes ("message.*"); [] means every event.
    events                TEXT NOT NULL,
    -- 'enabled' or 'disabled' (after `disable_after` consecutive failures; an admin re-enables).
    state                 TEXT NOT NULL,
    disabled_reason       TEXT,
    disabled_at           INTEGER,
    cursor_seq            INTEGER NOT NULL,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    next_attempt_at       INTEGER NOT NULL DEFAULT 0,
    locked_until          INTEGER,
    last_status           INTEGER,
    last_error            TEXT,
    last_attempt_at       INTEGER,
    last_success_at       INTEGER,
    -- Set when the endpoint left the configuration: kept (cursor, log), never delivered to.
    removed_at            INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints(state, next_attempt_at);

-- One row per HTTP attempt (event deliveries and test sends), pruned after
-- `webhooks.log_retention_hours`.
CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    -- 'event' or 'test'.
    kind         TEXT NOT NULL,
    event_seq    INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(tenant_id, endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);
