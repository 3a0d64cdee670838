-- One row per persisted bin of one series, written by one instance.
-- Rows are only appended (a bin written at shutdown and the rest of it
-- after the restart are two rows); queries merge them. `run` tells the
-- runs of one instance apart.
CREATE TABLE bins (
    instance TEXT    NOT NULL,
    run      TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    tags     TEXT    NOT NULL CHECK (json_valid(tags)),
    kind     TEXT    NOT NULL,
    ring_ms  INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    sum      REAL    NOT NULL,
    min      REAL    NOT NULL,
    max      REAL    NOT NULL,
    sketch   BLOB
);
CREATE INDEX bins_by_name ON bins (name, start_ms);
CREATE INDEX bins_by_ring ON bins (ring_ms, start_ms);
