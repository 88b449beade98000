-- sms2fa schema 4: SMS the modems received. The sender, text and time stamp are
-- sealed under the id (as an outgoing message's are); kept `message_retention`.
CREATE TABLE received_sms (
    id          text        PRIMARY KEY,
    host        text        NOT NULL,
    modem       text        NOT NULL,
    received_at timestamptz NOT NULL,
    parts       integer     NOT NULL,
    incomplete  boolean     NOT NULL,
    sealed      bytea       NOT NULL
);
CREATE INDEX received_sms_time ON received_sms (received_at);
