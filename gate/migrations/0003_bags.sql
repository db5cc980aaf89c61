-- Gate schema, version 3: bags kept until the registry answers.
-- A bag is written here in the same transaction that takes its number and
-- marks its records packed, so a packed record is never lost between
-- packing and upload. `state`: packed (not yet answered), settled, or
-- refused (with the registry's reason code and message).
CREATE TABLE bags (
    number      INTEGER PRIMARY KEY,
    bag         BLOB NOT NULL,
    entries     INTEGER NOT NULL,
    packed_at   INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('packed', 'settled', 'refused')),
    reason      TEXT,
    answered_at INTEGER
);
