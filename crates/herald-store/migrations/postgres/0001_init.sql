-- Herald's PostgreSQL schema: the SQLite schema (0001 + 0002) in one migration.
-- Timestamps are UNIX milliseconds (BIGINT) and JSON is TEXT, as in SQLite, so
-- both backends read and write the same representation. Integer columns are
-- BIGINT because the code reads them as i64. Identifiers collate as "C" so that
-- keyset pagination orders them bytewise, as SQLite does, whatever the
-- database's default collation.

CREATE TABLE application (
    id            TEXT COLLATE "C" PRIMARY KEY,
    org_id        TEXT COLLATE "C" NOT NULL,
    uid           TEXT COLLATE "C",
    name          TEXT COLLATE "C" NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    throttle_rate BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX application_org_uid ON application (org_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX application_org_id ON application (org_id, id);

CREATE TABLE event_type (
    org_id           TEXT COLLATE "C" NOT NULL,
    name             TEXT COLLATE "C" NOT NULL,
    description      TEXT NOT NULL,
    archived         BOOLEAN NOT NULL DEFAULT FALSE,
    deprecated       BOOLEAN NOT NULL DEFAULT FALSE,
    feature_flag     TEXT,
    schemas          TEXT,
    -- Shown on the public catalog page (opt-in: off for new types).
    public           BOOLEAN NOT NULL DEFAULT FALSE,
    -- Refuse messages whose payload does not match the type's schema (opt-in).
    validate_payload BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE endpoint (
    id            TEXT COLLATE "C" PRIMARY KEY,
    app_id        TEXT COLLATE "C" NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    uid           TEXT COLLATE "C",
    url           TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    -- JSON lists of strings, or NULL.
    event_types   TEXT,
    channels      TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    headers       TEXT NOT NULL DEFAULT '{}',
    throttle_rate BIGINT,
    -- How the endpoint wants timestamp fields: unix, unix_ms, iso8601, rfc2822.
    date_format   TEXT NOT NULL DEFAULT 'unix',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX endpoint_app_uid ON endpoint (app_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX endpoint_app_id ON endpoint (app_id, id);

-- The current key has expires_at NULL; a rotated-out key signs until expires_at.
CREATE TABLE endpoint_secret (
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX endpoint_secret_endpoint ON endpoint_secret (endpoint_id);

CREATE TABLE message (
    id         TEXT COLLATE "C" PRIMARY KEY,
    app_id     TEXT COLLATE "C" NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    event_type TEXT COLLATE "C" NOT NULL,
    event_id   TEXT COLLATE "C",
    -- A JSON list of strings, or NULL.
    channels   TEXT,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX message_app_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX message_app_id ON message (app_id, id);

-- One row per (message, endpoint): the delivery's state. next_attempt_at is NULL
-- once the delivery has succeeded or failed for good.
CREATE TABLE delivery (
    msg_id          TEXT COLLATE "C" NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    app_id          TEXT COLLATE "C" NOT NULL,
    status          BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until     BIGINT,
    manual          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
-- Claiming (FOR UPDATE SKIP LOCKED, ordered by next_attempt_at) walks this
-- index; finished deliveries are not in it.
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX delivery_endpoint ON delivery (endpoint_id, msg_id);

-- Attempts outlive their endpoint, so they keep the URL they went to.
CREATE TABLE attempt (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    msg_id               TEXT COLLATE "C" NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id          TEXT COLLATE "C" NOT NULL,
    app_id               TEXT COLLATE "C" NOT NULL,
    url                  TEXT NOT NULL,
    status               BIGINT NOT NULL,
    response_status_code BIGINT NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms BIGINT NOT NULL,
    trigger_type         BIGINT NOT NULL,
    created_at           BIGINT NOT NULL
);
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);

-- Responses remembered for idempotency-key replays. status NULL: still running.
CREATE TABLE idempotency (
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    status     BIGINT,
    body       BYTEA,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
