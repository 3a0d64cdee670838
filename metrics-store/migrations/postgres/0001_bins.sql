-- One row per persisted bin of one series, written by one instance.
-- Rows are only appended (a bin written at shutdown and the rest of it
-- after the restart are two rows); queries merge them. `run` tells the
-- runs of one instance apart.
CREATE TABLE bins (
    instance TEXT             NOT NULL,
    run      TEXT             NOT NULL,
    name     TEXT             NOT NULL,
    tags     JSONB            NOT NULL,
    kind     TEXT             NOT NULL,
    ring_ms  BIGINT           NOT NULL,
    start_ms BIGINT           NOT NULL,
    count    BIGINT           NOT NULL,
    sum      DOUBLE PRECISION NOT NULL,
    min      DOUBLE PRECISION NOT NULL,
    max      DOUBLE PRECISION NOT NULL,
    sketch   BYTEA
);
CREATE INDEX bins_by_name ON bins (name, start_ms);
CREATE INDEX bins_by_ring ON bins (ring_ms, start_ms);
CREATE INDEX bins_by_tags ON bins USING GIN (tags jsonb_path_ops);
