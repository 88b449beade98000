-- sms2fa schema 1: codes, limits, outbox, histories, idempotency keys, delivery
-- reports. No column holds a phone number or a code in clear: numbers are keyed
-- digests (bytea), an outbound message's numbers and text are sealed together.

-- Facts about the database itself: the fingerprint of the secret key every host
-- must share.
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- One row per (account, service, number digest): the live code, if any, and the
-- consecutive wrong codes, which outlive a code.
CREATE TABLE scopes (
    account           text        NOT NULL,
    service           text        NOT NULL,
    number_digest     bytea       NOT NULL,
    code_hash         bytea,
    code_created_at   timestamptz,
    code_expires_at   timestamptz,
    code_attempts     integer,
    code_max_attempts integer,
    code_message_id   text,
    failures          integer     NOT NULL DEFAULT 0,
    locked_until      timestamptz,
    -- Bumped by every write: a verification is a compare-and-swap on it.
    version           bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (account, service, number_digest)
);
CREATE INDEX scopes_code_expiry ON scopes (code_expires_at) WHERE code_hash IS NOT NULL;

-- Recent sends to one number, per account (Unix milliseconds, oldest first).
CREATE TABLE number_sends (
    account       text        NOT NULL,
    number_digest bytea       NOT NULL,
    sends         bigint[]    NOT NULL,
    last_send     timestamptz NOT NULL,
    PRIMARY KEY (account, number_digest)
);
CREATE INDEX number_sends_last ON number_sends (last_send);

-- An account's send rate (GCRA): the theoretical arrival time of its next send.
CREATE TABLE account_budgets (
    account text   PRIMARY KEY,
    tat_us  bigint NOT NULL
);

-- Every message's status and history (no text; the masked number only).
CREATE TABLE messages (
    id         text        PRIMARY KEY,
    account    text        NOT NULL,
    created_at timestamptz NOT NULL,
    status     text        NOT NULL,
    record     jsonb       NOT NULL
);
CREATE INDEX messages_settled ON messages (created_at)
    WHERE status IN ('sent', 'delivered', 'failed');

-- What is still to be sent. `state`: queued, claimed (a host holds it under a lease),
-- submitting (its PDU may have reached a modem). Every write by the holder is
-- conditional on `lease_token`, which grows with every claim.
CREATE SEQUENCE lease_tokens;
CREATE TABLE outbox (
    id           text        PRIMARY KEY,
    account      text        NOT NULL,
    sealed       bytea       NOT NULL,
    from_digest  bytea       NOT NULL,
    due_at       timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    unconfirmed  integer     NOT NULL DEFAULT 0,
    last_modem   text,
    state        text        NOT NULL DEFAULT 'queued',
    host         text,
    modem        text,
    lease_token  bigint,
    lease_until  timestamptz
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE state = 'queued';
CREATE INDEX outbox_leases ON outbox (lease_until) WHERE state <> 'queued';

-- Sent parts awaiting a delivery report, by the host and modem that sent them and the
-- part's TP-MR. `recipient` is the keyed digest of the number's last digits.
CREATE TABLE sent_parts (
    host       text        NOT NULL,
    modem      text        NOT NULL,
    mr         smallint    NOT NULL,
    message_id text        NOT NULL,
    recipient  text        NOT NULL,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (host, modem, mr)
);

-- The first answer per Idempotency-Key (by keyed digest), for 24 hours.
CREATE TABLE idempotency_keys (
    account       text        NOT NULL,
    key_digest    bytea       NOT NULL,
    fingerprint   text        NOT NULL,
    created_at    timestamptz NOT NULL,
    answer_status smallint,
    answer_body   text,
    PRIMARY KEY (account, key_digest)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
