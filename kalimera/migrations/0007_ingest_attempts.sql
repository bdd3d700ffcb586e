-- Failed attempts at one blob version whose error the ingestion did not expect (a bug, or an
-- input no check foresaw). Such an error raises, so the host retries, until the version has
-- failed kalimera.conversations.attempts.MAX_ATTEMPTS times; then it becomes a listed rejection
-- ("internal error: ...") instead of an endless retry. Transient faults (Postgres, Table or Blob
-- storage unreachable) are not counted: they raise every time. Keyed like the rejections.
CREATE TABLE kalimera_ingest_attempts (
    blob_name text NOT NULL,
    etag text NOT NULL,
    attempts integer NOT NULL CHECK (attempts >= 1),
    last_error text NOT NULL,
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blob_name, etag)
);
