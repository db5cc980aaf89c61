-- Former-holder records are read from the endorsements instead of stored
-- beside them (PostgreSQL migration 0013 says why): every registered
-- endorsement makes its signer a former holder, from the sequence before it
-- up to it, after the record a step earlier.
--
-- Before the table goes, every stored record is checked against what the
-- endorsements say, both ways: where they differ the CHECK below fails
-- ("CHECK constraint failed: former_holders_match_endorsements"), the
-- migration's transaction is rolled back and the registry does not start.
CREATE TEMP TABLE migration_0010 (
    differing INTEGER NOT NULL CONSTRAINT former_holders_match_endorsements CHECK (differing = 0)
);
CREATE TEMP VIEW migration_0010_derived AS
SELECT instrument, sequence - 1 AS from_sequence, sequence - 1 AS until_sequence, signer AS holder,
       CASE WHEN sequence > 1 THEN sequence - 2 END AS previous_from, registered_at AS recorded_at
FROM main.endorsements;
INSERT INTO migration_0010
SELECT (SELECT count(*) FROM (SELECT instrument, from_sequence, until_sequence, holder, previous_from, recorded_at
                              FROM main.former_holders
                              EXCEPT SELECT * FROM migration_0010_derived))
     + (SELECT count(*) FROM (SELECT * FROM migration_0010_derived
                              EXCEPT SELECT instrument, from_sequence, until_sequence, holder, previous_from,
                                            recorded_at FROM main.former_holders));
DROP VIEW migration_0010_derived;
DROP TABLE migration_0010;

DROP TABLE former_holders;

CREATE VIEW former_holders AS
SELECT instrument,
       sequence - 1 AS from_sequence,
       sequence - 1 AS until_sequence,
       signer AS holder,
       CASE WHEN sequence > 1 THEN sequence - 2 END AS previous_from,
       registered_at AS recorded_at
FROM endorsements;

-- `instruments.former_head` named the newest former-holder record for the
-- table's chain to be walked; the view is read by instrument, and the
-- column would only be written on every registration and read by nothing.
ALTER TABLE instruments DROP COLUMN former_head;
