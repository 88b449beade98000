-- sms2fa schema 5: events for webhooks, and where each endpoint's delivery stands.
-- `tx` is the writing transaction's id: an event is read only once every transaction
-- older than the reader's snapshot has ended (tx < the snapshot's xmin), and in
-- (tx, id) order, so that a transaction that commits late is never skipped by a
-- cursor that moved past a younger one. The data is sealed under the event's id.
CREATE TABLE events (
    id         bigserial   NOT NULL,
    tx         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id   text        NOT NULL,
    account    text,
    kind       text        NOT NULL,
    created_at timestamptz NOT NULL,
    sealed     bytea       NOT NULL,
    PRIMARY KEY (tx, id)
);
CREATE INDEX events_time ON events (created_at);

-- One row per endpoint: its cursor, and the host that delivers its events now.
CREATE TABLE webhook_cursors (
    endpoint    text        PRIMARY KEY,
    cursor_tx   xid8        NOT NULL,
    cursor_id   bigint      NOT NULL,
    holder      text,
    lease_until timestamptz
);
