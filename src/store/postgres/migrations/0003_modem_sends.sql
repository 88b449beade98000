-- sms2fa schema 3: what each host's modems sent, for per-SIM caps (`max_sms_per_day`,
-- `max_sms_per_hour`). Written with the message's `sent` step; rows older than a day
-- are purged by housekeeping.
CREATE TABLE modem_sends (
    host       text        NOT NULL,
    modem      text        NOT NULL,
    sent_at    timestamptz NOT NULL,
    message_id text        NOT NULL,
    parts      smallint    NOT NULL,
    PRIMARY KEY (host, modem, sent_at, message_id)
);
CREATE INDEX modem_sends_age ON modem_sends (sent_at);
