-- Version 2: success/failure outcomes per operation. One row per bin of
-- one operation per outcome kind: `error_type` NULL counts successes, else
-- the failures of that error type. Appended like `bins`; queries sum them.
CREATE TABLE outcomes (
    instance   TEXT    NOT NULL,
    run        TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    ring_ms    INTEGER NOT NULL,
    start_ms   INTEGER NOT NULL,
    error_type TEXT,
    count      INTEGER NOT NULL
);
CREATE INDEX outcomes_by_operation ON outcomes (operation, start_ms);
CREATE INDEX outcomes_by_ring ON outcomes (ring_ms, start_ms);
