-- Work the API answers at once and finishes behind (Svix's background tasks:
-- endpoint.recover), visible through /api/v1/background-task.
CREATE TABLE background_task (
    id         TEXT COLLATE "C" PRIMARY KEY,
    org_id     TEXT COLLATE "C" NOT NULL,
    task       TEXT NOT NULL,
    status     TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX background_task_org ON background_task (org_id, id);
