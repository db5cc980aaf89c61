-- Gate schema, version 1.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Every decision, admitted or refused, with what was presented and the
-- certificate sent back. `bag` is set once the record was packed for upload.
CREATE TABLE records (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    time          INTEGER NOT NULL,
    instrument_id BLOB NOT NULL CHECK (length(instrument_id) = 16),
    holder        BLOB NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('admitted', 'refused')),
    reason        TEXT,
    instruction   TEXT NOT NULL,
    uses_left     INTEGER NOT NULL,
    counter       INTEGER NOT NULL,
    certificate   BLOB NOT NULL,
    presentation  BLOB NOT NULL,
    proof         BLOB,
    bag           INTEGER
);
CREATE INDEX records_by_instrument ON records (instrument_id, seq);

-- The used set: what this gate (or a gate of its mesh) admitted.
CREATE TABLE used (
    instrument_id BLOB PRIMARY KEY CHECK (length(instrument_id) = 16),
    uses_consumed INTEGER NOT NULL,
    holder        BLOB NOT NULL,
    instrument    BLOB NOT NULL,
    source        BLOB NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL
);
