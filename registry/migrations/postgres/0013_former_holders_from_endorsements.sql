-- Former-holder records are read from the endorsements instead of stored
-- beside them.
--
-- Every registered endorsement makes its signer a former holder, and the
-- record written for it said nothing the endorsement does not: the signer
-- held the instrument from the sequence before the endorsement's up to that
-- sequence, and the record before it is the one a step earlier. Writing it
-- cost ingest a second insert per endorsement, a primary-key entry and a
-- reference check (about 8 ms of a 1,000-endorsement batch during ingest,
-- docs/benchmarks.md). `former_holders` is now a view with the same
-- columns.
--
-- Before the table goes, every stored record is checked against what the
-- endorsements say, both ways; a database where they differ is not
-- migrated (the transaction is rolled back and the registry does not
-- start), for an operator to look at, rather than lose a record.
DO $$
DECLARE
    differing BIGINT;
BEGIN
    WITH derived AS (
        SELECT instrument, sequence - 1 AS from_sequence, sequence - 1 AS until_sequence, signer AS holder,
               CASE WHEN sequence > 1 THEN sequence - 2 END AS previous_from, registered_at AS recorded_at
        FROM endorsements
    ), stored AS (
        SELECT instrument, from_sequence, until_sequence, holder, previous_from, recorded_at FROM former_holders
    )
    SELECT (SELECT count(*) FROM (SELECT * FROM stored EXCEPT ALL SELECT * FROM derived) s)
         + (SELECT count(*) FROM (SELECT * FROM derived EXCEPT ALL SELECT * FROM stored) d)
    INTO differing;
    IF differing > 0 THEN
        RAISE EXCEPTION 'former_holders has % record(s) that the endorsements do not imply, or lacks some they do', differing
            USING ERRCODE = 'data_exception',
                  HINT = 'Compare former_holders with the endorsements before migrating to schema version 13.';
    END IF;
END
$$;

DROP TABLE former_holders;

-- A registered endorsement is a signed fact: nothing in the registry
-- changes or deletes one, and the database now refuses both, so the view
-- below (which PostgreSQL would otherwise let a DELETE or an UPDATE of
-- `holder` pass through to the endorsements) and the history it shows
-- stay as registered.
CREATE TRIGGER endorsements_keep_history
    BEFORE UPDATE OR DELETE OR TRUNCATE ON endorsements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
DROP TRIGGER endorsements_reference_instruments_on_update ON endorsements;

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

-- Only endorsements are checked now: the former-holder branch is gone.
CREATE OR REPLACE FUNCTION check_references() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    missing BYTEA;
BEGIN
    SELECT n.instrument INTO missing FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM instruments i WHERE i.id = n.instrument)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" violates its references', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Instrument %s is not present.', encode(missing, 'hex'));
    END IF;
    RETURN NULL;
END
$$;
