-- ghost-engine's execution state as a relational schema (PostgreSQL 13+).
--
-- The same entities as the DynamoDB table and the S3 bucket (docs/schema.md), one table each:
-- what DynamoDB nests inside a job item has a table of its own here, joined by the relationship
-- ids every entity carries. Each access pattern of docs/schema.md has the index named after it.
-- storage/sql/postgres.py loads an export (ghost-engine-admin to-postgres) and holds the queries.
-- Foreign keys are checked at commit, so a whole export loads in one transaction in file order.

CREATE TABLE IF NOT EXISTS jobs (
    job_id          uuid PRIMARY KEY,
    state           text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    prompt          text NOT NULL,          -- user content
    seed            bigint NOT NULL,
    style           text NOT NULL,
    progress        numeric(7, 6) NOT NULL CHECK (progress BETWEEN 0 AND 1),
    total_steps     integer NOT NULL,
    plugin          text NOT NULL,
    attempt         integer NOT NULL CHECK (attempt BETWEEN 1 AND 10),
    result_keys     jsonb,
    result_summary  text,
    error           jsonb,                  -- {message, code, details?}
    fault_drill     text,
    expires_at      timestamptz NOT NULL    -- DynamoDB's ttl
);
-- newest jobs: GET /jobs
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at DESC, job_id DESC);
-- jobs by state: GET /jobs?state=
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at DESC, job_id DESC);
-- failed jobs since a time (retry-job --all-failed --since); jobs the stall sweeper must find
CREATE INDEX IF NOT EXISTS jobs_by_state_updated ON jobs (state, updated_at);
-- retention: what expired
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs (expires_at);

CREATE TABLE IF NOT EXISTS attempts (
    attempt_id  text PRIMARY KEY,           -- {jobId}:attempt:{n}
    job_id      uuid NOT NULL REFERENCES jobs ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    attempt     integer NOT NULL CHECK (attempt BETWEEN 1 AND 10),
    started_at  timestamptz NOT NULL,
    from_step   text,                       -- NULL: from the first step
    action_id   text,                       -- the retry that started it; NULL for attempt 1
    UNIQUE (job_id, attempt)                -- a job's attempts
);

CREATE TABLE IF NOT EXISTS operator_actions (
    action_id   text PRIMARY KEY,           -- {jobId}:retry:{n} or {jobId}:cancel
    job_id      uuid NOT NULL REFERENCES jobs ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    kind        text NOT NULL CHECK (kind IN ('retry', 'cancel')),
    attempt     integer NOT NULL,           -- the attempt a retry started, or a cancel ended
    acted_at    timestamptz NOT NULL,
    acted_by    text NOT NULL,
    reason      text NOT NULL,
    FOREIGN KEY (job_id, attempt) REFERENCES attempts (job_id, attempt) DEFERRABLE INITIALLY DEFERRED
);
-- a job's operator actions
CREATE INDEX IF NOT EXISTS operator_actions_of_job ON operator_actions (job_id, acted_at);

DO $$ BEGIN
    ALTER TABLE attempts ADD CONSTRAINT attempts_action_fk
        FOREIGN KEY (action_id) REFERENCES operator_actions DEFERRABLE INITIALLY DEFERRED;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS step_records (
    step_id      text PRIMARY KEY,          -- {jobId}:{step}, or {jobId}:{step}#{attempt} after a retry
    job_id       uuid NOT NULL REFERENCES jobs ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    attempt      integer NOT NULL,
    sequence     integer NOT NULL,          -- order of recording within the job
    name         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('ok', 'error')),
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    duration_ms  integer NOT NULL,
    summary      text NOT NULL,
    FOREIGN KEY (job_id, attempt) REFERENCES attempts (job_id, attempt) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (job_id, sequence)               -- a job's steps
);

CREATE TABLE IF NOT EXISTS step_leases (
    step_id     text PRIMARY KEY,           -- the step being computed
    job_id      uuid NOT NULL REFERENCES jobs ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    owner       text NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS step_leases_of_job ON step_leases (job_id);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key                  text PRIMARY KEY,  -- the client's Idempotency-Key: a job by idempotency key
    job_id               uuid NOT NULL UNIQUE REFERENCES jobs ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    request_fingerprint  text NOT NULL
);

CREATE TABLE IF NOT EXISTS artifacts (
    key           text PRIMARY KEY,         -- jobs/{jobId}/...
    job_id        uuid NOT NULL REFERENCES jobs ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    sha256        char(64) NOT NULL,
    store         text NOT NULL CHECK (store IN ('s3', 'table'))
);
-- a job's artifacts
CREATE INDEX IF NOT EXISTS artifacts_of_job ON artifacts (job_id, key);
