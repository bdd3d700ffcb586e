-- The sweep's watermark (kalimera.conversations.sweep): every blob of the recordings container
-- last modified at or before it has a turn, a rejection or a processed version. One row; not a
-- tenant table (it names no tenant).
CREATE TABLE kalimera_ingest_sweep (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    watermark timestamptz NOT NULL,
    swept_at timestamptz NOT NULL DEFAULT now()
);
