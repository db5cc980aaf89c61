-- Examination certificates wallets upload at reconciliation (the gate's
-- own bag may come later or never): recorded once per certificate digest.
CREATE TABLE reported_examinations (
    certificate BLOB PRIMARY KEY,
    gate        BLOB NOT NULL,
    instrument  BLOB NOT NULL REFERENCES instruments (id),
    counter     INTEGER NOT NULL,
    admitted    INTEGER NOT NULL,
    uses_left   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    examined_at INTEGER NOT NULL,
    reported_by BLOB NOT NULL,
    reported_at INTEGER NOT NULL
);
CREATE INDEX reported_examinations_instrument ON reported_examinations (instrument);
