-- Examination certificates wallets upload at reconciliation (the gate's
-- own bag may come later or never): recorded once per certificate digest.
CREATE TABLE reported_examinations (
    certificate BYTEA PRIMARY KEY,
    gate        BYTEA NOT NULL,
    instrument  BYTEA NOT NULL REFERENCES instruments (id),
    counter     BIGINT NOT NULL,
    admitted    BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL,
    status      TEXT NOT NULL,
    examined_at BIGINT NOT NULL,
    reported_by BYTEA NOT NULL,
    reported_at BIGINT NOT NULL
);
CREATE INDEX reported_examinations_instrument ON reported_examinations (instrument);
