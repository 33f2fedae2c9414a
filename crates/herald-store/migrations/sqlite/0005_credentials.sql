-- Who may call the API and open the portal, kept so that each can be listed,
-- revoked and used once; and a few facts about the database itself.

-- An API token's identity (its `jti`). The token itself is never stored.
-- revoked_at set: refused from then on (legacy tokens without an id are
-- revoked by a row whose id is derived from the token's hash).
CREATE TABLE api_token (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    app_id     TEXT,
    name       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_token_revoked ON api_token (revoked_at) WHERE revoked_at IS NOT NULL;

-- A portal link (its token's `jti`) and the sessions it opens: the link works
-- once (used_at), until link_expires_at; its sessions end at expires_at, or
-- when ended_at is set (logout).
CREATE TABLE portal_grant (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    app_id          TEXT,
    read_only       INTEGER NOT NULL DEFAULT 0,
    session_id      TEXT,
    created_at      INTEGER NOT NULL,
    link_expires_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    ended_at        INTEGER
);
CREATE INDEX portal_grant_expires_at ON portal_grant (expires_at);
CREATE INDEX portal_grant_app ON portal_grant (app_id);

-- Idempotency records are kept for a bounded time; pruning walks this.
CREATE INDEX idempotency_created_at ON idempotency (created_at);

-- Facts about the database: which key secrets were last sealed with.
CREATE TABLE herald_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
