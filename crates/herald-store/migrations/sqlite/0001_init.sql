-- Herald's SQLite schema. Timestamps are UNIX milliseconds (INTEGER); JSON is TEXT.

CREATE TABLE application (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    uid           TEXT,
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    throttle_rate INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX application_org_uid ON application (org_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX application_org_id ON application (org_id, id);

CREATE TABLE event_type (
    org_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    archived     INTEGER NOT NULL DEFAULT 0,
    deprecated   INTEGER NOT NULL DEFAULT 0,
    feature_flag TEXT,
    schemas      TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE endpoint (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    uid           TEXT,
    url           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    event_types   TEXT,
    channels      TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    headers       TEXT NOT NULL DEFAULT '{}',
    throttle_rate INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX endpoint_app_uid ON endpoint (app_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX endpoint_app_id ON endpoint (app_id, id);

-- The current key has expires_at NULL; a rotated-out key signs until expires_at.
CREATE TABLE endpoint_secret (
    endpoint_id TEXT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX endpoint_secret_endpoint ON endpoint_secret (endpoint_id);

CREATE TABLE message (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    event_id   TEXT,
    channels   TEXT,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX message_app_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX message_app_id ON message (app_id, id);

-- One row per (message, endpoint): the delivery's state. next_attempt_at is NULL
-- once the delivery has succeeded or failed for good.
CREATE TABLE delivery (
    msg_id          TEXT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    app_id          TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until     INTEGER,
    manual          INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX delivery_endpoint ON delivery (endpoint_id, msg_id);

-- Attempts outlive their endpoint, so they keep the URL they went to.
CREATE TABLE attempt (
    id                   TEXT PRIMARY KEY,
    msg_id               TEXT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id          TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    trigger_type         INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);

-- Responses remembered for idempotency-key replays. status NULL: still running.
CREATE TABLE idempotency (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    status     INTEGER,
    body       BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
