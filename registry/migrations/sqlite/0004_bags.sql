-- Gates' bags of examination records (seed 001: single-use bag numbers).
CREATE TABLE bags (
    gate       BLOB NOT NULL,
    bag_number INTEGER NOT NULL,
    entries    INTEGER NOT NULL,
    admitted   INTEGER NOT NULL,
    settled_at INTEGER NOT NULL,
    PRIMARY KEY (gate, bag_number)
);

-- Each settled examination, by its certificate's digest: settled once.
CREATE TABLE examinations (
    certificate BLOB PRIMARY KEY,
    gate        BLOB NOT NULL,
    bag_number  INTEGER NOT NULL,
    instrument  BLOB NOT NULL,
    admitted    INTEGER NOT NULL,
    uses_left   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    examined_at INTEGER NOT NULL
);
