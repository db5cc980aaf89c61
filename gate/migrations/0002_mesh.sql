-- Gate schema, version 2: the gate mesh.
-- Every used event this gate made or merged, for catch-up after a partition.
CREATE TABLE mesh_events (
    gate        BLOB NOT NULL,
    record      INTEGER NOT NULL,
    event       BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (gate, record)
);

-- Conflicts found when merging: double entries during a partition, forks.
CREATE TABLE conflicts (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    time          INTEGER NOT NULL,
    instrument_id BLOB NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('double-entry', 'double-transfer')),
    remote_gate   BLOB NOT NULL,
    remote_record INTEGER NOT NULL,
    uses_consumed INTEGER NOT NULL,
    uses_allowed  INTEGER NOT NULL,
    proof         BLOB
);
