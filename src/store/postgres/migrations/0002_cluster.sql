-- sms2fa schema 2: the hosts sharing the database and their modems, as each host's
-- heartbeat last wrote them.

-- One row per host (`[cluster] node`). `instance` is the running process's random id:
-- a second process under the same name cannot take the row while the first beats.
CREATE TABLE hosts (
    node       text        PRIMARY KEY,
    instance   bigint      NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);

-- Each host's modems: whether it can send now, the digest of its SIM's number (for
-- `from` routing), and what `GET /modems` shows of it.
CREATE TABLE host_modems (
    host          text    NOT NULL REFERENCES hosts (node) ON DELETE CASCADE,
    name          text    NOT NULL,
    number_digest bytea,
    ready         boolean NOT NULL,
    status        jsonb   NOT NULL,
    PRIMARY KEY (host, name)
);
CREATE INDEX host_modems_number ON host_modems (number_digest) WHERE number_digest IS NOT NULL;
