-- Modification notices (seed 003 [1711-1766]): an organiser changes a
-- ticket; its holder answers once: accept (a new ticket), refuse (the
-- ticket is disabled) or refund (notes back).
CREATE TABLE modifications (
    modification_id BLOB PRIMARY KEY,
    instrument      BLOB NOT NULL REFERENCES instruments (id),
    zone            TEXT NOT NULL,
    seat            TEXT,
    valid_from      INTEGER NOT NULL,
    valid_until     INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'accept', 'refuse', 'refund')),
    created_at      INTEGER NOT NULL
);
