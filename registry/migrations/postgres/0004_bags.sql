-- Gates' bags of examination records (seed 001: single-use bag numbers).
CREATE TABLE bags (
    gate       BYTEA NOT NULL,
    bag_number BIGINT NOT NULL,
    entries    BIGINT NOT NULL,
    admitted   BIGINT NOT NULL,
    settled_at BIGINT NOT NULL,
    PRIMARY KEY (gate, bag_number)
);

-- Each settled examination, by its certificate's digest: settled once.
CREATE TABLE examinations (
    certificate BYTEA PRIMARY KEY,
    gate        BYTEA NOT NULL,
    bag_number  BIGINT NOT NULL,
    instrument  BYTEA NOT NULL,
    admitted    BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL,
    status      TEXT NOT NULL,
    examined_at BIGINT NOT NULL
);
